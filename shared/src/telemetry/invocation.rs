//! One Lambda invocation's span: the FaaS and cloud attributes, the X-Ray
//! parent, the cold-start metric, and the flush before the process freezes.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::Ordering;

use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::traces::{current_trace_context, record_exception};
use super::{xray, Telemetry};

impl Telemetry {
    /// Starts an invocation: its span, with the FaaS and cloud attributes and
    /// the Lambda's X-Ray context as parent. Run the handler with
    /// [`Invocation::run`].
    pub fn invocation(&self, info: InvocationInfo) -> Invocation {
        let cold = self.inner.cold.swap(false, Ordering::Relaxed);
        let config = &self.inner.config;
        let function_name = info
            .function_name
            .clone()
            .unwrap_or_else(|| config.function_name.clone());
        let account = info
            .function_arn
            .split(':')
            .nth(4)
            .filter(|a| !a.is_empty());
        let span = tracing::info_span!(
            "vigil.invocation",
            otel.name = %function_name,
            otel.kind = info.trigger.span_kind(),
            otel.status_code = tracing::field::Empty,
            faas.invocation_id = %info.request_id,
            faas.name = %function_name,
            faas.coldstart = cold,
            faas.trigger = info.trigger.as_str(),
            cloud.provider = "aws",
            cloud.region = tracing::field::Empty,
            cloud.account.id = tracing::field::Empty,
            cloud.resource_id = tracing::field::Empty,
            vigil.correlation_id = tracing::field::Empty,
        );
        if let Some(r) = &config.region {
            span.record("cloud.region", r.as_str());
        }
        if let Some(a) = account {
            span.record("cloud.account.id", a);
        }
        if !info.function_arn.is_empty() {
            span.record("cloud.resource_id", info.function_arn.as_str());
        }
        if let Some(parent) = info
            .xray_trace_id
            .as_deref()
            .and_then(xray::parent_from_xray_header)
        {
            // Ignored when the span is filtered out: then there is no trace.
            let _ = span.set_parent(parent);
        }
        Invocation {
            telemetry: self.clone(),
            span,
            cold,
            request_id: info.request_id,
        }
    }
}

/// What triggered a function (`faas.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// EventBridge, SNS, SQS.
    #[default]
    PubSub,
    Datasource,
    Http,
    Timer,
    Other,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::PubSub => "pubsub",
            Trigger::Datasource => "datasource",
            Trigger::Http => "http",
            Trigger::Timer => "timer",
            Trigger::Other => "other",
        }
    }

    fn span_kind(self) -> &'static str {
        match self {
            Trigger::PubSub => "consumer",
            Trigger::Http => "server",
            _ => "internal",
        }
    }
}

/// What the Lambda runtime tells about an invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationInfo {
    pub request_id: String,
    pub function_arn: String,
    /// None: the configured function name.
    pub function_name: Option<String>,
    /// The X-Ray trace header (`Root=...;Parent=...;Sampled=...`).
    pub xray_trace_id: Option<String>,
    pub trigger: Trigger,
}

impl InvocationInfo {
    pub fn new(context: &lambda_runtime::Context, trigger: Trigger) -> InvocationInfo {
        InvocationInfo {
            request_id: context.request_id.clone(),
            function_arn: context.invoked_function_arn.clone(),
            function_name: Some(context.env_config.function_name.clone()).filter(|n| !n.is_empty()),
            xray_trace_id: context.xray_trace_id.clone(),
            trigger,
        }
    }
}

/// One invocation's span; see [`Telemetry::invocation`].
#[derive(Debug)]
pub struct Invocation {
    telemetry: Telemetry,
    span: tracing::Span,
    cold: bool,
    request_id: String,
}

impl Invocation {
    /// The correlation id its log lines carry (an EventBridge event's `id`).
    pub fn correlation_id(self, id: &str) -> Invocation {
        self.span.record("vigil.correlation_id", id);
        self
    }

    /// Continues a trace carried by the event (the SNS message attributes
    /// `traceparent` / `AWSTraceHeader` on an alert) instead of the Lambda's
    /// X-Ray context: a notifier's spans join the alert's trace.
    pub fn continue_trace(self, parent: opentelemetry::Context) -> Invocation {
        let _ = self.span.set_parent(parent);
        self
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Runs the handler inside the invocation span, marks the span failed on
    /// error, ends it, then flushes spans and metrics before returning (the
    /// process is frozen right after). The handler's result is returned
    /// untouched.
    pub async fn run<R, E, Fut>(self, handler: Fut) -> Result<R, E>
    where
        Fut: Future<Output = Result<R, E>>,
        E: Display,
    {
        let Invocation {
            telemetry,
            span,
            cold,
            request_id,
        } = self;
        if cold {
            let _entered = span.enter();
            let trace = current_trace_context();
            telemetry.inner.metrics.record(
                telemetry
                    .inner
                    .recorder
                    .cold_start(Some(&request_id), trace.as_ref()),
            );
        }
        let result = handler.instrument(span.clone()).await;
        if let Err(e) = &result {
            span.record("otel.status_code", "ERROR");
            record_exception(&span, "invocation_error", &e.to_string());
        }
        // Ends the span, so the flush below exports it.
        drop(span);
        telemetry.flush().await;
        result
    }
}

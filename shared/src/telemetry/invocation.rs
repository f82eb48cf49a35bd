//! One Lambda invocation's span, as the semantic conventions' "Instrumenting
//! AWS Lambda" and FaaS spans describe it: kind `SERVER` named after the
//! function for every trigger but SQS, whose invocation is the `CONSUMER`
//! span of the whole SQS event ([`super::messaging`]); `faas.*`, `cloud.*`
//! and `aws.lambda.invoked_arn`; the X-Ray parent; the cold-start metric; and
//! the flush before the process freezes.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::Ordering;

use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::messaging::{MessageBatch, SQS};
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
        let (kind, name) = match &info.messages {
            Some(batch) => ("consumer", batch.span_name()),
            None => ("server", function_name.clone()),
        };
        let span = tracing::info_span!(
            "vigil.invocation",
            otel.name = %name,
            otel.kind = kind,
            otel.status_code = tracing::field::Empty,
            faas.invocation_id = %info.request_id,
            faas.name = %function_name,
            faas.coldstart = cold,
            faas.trigger = info.trigger.as_str(),
            cloud.provider = "aws",
            cloud.region = tracing::field::Empty,
            cloud.account.id = tracing::field::Empty,
            cloud.resource_id = tracing::field::Empty,
            aws.lambda.invoked_arn = tracing::field::Empty,
            messaging.system = tracing::field::Empty,
            messaging.operation.name = tracing::field::Empty,
            messaging.operation.type = tracing::field::Empty,
            messaging.destination.name = tracing::field::Empty,
            messaging.batch.message_count = tracing::field::Empty,
            vigil.xray_trace_id = tracing::field::Empty,
            vigil.correlation_id = tracing::field::Empty,
        );
        self.describe(&span, &info);
        Invocation {
            telemetry: self.clone(),
            span,
            cold,
            request_id: info.request_id,
            function_name,
        }
    }

    /// The attributes known from the context and the event, the X-Ray
    /// parent, and the producers' links: all set before the span starts, so
    /// the sampler sees them.
    fn describe(&self, span: &tracing::Span, info: &InvocationInfo) {
        let config = &self.inner.config;
        if let Some(r) = &config.region {
            span.record("cloud.region", r.as_str());
        }
        if !info.function_arn.is_empty() {
            let invoked = crate::text::one_line(&info.function_arn, MAX_ARN);
            span.record("aws.lambda.invoked_arn", invoked.as_str());
        }
        if let Some(arn) = FunctionArn::parse(&info.function_arn) {
            span.record("cloud.account.id", arn.account);
            span.record(
                "cloud.resource_id",
                arn.resource_id(config.function_version.as_deref()).as_str(),
            );
        }
        if let Some(batch) = &info.messages {
            span.record("messaging.system", SQS);
            span.record("messaging.operation.name", "process");
            span.record("messaging.operation.type", "process");
            // An i64: `tracing-opentelemetry` exports other integers as text.
            let count = i64::try_from(batch.count).unwrap_or(i64::MAX);
            span.record("messaging.batch.message_count", count);
            if let Some(q) = &batch.destination {
                span.record("messaging.destination.name", q.as_str());
            }
            for link in &batch.links {
                span.add_link(link.clone());
            }
        }
        let header = info.xray_trace_id.as_deref();
        if let Some(root) = header.and_then(xray::lambda_root) {
            span.record("vigil.xray_trace_id", root);
        }
        if let Some(parent) = header.and_then(xray::parent_from_xray_header) {
            // Ignored when the span is filtered out: then there is no trace.
            let _ = span.set_parent(parent);
        }
    }
}

/// The longest invoked ARN recorded (Lambda's own limit is 256 characters).
const MAX_ARN: usize = 256;

/// A Lambda function ARN, as the runtime passes the invoked one:
/// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FunctionArn<'a> {
    /// Everything up to the function name.
    unqualified: &'a str,
    account: &'a str,
}

impl<'a> FunctionArn<'a> {
    fn parse(arn: &'a str) -> Option<FunctionArn<'a>> {
        let parts: Vec<&str> = arn.split(':').collect();
        let ["arn", _, "lambda", _, account, "function", name, rest @ ..] = parts.as_slice() else {
            return None;
        };
        let ok = rest.len() <= 1
            && !name.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit());
        let end = arn.len() - rest.first().map_or(0, |q| q.len() + 1);
        ok.then_some(FunctionArn {
            unqualified: &arn[..end],
            account,
        })
    }

    /// `cloud.resource_id`: the function ARN with the version that runs, not
    /// the alias it was invoked by (one execution environment serves every
    /// alias of its version).
    fn resource_id(&self, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("{}:{v}", self.unqualified),
            None => self.unqualified.to_string(),
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
}

/// What the Lambda runtime tells about an invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationInfo {
    pub request_id: String,
    /// The invoked ARN (with the alias or version it was invoked by).
    pub function_arn: String,
    /// None: the configured function name.
    pub function_name: Option<String>,
    /// The X-Ray trace header (`Root=...;Parent=...;Sampled=...`).
    pub xray_trace_id: Option<String>,
    pub trigger: Trigger,
    /// An SQS-triggered invocation's messages. None: another trigger.
    pub messages: Option<MessageBatch>,
}

impl InvocationInfo {
    pub fn new(context: &lambda_runtime::Context, trigger: Trigger) -> InvocationInfo {
        InvocationInfo {
            request_id: context.request_id.clone(),
            function_arn: context.invoked_function_arn.clone(),
            function_name: Some(context.env_config.function_name.clone()).filter(|n| !n.is_empty()),
            xray_trace_id: context.xray_trace_id.clone(),
            trigger,
            messages: None,
        }
    }

    /// The invocation processes an SQS event: its span becomes the event's
    /// `CONSUMER` span.
    pub fn with_messages(mut self, batch: MessageBatch) -> InvocationInfo {
        self.messages = Some(batch);
        self
    }
}

/// One invocation's span; see [`Telemetry::invocation`].
#[derive(Debug)]
pub struct Invocation {
    telemetry: Telemetry,
    span: tracing::Span,
    cold: bool,
    request_id: String,
    function_name: String,
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
            function_name,
        } = self;
        if cold {
            let _entered = span.enter();
            let trace = current_trace_context();
            telemetry
                .inner
                .metrics
                .record(telemetry.inner.recorder.cold_start(
                    &function_name,
                    Some(&request_id),
                    trace.as_ref(),
                ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_id_is_the_running_version_whatever_the_alias() {
        let alias = "arn:aws:lambda:us-east-1:123456789012:function:vigil-guardduty:live";
        let arn = FunctionArn::parse(alias).unwrap();
        assert_eq!(arn.account, "123456789012");
        assert_eq!(
            arn.resource_id(Some("7")),
            "arn:aws:lambda:us-east-1:123456789012:function:vigil-guardduty:7"
        );
        let bare = "arn:aws:lambda:us-east-1:123456789012:function:vigil-guardduty";
        assert_eq!(
            FunctionArn::parse(bare)
                .unwrap()
                .resource_id(Some("$LATEST")),
            format!("{bare}:$LATEST")
        );
        assert_eq!(FunctionArn::parse(bare).unwrap().resource_id(None), bare);
        for bad in [
            "",
            "vigil-guardduty",
            "arn:aws:lambda:us-east-1:123456789012:layer:x:1",
            "arn:aws:lambda:us-east-1:1234:function:x",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:lambda:us-east-1:123456789012:function:x:1:2",
            "arn:aws:s3:::bucket",
        ] {
            assert_eq!(FunctionArn::parse(bad), None, "{bad:?}");
        }
    }
}

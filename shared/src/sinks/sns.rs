//! The SNS topic: the alert every subscriber (email, Chatbot, the notifier,
//! SQS) receives, one publish per finding.
//!
//! Each publish is a `PRODUCER` span, as the semantic conventions for
//! messaging spans and AWS SNS describe a send: named `send <topic>`, with
//! `messaging.system = aws.sns`, `messaging.operation.type = send`,
//! `messaging.destination.name`, `aws.sns.topic.arn` and, once SNS answers,
//! `messaging.message.id` and `aws.request_id`. Its context is the message's
//! creation context: the `traceparent` and `AWSTraceHeader` attributes carry
//! it, so a subscriber's `process` span links (or, for the notifier, is
//! parented) to the span that sent the message.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::RequestId;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::Status;
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{AlertSink, Delivery, SinkError, SinkFuture};
use crate::render::{self, Alert};

/// `messaging.system` for SNS (the registry spells it with a dot, unlike
/// `aws_sqs`).
pub const MESSAGING_SYSTEM: &str = "aws.sns";

/// Publishes alerts to one topic.
#[derive(Debug, Clone)]
pub struct SnsSink {
    client: Client,
    topic_arn: String,
    /// Attempts for throttling and 5xx before the invocation fails (and
    /// EventBridge or Lambda retries it).
    max_attempts: u32,
}

/// The trace headers a message carries: the creation context of the send.
#[derive(Debug, Default)]
struct TraceHeaders {
    traceparent: Option<String>,
    aws_trace_header: Option<String>,
}

impl TraceHeaders {
    /// The send span's own context, by the W3C and X-Ray propagators; the
    /// alert's (its event span's) when the span has none (no OpenTelemetry
    /// layer).
    fn of(span: &tracing::Span, alert: &Alert<'_>) -> TraceHeaders {
        let cx = span.context();
        let mut carrier: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut carrier);
        XrayPropagator::default().inject_context(&cx, &mut carrier);
        TraceHeaders {
            traceparent: carrier
                .remove("traceparent")
                .or_else(|| alert.traceparent.clone()),
            aws_trace_header: carrier
                .remove("x-amzn-trace-id")
                .or_else(|| alert.aws_trace_header.clone()),
        }
    }
}

impl SnsSink {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> SnsSink {
        SnsSink {
            client,
            topic_arn: topic_arn.into(),
            max_attempts: 3,
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// The topic's name: the ARN's last part.
    fn topic_name(&self) -> &str {
        self.topic_arn.rsplit(':').next().unwrap_or(&self.topic_arn)
    }

    /// The `send <topic>` span of one publish (retries included).
    fn send_span(&self) -> tracing::Span {
        tracing::info_span!(
            "sns.publish",
            otel.name = %format!("send {}", self.topic_name()),
            otel.kind = "producer",
            messaging.system = MESSAGING_SYSTEM,
            messaging.operation.name = "send",
            messaging.operation.type = "send",
            messaging.destination.name = %self.topic_name(),
            aws.sns.topic.arn = %self.topic_arn,
            messaging.message.id = tracing::field::Empty,
            aws.request_id = tracing::field::Empty,
            error.type = tracing::field::Empty,
            vigil.attempts = tracing::field::Empty,
        )
    }

    async fn publish(&self, alert: &Alert<'_>) -> Result<Delivery, SinkError> {
        let span = self.send_span();
        let headers = TraceHeaders::of(&span, alert);
        let result = self
            .publish_with_retries(alert, &headers)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(d) => {
                if let Some(id) = &d.message_id {
                    span.record("messaging.message.id", id.as_str());
                }
            }
            Err(e) => span.set_status(Status::error(e.to_string())),
        }
        result
    }

    async fn publish_with_retries(
        &self,
        alert: &Alert<'_>,
        headers: &TraceHeaders,
    ) -> Result<Delivery, SinkError> {
        let span = tracing::Span::current();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            // An i64: `tracing-opentelemetry` exports other integers as text.
            span.record("vigil.attempts", i64::from(attempt));
            match self.request(alert, headers).send().await {
                Ok(out) => {
                    if let Some(id) = out.request_id() {
                        span.record("aws.request_id", id);
                    }
                    return Ok(Delivery {
                        sink: "sns",
                        message_id: out.message_id().map(str::to_string),
                    });
                }
                Err(err) => {
                    let (failure, error_type) = classify(&err);
                    if failure.is_transient() && attempt < self.max_attempts {
                        // 200 ms, 400 ms: short, since the Lambda's own retry follows.
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                        continue;
                    }
                    span.record("error.type", error_type.as_str());
                    if let Some(id) = err.request_id() {
                        span.record("aws.request_id", id);
                    }
                    return Err(failure);
                }
            }
        }
    }

    /// The `Publish` request for one alert.
    fn request(
        &self,
        alert: &Alert<'_>,
        headers: &TraceHeaders,
    ) -> aws_sdk_sns::operation::publish::builders::PublishFluentBuilder {
        let f = alert.finding;
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(render::subject(f))
            .message_structure("json")
            .message(render::sns_message(alert));
        for (name, value) in render::attributes(f) {
            req = req.message_attributes(name, string_attribute(value));
        }
        if let Some(route) = alert.route {
            // Subscribers filter on it: {"route": ["payments"]}.
            req = req.message_attributes("route", string_attribute(route.name.clone()));
        }
        if alert.suppressed_repeats > 0 {
            // Machine subscribers see the count too (the text shows it).
            req = req.message_attributes(
                "suppressed_repeats",
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value(alert.suppressed_repeats.to_string())
                    .build()
                    .expect("data_type is set"),
            );
        }
        if let Some(tp) = &headers.traceparent {
            req = req.message_attributes("traceparent", string_attribute(tp.clone()));
        }
        if let Some(h) = &headers.aws_trace_header {
            req = req.message_attributes("AWSTraceHeader", string_attribute(h.clone()));
        }
        req
    }
}

fn string_attribute(value: String) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data_type is set")
}

/// The sink error, and the `error.type` of the send span: the service's
/// error code, or the kind of failure when SNS did not answer.
fn classify<E: ProvideErrorMetadata + std::fmt::Debug>(
    err: &SdkError<E, HttpResponse>,
) -> (SinkError, String) {
    let message = match err {
        SdkError::ServiceError(e) => format!(
            "{}: {}",
            e.err().code().unwrap_or("unknown"),
            e.err().message().unwrap_or("")
        ),
        other => format!("{other:?}"),
    };
    let error_type = match err {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("_OTHER").to_string(),
        SdkError::TimeoutError(_) => "timeout".to_string(),
        SdkError::DispatchFailure(_) => "dispatch_failure".to_string(),
        SdkError::ResponseError(_) => "response_error".to_string(),
        _ => "_OTHER".to_string(),
    };
    let transient = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("");
            code.contains("Throttl")
                || code.contains("InternalError")
                || e.raw().status().as_u16() >= 500
        }
        _ => false,
    };
    let failure = if transient {
        SinkError::Transient {
            sink: "sns",
            message,
        }
    } else {
        SinkError::Permanent {
            sink: "sns",
            message,
        }
    };
    (failure, error_type)
}

impl AlertSink for SnsSink {
    fn name(&self) -> &'static str {
        "sns"
    }

    fn send<'a>(&'a self, alert: &'a Alert<'a>) -> SinkFuture<'a> {
        Box::pin(self.publish(alert))
    }
}

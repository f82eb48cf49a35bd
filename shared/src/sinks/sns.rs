//! The SNS topic: the alert every subscriber (email, Chatbot, the notifier,
//! SQS) receives, one publish per finding.

use std::time::Duration;

use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::{AlertSink, Delivery, SinkError, SinkFuture};
use crate::render::{self, Alert};

/// Publishes alerts to one topic.
#[derive(Debug, Clone)]
pub struct SnsSink {
    client: Client,
    topic_arn: String,
    /// Attempts for throttling and 5xx before the invocation fails (and
    /// EventBridge or Lambda retries it).
    max_attempts: u32,
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

    async fn publish(&self, alert: &Alert<'_>) -> Result<Delivery, SinkError> {
        let f = alert.finding;
        let mut attempt = 0;
        loop {
            attempt += 1;
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
            if let Some(tp) = &alert.traceparent {
                req = req.message_attributes("traceparent", string_attribute(tp.clone()));
            }
            if let Some(h) = &alert.aws_trace_header {
                req = req.message_attributes("AWSTraceHeader", string_attribute(h.clone()));
            }
            match req.send().await {
                Ok(out) => {
                    return Ok(Delivery {
                        sink: "sns",
                        message_id: out.message_id().map(str::to_string),
                    })
                }
                Err(err) => {
                    let failure = classify(&err);
                    if failure.is_transient() && attempt < self.max_attempts {
                        // 200 ms, 400 ms: short, since the Lambda's own retry follows.
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                        continue;
                    }
                    return Err(failure);
                }
            }
        }
    }
}

fn string_attribute(value: String) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data_type is set")
}

fn classify<E: ProvideErrorMetadata + std::fmt::Debug>(
    err: &SdkError<E, HttpResponse>,
) -> SinkError {
    let message = match err {
        SdkError::ServiceError(e) => format!(
            "{}: {}",
            e.err().code().unwrap_or("unknown"),
            e.err().message().unwrap_or("")
        ),
        other => format!("{other:?}"),
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
    if transient {
        SinkError::Transient {
            sink: "sns",
            message,
        }
    } else {
        SinkError::Permanent {
            sink: "sns",
            message,
        }
    }
}

impl AlertSink for SnsSink {
    fn name(&self) -> &'static str {
        "sns"
    }

    fn send<'a>(&'a self, alert: &'a Alert<'a>) -> SinkFuture<'a> {
        Box::pin(self.publish(alert))
    }
}

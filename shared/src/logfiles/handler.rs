//! The Lambda's SQS batch: messages of S3 notifications, each naming log
//! files, each file processed alone.
//!
//! Spans, as the semantic conventions for Lambda's SQS trigger ask: the
//! invocation is the batch's `process <queue>` consumer span (linked to every
//! message's producer), each message a `process <queue>` consumer span under
//! it (linked to its producer), each file a `vigil.logfile` span under that
//! ([`crate::telemetry::messaging`]).

use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::{info_span, Instrument};

use super::{process_file, LogFileError, LogFiles};
use crate::pipeline::Pipeline;
use crate::sources::s3_notifications;
use crate::telemetry::messaging::{sqs_message_span, MessageBatch};
use crate::telemetry::{record_exception, InvocationInfo, Telemetry, Trigger};

/// Why a whole batch failed (Lambda then retries every message in it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

/// Handles one SQS batch of S3 notifications: every log file named by
/// every message, in order. A message fails, alone, when its body is not a
/// notification or one of its files fails; its id is then in
/// `batchItemFailures` and SQS delivers it again (and, after the queue's
/// `maxReceiveCount`, moves it to the dead-letter queue). Messages are
/// handled one after the other so memory stays that of one file.
pub(super) async fn handle_batch<F: LogFiles>(
    pipeline: &Pipeline,
    files: &F,
    event: SqsEvent,
) -> Result<SqsBatchResponse, BatchError> {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let span = sqs_message_span(&message);
        let result = handle_message(pipeline, files, &message)
            .instrument(span.clone())
            .await;
        if let Err(e) = result {
            record_exception(&span, e.kind(), &e.to_string());
            let Some(id) = message.message_id.as_deref().filter(|id| !id.is_empty()) else {
                // Without an id the failure cannot be reported alone: fail
                // the batch rather than lose the file.
                return Err(BatchError(format!("message without an id failed: {e}")));
            };
            tracing::error!(error = %e, vigil.message_id = id, "message failed");
            response.add_failure(id);
        }
    }
    Ok(response)
}

/// Handles one Lambda invocation with telemetry: the invocation span (the
/// SQS event's consumer span: X-Ray parent, `faas.*` and `messaging.*`
/// attributes, links to the producers, the message id as correlation id
/// when the batch has one message), `handle_batch` inside it, then spans and
/// metrics flushed before returning.
pub async fn handle_invocation<F: LogFiles>(
    telemetry: &Telemetry,
    pipeline: &Pipeline,
    files: &F,
    event: lambda_runtime::LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    let lambda_runtime::LambdaEvent { payload, context } = event;
    let info =
        InvocationInfo::new(&context, Trigger::PubSub).with_messages(MessageBatch::sqs(&payload));
    let mut invocation = telemetry.invocation(info);
    if let [only] = payload.records.as_slice() {
        if let Some(id) = &only.message_id {
            invocation = invocation.correlation_id(id);
        }
    }
    invocation.run(handle_batch(pipeline, files, payload)).await
}

/// Why one message failed.
#[derive(Debug, thiserror::Error)]
enum MessageError {
    #[error(transparent)]
    Notification(#[from] s3_notifications::NotificationError),
    #[error("{object}: {source}")]
    File {
        object: String,
        #[source]
        source: LogFileError,
    },
}

impl MessageError {
    /// `exception.type` on the message's span.
    fn kind(&self) -> &'static str {
        match self {
            MessageError::Notification(_) => "not_a_notification",
            MessageError::File { .. } => "log_file",
        }
    }
}

async fn handle_message<F: LogFiles>(
    pipeline: &Pipeline,
    files: &F,
    message: &SqsMessage,
) -> Result<(), MessageError> {
    let objects = s3_notifications::objects(message.body.as_deref().unwrap_or_default())?;
    if objects.files.is_empty() {
        tracing::info!(
            vigil.message_id = message.message_id.as_deref().unwrap_or_default(),
            vigil.skipped = objects.skipped,
            "no log file in message"
        );
    }
    for object in &objects.files {
        let span = info_span!(
            "vigil.logfile",
            vigil.bucket = %object.bucket,
            vigil.key = %object.key,
            vigil.records = tracing::field::Empty,
            vigil.findings = tracing::field::Empty,
            vigil.alerts = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = async {
            let events = files.open(object).await?;
            process_file(pipeline, events).await
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        match result {
            Ok(r) => {
                // i64s: `tracing-opentelemetry` exports other integers as text.
                let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                span.record("vigil.records", int(r.records));
                span.record("vigil.findings", int(r.findings));
                span.record("vigil.alerts", int(r.alerts));
                tracing::info!(
                    vigil.bucket = %object.bucket,
                    vigil.key = %object.key,
                    vigil.records = r.records,
                    vigil.matched = r.matched,
                    vigil.findings = r.findings,
                    vigil.alerts = r.alerts,
                    vigil.refused = r.refused,
                    vigil.bytes = r.bytes,
                    vigil.duration_ms = started.elapsed().as_millis() as u64,
                    "log file processed: {} records, {} findings, {} alerts",
                    r.records,
                    r.findings,
                    r.alerts
                );
            }
            Err(source) => {
                tracing::error!(
                    vigil.bucket = %object.bucket,
                    vigil.key = %object.key,
                    error = %source,
                    "log file failed"
                );
                return Err(MessageError::File {
                    object: object.to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}

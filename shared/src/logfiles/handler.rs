//! The Lambda's SQS batch: messages of S3 notifications, each naming log
//! files, each file processed alone.
//!
//! Spans, as the semantic conventions for Lambda's SQS trigger ask: the
//! invocation is the batch's `process <queue>` consumer span (linked to every
//! message's producer), each message a `process <queue>` consumer span under
//! it (linked to its producer), each file a `vigil.logfile` span under that
//! ([`crate::telemetry::messaging`]).

use std::time::Instant as Clock;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::time::Instant;
use tracing::{info_span, Instrument};

use super::{process_file, FileReport, LogFileError, LogFileSettings, LogFiles};
use crate::pipeline::Pipeline;
use crate::sources::log_file::DecodeError;
use crate::sources::s3_notifications::{self, ObjectRef};
use crate::telemetry::messaging::{sqs_message_span, MessageBatch};
use crate::telemetry::metrics::{
    now_ms, MetricRecord, Unit, BY_SERVICE, LOG_FILES_REJECTED, LOG_RECORDS_SKIPPED,
};
use crate::telemetry::{record_exception, InvocationInfo, Telemetry, Trigger};

/// Why a whole batch failed (Lambda then retries every message in it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

/// What a batch runs within.
#[derive(Clone, Copy, Default)]
pub(super) struct Batch<'a> {
    /// When the batch stops taking files, and a file being read stops
    /// ([`LogFileSettings`]); `None`: never.
    pub(super) cutoff: Option<Instant>,
    /// Where the log-file metrics go (nowhere in tests without telemetry).
    pub(super) telemetry: Option<&'a Telemetry>,
}

impl Batch<'_> {
    fn past_cutoff(&self) -> bool {
        self.cutoff.is_some_and(|c| Instant::now() >= c)
    }

    /// Adds `n` to a log-file metric.
    fn count(&self, metric: &'static str, n: u64) {
        let Some(t) = self.telemetry.filter(|_| n > 0) else {
            return;
        };
        let record = MetricRecord::new(now_ms())
            .dimension("Service", &t.config().service)
            .metric(metric, Unit::Count, n as f64, BY_SERVICE);
        t.metrics().record(record);
    }
}

/// Handles one SQS batch of S3 notifications: every log file named by
/// every message, in order. A message fails, alone, when its body is not a
/// notification or one of its files fails; its id is then in
/// `batchItemFailures` and SQS delivers it again (and, after the queue's
/// `maxReceiveCount`, moves it to the dead-letter queue). Messages are
/// handled one after the other so memory stays that of one file. Past the
/// batch's cutoff no file starts and the file being read stops: its message
/// and every message not yet handled fail, to be delivered again.
pub(super) async fn handle_batch<F: LogFiles>(
    pipeline: &Pipeline,
    files: &F,
    event: SqsEvent,
    batch: Batch<'_>,
) -> Result<SqsBatchResponse, BatchError> {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let span = sqs_message_span(&message);
        let result = handle_message(pipeline, files, &message, batch)
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

/// Handles one Lambda invocation with the default [`LogFileSettings`]
/// (see [`handle_invocation_with`]).
pub async fn handle_invocation<F: LogFiles>(
    telemetry: &Telemetry,
    pipeline: &Pipeline,
    files: &F,
    event: lambda_runtime::LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    let settings = LogFileSettings::default();
    handle_invocation_with(telemetry, pipeline, files, &settings, event).await
}

/// Handles one Lambda invocation with telemetry: the invocation span (the
/// SQS event's consumer span: X-Ray parent, `faas.*` and `messaging.*`
/// attributes, links to the producers, the message id as correlation id
/// when the batch has one message), `handle_batch` inside it, stopping
/// `settings.deadline_margin` before the invocation's deadline, then spans
/// and metrics flushed before returning.
pub async fn handle_invocation_with<F: LogFiles>(
    telemetry: &Telemetry,
    pipeline: &Pipeline,
    files: &F,
    settings: &LogFileSettings,
    event: lambda_runtime::LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    let lambda_runtime::LambdaEvent { payload, context } = event;
    let cutoff = settings.cutoff(context.deadline, u64::try_from(now_ms()).unwrap_or(0));
    let info =
        InvocationInfo::new(&context, Trigger::PubSub).with_messages(MessageBatch::sqs(&payload));
    let mut invocation = telemetry.invocation(info);
    if let [only] = payload.records.as_slice() {
        if let Some(id) = &only.message_id {
            invocation = invocation.correlation_id(id);
        }
    }
    let batch = Batch {
        cutoff,
        telemetry: Some(telemetry),
    };
    invocation
        .run(async {
            if cutoff.is_none() {
                tracing::warn!(
                    vigil.deadline_ms = context.deadline,
                    "the invocation's deadline has already passed: the batch runs without one"
                );
            }
            handle_batch(pipeline, files, payload, batch).await
        })
        .await
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
    #[error("not started before the invocation's deadline")]
    NotStarted,
}

impl MessageError {
    /// `exception.type` on the message's span.
    fn kind(&self) -> &'static str {
        match self {
            MessageError::Notification(_) => "not_a_notification",
            MessageError::File { .. } => "log_file",
            MessageError::NotStarted => "deadline",
        }
    }
}

async fn handle_message<F: LogFiles>(
    pipeline: &Pipeline,
    files: &F,
    message: &SqsMessage,
    batch: Batch<'_>,
) -> Result<(), MessageError> {
    if batch.past_cutoff() {
        return Err(MessageError::NotStarted);
    }
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
        let started = Clock::now();
        let result = async {
            if batch.past_cutoff() {
                return Err(LogFileError::Cut { records: 0 });
            }
            let events = files.open(object).await?;
            process_file(pipeline, object, events, batch.cutoff).await
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
                batch.count(LOG_RECORDS_SKIPPED, r.skipped);
                log_processed(object, &r, started);
            }
            Err(source) => {
                if matches!(source, LogFileError::Decode(DecodeError::TooLarge(_))) {
                    batch.count(LOG_FILES_REJECTED, 1);
                }
                tracing::error!(
                    vigil.bucket = %object.bucket,
                    vigil.key = %object.key,
                    error = %source,
                    "log file failed: {object}: {source}"
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

/// The line that says what a file produced.
fn log_processed(object: &ObjectRef, r: &FileReport, started: Clock) {
    tracing::info!(
        vigil.bucket = %object.bucket,
        vigil.key = %object.key,
        vigil.records = r.records,
        vigil.matched = r.matched,
        vigil.findings = r.findings,
        vigil.alerts = r.alerts,
        vigil.refused = r.refused,
        vigil.skipped = r.skipped,
        vigil.observations = r.observations,
        vigil.bytes = r.bytes,
        vigil.duration_ms = started.elapsed().as_millis() as u64,
        "log file processed: {} records, {} skipped, {} findings, {} alerts",
        r.records,
        r.skipped,
        r.findings,
        r.alerts
    );
}

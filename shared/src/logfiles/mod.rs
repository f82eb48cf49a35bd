//! CloudTrail log files through the pipeline: the Lambda side of
//! [`crate::sources::log_file`].
//!
//! [`handle_invocation`] reads an SQS batch of S3 notifications
//! ([`crate::sources::s3_notifications`]), streams each file from S3
//! ([`S3LogFiles`]) and reports the messages whose files failed in
//! `batchItemFailures`, so one bad file does not send the others round again.
//! Each file's records run through the [`Pipeline`] as they are parsed
//! (`process_file`): parsing and the pipeline (whose alerts wait on the
//! network) overlap.

mod handler;
mod s3;

use std::future::Future;

use crate::detect::RuleMeta;
use crate::pipeline::{Pipeline, PipelineError};
use crate::sources::log_file::{DecodeError, EventStream};
use crate::sources::s3_notifications::ObjectRef;

pub use handler::{handle_invocation, BatchError};
pub use s3::S3LogFiles;

/// Why a log file could not be read or processed. Any of these fails the
/// file (and the SQS message that named it), so it is retried and, in the
/// end, kept in the dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    /// Reading or decoding failed (see [`DecodeError`]).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The object could not be fetched.
    #[error("fetching {object}: {message}")]
    Fetch { object: String, message: String },
    /// An alert could not be delivered; the records before it were processed.
    #[error("alert not delivered: {0}")]
    Delivery(String),
}

/// Opens log files. The Lambda reads S3 ([`S3LogFiles`]); tests use memory.
pub trait LogFiles: Send + Sync {
    /// Starts streaming the events of `object`.
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<EventStream, LogFileError>> + Send;
}

/// What one log file produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FileReport {
    /// Records read.
    pub records: u64,
    /// Records some rule matched: these, and only these, went through the
    /// whole pipeline.
    pub matched: u64,
    pub findings: u64,
    pub alerts: u64,
    /// Records the pipeline refused (not CloudTrail records): counted and
    /// logged, not retried, because reading them again cannot help.
    pub refused: u64,
    /// Bytes read (compressed).
    pub bytes: u64,
}

/// Runs every record of `events` through `pipeline`.
///
/// Detection runs first on each record, outside the pipeline: a record no
/// rule matches (nearly all of them) produces no finding, so it skips the
/// pipeline's per-event spans, metrics and logs, which would otherwise cost
/// more than the detection itself and flood the logs at organization scale.
/// The records that match go through [`Pipeline::process_event`] like any
/// event: enrichment, dedup, gating, alerts, telemetry.
///
/// The first alert that cannot be delivered stops the file: it must be
/// retried, and going on would only fail more.
async fn process_file(
    pipeline: &Pipeline,
    mut events: EventStream,
) -> Result<FileReport, LogFileError> {
    let mut report = FileReport::default();
    let mut hits: Vec<&RuleMeta> = Vec::new();
    let mut failure = None;
    while let Some(record) = events.next().await {
        report.records += 1;
        let Some(detector) = pipeline.detector() else {
            continue;
        };
        hits.clear();
        detector.detect(&record, &mut hits);
        if hits.is_empty() {
            continue;
        }
        report.matched += 1;
        match pipeline.process_event(&record).await {
            Ok(r) => {
                report.findings += r.findings.len() as u64;
                report.alerts += r.alerts() as u64;
            }
            Err(PipelineError::Delivery {
                report: r, first, ..
            }) => {
                report.findings += r.findings.len() as u64;
                report.alerts += r.alerts() as u64;
                failure = Some(LogFileError::Delivery(first.to_string()));
                break;
            }
            Err(e) => {
                report.refused += 1;
                if report.refused == 1 {
                    tracing::warn!(error = %e, "log file record refused");
                }
            }
        }
    }
    let stats = events.finish().await;
    if let Some(e) = failure {
        return Err(e);
    }
    report.bytes = stats?.bytes;
    Ok(report)
}

#[cfg(test)]
mod tests;

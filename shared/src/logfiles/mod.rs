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
mod settings;

use std::future::Future;

use tokio::time::Instant;

use crate::detect::RuleMeta;
use crate::pipeline::{Pipeline, PipelineError};
use crate::sources::log_file::{BadRecord, DecodeError, EventStream};
use crate::sources::s3_notifications::ObjectRef;

pub use handler::{handle_invocation, handle_invocation_with, BatchError};
pub use s3::S3LogFiles;
pub use settings::{LogFileSettings, DEFAULT_DEADLINE_MARGIN};

/// Bad records of one file logged one by one; the rest are counted.
const LOGGED_BAD_RECORDS: u64 = 10;

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
    /// The invocation's deadline came first: the records before it were
    /// processed, and the file is read again from the start (what alerted
    /// is then suppressed by the fingerprint window).
    #[error("stopped before the invocation's deadline after {records} records")]
    Cut { records: u64 },
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
    /// Correlation observations the file's records made (sent in one
    /// state call at the end of the file).
    pub observations: u64,
    /// Records the pipeline refused (not CloudTrail records): counted and
    /// logged, not retried, because reading them again cannot help.
    pub refused: u64,
    /// Records that could not be read (nested too deeply, say): counted,
    /// logged with their number and skipped, not retried, for the same reason.
    pub skipped: u64,
    /// Bytes read (compressed).
    pub bytes: u64,
}

/// Runs every record of `events` through `pipeline`, until `cutoff`.
///
/// Detection runs first on each record, outside the pipeline: a record no
/// rule matches (nearly all of them) produces no finding, so it skips the
/// pipeline's per-event spans, metrics and logs, which would otherwise cost
/// more than the detection itself and flood the logs at organization scale.
/// The records that match go through [`Pipeline::process_event`] like any
/// event: enrichment, dedup, gating, alerts, telemetry.
///
/// The first alert that cannot be delivered stops the file: it must be
/// retried, and going on would only fail more. So does `cutoff`, checked
/// while waiting for each record.
async fn process_file(
    pipeline: &Pipeline,
    object: &ObjectRef,
    mut events: EventStream,
    cutoff: Option<Instant>,
) -> Result<FileReport, LogFileError> {
    let mut report = FileReport::default();
    let mut hits: Vec<&RuleMeta> = Vec::new();
    let mut observations = Vec::new();
    let mut failure = None;
    // One timer for the file; a year stands for "no deadline".
    let until =
        cutoff.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(31_536_000));
    let deadline = tokio::time::sleep_until(until);
    tokio::pin!(deadline);
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut deadline => {
                failure = Some(LogFileError::Cut { records: report.records });
                break;
            }
            next = events.next() => next,
        };
        match next {
            None => break,
            Some(Err(bad)) => skip_record(object, &bad, &mut report),
            Some(Ok(record)) => {
                pipeline.correlate(&record, &mut observations);
                failure = process_record(pipeline, &record, &mut hits, &mut report).await;
                if failure.is_some() {
                    break;
                }
            }
        }
    }
    let stats = events.finish().await;
    if let Some(e) = failure {
        return Err(e);
    }
    let stats = stats?;
    // Records the prefilter left out were read too (no rule may match them).
    report.records += stats.filtered;
    report.bytes = stats.bytes;
    // Only a file read to its end: a failed one is read again, and its
    // events must not be counted twice.
    correlate_file(pipeline, &observations, &mut report).await;
    Ok(report)
}

/// The file's correlation observations in one state call; what fires goes
/// through the pipeline. A correlation alert not delivered is logged and
/// counted (`AlertsFailed`) but does not fail the file: its window is
/// claimed, and reading the file again would only count its events twice.
async fn correlate_file(
    pipeline: &Pipeline,
    observations: &[crate::correlate::Observation],
    report: &mut FileReport,
) {
    report.observations = observations.len() as u64;
    let r = match pipeline.process_correlations(observations).await {
        Ok(r) => r,
        Err(PipelineError::Delivery { report: r, .. }) => *r,
        Err(_) => return,
    };
    report.findings += r.findings.len() as u64;
    report.alerts += r.alerts() as u64;
}

/// A record that could not be read: counted, and logged with its place
/// (the first few of a file).
fn skip_record(object: &ObjectRef, bad: &BadRecord, report: &mut FileReport) {
    report.skipped += 1;
    if report.skipped <= LOGGED_BAD_RECORDS {
        tracing::warn!(
            vigil.bucket = %object.bucket,
            vigil.key = %object.key,
            vigil.record = bad.record,
            error = %bad,
            "log file record skipped: {object} {bad}"
        );
    }
}

/// One record through detection and, when a rule matched, the pipeline. An
/// alert that could not be delivered is returned: it stops the file.
async fn process_record<'p>(
    pipeline: &'p Pipeline,
    record: &serde_json::Value,
    hits: &mut Vec<&'p RuleMeta>,
    report: &mut FileReport,
) -> Option<LogFileError> {
    report.records += 1;
    let detector = pipeline.detector()?;
    hits.clear();
    detector.detect(record, hits);
    if hits.is_empty() {
        // A failed call no rule matched may still be an attempt at one.
        let mut attempts = Vec::new();
        detector.attempts(record, hits, &mut attempts);
        if attempts.is_empty() {
            return None;
        }
    }
    report.matched += 1;
    match pipeline.process_event_uncorrelated(record).await {
        Ok(r) => {
            report.findings += r.findings.len() as u64;
            report.alerts += r.alerts() as u64;
            None
        }
        Err(PipelineError::Delivery {
            report: r, first, ..
        }) => {
            report.findings += r.findings.len() as u64;
            report.alerts += r.alerts() as u64;
            Some(LogFileError::Delivery(first.to_string()))
        }
        Err(e) => {
            report.refused += 1;
            if report.refused == 1 {
                tracing::warn!(error = %e, "log file record refused");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests;

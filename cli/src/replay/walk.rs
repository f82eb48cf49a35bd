//! The replay loop: every event of every file through the pipeline, each
//! finding shown to the caller as it is decided.

use std::path::{Path, PathBuf};
use std::time::Instant;

use vigil::pipeline::{EventReport, Pipeline, PipelineError, Processed};
use vigil::sources::log_file::{input, BadRecord, EventStream, ReadLimits};

use super::summary::Summary;

/// How often (in events) a long replay reports progress.
const PROGRESS_EVERY: usize = 4096;

/// Unreadable records of one file reported one by one; the rest are counted.
const REPORTED_BAD_RECORDS: u64 = 10;

/// What a processed item is: a finding from an event, or a storm summary
/// alert standing for many findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Finding,
    StormSummary,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Finding => "finding",
            Kind::StormSummary => "storm_summary",
        }
    }
}

/// One finding or storm summary and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen<'a> {
    pub(crate) processed: &'a Processed,
    pub(crate) kind: Kind,
    /// The file of the event; None for the storm summaries sent at the end.
    pub(crate) file: Option<&'a Path>,
}

/// Replays every event under `paths`. An event that fails is counted and
/// reported; the replay goes on. Files are streamed
/// ([`vigil::sources::log_file`]) within `limits`, as the log-file function
/// reads them, so a multi-gigabyte log file replays in flat memory, and a
/// record that cannot be read is reported (on stderr, with its file and
/// number) and skipped. `progress` is told every [`PROGRESS_EVERY`] events and after
/// each file; `see` every finding and storm summary, in order.
pub(crate) async fn replay(
    pipeline: &Pipeline,
    paths: &[PathBuf],
    limits: ReadLimits,
    mut progress: impl FnMut(&Summary),
    mut see: impl FnMut(Seen<'_>),
) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    let files = match input::files(paths) {
        Ok(f) => f,
        Err(e) => {
            summary.errors.push(e.to_string());
            return summary;
        }
    };
    summary.total_bytes = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    for file in files {
        summary.files += 1;
        replay_file(
            pipeline,
            &file,
            limits,
            &mut summary,
            &started,
            &mut progress,
            &mut see,
        )
        .await;
        summary.elapsed = started.elapsed();
        progress(&summary);
    }
    // Nothing follows a replay: storm windows still open are summarized now.
    let flushed = pipeline.flush_storms().await;
    summary.add_summaries(&flushed);
    for processed in &flushed {
        see(Seen {
            processed,
            kind: Kind::StormSummary,
            file: None,
        });
    }
    summary.elapsed = started.elapsed();
    summary
}

/// One file's events; a file that cannot be opened or read to its end is an
/// error, and the events read before stay counted.
async fn replay_file(
    pipeline: &Pipeline,
    file: &Path,
    limits: ReadLimits,
    summary: &mut Summary,
    started: &Instant,
    progress: &mut impl FnMut(&Summary),
    see: &mut impl FnMut(Seen<'_>),
) {
    let reader = match std::fs::File::open(file) {
        Ok(r) => r,
        Err(e) => {
            summary.errors.push(format!("{}: {e}", file.display()));
            return;
        }
    };
    let bytes_before = summary.bytes;
    let mut events = EventStream::spawn_limited(reader, limits);
    let mut bad = 0;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(record) => {
                bad += 1;
                report_bad_record(file, &record, bad, summary);
                continue;
            }
        };
        summary.events += 1;
        if summary.events.is_multiple_of(PROGRESS_EVERY) {
            summary.bytes = bytes_before + events.bytes_read();
            summary.elapsed = started.elapsed();
            progress(summary);
        }
        let report = match pipeline.process_event(&event).await {
            Ok(report) => report,
            Err(PipelineError::Delivery { report, first, .. }) => {
                summary.errors.push(format!("{}: {first}", file.display()));
                *report
            }
            Err(e) => {
                summary.errors.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        summary.add(&report);
        show(&report, file, see);
    }
    summary.bytes = bytes_before + events.bytes_read();
    if bad > REPORTED_BAD_RECORDS {
        let more = bad - REPORTED_BAD_RECORDS;
        summary
            .errors
            .push(format!("{}: {more} more records skipped", file.display()));
    }
    if let Err(e) = events.finish().await {
        summary.errors.push(format!("{}: {e}", file.display()));
    }
}

/// A record that cannot be read: an error, said on stderr as it is found
/// (the first few of a file).
fn report_bad_record(file: &Path, record: &BadRecord, nth: u64, summary: &mut Summary) {
    if nth > REPORTED_BAD_RECORDS {
        return;
    }
    let line = format!("{}: {record}: skipped", file.display());
    eprintln!("vigil: {line}");
    summary.errors.push(line);
}

/// The event's findings, then the storm summaries it sent.
fn show(report: &EventReport, file: &Path, see: &mut impl FnMut(Seen<'_>)) {
    let findings = report.findings.iter().map(|p| (p, Kind::Finding));
    let summaries = report.summaries.iter().map(|p| (p, Kind::StormSummary));
    for (processed, kind) in findings.chain(summaries) {
        see(Seen {
            processed,
            kind,
            file: Some(file),
        });
    }
}

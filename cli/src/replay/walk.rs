//! The replay loop: every event of every file through the pipeline, each
//! finding shown to the caller as it is decided.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use vigil::detect::Prefilter;
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

/// How files are read: within `limits`, parsing only what `prefilter`
/// admits (built from every rule the pipeline's detector runs).
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    pub(crate) limits: ReadLimits,
    pub(crate) prefilter: Option<Arc<Prefilter>>,
}

impl Reading {
    /// Starts reading `file` on a blocking thread: its records are parsed
    /// (those the prefilter admits) while the caller works on others.
    pub(crate) fn open(&self, file: &Path) -> std::io::Result<EventStream> {
        let reader = std::fs::File::open(file)?;
        Ok(EventStream::spawn_filtered(
            reader,
            self.limits,
            self.prefilter.clone(),
        ))
    }
}

/// Files read ahead of the one being replayed, each on its own blocking
/// thread: one per core. Each holds at most its stream's small buffer of
/// parsed records, so memory stays flat; output stays in file order.
pub(super) fn read_ahead() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Replays every event under `paths`. An event that fails is counted and
/// reported; the replay goes on. Files are streamed
/// ([`vigil::sources::log_file`]) as `reading` says, as the log-file
/// function reads them, so a multi-gigabyte log file replays in flat memory,
/// and a record that cannot be read is reported (on stderr, with its file
/// and number) and skipped. The next files are read and parsed on other
/// cores meanwhile ([`read_ahead`]); their events go through the pipeline
/// one file after the other, in input order. `progress` is told every
/// [`PROGRESS_EVERY`] events and after each file; `see` every finding and
/// storm summary, in order.
pub(crate) async fn replay(
    pipeline: &Pipeline,
    paths: &[PathBuf],
    reading: &Reading,
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
    let mut pending = files.into_iter();
    let mut ahead = VecDeque::new();
    let read_ahead = read_ahead();
    loop {
        while ahead.len() < read_ahead {
            let Some(file) = pending.next() else { break };
            let stream = reading.open(&file);
            ahead.push_back((file, stream));
        }
        let Some((file, stream)) = ahead.pop_front() else {
            break;
        };
        summary.files += 1;
        match stream {
            Ok(events) => {
                let mut at = At {
                    summary: &mut summary,
                    started: &started,
                };
                replay_stream(pipeline, &file, events, &mut at, &mut progress, &mut see).await
            }
            Err(e) => summary.errors.push(format!("{}: {e}", file.display())),
        }
        summary.elapsed = started.elapsed();
        progress(&summary);
    }
    flush(pipeline, &mut summary, &mut see).await;
    summary.elapsed = started.elapsed();
    summary
}

/// Nothing follows a replay: storm windows still open are summarized now.
pub(super) async fn flush(
    pipeline: &Pipeline,
    summary: &mut Summary,
    see: &mut impl FnMut(Seen<'_>),
) {
    let flushed = pipeline.flush_storms().await;
    summary.add_summaries(&flushed);
    for processed in &flushed {
        see(Seen {
            processed,
            kind: Kind::StormSummary,
            file: None,
        });
    }
}

/// The replay's counts and clock.
pub(crate) struct At<'a> {
    pub(crate) summary: &'a mut Summary,
    pub(crate) started: &'a Instant,
}

/// The events of one stream (named `file` in messages) through the
/// pipeline; a stream that cannot be read to its end is an error, and the
/// events read before stay counted. An event no rule can find anything in
/// costs only its count. (Another input, S3 say, calls this with its own
/// stream; [`Reading::open`] opens a local file.)
pub(crate) async fn replay_stream(
    pipeline: &Pipeline,
    file: &Path,
    mut events: EventStream,
    at: &mut At<'_>,
    progress: &mut impl FnMut(&Summary),
    see: &mut impl FnMut(Seen<'_>),
) {
    let summary = &mut *at.summary;
    let bytes_before = summary.bytes;
    let (mut bad, mut counted) = (0, 0);
    let mut next_progress = summary.events + PROGRESS_EVERY;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(record) => {
                bad += 1;
                report_bad_record(file, &record, bad, summary);
                continue;
            }
        };
        // The records the prefilter left out were read too.
        let filtered = events.filtered() as usize;
        summary.events += 1 + filtered - counted;
        counted = filtered;
        if summary.events >= next_progress {
            next_progress = summary.events + PROGRESS_EVERY;
            summary.bytes = bytes_before + events.bytes_read();
            summary.elapsed = at.started.elapsed();
            progress(summary);
        }
        if pipeline.finds_nothing(&event) {
            continue;
        }
        process(pipeline, file, &event, summary, see).await;
    }
    summary.bytes = bytes_before + events.bytes_read();
    if bad > REPORTED_BAD_RECORDS {
        let more = bad - REPORTED_BAD_RECORDS;
        summary
            .errors
            .push(format!("{}: {more} more records skipped", file.display()));
    }
    match events.finish().await {
        Ok(stats) => summary.events += stats.filtered as usize - counted,
        Err(e) => summary.errors.push(format!("{}: {e}", file.display())),
    }
}

/// One event through the whole pipeline (local files and S3 objects alike).
pub(super) async fn process(
    pipeline: &Pipeline,
    file: &Path,
    event: &serde_json::Value,
    summary: &mut Summary,
    see: &mut impl FnMut(Seen<'_>),
) {
    let report = match pipeline.process_event(event).await {
        Ok(report) => report,
        Err(PipelineError::Delivery { report, first, .. }) => {
            summary.errors.push(format!("{}: {first}", file.display()));
            *report
        }
        Err(e) => {
            summary.errors.push(format!("{}: {e}", file.display()));
            return;
        }
    };
    summary.add(&report);
    show(&report, file, see);
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

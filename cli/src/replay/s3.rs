//! `vigil replay s3://bucket/prefix/`: log files straight from S3, through
//! the same pipeline as local files.
//!
//! The objects under each prefix are listed (ListObjectsV2, every page) and
//! each is streamed as it downloads ([`S3LogFiles`], the cloudtrail-logs
//! function's own reader: GetObject's body through `SyncIoBridge` into the
//! record-by-record decoder), so a bucket of any size replays in flat memory
//! and nothing is written to disk. Credentials are the user's default chain;
//! `AWS_ENDPOINT_URL` points the client elsewhere (moto in tests).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use vigil::detect::Prefilter;
use vigil::logfiles::{LogFiles, S3LogFiles};
use vigil::pipeline::Pipeline;
use vigil::sources::log_file::ReadLimits;
use vigil::sources::s3_notifications::ObjectRef;

use super::summary::Summary;
use super::walk::{self, At, Seen};
use crate::progress::{self, ProgressLine};

/// How the objects are read: within `limits`, parsing only the records the
/// rules' `prefilter` admits (as local files and the cloudtrail-logs
/// function do).
pub(crate) struct S3Reading {
    pub(crate) limits: ReadLimits,
    pub(crate) prefilter: Arc<Prefilter>,
}

/// An `s3://bucket/prefix` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Url {
    pub(crate) bucket: String,
    /// Keys starting with this are replayed (empty: the whole bucket).
    pub(crate) prefix: String,
}

/// Why the replay's arguments cannot be read as S3 locations.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum S3UrlError {
    #[error("{0:?}: an S3 location is s3://bucket or s3://bucket/prefix")]
    NoBucket(String),
    #[error("S3 locations and local paths cannot be replayed together: run them apart")]
    Mixed,
}

impl S3Url {
    /// `Ok(None)` when `arg` is no `s3://` URL.
    pub(crate) fn parse(arg: &str) -> Result<Option<S3Url>, S3UrlError> {
        let Some(rest) = arg.strip_prefix("s3://") else {
            return Ok(None);
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3UrlError::NoBucket(arg.to_string()));
        }
        Ok(Some(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }
}

/// The S3 locations among the replay's paths: `None` when there is none,
/// an error when they are mixed with local paths.
pub(crate) fn urls(paths: &[PathBuf]) -> Result<Option<Vec<S3Url>>, S3UrlError> {
    let mut urls = Vec::new();
    for p in paths {
        if let Some(url) = S3Url::parse(&p.to_string_lossy())? {
            urls.push(url);
        }
    }
    match urls.len() {
        0 => Ok(None),
        n if n == paths.len() => Ok(Some(urls)),
        _ => Err(S3UrlError::Mixed),
    }
}

/// Whether a key names a file with events: not a folder marker, not a
/// CloudTrail digest file (hashes and signatures, no records).
fn is_log_file(key: &str) -> bool {
    !key.is_empty() && !key.ends_with('/') && !key.contains("CloudTrail-Digest")
}

/// The log files under every location, in key order, with their sizes.
async fn list(client: &aws_sdk_s3::Client, urls: &[S3Url]) -> Result<Vec<ObjectRef>, String> {
    let mut out = Vec::new();
    for url in urls {
        let mut pages = client
            .list_objects_v2()
            .bucket(&url.bucket)
            .prefix(&url.prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "listing s3://{}/{}: {}",
                    url.bucket,
                    printable(&url.prefix),
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
            for object in page.contents() {
                let Some(key) = object.key().filter(|k| is_log_file(k)) else {
                    continue;
                };
                out.push(ObjectRef {
                    bucket: url.bucket.clone(),
                    key: key.to_string(),
                    size: object.size().and_then(|s| u64::try_from(s).ok()),
                    version_id: None,
                });
            }
        }
    }
    Ok(out)
}

/// A key as it may be printed: S3 keys can hold any character, and one
/// holding a newline or an escape sequence must not forge a line of output.
fn printable(key: &str) -> String {
    key.chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<char>>(),
            false => vec![c],
        })
        .collect()
}

/// The name an object goes by in errors, JSON lines and the report.
fn display_name(object: &ObjectRef) -> PathBuf {
    PathBuf::from(format!("s3://{}/{}", object.bucket, printable(&object.key)))
}

/// Replays every log file under `urls`, in key order: as
/// [`super::walk::replay`] does for local files (a bad record is said and
/// skipped, a file that breaks keeps its events before the damage, storms
/// still open are flushed at the end, records no rule may match are only
/// scanned, and the next objects download and parse on other cores while
/// one goes through the pipeline). `progress` draws files, events, MB, rate
/// and ETA on a terminal.
pub(crate) async fn replay(
    pipeline: &Pipeline,
    urls: &[S3Url],
    reading: S3Reading,
    progress: bool,
    mut see: impl FnMut(Seen<'_>),
) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    let sdk = vigil::aws::sdk_config().await;
    let client = aws_sdk_s3::Client::new(&sdk);
    let objects = match list(&client, urls).await {
        Ok(o) => o,
        Err(e) => {
            summary.errors.push(e);
            return summary;
        }
    };
    summary.total_bytes = objects.iter().filter_map(|o| o.size).sum();
    let files = S3LogFiles::new(client)
        .with_limits(reading.limits)
        .with_prefilter(reading.prefilter);
    let mut line = ProgressLine::stderr(progress);
    let total = objects.len();
    let mut tick = |s: &Summary| line.draw(|elapsed| progress_text(s, total, elapsed));
    let mut pending = objects.iter();
    let mut ahead = VecDeque::new();
    let read_ahead = walk::read_ahead();
    loop {
        // The next objects download and parse meanwhile, as local files do.
        while ahead.len() < read_ahead {
            let Some(object) = pending.next() else { break };
            ahead.push_back((object, files.open(object).await));
        }
        let Some((object, opened)) = ahead.pop_front() else {
            break;
        };
        summary.files += 1;
        match opened {
            Ok(events) => {
                let mut at = At {
                    summary: &mut summary,
                    started: &started,
                };
                let name = display_name(object);
                walk::replay_stream(pipeline, &name, events, &mut at, &mut tick, &mut see).await
            }
            Err(e) => summary.errors.push(e.to_string()),
        }
        summary.elapsed = started.elapsed();
        tick(&summary);
    }
    line.clear();
    walk::flush(pipeline, &mut summary, &mut see).await;
    summary.elapsed = started.elapsed();
    summary
}

/// `3/120 files, 45000 events, 12.3/100.0 MB, 5.1 MB/s, 9000 events/s, ETA 0:17`.
fn progress_text(s: &Summary, total_files: usize, elapsed: std::time::Duration) -> String {
    let eta = match s.total_bytes {
        0 => progress::eta(s.files as f64, total_files as f64, elapsed),
        t => progress::eta(s.bytes as f64, t as f64, elapsed),
    };
    format!(
        "{}/{} files, {} events, {}/{}, {:.1} MB/s, {:.0} events/s, {}: {} findings, {} alerts, {} errors",
        s.files,
        total_files,
        s.events,
        progress::mb(s.bytes),
        progress::mb(s.total_bytes),
        progress::rate(s.bytes as f64 / 1e6, elapsed),
        progress::rate(s.events as f64, elapsed),
        progress::eta_text(eta),
        s.findings,
        s.alerts,
        s.errors.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_s3_locations_and_refuses_a_mix() {
        assert_eq!(S3Url::parse("logs/a.json"), Ok(None));
        assert_eq!(
            S3Url::parse("s3://trail/AWSLogs/1/"),
            Ok(Some(S3Url {
                bucket: "trail".into(),
                prefix: "AWSLogs/1/".into()
            }))
        );
        assert_eq!(
            S3Url::parse("s3://trail"),
            Ok(Some(S3Url {
                bucket: "trail".into(),
                prefix: String::new()
            }))
        );
        assert!(matches!(
            S3Url::parse("s3:///x"),
            Err(S3UrlError::NoBucket(_))
        ));
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(urls(&[p("a"), p("b")]), Ok(None));
        assert_eq!(
            urls(&[p("s3://x/"), p("s3://y/k")]).unwrap().unwrap().len(),
            2
        );
        assert_eq!(urls(&[p("s3://x/"), p("a")]), Err(S3UrlError::Mixed));
    }

    #[test]
    fn the_progress_line_counts_files_bytes_and_time_left() {
        let mut s = Summary::default();
        (s.files, s.events) = (3, 45_000);
        (s.bytes, s.total_bytes) = (25_000_000, 100_000_000);
        let ten = std::time::Duration::from_secs(10);
        let line = progress_text(&s, 12, ten);
        let want = "3/12 files, 45000 events, 25.0 MB/100.0 MB, 2.5 MB/s, 4500 events/s, ETA 0:30";
        assert!(line.starts_with(want), "{line}");
        // Sizes unknown: the time left follows the files instead.
        s.total_bytes = 0;
        s.files = 6;
        let line = progress_text(&s, 12, ten);
        assert!(line.contains("ETA 0:10"), "{line}");
    }

    #[test]
    fn keys_print_without_control_characters() {
        assert_eq!(printable("a/b c.json.gz"), "a/b c.json.gz");
        let forged = printable("a\nvigil: forged\r\x1b[2J");
        assert!(!forged.chars().any(char::is_control), "{forged:?}");
        assert!(forged.contains("\\n"));
        assert!(!is_log_file("AWSLogs/"));
        assert!(!is_log_file(
            "AWSLogs/1/CloudTrail-Digest/us-east-1/x.json.gz"
        ));
        assert!(is_log_file("AWSLogs/1/CloudTrail/us-east-1/x.json.gz"));
    }
}

//! `vigil backfill`: today's rules over history, on the Lambda fleet that
//! is already deployed. The trail bucket's log files for a time range
//! ([`list`]) are sent to the cloudtrail-logs queue as the S3 notifications
//! the function already reads ([`send`]), at a bounded rate, resumable
//! ([`state`]), with progress on a terminal. The function does the rest, as
//! for a file delivered today: rules, enrichment, dedup (an alert whose
//! fingerprint alerted within the suppression window is counted, not sent
//! again), routing. See docs/backfill.md.

mod list;
mod send;
mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use list::{DayFolders, Filter, ListError, Lister, Range, RangeError};
use send::{Pacer, Queue, SendError, Sender};
use state::{State, StateError};

use crate::output::out;
use crate::progress::{self, ProgressLine};

/// The slowest rate: one file every 100 s (slower has no use, and keeps the
/// pacing's times finite).
const MIN_RATE: f64 = 0.01;
/// The fastest: far above what the function's 20 concurrent batches take.
const MAX_RATE: f64 = 10_000.0;

#[derive(clap::Args, Debug)]
pub(crate) struct BackfillArgs {
    /// The trail's S3 bucket.
    #[arg(long)]
    bucket: String,
    /// The trail's S3 key prefix, when it has one (its keys start `PREFIX/AWSLogs/`).
    #[arg(long)]
    prefix: Option<String>,
    /// First day (2024-05-01, UTC) or time (RFC 3339) to send.
    #[arg(long)]
    from: String,
    /// Last day (included) or time to send (default: now).
    #[arg(long)]
    to: Option<String>,
    /// Only this account's files (repeat for more; default: every account).
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    accounts: Vec<String>,
    /// Only this region's files (repeat for more; default: every region).
    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,
    /// The cloudtrail-logs function's queue: its URL, or its ARN (the stack
    /// output CloudTrailLogsQueueArn).
    #[arg(long, required_unless_present = "dry_run")]
    queue_url: Option<String>,
    /// Files sent per second, at most.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Record what was sent in FILE, and skip it when run again.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Stop after sending this many files (a trial run; rerun with --state to go on).
    #[arg(long)]
    limit: Option<u64>,
    /// List and count what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Why a backfill did not start (exit 2) or stopped (exit 1).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackfillError {
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("--rate is files per second, from {MIN_RATE} to {MAX_RATE}")]
    Rate,
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What was listed and sent so far.
#[derive(Debug, Default)]
struct Totals {
    folders_done: usize,
    folders: usize,
    listed: u64,
    sent: u64,
    bytes: u64,
}

impl Totals {
    fn progress_text(&self, rate: f64, elapsed: std::time::Duration) -> String {
        // The files still to list are estimated from the folders listed so far.
        let per_folder = self.listed as f64 / self.folders_done.max(1) as f64;
        let estimate = (self.listed as f64).max(per_folder * self.folders as f64);
        let time_left = (self.folders_done > 0).then(|| {
            std::time::Duration::from_secs_f64((estimate - self.sent as f64).max(0.0) / rate)
        });
        format!(
            "{}/{} day folders, {} files sent ({}), {:.1} files/s, {}",
            self.folders_done,
            self.folders,
            self.sent,
            progress::mb(self.bytes),
            progress::rate(self.sent as f64, elapsed),
            progress::eta_text(time_left)
        )
    }
}

/// Runs the backfill the arguments describe.
pub(crate) async fn run(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let from = list::parse_time(&args.from, false)?;
    let to = match &args.to {
        Some(t) => list::parse_time(t, true)?,
        None => chrono::Utc::now(),
    };
    let range = Range::new(from, to)?;
    if !(MIN_RATE..=MAX_RATE).contains(&args.rate) {
        return Err(BackfillError::Rate.into());
    }
    let filter = Filter {
        accounts: args.accounts.iter().cloned().collect(),
        regions: args.regions.iter().cloned().collect(),
    };
    let root = match args.prefix.as_deref().map(|p| p.trim_matches('/')) {
        Some(p) if !p.is_empty() => format!("{p}/AWSLogs/"),
        _ => "AWSLogs/".to_string(),
    };
    let mut state = State::open(args.state.as_deref(), &args.bucket)?;
    let sdk = vigil::aws::sdk_config().await;
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let lister = Lister {
        client: &s3,
        bucket: &args.bucket,
    };
    let folders = lister.trail_folders(&root, &filter).await?;
    let days = DayFolders::new(&range, folders);
    if args.dry_run {
        return dry_run(&lister, &range, &days, &state, args.rate).await;
    }
    let queue = Queue::resolve(&sdk, args.queue_url.as_deref().unwrap_or_default()).await?;
    let sender = Sender {
        client: &queue.client,
        queue_url: &queue.url,
        bucket: &args.bucket,
        region: &queue.region,
    };
    let mut line = ProgressLine::stderr(true);
    let mut totals = Totals {
        folders: days.len(),
        ..Totals::default()
    };
    let run = Run {
        lister: &lister,
        sender: &sender,
        range: &range,
        limit: args.limit,
    };
    let result = run
        .send_all(&days, &mut state, &mut totals, &mut line, args.rate)
        .await;
    line.clear();
    let secs = line.elapsed().as_secs_f64();
    out(&format!(
        "Sent {} log files ({}) from {} of {} day folders in {secs:.1} s ({:.1} files/s)\n",
        totals.sent,
        progress::mb(totals.bytes),
        totals.folders_done,
        totals.folders,
        progress::rate(totals.sent as f64, line.elapsed())
    ));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            let resume = match &args.state {
                Some(_) => "run the same command again to go on from here",
                None => "without --state a rerun sends everything again",
            };
            eprintln!("vigil: backfill stopped: {e} ({resume})");
            Ok(ExitCode::from(1))
        }
    }
}

/// One backfill's listing and sending.
struct Run<'a> {
    lister: &'a Lister<'a>,
    sender: &'a Sender<'a>,
    range: &'a Range,
    limit: Option<u64>,
}

impl Run<'_> {
    /// Every day folder in turn: listed after its last key sent, then sent
    /// in batches, the state saved after each.
    async fn send_all(
        &self,
        days: &DayFolders,
        state: &mut State,
        totals: &mut Totals,
        line: &mut ProgressLine,
        rate: f64,
    ) -> Result<(), BackfillError> {
        let mut pacer = Pacer::new(rate);
        for (prefix, _) in days.iter() {
            let objects = self
                .lister
                .day(&prefix, state.last_sent(&prefix), self.range)
                .await?;
            totals.listed += objects.len() as u64;
            for chunk in objects.chunks(pacer.batch()) {
                let room = self
                    .limit
                    .map_or(u64::MAX, |l| l.saturating_sub(totals.sent));
                let chunk = &chunk[..chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
                let Some(last) = chunk.last() else {
                    return Ok(());
                };
                pacer.wait().await;
                self.sender.send(chunk).await?;
                pacer.sent(chunk.len());
                state.sent(&prefix, &last.key)?;
                totals.sent += chunk.len() as u64;
                totals.bytes += chunk.iter().map(|o| o.size).sum::<u64>();
                line.draw(|elapsed| totals.progress_text(rate, elapsed));
            }
            totals.folders_done += 1;
            line.draw(|elapsed| totals.progress_text(rate, elapsed));
        }
        Ok(())
    }
}

/// `--dry-run`: what would be sent, by account and region, and how long it
/// would take at the rate.
async fn dry_run(
    lister: &Lister<'_>,
    range: &Range,
    days: &DayFolders,
    state: &State,
    rate: f64,
) -> anyhow::Result<ExitCode> {
    let mut by_folder: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    let mut resumed = 0;
    for (prefix, folder) in days.iter() {
        let last = state.last_sent(&prefix);
        resumed += usize::from(last.is_some());
        let objects = lister.day(&prefix, last, range).await?;
        let entry = by_folder
            .entry((folder.account.as_str(), folder.region.as_str()))
            .or_default();
        entry.0 += objects.len() as u64;
        entry.1 += objects.iter().map(|o| o.size).sum::<u64>();
    }
    let files: u64 = by_folder.values().map(|v| v.0).sum();
    let bytes: u64 = by_folder.values().map(|v| v.1).sum();
    let resumed = match resumed {
        0 => String::new(),
        n => format!(", {n} of them resumed after the state file's last key"),
    };
    let mut text = format!(
        "Would send {files} log files ({}) from {} day folders{resumed}; at {rate} files/s about {}\n",
        progress::mb(bytes),
        days.len(),
        progress::clock(std::time::Duration::from_secs_f64(files as f64 / rate))
    );
    for ((account, region), (n, b)) in &by_folder {
        text.push_str(&format!(
            "  {account} {region}: {n} files ({})\n",
            progress::mb(*b)
        ));
    }
    out(&text);
    Ok(ExitCode::SUCCESS)
}

//! A progress line for the long runs over S3 (`vigil replay s3://...`,
//! `vigil backfill`): redrawn in place on stderr at most ten times a second,
//! and only when stderr is a terminal, so piped or redirected output stays
//! clean. Each caller composes its own line; this keeps the drawing, the
//! rates and the ETA in one place.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The shortest time between two redraws.
const REDRAW: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct ProgressLine {
    enabled: bool,
    started: Instant,
    drawn: Option<Instant>,
}

impl ProgressLine {
    /// Draws when `wanted` and stderr is a terminal.
    pub(crate) fn stderr(wanted: bool) -> ProgressLine {
        use std::io::IsTerminal;
        ProgressLine {
            enabled: wanted && std::io::stderr().is_terminal(),
            started: Instant::now(),
            drawn: None,
        }
    }

    /// Time since the line was made (the run's start).
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Redraws with the line `text` makes from the elapsed time, unless the
    /// last redraw was too recent (then `text` is not called).
    pub(crate) fn draw(&mut self, text: impl FnOnce(Duration) -> String) {
        if !self.enabled || self.drawn.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        use std::io::Write;
        let line = text(self.started.elapsed());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
        self.drawn = Some(Instant::now());
    }

    /// Erases the line, if one was drawn, before a summary prints.
    pub(crate) fn clear(&mut self) {
        if self.drawn.take().is_some() {
            use std::io::Write;
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

/// `done` per second over `elapsed`.
pub(crate) fn rate(done: f64, elapsed: Duration) -> f64 {
    done / elapsed.as_secs_f64().max(1e-9)
}

/// Time left at the rate so far: `None` until something is done, or when
/// the total is unknown.
pub(crate) fn eta(done: f64, total: f64, elapsed: Duration) -> Option<Duration> {
    if done <= 0.0 || total < done || !total.is_finite() {
        return None;
    }
    let secs = elapsed.as_secs_f64() * (total - done) / done;
    Some(Duration::from_secs_f64(secs.min(1e9)))
}

/// `1:02:03` or `2:03`, as people read a countdown.
pub(crate) fn clock(d: Duration) -> String {
    let s = d.as_secs();
    let mut out = String::new();
    match s / 3600 {
        0 => {
            let _ = write!(out, "{}:{:02}", s / 60, s % 60);
        }
        h => {
            let _ = write!(out, "{h}:{:02}:{:02}", s / 60 % 60, s % 60);
        }
    }
    out
}

/// `ETA 2:03`, or `ETA ?` when not known yet.
pub(crate) fn eta_text(eta: Option<Duration>) -> String {
    match eta {
        Some(d) => format!("ETA {}", clock(d)),
        None => "ETA ?".to_string(),
    }
}

/// Megabytes, one decimal.
pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_rate_so_far() {
        let ten = Duration::from_secs(10);
        assert_eq!(eta(25.0, 100.0, ten), Some(Duration::from_secs(30)));
        assert_eq!(eta(100.0, 100.0, ten), Some(Duration::ZERO));
        assert_eq!(eta(0.0, 100.0, ten), None);
        assert_eq!(eta(10.0, 5.0, ten), None);
        assert_eq!(eta(10.0, f64::INFINITY, ten), None);
        assert_eq!(eta_text(None), "ETA ?");
    }

    #[test]
    fn clock_and_sizes_read_as_people_write_them() {
        assert_eq!(clock(Duration::from_secs(0)), "0:00");
        assert_eq!(clock(Duration::from_secs(123)), "2:03");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(mb(1_250_000), "1.2 MB");
        assert!((rate(50.0, Duration::from_secs(10)) - 5.0).abs() < 1e-9);
    }
}

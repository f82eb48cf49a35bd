//! The log-file function's settings: how far a file may decompress, and when
//! a batch stops before the invocation's deadline.

use std::time::Duration;

use tokio::time::Instant;

use crate::env::{ConfigError, Env};
use crate::sources::log_file::ReadLimits;

/// How long before the invocation's deadline a batch stops by default: no
/// file starts after it, a file being read stops at its next record, and
/// the rest (the reply, the telemetry flush) has this long.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Settings of the `cloudtrail-logs` function (and, for the limits, of
/// `vigil replay`), from `VIGIL_LOG_FILE_MAX_BYTES`,
/// `VIGIL_LOG_RECORD_MAX_BYTES` and `VIGIL_LOG_FILE_DEADLINE_MARGIN_SECONDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFileSettings {
    pub limits: ReadLimits,
    pub deadline_margin: Duration,
}

impl Default for LogFileSettings {
    fn default() -> LogFileSettings {
        LogFileSettings {
            limits: ReadLimits::default(),
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
        }
    }
}

impl LogFileSettings {
    /// From the process environment.
    pub fn from_env() -> Result<LogFileSettings, ConfigError> {
        LogFileSettings::read(&Env::process())
    }

    pub(crate) fn read(env: &Env) -> Result<LogFileSettings, ConfigError> {
        let margin = env.number(
            "VIGIL_LOG_FILE_DEADLINE_MARGIN_SECONDS",
            DEFAULT_DEADLINE_MARGIN.as_secs(),
            1,
        )?;
        Ok(LogFileSettings {
            limits: ReadLimits::from_env(env)?,
            deadline_margin: Duration::from_secs(margin),
        })
    }

    /// When a batch given `deadline_ms` (epoch milliseconds, as Lambda
    /// gives it) at `now_ms` stops: the margin before the deadline, or
    /// halfway there when less time is left than twice the margin (a short
    /// function timeout still makes progress). `None` when the deadline has
    /// already passed, which no Lambda deadline has: cargo-lambda's emulator
    /// sends 600000 (ten minutes after 1970).
    pub(super) fn cutoff(&self, deadline_ms: u64, now_ms: u64) -> Option<Instant> {
        let left = Duration::from_millis(deadline_ms.checked_sub(now_ms).filter(|ms| *ms > 0)?);
        let margin = self.deadline_margin.min(left / 2);
        Some(Instant::now() + (left - margin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_leaves_the_margin_or_half_the_time() {
        let s = LogFileSettings::default();
        let now = 1_800_000_000_000;
        let at = |deadline| s.cutoff(deadline, now).map(|c| c - Instant::now());
        let close = |got: Option<Duration>, want: Duration| {
            let got = got.expect("a cutoff");
            assert!(
                got <= want && want - got < Duration::from_millis(50),
                "{got:?} {want:?}"
            );
        };
        close(at(now + 120_000), Duration::from_secs(110));
        close(at(now + 8_000), Duration::from_secs(4));
        assert_eq!(at(now), None);
        assert_eq!(at(600_000), None, "the emulator's deadline");
    }

    #[test]
    fn settings_come_from_the_environment() {
        let env = Env::new(|k| match k {
            "VIGIL_LOG_FILE_MAX_BYTES" => Some("1048576".into()),
            "VIGIL_LOG_FILE_DEADLINE_MARGIN_SECONDS" => Some("3".into()),
            _ => None,
        });
        let s = LogFileSettings::read(&env).unwrap();
        assert_eq!(s.limits.file_bytes, 1 << 20);
        assert_eq!(s.limits.record_bytes, ReadLimits::default().record_bytes);
        assert_eq!(s.deadline_margin, Duration::from_secs(3));
        let bad = Env::new(|k| (k == "VIGIL_LOG_RECORD_MAX_BYTES").then(|| "10".into()));
        assert!(LogFileSettings::read(&bad).is_err());
    }
}

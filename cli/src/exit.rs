//! The exit codes of `vigil replay`. Scripts and CI jobs branch on them, so
//! they are stable and documented (docs/replay.md).

use std::process::ExitCode;

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: every event replayed.
    Done,
    /// 1: some events failed (unreadable file, malformed event, alert not
    /// delivered) or the output could not be written; the rest replayed.
    /// Wins over [`Exit::FailOnMatched`]: a broken input must not pass
    /// for a detection.
    EventsFailed,
    /// 2: bad usage or setup (arguments, settings, rules, the report
    /// file); nothing replayed. clap's own usage errors exit with 2 too.
    Setup,
    /// 3: `--fail-on`: a finding at or above that severity.
    FailOnMatched,
}

impl Exit {
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::EventsFailed => 1,
            Exit::Setup => 2,
            Exit::FailOnMatched => 3,
        }
    }

    /// The code for a replay that ran: failures first, then `--fail-on`.
    pub(crate) fn of_replay(failed: bool, fail_on_matched: bool) -> Exit {
        match (failed, fail_on_matched) {
            (true, _) => Exit::EventsFailed,
            (false, true) => Exit::FailOnMatched,
            (false, false) => Exit::Done,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_win_over_fail_on() {
        assert_eq!(Exit::of_replay(false, false).code(), 0);
        assert_eq!(Exit::of_replay(true, false).code(), 1);
        assert_eq!(Exit::of_replay(true, true).code(), 1);
        assert_eq!(Exit::of_replay(false, true).code(), 3);
        assert_eq!(Exit::Setup.code(), 2);
    }
}

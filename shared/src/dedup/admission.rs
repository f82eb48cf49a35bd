//! What the stage answers for one finding.

use super::suppression::RepeatKind;

/// What the stage says about one finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Alert, carrying this many suppressed repeats.
    Alert { suppressed_repeats: u64 },
    /// Do not alert, for this reason.
    Skip(Skip),
}

impl Admission {
    /// Alert with no repeats carried: the first occurrence, or failing open.
    pub(super) const ALONE: Admission = Admission::Alert {
        suppressed_repeats: 0,
    };
}

/// Why the stage holds a finding back (the pipeline reports each as its
/// `Decision` of the same name).
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// A repeat of a fingerprint already alerted in its suppression window,
    /// or the source re-sending a finding already alerted: counted, and the
    /// next alert carries the count.
    Suppressed {
        kind: RepeatKind,
        /// Suppressed since the last alert, this one included.
        repeats: u64,
        /// End of the suppression window (epoch seconds).
        until: i64,
    },
    /// Matched a configured suppression rule.
    SuppressedByRule { rule: String, reason: String },
    /// Past the storm threshold: counted into the storm summary alert.
    Aggregated {
        /// Start of the storm window (epoch seconds).
        window: i64,
        /// The finding's place among the window's alerts.
        position: u64,
    },
}

impl Skip {
    /// The name logs and metrics give the decision.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Skip::Suppressed { .. } => "suppressed",
            Skip::SuppressedByRule { .. } => "suppressed_by_rule",
            Skip::Aggregated { .. } => "aggregated",
        }
    }
}

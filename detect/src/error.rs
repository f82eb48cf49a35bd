//! Why a rule could not be loaded.
//!
//! Rules are untrusted input (users drop in SigmaHQ files), so every way a
//! rule can be wrong is a typed error naming the rule file and, where there is
//! one, the field. Rules that are valid Sigma but need more than matching one
//! event at a time (aggregations, correlations) are
//! [`RuleErrorKind::Unsupported`]: loaders skip them with the reason instead
//! of failing start-up. A placeholder (`|expand`) nobody configured is an
//! error, not a skip: the rule was added to run, and cannot as it stands.

use std::fmt;

/// A rule that could not be loaded, and where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {kind}")]
pub struct RuleError {
    /// The rule's file (a path, or `bundled:<path>` for the embedded rules).
    pub origin: String,
    #[source]
    pub kind: RuleErrorKind,
}

impl RuleError {
    pub fn new(origin: impl Into<String>, kind: RuleErrorKind) -> RuleError {
        RuleError {
            origin: origin.into(),
            kind,
        }
    }

    /// Valid Sigma that this engine deliberately does not evaluate: skip the
    /// rule and say why, rather than fail.
    pub fn is_unsupported(&self) -> bool {
        matches!(self.kind, RuleErrorKind::Unsupported(_))
    }
}

/// What is wrong with a rule.
#[derive(Debug, thiserror::Error)]
pub enum RuleErrorKind {
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// A top-level key or a detection part with the wrong shape.
    #[error("`{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error("field `{field}`: unknown modifier `{modifier}`")]
    UnknownModifier { field: String, modifier: String },
    /// A field's modifiers or values that do not fit together.
    #[error("field `{field}`: {reason}")]
    Field { field: String, reason: String },
    #[error("field `{field}`: invalid regular expression: {reason}")]
    Regex { field: String, reason: String },
    /// `|expand` with a `%name%` the placeholder configuration does not have.
    #[error("field `{field}`: placeholder %{name}% (|expand) has no configured values")]
    UnknownPlaceholder { field: String, name: String },
    #[error("condition `{condition}`: {reason}")]
    Condition { condition: String, reason: String },
    #[error("duplicate rule id {id} (also in {other})")]
    DuplicateId { id: String, other: String },
    #[error("unsupported: {0}")]
    Unsupported(Unsupported),
}

/// Sigma features beyond matching one event at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported {
    /// `| count() ...`, `| near ...`: needs state across events.
    Aggregation(String),
    /// `timeframe`: the selections are meant to happen within a time window
    /// (Sigma v1's way to correlate events).
    Timeframe(String),
    /// A Sigma correlation rule (`correlation:`) where one rule was
    /// expected (rule sets read them; see [`crate::correlation`]).
    Correlation,
    /// A correlation referencing another correlation (chaining).
    Chained(String),
    /// A correlation referencing a rule that is not loaded.
    MissingRule(String),
    /// A multi-document rule collection (`action: global` / `repeat`).
    MultiDocument,
    /// A rule for another log source than AWS CloudTrail.
    LogSource(String),
    /// `status: deprecated` or `unsupported`: SigmaHQ's way to retire a rule
    /// (and ours to switch a bundled rule off by overriding its id).
    Status(String),
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::Aggregation(c) => write!(
                f,
                "aggregation `{c}` needs state across events (use a correlation engine)"
            ),
            Unsupported::Timeframe(t) => write!(
                f,
                "timeframe {t}: the condition spans several events (use a correlation engine)"
            ),
            Unsupported::Correlation => {
                f.write_str("a Sigma correlation rule (loaded by rule sets, not as one rule)")
            }
            Unsupported::Chained(r) => write!(
                f,
                "correlation of correlation `{r}`: chaining is not supported"
            ),
            Unsupported::MissingRule(r) => {
                write!(f, "references rule `{r}`, which is not loaded")
            }
            Unsupported::MultiDocument => {
                f.write_str("multi-document rule collections are not supported: one rule per file")
            }
            Unsupported::LogSource(s) => {
                write!(f, "log source {s} is not AWS CloudTrail or GuardDuty")
            }
            Unsupported::Status(s) => write!(f, "status {s}: the rule is retired"),
        }
    }
}

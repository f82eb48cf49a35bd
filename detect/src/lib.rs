//! Detection: rules over CloudTrail records.
//!
//! The pipeline only knows the [`Detector`] trait: give it a record, get back
//! the rules that match. The Sigma rule engine implements it: [`Rule`]
//! parses and compiles one SigmaHQ-format rule, [`RuleSet`] holds the bundled
//! rules (embedded in the binary) plus a user's folder, indexed so that a
//! record meets only the rules its `eventName` can match.
//!
//! A crate of its own, re-exported as `vigil::detect`: it depends on no AWS
//! SDK (only the finding model, serde, regex, ipnet, chrono and tracing), so
//! editing a rule under `rules/` rebuilds only this crate and its rule tests
//! run in seconds.
//! `build.rs` embeds those rules in the library.
//!
//! Modules are private; what the pipeline, the functions and `vigil rules`
//! use is re-exported below, and [`eventbridge`], [`glob`], [`pattern`] and
//! [`ruletest`] stay public as namespaces (`glob::matches`, `pattern::derive`,
//! `ruletest::lint`).

mod condition;
pub mod correlation;
mod error;
pub mod eventbridge;
pub mod glob;
mod matcher;
pub mod pattern;
mod placeholder;
mod ruleset;
pub mod ruletest;
mod sigma;
mod timepart;

// What the pipeline, the functions, `vigil rules` and the tests use.
pub use error::{RuleError, RuleErrorKind, Unsupported};
pub use placeholder::{PlaceholderError, Placeholders};
pub use ruleset::{RuleSet, RuleSource};
pub use sigma::{ParsedRule, Rule, RuleTests};
// In `pattern`'s signatures: what a rule requires of a field.
pub use matcher::Constraint;

use serde_json::Value;

use vigil_model::{Severity, Tactic, Technique};

/// What a finding needs to know about the rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleMeta {
    /// Sigma `id` (a UUID) or, failing that, the file stem.
    pub id: String,
    pub title: String,
    pub description: String,
    /// From the Sigma `level`.
    pub severity: Severity,
    pub tactics: Vec<Tactic>,
    pub techniques: Vec<Technique>,
    /// Sigma `falsepositives`, shown to responders.
    pub false_positives: Vec<String>,
    pub references: Vec<String>,
}

/// Runs rules over one CloudTrail record.
pub trait Detector: Send + Sync {
    /// Appends every rule that matches `record` to `hits`. Reuses the caller's
    /// vector so the hot path allocates nothing when no rule matches.
    fn detect<'a>(&'a self, record: &Value, hits: &mut Vec<&'a RuleMeta>);

    /// How many rules are loaded (for logs at cold start).
    fn rule_count(&self) -> usize;

    /// Appends what `record` contributes to correlation rules (see
    /// [`correlation`]): one observation per window for every correlation
    /// a matching referenced rule feeds. Default: no correlations.
    fn correlate(&self, _record: &Value, _out: &mut Vec<correlation::Observation>) {}
}

//! Detection: rules over CloudTrail records (and over GuardDuty findings,
//! as correlation inputs: [`LogSource`]).
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
mod logsource;
mod matcher;
pub mod pattern;
mod placeholder;
mod prefilter;
mod ruleset;
pub mod ruletest;
mod sigma;
mod timepart;
mod verdict;

// What the pipeline, the functions, `vigil rules` and the tests use.
pub use error::{RuleError, RuleErrorKind, Unsupported};
pub use logsource::LogSource;
pub use placeholder::{PlaceholderError, Placeholders};
pub use prefilter::{Keys, Prefilter, Screen};
pub use ruleset::{RuleSet, RuleSource};
pub use sigma::{ParsedRule, Rule, RuleTests};
pub use verdict::{judge, Hit, Verdict, ATTEMPT_SEVERITY};
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
    /// Whether the rule detects an attack or checks a control (CIS): at
    /// equal level the attack rule is the one that alerts.
    pub kind: RuleKind,
}

/// What a rule is for, read from its tags and place (see [`RuleKind::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleKind {
    /// Detects an attacker's technique (rules under `rules/attacks`).
    Attack,
    /// A benchmark control (CIS AWS Foundations, `cis.*` tags, `rules/cis`).
    Control,
}

impl RuleKind {
    /// A rule is a control when it carries a `cis.*` tag or lives in a `cis`
    /// folder; anything else is an attack rule (user and SigmaHQ rules too).
    pub fn of(tags: &[String], origin: &str) -> RuleKind {
        let tagged = tags
            .iter()
            .any(|t| t.len() > 4 && t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("cis.")));
        let origin = origin.strip_prefix("bundled:").unwrap_or(origin);
        let placed = origin.starts_with("cis/") || origin.contains("/cis/");
        if tagged || placed {
            RuleKind::Control
        } else {
            RuleKind::Attack
        }
    }
}

/// Runs rules over one CloudTrail record.
pub trait Detector: Send + Sync {
    /// Appends every rule that matches `record` to `hits`. Reuses the caller's
    /// vector so the hot path allocates nothing when no rule matches.
    fn detect<'a>(&'a self, record: &Value, hits: &mut Vec<&'a RuleMeta>);

    /// For a failed call (`errorCode` or `errorMessage` present), appends to
    /// `out` the rules that match it only once the error is hidden: rules
    /// that leave failed calls out (`filter_main_failed`) would have fired
    /// had the call worked, so the record is an attempt at what they detect.
    /// `hits` are the rules [`Detector::detect`] found (never attempts).
    /// Nothing for a record without an error, and by default.
    fn attempts<'a>(
        &'a self,
        _record: &Value,
        _hits: &[&'a RuleMeta],
        _out: &mut Vec<&'a RuleMeta>,
    ) {
    }

    /// How many rules are loaded (for logs at cold start).
    fn rule_count(&self) -> usize;

    /// Appends what `record` contributes to correlation rules (see
    /// [`correlation`]): one observation per window for every correlation
    /// a matching referenced rule feeds. Default: no correlations.
    fn correlate(&self, _record: &Value, _out: &mut Vec<correlation::Observation>) {}

    /// [`Detector::correlate`] for an event of `source`: a CloudTrail
    /// record, or a GuardDuty finding (only rules with that `logsource` see
    /// it). Default: CloudTrail records only.
    fn correlate_from(
        &self,
        source: LogSource,
        event: &Value,
        out: &mut Vec<correlation::Observation>,
    ) {
        if source.is_cloudtrail() {
            self.correlate(event, out);
        }
    }
}

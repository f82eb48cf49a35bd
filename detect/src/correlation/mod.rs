//! Sigma correlation rules (specification 2.0): conditions over several
//! events, counted per group (`group-by`) inside a time window (`timespan`).
//!
//! This module is the pure half: the rule type ([`Correlation`], parsed by
//! [`parse`]) and the engine ([`engine`]) that turns "rule R matched record
//! X" into [`Observation`]s keyed by (correlation, group, window) and, given
//! a window's accumulated [`WindowState`], says whether the correlation
//! fires. Where the state lives (one process's memory, or DynamoDB shared by
//! every Lambda instance) is the caller's business (`vigil::correlate`).
//!
//! Windows are keyed by **event time** (`eventTime`), never arrival time:
//! tumbling windows of `timespan` aligned to the Unix epoch, plus a second
//! set offset by half a timespan ([`Phase`]). A burst no longer than half
//! the timespan always lies wholly inside one window of one of the two
//! sets, wherever it falls; a longer burst (up to the whole timespan) may be
//! split and then missed. A burst can fire once per set, so at most twice;
//! both alerts share a fingerprint, which dedup folds.
//!
//! Chaining (a correlation referencing another correlation) is not
//! supported: [`parse`] refuses it with a clear error.

pub mod check;
pub mod engine;
mod links;
pub mod parse;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use vigil_model::Severity;

use crate::LogSource;

pub use engine::{observe_match, Fired, MemoryState, Observation};
pub(crate) use links::{is_multi_error, Links, Loaded};
pub use parse::{parse_documents, Document, ParsedCorrelation, Sequence};

/// Largest distinct-value threshold a `value_count` may ask for: the state
/// keeps at most [`STATE_EVENT_CAP`] events' values per window.
pub const MAX_VALUE_THRESHOLD: u64 = 100;
/// Per window and group, the state keeps values and step times of this
/// many events at most (the count itself is always exact).
pub const STATE_EVENT_CAP: u64 = 1000;
/// Contributing events a window keeps for the alert.
pub const KEPT_EVENTS: usize = 5;
/// Longest group-by or distinct value kept (characters): event fields are
/// attacker-controlled and must not blow up keys or items.
pub const MAX_VALUE_CHARS: usize = 128;
/// Longest timespan accepted (a week): state lives this long in the table.
pub const MAX_TIMESPAN_SECS: i64 = 7 * 24 * 3600;

/// A correlation rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// Sigma `id`, or the file stem and document number.
    pub id: String,
    /// Sigma `name`, by which other rules may reference this one.
    pub name: Option<String>,
    pub title: String,
    pub description: String,
    pub level: Severity,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub false_positives: Vec<String>,
    pub kind: Kind,
    /// The referenced rules, by id or name as written.
    pub rules: Vec<String>,
    /// Field paths (or alias names) whose values form the group.
    pub group_by: Vec<String>,
    pub timespan_secs: i64,
    pub aliases: Vec<Alias>,
    /// `generate: true`: the referenced rules also alert on their own.
    pub generate: bool,
    /// Where it came from (a path, or `bundled:<path>`).
    pub origin: String,
}

/// What the correlation counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Matching events per group.
    EventCount(Cond),
    /// Distinct values of `field` per group.
    ValueCount { field: String, cond: Cond },
    /// Every referenced rule matched in the window; `ordered`: in the
    /// listed order (`temporal_ordered`).
    Temporal { ordered: bool },
}

/// `condition`: one or two bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cond {
    pub gt: Option<u64>,
    pub gte: Option<u64>,
    pub lt: Option<u64>,
    pub lte: Option<u64>,
    pub eq: Option<u64>,
}

impl Cond {
    pub fn holds(&self, n: u64) -> bool {
        self.gt.is_none_or(|b| n > b)
            && self.gte.is_none_or(|b| n >= b)
            && self.lt.is_none_or(|b| n < b)
            && self.lte.is_none_or(|b| n <= b)
            && self.eq.is_none_or(|b| n == b)
    }

    /// The smallest count that can satisfy the condition (its lower bound).
    pub fn threshold(&self) -> Option<u64> {
        [self.gt.map(|b| b + 1), self.gte, self.eq]
            .into_iter()
            .flatten()
            .max()
    }
}

impl std::fmt::Display for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            ("gt", self.gt),
            ("gte", self.gte),
            ("lt", self.lt),
            ("lte", self.lte),
            ("eq", self.eq),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
        .collect();
        f.write_str(&parts.join(" and "))
    }
}

/// `aliases`: one group-by name for fields named differently in each
/// referenced rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    /// (rule id or name as written, field path in that rule's events).
    pub fields: Vec<(String, String)>,
}

/// Which of the two window sets a window belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Aligned to the epoch.
    Aligned,
    /// Offset by half a timespan.
    Offset,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Aligned => "a",
            Phase::Offset => "o",
        }
    }
}

/// One window: `[start, end)` in epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub phase: Phase,
}

/// The two windows (one per set) an event at `t` belongs to.
pub fn windows_of(t: i64, timespan: i64) -> [Window; 2] {
    let span = timespan.max(2);
    let half = span / 2;
    let aligned = t.div_euclid(span) * span;
    let offset = (t - half).div_euclid(span) * span + half;
    [
        Window {
            start: aligned,
            end: aligned + span,
            phase: Phase::Aligned,
        },
        Window {
            start: offset,
            end: offset + span,
            phase: Phase::Offset,
        },
    ]
}

/// A contributing event, as the alert lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct EventRef {
    /// Epoch seconds (`eventTime`).
    pub time: i64,
    /// CloudTrail `eventID` (may be empty).
    pub id: String,
    pub name: String,
    pub region: String,
    /// `userIdentity.arn` (a finding's own ARN), for the console link's
    /// partition.
    pub arn: Option<String>,
    /// A CloudTrail record or a GuardDuty finding (`id` is then the
    /// finding's, `name` its type). Left out of stored JSON for CloudTrail.
    #[serde(default, skip_serializing_if = "LogSource::is_cloudtrail")]
    pub source: LogSource,
}

/// What a window has accumulated for one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowState {
    /// Matching events (exact).
    pub count: u64,
    /// Distinct values (`value_count`), of the first [`STATE_EVENT_CAP`] events.
    pub values: BTreeSet<String>,
    /// Per referenced rule (temporal), the times it was seen.
    pub steps: Vec<BTreeSet<i64>>,
    /// The first few contributing events.
    pub events: Vec<EventRef>,
}

impl WindowState {
    /// Folds one observation in (the memory store's whole update).
    pub fn add(&mut self, o: &Observation) {
        let under_cap = self.count < STATE_EVENT_CAP;
        self.count += 1;
        if under_cap {
            if let Some(v) = &o.value {
                self.values.insert(v.clone());
            }
            if let Some(p) = o.position {
                if self.steps.len() <= p {
                    self.steps.resize(p + 1, BTreeSet::new());
                }
                self.steps[p].insert(o.event.time);
            }
        }
        if self.events.len() < KEPT_EVENTS {
            self.events.push(o.event.clone());
        }
    }
}

impl Correlation {
    /// Whether a window in `state` satisfies the correlation.
    pub fn fires(&self, state: &WindowState) -> bool {
        match &self.kind {
            Kind::EventCount(c) => c.holds(state.count),
            Kind::ValueCount { cond, .. } => cond.holds(state.values.len() as u64),
            Kind::Temporal { ordered } => {
                let n = self.rules.len();
                let seen = (0..n).all(|i| state.steps.get(i).is_some_and(|s| !s.is_empty()));
                seen && (!ordered || in_order(&state.steps[..n]))
            }
        }
    }

    /// The field whose distinct values a `value_count` counts.
    pub fn value_field(&self) -> Option<&str> {
        match &self.kind {
            Kind::ValueCount { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Whether `rule` (by id, or by name when it has one) is referenced, and
    /// at which position.
    pub fn position_of(&self, id: &str, name: Option<&str>) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r == id || Some(r.as_str()) == name)
    }

    /// The correlation as the finding model sees a rule.
    pub fn meta(&self) -> crate::RuleMeta {
        let (tactics, techniques) = crate::sigma::attack_tags(&self.tags);
        crate::RuleMeta {
            id: self.id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            severity: self.level,
            tactics,
            techniques,
            false_positives: self.false_positives.clone(),
            references: self.references.clone(),
            kind: crate::RuleKind::of(&self.tags, ""),
        }
    }
}

/// Whether times can be picked one per step, in step order (non-decreasing):
/// greedily, the earliest time of each step not before the previous pick.
fn in_order(steps: &[BTreeSet<i64>]) -> bool {
    let mut at = i64::MIN;
    for s in steps {
        match s.range(at..).next() {
            Some(&t) => at = t,
            None => return false,
        }
    }
    true
}

/// Shared, cheap to clone: observations carry their correlation.
pub type CorrelationRef = Arc<Correlation>;

/// A field value as a group or distinct value: text, cut to
/// [`MAX_VALUE_CHARS`]; `None` for null or missing.
pub(crate) fn value_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(s.chars().take(MAX_VALUE_CHARS).collect())
}

#[cfg(test)]
mod tests;

//! Storm aggregation: past the threshold, alerts become counts in one summary.
//!
//! Storm windows are fixed (epoch seconds rounded down to the window length),
//! one state record each, updated with atomic counters only (no read-modify-
//! write), so hundreds of concurrent invocations in a storm never conflict:
//! - `position` counts the non-critical findings that would alert; the one
//!   that makes it `threshold + 1` starts the storm, and every later one is
//!   aggregated (decision `aggregated`) instead of sent.
//! - CRITICAL findings always alert on their own and are only counted.
//! - Aggregated findings add to per-severity, type, account, source and
//!   resource counters. Resources are tracked for the first
//!   `TRACKED_RESOURCES` aggregated findings; later, new resources count as
//!   "other", which bounds the record's size and write cost.
//!
//! When summaries go out (see the README section "Reliability"):
//! - the invocation that crosses the threshold sends one at its end ("storm
//!   in progress"), so responders learn at once that alerts are held back;
//! - after the window closes, the first invocation of each process (in any
//!   later window) sends the final summary of windows with alerts not yet
//!   summarized. A conditional claim makes sure only one process sends it;
//!   `vigil replay` sends it at the end of the replay.
//!
//! So at most two summaries per storm window. Counts are at least once: a
//! retried event may be counted twice, never zero times.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::model::{Finding, Resource, Severity, Source};
use crate::text::one_line;

/// Aggregated findings whose resource is tracked even if new.
pub(super) const TRACKED_RESOURCES: u64 = 200;
/// Finding type of the summary alert (subscribers can filter on it).
pub const SUMMARY_TYPE: &str = "Vigil:AlertStorm/Summary";
/// Longest type, account or resource name kept as a counter key.
const MAX_KEY_CHARS: usize = 256;
/// Lines per breakdown in the summary text.
const TOP: usize = 10;

/// Seconds after a window's end during which counts still in flight may land:
/// a storm leaves the sweep's index only after it.
pub(super) const SETTLE_SECONDS: i64 = 60;
/// Index buckets: one index record per hour of window starts.
const INDEX_BUCKET_SECONDS: i64 = 3600;

/// What a storm is made of: findings of one source and type (GuardDuty
/// finding type, CloudTrail rule id, Security Hub type) at one severity. A
/// storm of one kind never holds back an alert of another kind, nor one of a
/// higher severity, which counts in a storm of its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StormKind {
    pub source: Source,
    pub severity: Severity,
    /// Bounded, one line ([`counter_key`]).
    pub finding_type: String,
}

impl StormKind {
    pub(super) fn of(f: &Finding) -> StormKind {
        StormKind {
            source: f.source,
            severity: f.severity,
            finding_type: counter_key(f.type_or_rule()),
        }
    }
}

/// The state key of one kind's storm in one window:
/// `storm#<window start>#<source>#<SEVERITY>#<type>` (the type last, so a
/// `#` in it is kept when the key is read back).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StormKey {
    pub window: i64,
    pub kind: StormKind,
}

impl std::fmt::Display for StormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = &self.kind;
        write!(
            f,
            "storm#{}#{}#{}#{}",
            self.window,
            k.source.as_str(),
            k.severity.as_str(),
            k.finding_type
        )
    }
}

impl StormKey {
    /// Reads a key back; None for anything this module did not write.
    pub(super) fn parse(key: &str) -> Option<StormKey> {
        let mut parts = key.strip_prefix("storm#")?.splitn(4, '#');
        let window = parts.next()?.parse().ok()?;
        let source = source_named(parts.next()?)?;
        let severity = parts.next()?.parse().ok()?;
        let finding_type = parts.next()?.to_string();
        Some(StormKey {
            window,
            kind: StormKind {
                source,
                severity,
                finding_type,
            },
        })
    }

    /// The index record listing the storms started in this key's hour, which
    /// the sweep reads (a query by key, not a scan).
    pub(super) fn index_key(&self) -> String {
        index_key(self.window)
    }
}

/// The index record for storm windows starting in the hour of `window`.
pub(super) fn index_key(window: i64) -> String {
    format!(
        "stormidx#{}",
        window.div_euclid(INDEX_BUCKET_SECONDS) * INDEX_BUCKET_SECONDS
    )
}

/// Index records whose hours overlap `from..=to` (epoch seconds), oldest first.
pub(super) fn index_keys(from: i64, to: i64) -> Vec<String> {
    let first = from.div_euclid(INDEX_BUCKET_SECONDS);
    let last = to.div_euclid(INDEX_BUCKET_SECONDS);
    (first..=last)
        .map(|b| index_key(b * INDEX_BUCKET_SECONDS))
        .collect()
}

fn source_named(name: &str) -> Option<Source> {
    Source::ALL.into_iter().find(|s| s.as_str() == name)
}

/// What a sweep for storms owing a final summary did
/// ([`crate::Pipeline::sweep_storms`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepReport {
    /// Storms listed in the index records read.
    pub storms_checked: usize,
    /// Summaries delivered.
    pub sent: u64,
    /// Summaries claimed but not delivered (given back for the next sweep).
    pub failed: u64,
    /// Why the sweep stopped early (the state store failed), if it did.
    pub error: Option<String>,
}

impl SweepReport {
    /// Whether every due summary went out.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.error.is_none()
    }
}

/// What an aggregated finding adds to the breakdowns.
#[derive(Debug, Clone, PartialEq)]
pub struct StormEntry {
    pub severity: Severity,
    pub source: Source,
    pub finding_type: String,
    pub account: String,
    pub resource: String,
}

impl StormEntry {
    pub(super) fn of(f: &Finding) -> StormEntry {
        StormEntry {
            severity: f.severity,
            source: f.source,
            finding_type: counter_key(f.type_or_rule()),
            account: counter_key(&f.account_label()),
            resource: counter_key(
                f.primary_resource()
                    .map(|r| r.id.as_str())
                    .unwrap_or("(no resource)"),
            ),
        }
    }
}

/// Keys are attribute names in DynamoDB: never empty, bounded in length.
fn counter_key(s: &str) -> String {
    let s = one_line(s, MAX_KEY_CHARS);
    if s.is_empty() {
        "(none)".to_string()
    } else {
        s
    }
}

/// How to count an aggregated finding's resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResourceSlot<'a> {
    /// Count it, adding a counter if needed.
    Track(&'a str),
    /// Count it only if it already has a counter (else the store reports a conflict).
    TrackIfKnown(&'a str),
    /// Count it as "other".
    Other,
}

/// A storm window's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StormCounters {
    /// Non-critical findings that would have alerted.
    pub position: u64,
    /// CRITICAL findings (each alerted on its own).
    pub critical: u64,
    /// Aggregated alerts already covered by a summary.
    pub summarized: u64,
    /// Summaries sent.
    pub summaries: u64,
    pub by_severity: BTreeMap<String, u64>,
    pub by_type: BTreeMap<String, u64>,
    pub by_account: BTreeMap<String, u64>,
    pub by_source: BTreeMap<String, u64>,
    pub by_resource: BTreeMap<String, u64>,
    /// Aggregated findings whose resource was not tracked.
    pub other_resources: u64,
}

impl StormCounters {
    /// Alerts the storm replaced (not sent on their own).
    pub(super) fn replaced(&self, threshold: u64) -> u64 {
        self.position.saturating_sub(threshold)
    }

    /// Adds `entry` (the in-memory store, and tests).
    pub(super) fn add(&mut self, entry: &StormEntry, slot: ResourceSlot<'_>) -> bool {
        if let ResourceSlot::TrackIfKnown(r) = slot {
            if !self.by_resource.contains_key(r) {
                return false;
            }
        }
        *self
            .by_severity
            .entry(entry.severity.as_str().to_string())
            .or_default() += 1;
        *self.by_type.entry(entry.finding_type.clone()).or_default() += 1;
        *self.by_account.entry(entry.account.clone()).or_default() += 1;
        *self
            .by_source
            .entry(entry.source.as_str().to_string())
            .or_default() += 1;
        match slot {
            ResourceSlot::Track(r) | ResourceSlot::TrackIfKnown(r) => {
                *self.by_resource.entry(r.to_string()).or_default() += 1
            }
            ResourceSlot::Other => self.other_resources += 1,
        }
        true
    }
}

fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = map.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(n);
    v
}

fn inline(map: &BTreeMap<String, u64>, n: usize) -> String {
    let shown = top(map, n);
    let mut s = shown
        .iter()
        .map(|(k, c)| format!("{k}={c}"))
        .collect::<Vec<_>>()
        .join(", ");
    if map.len() > n {
        let _ = write!(s, ", ... {} more", map.len() - n);
    }
    s
}

/// The summary alert: a finding of type [`SUMMARY_TYPE`], so every sink and
/// renderer sends it like any other alert. Its subject and text say it is a
/// storm summary and how many alerts it replaces; its evidence carries the
/// counts for machines; `count` is the number of alerts replaced.
pub(super) fn summary(
    key: &StormKey,
    window_seconds: i64,
    threshold: u64,
    c: &StormCounters,
    closed: bool,
) -> Finding {
    let window_start = key.window;
    let s = Summary {
        c,
        kind: &key.kind,
        window_start,
        window_seconds,
        threshold,
        closed,
        replaced: c.replaced(threshold),
        individual: c.position.min(threshold),
        start: DateTime::<Utc>::from_timestamp(window_start, 0).unwrap_or_default(),
        end: DateTime::<Utc>::from_timestamp(window_start.saturating_add(window_seconds), 0)
            .unwrap_or_default(),
    };
    let mut f = s.finding();
    f.description = s.description();
    s.add_evidence(&mut f.evidence);
    f
}

/// One storm window's summary: its counters and the numbers every part of
/// the alert states.
struct Summary<'a> {
    c: &'a StormCounters,
    kind: &'a StormKind,
    window_start: i64,
    window_seconds: i64,
    threshold: u64,
    /// Whether the window has closed (the final summary).
    closed: bool,
    /// Alerts the storm replaced.
    replaced: u64,
    /// Alerts sent one by one before the threshold was crossed.
    individual: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Summary<'_> {
    /// The finding's identity, title, severity, scope and time.
    fn finding(&self) -> Finding {
        let (c, replaced, window_start, kind) =
            (self.c, self.replaced, self.window_start, self.kind);
        let kind_id = format!(
            "{}:{}:{}",
            kind.source.as_str(),
            kind.severity.as_str(),
            kind.finding_type
        );
        let mut f = Finding::new(
            kind.source,
            format!("storm:{window_start}:{kind_id}:{replaced}"),
            SUMMARY_TYPE,
        );
        f.product = "Vigil".into();
        // The subject already says the severity and source (and has 99
        // characters in all): the type, shortened, says the rest.
        f.title = format!(
            "Alert storm {}: {replaced} alerts summarized ({})",
            if self.closed {
                "summary"
            } else {
                "in progress"
            },
            one_line(&kind.finding_type, 24),
        );
        // The storm holds back one severity only.
        f.severity = kind.severity;
        let accounts = top(&c.by_account, 1);
        f.account_id = accounts
            .first()
            .map(|(a, _)| a.to_string())
            .unwrap_or_default();
        if c.by_account.len() > 1 {
            f.account_name = Some(format!("{} accounts", c.by_account.len()));
        }
        f.region = "all regions".into();
        f.time = self.start;
        f.first_seen = Some(self.start);
        f.last_seen = Some(self.end);
        f.count = replaced;
        f.fingerprint = format!("storm-{window_start}-{kind_id}");
        for (id, _) in top(&c.by_resource, 5) {
            f.resources.push(Resource::new("Other", id));
        }
        f
    }

    /// The text: what the summary is, then the breakdowns.
    fn description(&self) -> String {
        let (c, replaced, threshold) = (self.c, self.replaced, self.threshold);
        let mut d = String::new();
        let _ = writeln!(
            d,
            "This is a storm summary: it replaces {replaced} individual alerts. More than {threshold} {} {} findings of type {} alerted between {} and {} UTC; the first {} were sent one by one, the rest are counted here. Findings of any other type or severity alert on their own.",
            self.kind.severity.as_str(),
            self.kind.source.as_str(),
            one_line(&self.kind.finding_type, 200),
            self.start.format("%Y-%m-%d %H:%M:%S"),
            self.end.format("%H:%M:%S"),
            self.individual,
        );
        if self.closed {
            let _ = writeln!(d, "The window has closed: these are the final counts.");
        } else {
            let _ = writeln!(
                d,
                "The storm is in progress: a final summary follows when the window closes."
            );
        }
        for (label, map) in [
            ("By severity", &c.by_severity),
            ("By type", &c.by_type),
            ("By account", &c.by_account),
            ("By source", &c.by_source),
            ("Top resources", &c.by_resource),
        ] {
            if map.is_empty() {
                continue;
            }
            let _ = writeln!(d, "\n{label}:");
            for (k, n) in top(map, TOP) {
                let _ = writeln!(d, "  {n:>7}  {k}");
            }
            if map.len() > TOP {
                let _ = writeln!(d, "  ... and {} more", map.len() - TOP);
            }
        }
        if c.other_resources > 0 {
            let _ = writeln!(d, "  {:>7}  (other resources)", c.other_resources);
        }
        let _ = writeln!(
            d,
            "\nEvery aggregated finding is in the logs with decision \"aggregated\" and its storm window {}.",
            self.window_start
        );
        d
    }

    /// The counts for machines.
    fn add_evidence(&self, ev: &mut BTreeMap<String, String>) {
        let c = self.c;
        ev.insert("storm_replaced_alerts".into(), self.replaced.to_string());
        ev.insert(
            "storm_individual_alerts".into(),
            self.individual.to_string(),
        );
        ev.insert("storm_threshold".into(), self.threshold.to_string());
        ev.insert("storm_window_start".into(), self.start.to_rfc3339());
        ev.insert(
            "storm_window_seconds".into(),
            self.window_seconds.to_string(),
        );
        ev.insert("storm_final".into(), self.closed.to_string());
        ev.insert("storm_source".into(), self.kind.source.as_str().into());
        ev.insert("storm_severity".into(), self.kind.severity.as_str().into());
        ev.insert("storm_type".into(), self.kind.finding_type.clone());
        ev.insert("storm_by_severity".into(), inline(&c.by_severity, 5));
        ev.insert("storm_by_type".into(), inline(&c.by_type, TOP));
        ev.insert("storm_by_account".into(), inline(&c.by_account, TOP));
        ev.insert("storm_by_source".into(), inline(&c.by_source, 5));
        ev.insert("storm_top_resources".into(), inline(&c.by_resource, TOP));
        ev.insert(
            "storm_other_resources".into(),
            c.other_resources.to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{self, Alert};

    fn entry(i: u64) -> StormEntry {
        StormEntry {
            severity: if i.is_multiple_of(3) {
                Severity::High
            } else {
                Severity::Medium
            },
            source: Source::GuardDuty,
            finding_type: format!("Type{}", i % 4),
            account: format!("11112222333{}", i % 2),
            resource: format!("i-{i:04}"),
        }
    }

    #[test]
    fn counters_sum_to_the_aggregated_total_and_bound_resources() {
        let mut c = StormCounters::default();
        for i in 0..500u64 {
            let e = entry(i % 300);
            let slot = if i < TRACKED_RESOURCES {
                ResourceSlot::Track(&e.resource)
            } else {
                ResourceSlot::TrackIfKnown(&e.resource)
            };
            if !c.add(&e, slot) {
                assert!(c.add(&e, ResourceSlot::Other));
            }
        }
        for map in [&c.by_severity, &c.by_type, &c.by_account, &c.by_source] {
            assert_eq!(map.values().sum::<u64>(), 500);
        }
        assert_eq!(c.by_resource.values().sum::<u64>() + c.other_resources, 500);
        assert_eq!(c.by_resource.len() as u64, TRACKED_RESOURCES);
    }

    #[test]
    fn the_summary_says_what_it_is_and_how_many_alerts_it_replaces() {
        let mut c = StormCounters {
            position: 1050,
            critical: 2,
            ..StormCounters::default()
        };
        for i in 0..1000 {
            let e = entry(i);
            c.add(&e, ResourceSlot::Track(&e.resource));
        }
        let key = StormKey {
            window: 1_700_000_100,
            kind: StormKind {
                source: Source::GuardDuty,
                severity: Severity::High,
                finding_type: "Recon:EC2/Portscan".into(),
            },
        };
        let f = summary(&key, 300, 50, &c, true);
        assert_eq!(f.count, 1000);
        assert_eq!(f.severity, Severity::High);
        assert!(
            f.title
                .contains("1000 alerts summarized (Recon:EC2/Portscan)"),
            "{}",
            f.title
        );
        let subject = render::subject(&f);
        assert!(
            subject.contains("storm") && subject.contains("1000 alerts"),
            "{subject}"
        );
        assert!(subject.ends_with("| 2 accounts"), "{subject}");
        let body = render::email_body(&Alert::new(&f));
        assert!(
            body.contains("storm summary: it replaces 1000 individual alerts"),
            "{body}"
        );
        assert!(body.contains("final counts"), "{body}");
        assert_eq!(f.evidence["storm_replaced_alerts"], "1000");
        let msg = render::sns_message(&Alert::new(&f));
        assert!(msg.len() < 256 * 1024);
    }

    #[test]
    fn storm_keys_read_back_whatever_the_type_holds() {
        let key = StormKey {
            window: 1_700_000_100,
            kind: StormKind {
                source: Source::CloudTrail,
                severity: Severity::Medium,
                finding_type: "rule#with#hashes".into(),
            },
        };
        let text = key.to_string();
        assert_eq!(text, "storm#1700000100#CloudTrail#MEDIUM#rule#with#hashes");
        assert_eq!(StormKey::parse(&text), Some(key.clone()));
        assert_eq!(key.index_key(), "stormidx#1699999200");
        assert_eq!(StormKey::parse("storm#1700000100"), None);
        assert_eq!(
            index_keys(1_699_999_200, 1_700_003_000),
            vec!["stormidx#1699999200", "stormidx#1700002800"]
        );
    }
}

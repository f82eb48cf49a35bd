//! From "a referenced rule matched this record" to [`Observation`]s, and
//! from observations to firings ([`MemoryState`], the state one process
//! keeps for `vigil replay` and the tests; the DynamoDB store in
//! `vigil::correlate` keeps the same state in a table).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{value_text, windows_of, CorrelationRef, EventRef, Window, WindowState};
use crate::matcher::FieldPath;
use crate::LogSource;

/// One matching event's contribution to one window of one correlation.
#[derive(Debug, Clone)]
pub struct Observation {
    pub correlation: CorrelationRef,
    /// The group-by values as a JSON array (unambiguous whatever the values
    /// contain), each cut to [`super::MAX_VALUE_CHARS`].
    pub group: String,
    pub window: Window,
    /// `value_count`: the counted field's value.
    pub value: Option<String>,
    /// Temporal: the position of the matched rule in `rules`.
    pub position: Option<usize>,
    pub event: EventRef,
    /// From a `vigil_join_only` rule: it only adds to a window and group
    /// that already holds (or whose batch holds) an observation without it.
    pub join_only: bool,
}

impl Observation {
    /// Identifies the (correlation, group, window) the state is kept for.
    pub fn key(&self) -> String {
        format!(
            "{}#{}#{}#{}",
            self.correlation.id,
            self.window.phase.as_str(),
            self.window.start,
            self.group
        )
    }
}

/// A window that crossed its correlation's condition (once per window and
/// group).
#[derive(Debug, Clone)]
pub struct Fired {
    pub correlation: CorrelationRef,
    pub group: String,
    pub window: Window,
    pub state: WindowState,
}

impl Fired {
    /// The group-by fields with their values.
    pub fn group_values(&self) -> Vec<(String, String)> {
        let values: Vec<String> = serde_json::from_str(&self.group).unwrap_or_default();
        self.correlation
            .group_by
            .iter()
            .cloned()
            .zip(values)
            .collect()
    }
}

/// The observations (one per window set) for `correlation` when the rule at
/// `position` of its `rules` (with `rule_id`, `rule_name`) matched `record`
/// (of `source`). None when the record lacks a group-by field, the counted
/// field or a readable time ([`event_ref`]): such an event cannot be placed.
pub fn observe_match(
    correlation: &CorrelationRef,
    position: usize,
    rule_id: &str,
    rule_name: Option<&str>,
    source: LogSource,
    record: &Value,
) -> Vec<Observation> {
    let field_for = |name: &str| -> String {
        correlation
            .aliases
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| {
                a.fields
                    .iter()
                    .find(|(r, _)| r == rule_id || Some(r.as_str()) == rule_name)
            })
            .map_or_else(|| name.to_string(), |(_, f)| f.clone())
    };
    let mut group = Vec::with_capacity(correlation.group_by.len());
    for g in &correlation.group_by {
        let Some(v) = first_value(record, &field_for(g)) else {
            return Vec::new();
        };
        group.push(v);
    }
    let value = match correlation.value_field() {
        Some(f) => match first_value(record, &field_for(f)) {
            Some(v) => Some(v),
            None => return Vec::new(),
        },
        None => None,
    };
    let Some(event) = event_ref(source, record) else {
        return Vec::new();
    };
    let group = serde_json::to_string(&group).unwrap_or_default();
    let temporal = matches!(correlation.kind, super::Kind::Temporal { .. });
    windows_of(event.time, correlation.timespan_secs)
        .into_iter()
        .map(|window| Observation {
            correlation: correlation.clone(),
            group: group.clone(),
            window,
            value: value.clone(),
            position: temporal.then_some(position),
            event: event.clone(),
            join_only: false,
        })
        .collect()
}

/// The first non-null value at a dotted path.
fn first_value(record: &Value, path: &str) -> Option<String> {
    let mut out = None;
    FieldPath::parse(path).any(record, &mut |v| {
        out = v.and_then(value_text);
        out.is_some()
    });
    out
}

/// The contributing event: a CloudTrail record's `eventTime`, `eventID`,
/// `eventName`, `awsRegion` and `userIdentity.arn`; a GuardDuty finding's
/// time its activity was first seen (`service.eventFirstSeen`, else
/// `createdAt`), `id`, `type`, `region` and `arn`.
pub fn event_ref(source: LogSource, record: &Value) -> Option<EventRef> {
    let text = |v: Option<&Value>, max: usize| {
        v.and_then(Value::as_str)
            .map(|s| s.chars().take(max).collect::<String>())
    };
    let field = |k: &str| text(record.get(k), super::MAX_VALUE_CHARS);
    let time_of = |v: Option<&Value>| {
        chrono::DateTime::parse_from_rfc3339(v?.as_str()?)
            .ok()
            .map(|t| t.timestamp())
    };
    let (time, id, name, region, arn) = match source {
        LogSource::CloudTrail => (
            time_of(record.get("eventTime"))?,
            field("eventID"),
            field("eventName"),
            field("awsRegion"),
            text(record.get("userIdentity").and_then(|u| u.get("arn")), 256),
        ),
        LogSource::GuardDuty => (
            time_of(record.get("service").and_then(|s| s.get("eventFirstSeen")))
                .or_else(|| time_of(record.get("createdAt")))?,
            field("id"),
            field("type"),
            field("region"),
            text(record.get("arn"), 256),
        ),
    };
    Some(EventRef {
        time,
        id: id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        region: region.unwrap_or_default(),
        arn,
        source,
    })
}

/// How long (in event time) a closed window stays in memory for late
/// events: a log file delivered late, or files replayed a little out of
/// order. An event later than this starts its window afresh.
pub const MEMORY_LATE_GRACE_SECS: i64 = 3600;

/// Windows kept before the first sweep for closed ones.
const SWEEP_ABOVE: usize = 1024;

/// Window state in one process's memory: `vigil replay`, `vigil rules
/// test` and the tests. Fires each (correlation, group, window) once.
/// Windows closed more than [`MEMORY_LATE_GRACE_SECS`] before the newest
/// event seen are dropped, so a replay of months keeps only the recent ones.
#[derive(Debug, Default)]
pub struct MemoryState {
    windows: HashMap<String, Kept>,
    /// The newest event time seen, seconds.
    newest: i64,
    /// The map's size above which the next sweep runs (twice what the last
    /// one left, so sweeping costs a constant per observation).
    sweep_above: usize,
}

/// One window's state, whether it fired, and when it ends.
#[derive(Debug, Default)]
struct Kept {
    state: WindowState,
    fired: bool,
    end: i64,
}

impl MemoryState {
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Folds `batch` in; returns the windows that fire now. A join-only
    /// observation is dropped unless its window and group has state or the
    /// batch holds an observation of it that is not join-only.
    pub fn observe(&mut self, batch: &[Observation]) -> Vec<Fired> {
        let anchored: HashSet<String> = batch
            .iter()
            .filter(|o| !o.join_only)
            .map(Observation::key)
            .collect();
        let mut out = Vec::new();
        for o in batch {
            let key = o.key();
            if o.join_only && !anchored.contains(&key) && !self.windows.contains_key(&key) {
                continue;
            }
            self.newest = self.newest.max(o.event.time);
            let kept = self.windows.entry(key).or_default();
            kept.end = o.window.end;
            let (state, fired) = (&mut kept.state, &mut kept.fired);
            state.add(o);
            if !*fired && o.correlation.fires(state) {
                *fired = true;
                out.push(Fired {
                    correlation: o.correlation.clone(),
                    group: o.group.clone(),
                    window: o.window,
                    state: state.clone(),
                });
            }
        }
        self.sweep();
        out
    }

    /// Drops the windows closed long enough before the newest event.
    fn sweep(&mut self) {
        if self.windows.len() <= self.sweep_above.max(SWEEP_ABOVE) {
            return;
        }
        let oldest_kept = self.newest - MEMORY_LATE_GRACE_SECS;
        self.windows.retain(|_, kept| kept.end >= oldest_kept);
        self.sweep_above = self.windows.len() * 2;
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

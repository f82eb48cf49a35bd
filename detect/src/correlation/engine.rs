//! From "a referenced rule matched this record" to [`Observation`]s, and
//! from observations to firings ([`MemoryState`], the state one process
//! keeps for `vigil replay` and the tests; the DynamoDB store in
//! `vigil::correlate` keeps the same state in a table).

use std::collections::HashMap;

use serde_json::Value;

use super::{value_text, windows_of, CorrelationRef, EventRef, Window, WindowState};
use crate::matcher::FieldPath;

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
/// `position` of its `rules` (with `rule_id`, `rule_name`) matched `record`.
/// None when the record lacks a group-by field, the counted field or a
/// readable `eventTime`: such an event cannot be placed.
pub fn observe_match(
    correlation: &CorrelationRef,
    position: usize,
    rule_id: &str,
    rule_name: Option<&str>,
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
    let Some(event) = event_ref(record) else {
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

/// The contributing event, from its CloudTrail fields.
pub fn event_ref(record: &Value) -> Option<EventRef> {
    let text = |k: &str| {
        record
            .get(k)
            .and_then(Value::as_str)
            .map(|s| s.chars().take(super::MAX_VALUE_CHARS).collect::<String>())
    };
    let time = chrono::DateTime::parse_from_rfc3339(record.get("eventTime")?.as_str()?)
        .ok()?
        .timestamp();
    Some(EventRef {
        time,
        id: text("eventID").unwrap_or_default(),
        name: text("eventName").unwrap_or_default(),
        region: text("awsRegion").unwrap_or_default(),
        arn: record
            .get("userIdentity")
            .and_then(|u| u.get("arn"))
            .and_then(Value::as_str)
            .map(|s| s.chars().take(256).collect()),
    })
}

/// Window state in one process's memory: `vigil replay`, `vigil rules
/// test` and the tests. Fires each (correlation, group, window) once.
#[derive(Debug, Default)]
pub struct MemoryState {
    windows: HashMap<String, (WindowState, bool)>,
}

impl MemoryState {
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Folds `batch` in; returns the windows that fire now.
    pub fn observe(&mut self, batch: &[Observation]) -> Vec<Fired> {
        let mut out = Vec::new();
        for o in batch {
            let (state, fired) = self.windows.entry(o.key()).or_default();
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
        out
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

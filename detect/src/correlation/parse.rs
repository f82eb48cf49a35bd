//! Correlation rules from YAML, and the documents of a rule file.
//!
//! A file may hold several YAML documents separated by `---`: plain rules
//! (compiled by [`crate::sigma`]) and correlation rules, as the Sigma
//! specification allows. A correlation's own tests are sequences of
//! CloudTrail records that must, or must not, make it fire:
//!
//! ```yaml
//! vigil_tests:
//!   sequences:
//!     - {fires: true, events: [{eventName: ConsoleLogin, eventTime: ...}, ...]}
//!     - {fires: false, events: [...]}
//! ```

use serde::Deserialize;
use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};

use super::{Alias, Cond, Correlation, Kind, MAX_TIMESPAN_SECS, MAX_VALUE_THRESHOLD};
use crate::error::{RuleErrorKind, Unsupported};
use vigil_model::Severity;

/// Top-level keys of a correlation rule.
const KNOWN_KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "status",
    "description",
    "author",
    "date",
    "modified",
    "references",
    "tags",
    "level",
    "falsepositives",
    "correlation",
    "taxonomy",
    "license",
    "related",
    "vigil_tests",
];

/// One document of a rule file.
#[derive(Debug, Clone)]
pub enum Document {
    /// A plain rule, as JSON text for [`crate::Rule::parse_full_with`], with
    /// its `id` and `name` (for references by name within the file).
    Rule {
        text: String,
        id: Option<String>,
        name: Option<String>,
    },
    Correlation(Box<ParsedCorrelation>),
}

/// A correlation, its test sequences, and lint notes.
#[derive(Debug, Clone)]
pub struct ParsedCorrelation {
    pub correlation: Correlation,
    pub sequences: Vec<Sequence>,
    pub notes: Vec<String>,
}

/// Records that must (or must not) make a correlation fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub fires: bool,
    pub events: Vec<Value>,
}

/// Whether `text` needs [`parse_documents`]: it holds a correlation or
/// several documents (a plain one-rule file does not).
pub fn is_multi(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("---") || l.contains("correlation"))
}

/// Every document of a file. An `action:` document (Sigma v1 rule
/// collections) is refused as before.
pub fn parse_documents(origin: &str, text: &str) -> Result<Vec<Document>, RuleErrorKind> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Yaml::deserialize(doc).map_err(|e| RuleErrorKind::Yaml(e.to_string()))?;
        let map = match value {
            Yaml::Null => continue,
            Yaml::Mapping(m) => m,
            _ => return Err(RuleErrorKind::Yaml("a rule is a YAML mapping".into())),
        };
        if map.contains_key("action") {
            return Err(RuleErrorKind::Unsupported(Unsupported::MultiDocument));
        }
        if map.contains_key("correlation") {
            let parsed = parse_correlation(origin, i, &map)?;
            out.push(Document::Correlation(Box::new(parsed)));
            continue;
        }
        let text = serde_json::to_string(&map).map_err(|e| RuleErrorKind::Yaml(e.to_string()))?;
        out.push(Document::Rule {
            text,
            id: text_of(&map, "id"),
            name: text_of(&map, "name"),
        });
    }
    Ok(out)
}

fn parse_correlation(
    origin: &str,
    index: usize,
    map: &Mapping,
) -> Result<ParsedCorrelation, RuleErrorKind> {
    let mut notes: Vec<String> = map
        .keys()
        .filter_map(Yaml::as_str)
        .filter(|k| !KNOWN_KEYS.contains(k))
        .map(|k| format!("unknown top-level key `{k}`"))
        .collect();
    let title = text_of(map, "title").ok_or(RuleErrorKind::Missing("title"))?;
    let id = text_of(map, "id").unwrap_or_else(|| {
        notes.push("missing `id`".into());
        let stem = std::path::Path::new(origin)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(origin);
        format!("{stem}#{index}")
    });
    let level = match text_of(map, "level") {
        Some(l) => l
            .parse::<Severity>()
            .map_err(|e| invalid("level", e.to_string()))?,
        None => {
            notes.push("missing `level` (read as medium)".into());
            Severity::Medium
        }
    };
    let Some(Yaml::Mapping(c)) = map.get("correlation") else {
        return Err(invalid("correlation", "expected a mapping"));
    };
    let correlation = Correlation {
        id,
        name: text_of(map, "name"),
        title,
        description: text_of(map, "description").unwrap_or_default(),
        level,
        tags: list_of(map, "tags")?,
        references: list_of(map, "references")?,
        false_positives: list_of(map, "falsepositives")?,
        kind: kind(c)?,
        rules: rules(c)?,
        group_by: list_of(c, "group-by")?,
        timespan_secs: timespan(c)?,
        aliases: aliases(c)?,
        generate: matches!(c.get("generate"), Some(Yaml::Bool(true))),
        origin: origin.to_string(),
    };
    check(&correlation)?;
    let sequences = match map.get("vigil_tests") {
        Some(t) => sequences(t)?,
        None => Vec::new(),
    };
    Ok(ParsedCorrelation {
        correlation,
        sequences,
        notes,
    })
}

fn kind(c: &Mapping) -> Result<Kind, RuleErrorKind> {
    let kind = text_of(c, "type").ok_or(RuleErrorKind::Missing("correlation.type"))?;
    let cond = || -> Result<(Cond, Option<String>), RuleErrorKind> {
        match c.get("condition") {
            Some(Yaml::Mapping(m)) => condition(m),
            _ => Err(RuleErrorKind::Missing("correlation.condition")),
        }
    };
    Ok(match kind.as_str() {
        "event_count" => Kind::EventCount(cond()?.0),
        "value_count" => {
            let (cond, field) = cond()?;
            let field = field.ok_or(RuleErrorKind::Missing("correlation.condition.field"))?;
            Kind::ValueCount { field, cond }
        }
        "temporal" => Kind::Temporal { ordered: false },
        "temporal_ordered" => Kind::Temporal { ordered: true },
        other => {
            return Err(invalid(
                "correlation.type",
                format!(
                    "unknown type `{other}` (event_count, value_count, temporal, temporal_ordered)"
                ),
            ))
        }
    })
}

fn condition(m: &Mapping) -> Result<(Cond, Option<String>), RuleErrorKind> {
    let mut cond = Cond::default();
    let mut field = None;
    for (k, v) in m {
        let key = k.as_str().unwrap_or_default();
        if key == "field" {
            field = v.as_str().map(str::to_string);
            continue;
        }
        let n = v.as_u64().ok_or_else(|| {
            invalid(
                "correlation.condition",
                format!("`{key}` must be a whole number"),
            )
        })?;
        let slot = match key {
            "gt" => &mut cond.gt,
            "gte" => &mut cond.gte,
            "lt" => &mut cond.lt,
            "lte" => &mut cond.lte,
            "eq" => &mut cond.eq,
            other => {
                return Err(invalid(
                    "correlation.condition",
                    format!("unknown operator `{other}` (gt, gte, lt, lte, eq)"),
                ))
            }
        };
        *slot = Some(n);
    }
    Ok((cond, field))
}

fn rules(c: &Mapping) -> Result<Vec<String>, RuleErrorKind> {
    let rules = list_of(c, "rules")?;
    if rules.is_empty() {
        return Err(RuleErrorKind::Missing("correlation.rules"));
    }
    Ok(rules)
}

/// `timespan`: a number and a unit (`s`, `m`, `h`, `d`).
pub(crate) fn timespan(c: &Mapping) -> Result<i64, RuleErrorKind> {
    let t = text_of(c, "timespan").ok_or(RuleErrorKind::Missing("correlation.timespan"))?;
    let t = t.trim();
    let bad = || {
        invalid(
            "correlation.timespan",
            format!("`{t}` is not like 30s, 10m, 1h, 1d"),
        )
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: i64 = t[..split].parse().map_err(|_| bad())?;
    let unit = match &t[split..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit).ok_or_else(bad)?;
    if !(2..=MAX_TIMESPAN_SECS).contains(&secs) {
        return Err(invalid(
            "correlation.timespan",
            format!("{t}: between 2 seconds and 7 days"),
        ));
    }
    Ok(secs)
}

fn aliases(c: &Mapping) -> Result<Vec<Alias>, RuleErrorKind> {
    let Some(a) = c.get("aliases").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Yaml::Mapping(a) = a else {
        return Err(invalid("correlation.aliases", "expected a mapping"));
    };
    a.iter()
        .map(|(name, fields)| {
            let name = name.as_str().unwrap_or_default().to_string();
            let Yaml::Mapping(fields) = fields else {
                return Err(invalid(
                    "correlation.aliases",
                    "each alias maps rules to fields",
                ));
            };
            let fields = fields
                .iter()
                .filter_map(|(r, f)| Some((r.as_str()?.to_string(), f.as_str()?.to_string())))
                .collect();
            Ok(Alias { name, fields })
        })
        .collect()
}

/// What this engine can evaluate as the events stream in.
fn check(c: &Correlation) -> Result<(), RuleErrorKind> {
    let cond = match &c.kind {
        Kind::EventCount(cond) | Kind::ValueCount { cond, .. } => Some(cond),
        Kind::Temporal { .. } => None,
    };
    if let Some(cond) = cond {
        match cond.threshold() {
            None | Some(0) => {
                return Err(RuleErrorKind::Unsupported(Unsupported::Aggregation(format!(
                    "condition `{cond}` has no lower bound: it could only be decided when the window closes"
                ))))
            }
            Some(t) if matches!(c.kind, Kind::ValueCount { .. }) && t > MAX_VALUE_THRESHOLD => {
                return Err(invalid(
                    "correlation.condition",
                    format!("value_count thresholds up to {MAX_VALUE_THRESHOLD} (the state keeps that many values)"),
                ))
            }
            _ => {}
        }
    }
    if c.rules.len() > 32 {
        return Err(invalid("correlation.rules", "at most 32 rules"));
    }
    if c.group_by.len() > 8 {
        return Err(invalid("correlation.group-by", "at most 8 fields"));
    }
    Ok(())
}

fn sequences(t: &Yaml) -> Result<Vec<Sequence>, RuleErrorKind> {
    let bad = |r: &str| invalid("vigil_tests.sequences", r.to_string());
    let Some(Yaml::Sequence(items)) = t.get("sequences") else {
        return Err(bad(
            "a correlation's tests are `sequences: [{fires, events}]`",
        ));
    };
    items
        .iter()
        .map(|s| {
            let fires = s
                .get("fires")
                .and_then(Yaml::as_bool)
                .ok_or_else(|| bad("each sequence says `fires: true|false`"))?;
            let Some(Yaml::Sequence(events)) = s.get("events") else {
                return Err(bad("each sequence has `events: [...]`"));
            };
            let events = events
                .iter()
                .map(|e| serde_json::to_value(e).map(crate::sigma::record_of))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(&e.to_string()))?;
            Ok(Sequence { fires, events })
        })
        .collect()
}

fn text_of(map: &Mapping, key: &str) -> Option<String> {
    match map.get(key)? {
        Yaml::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn list_of(map: &Mapping, key: &str) -> Result<Vec<String>, RuleErrorKind> {
    match map.get(key) {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::String(s)) => Ok(vec![s.trim().to_string()]),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Yaml::String(s) => Ok(s.trim().to_string()),
                Yaml::Number(n) => Ok(n.to_string()),
                _ => Err(invalid(key, "expected a list of strings")),
            })
            .collect(),
        Some(_) => Err(invalid(key, "expected a list of strings")),
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> RuleErrorKind {
    RuleErrorKind::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

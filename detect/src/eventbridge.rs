//! EventBridge event patterns, evaluated as EventBridge does, so tests can
//! prove that the patterns in `template.yaml` deliver every event a rule can
//! match (a rule whose events never arrive detects nothing, silently).
//!
//! Supported, with EventBridge's semantics: nested objects, `$or`, value
//! lists (any), exact strings/numbers/booleans/null, `prefix`, `suffix`
//! (both also with `equals-ignore-case`), `equals-ignore-case`, `wildcard`,
//! `anything-but` (a value, a list, `prefix`, `suffix`, `equals-ignore-case`,
//! `wildcard`), `exists`, `numeric` and `cidr`. As in EventBridge, a field
//! the event lacks matches only `exists: false`, and an array in the event
//! matches when any element does. Unknown operators are errors, not
//! silent non-matches.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

use super::glob::{self, Syntax};

/// Why a pattern could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event pattern at `{path}`: {reason}")]
pub struct PatternError {
    pub path: String,
    pub reason: String,
}

fn perr(path: &str, reason: impl Into<String>) -> PatternError {
    PatternError {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// A compiled event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern {
    node: Node,
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    /// Every field must match.
    fields: Vec<(String, Field)>,
    /// `$or`: each entry is one alternative; every `$or` must be satisfied.
    ors: Vec<Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Nested(Node),
    Leaf(Vec<Op>),
}

#[derive(Debug, Clone, PartialEq)]
enum Text {
    Exact(String),
    IgnoreCase(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Equals(Value),
    Prefix(Text),
    Suffix(Text),
    EqualsIgnoreCase(String),
    Wildcard(String),
    AnythingBut(Vec<Op>),
    Exists(bool),
    Numeric(Vec<(String, f64)>),
    Cidr(IpNet),
}

impl EventPattern {
    /// Reads a pattern (a JSON object, or a JSON string holding one, as
    /// CloudFormation's `EventPattern` allows).
    pub fn parse(pattern: &Value) -> Result<EventPattern, PatternError> {
        let owned;
        let pattern = match pattern {
            Value::String(s) => {
                owned = serde_json::from_str::<Value>(s).map_err(|e| perr("", e.to_string()))?;
                &owned
            }
            v => v,
        };
        let Value::Object(map) = pattern else {
            return Err(perr("", "a pattern is a JSON object"));
        };
        Ok(EventPattern {
            node: node(map, "")?,
        })
    }

    /// Whether EventBridge would deliver `event` (a full EventBridge event).
    pub fn matches(&self, event: &Value) -> bool {
        self.node.matches(event)
    }
}

fn node(map: &Map<String, Value>, path: &str) -> Result<Node, PatternError> {
    let mut n = Node {
        fields: Vec::new(),
        ors: Vec::new(),
    };
    for (k, v) in map {
        let here = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if k == "$or" {
            let Value::Array(items) = v else {
                return Err(perr(&here, "`$or` takes a list of patterns"));
            };
            if items.len() < 2 {
                return Err(perr(&here, "`$or` needs at least two alternatives"));
            }
            let alts = items
                .iter()
                .map(|i| match i {
                    Value::Object(m) => node(m, path),
                    _ => Err(perr(&here, "`$or` alternatives are objects")),
                })
                .collect::<Result<_, _>>()?;
            n.ors.push(alts);
            continue;
        }
        let field = match v {
            Value::Object(m) => Field::Nested(node(m, &here)?),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(perr(&here, "empty value list matches nothing"));
                }
                Field::Leaf(
                    items
                        .iter()
                        .map(|i| op(i, &here))
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => return Err(perr(&here, "values must be in a list")),
        };
        n.fields.push((k.clone(), field));
    }
    Ok(n)
}

fn text(v: &Value, path: &str, name: &str) -> Result<Text, PatternError> {
    match v {
        Value::String(s) => Ok(Text::Exact(s.clone())),
        Value::Object(m) if m.len() == 1 => match m.get("equals-ignore-case") {
            Some(Value::String(s)) => Ok(Text::IgnoreCase(s.clone())),
            _ => Err(perr(
                path,
                format!("`{name}` takes a string or equals-ignore-case"),
            )),
        },
        _ => Err(perr(path, format!("`{name}` takes a string"))),
    }
}

fn op(v: &Value, path: &str) -> Result<Op, PatternError> {
    let Value::Object(m) = v else {
        return Ok(Op::Equals(v.clone()));
    };
    if m.len() != 1 {
        return Err(perr(path, "an operator object has exactly one key"));
    }
    let (name, arg) = m
        .iter()
        .next()
        .ok_or_else(|| perr(path, "empty operator"))?;
    Ok(match name.as_str() {
        "prefix" => Op::Prefix(text(arg, path, name)?),
        "suffix" => Op::Suffix(text(arg, path, name)?),
        "equals-ignore-case" => match arg {
            Value::String(s) => Op::EqualsIgnoreCase(s.clone()),
            _ => return Err(perr(path, "`equals-ignore-case` takes a string")),
        },
        "wildcard" => match arg {
            Value::String(s) => Op::Wildcard(s.clone()),
            _ => return Err(perr(path, "`wildcard` takes a string")),
        },
        "exists" => match arg {
            Value::Bool(b) => Op::Exists(*b),
            _ => return Err(perr(path, "`exists` takes true or false")),
        },
        "anything-but" => Op::AnythingBut(anything_but(arg, path)?),
        "numeric" => Op::Numeric(numeric(arg, path)?),
        "cidr" => Op::Cidr(
            arg.as_str()
                .and_then(|s| s.parse::<IpNet>().ok())
                .ok_or_else(|| perr(path, "`cidr` takes a CIDR range"))?,
        ),
        other => return Err(perr(path, format!("unknown operator `{other}`"))),
    })
}

/// `anything-but`'s argument: a plain value, a list of them, or one operator.
fn anything_but(arg: &Value, path: &str) -> Result<Vec<Op>, PatternError> {
    Ok(match arg {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Object(_) | Value::Array(_) => {
                    Err(perr(path, "`anything-but` lists hold plain values"))
                }
                v => Ok(Op::Equals(v.clone())),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(inner) if inner.len() == 1 => {
            let (k, a) = inner.iter().next().ok_or_else(|| perr(path, "empty"))?;
            anything_but_operator(k, a, path)?
        }
        Value::Object(_) => return Err(perr(path, "`anything-but` takes one operator")),
        v => vec![Op::Equals(v.clone())],
    })
}

/// The operators `anything-but` can hold: `prefix`, `suffix`, `wildcard`
/// (exact case) and `equals-ignore-case` (a string or a list).
fn anything_but_operator(name: &str, a: &Value, path: &str) -> Result<Vec<Op>, PatternError> {
    let string = |what: &str| {
        a.as_str()
            .map(String::from)
            .ok_or_else(|| perr(path, format!("{what} takes a string")))
    };
    Ok(match name {
        "prefix" => vec![Op::Prefix(Text::Exact(string("prefix")?))],
        "suffix" => vec![Op::Suffix(Text::Exact(string("suffix")?))],
        "wildcard" => vec![Op::Wildcard(string("wildcard")?)],
        "equals-ignore-case" => match a {
            Value::String(s) => vec![Op::EqualsIgnoreCase(s.clone())],
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(|s| Op::EqualsIgnoreCase(s.into()))
                        .ok_or_else(|| perr(path, "equals-ignore-case takes strings"))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(perr(path, "equals-ignore-case takes strings")),
        },
        other => return Err(perr(path, format!("`anything-but` cannot take `{other}`"))),
    })
}

/// `numeric`'s argument: `[op, number, ...]` pairs, every one of which must hold.
fn numeric(arg: &Value, path: &str) -> Result<Vec<(String, f64)>, PatternError> {
    let Value::Array(items) = arg else {
        return Err(perr(path, "`numeric` takes [op, number, ...]"));
    };
    if items.is_empty() || items.len() % 2 != 0 {
        return Err(perr(path, "`numeric` takes [op, number, ...]"));
    }
    items
        .chunks(2)
        .map(|c| match (&c[0], c[1].as_f64()) {
            (Value::String(o), Some(n)) if matches!(o.as_str(), "<" | "<=" | "=" | ">" | ">=") => {
                Ok((o.clone(), n))
            }
            _ => Err(perr(path, "`numeric` takes [op, number, ...]")),
        })
        .collect()
}

fn text_match(t: &Text, s: &str, f: fn(&str, &str) -> bool) -> bool {
    match t {
        Text::Exact(x) => f(s, x),
        Text::IgnoreCase(x) => f(&s.to_lowercase(), &x.to_lowercase()),
    }
}

fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl Op {
    /// One scalar of the event against this operator.
    fn matches(&self, v: &Value) -> bool {
        match self {
            Op::Equals(want) => equals(want, v),
            Op::Prefix(t) => v
                .as_str()
                .is_some_and(|s| text_match(t, s, |s, p| s.starts_with(p))),
            Op::Suffix(t) => v
                .as_str()
                .is_some_and(|s| text_match(t, s, |s, p| s.ends_with(p))),
            Op::EqualsIgnoreCase(x) => v
                .as_str()
                .is_some_and(|s| s.to_lowercase() == x.to_lowercase()),
            Op::Wildcard(p) => v
                .as_str()
                .is_some_and(|s| glob::matches(p, s, Syntax::EVENTBRIDGE)),
            Op::AnythingBut(ops) => !ops.iter().any(|o| o.matches(v)),
            Op::Exists(want) => *want,
            Op::Numeric(conds) => v.as_f64().is_some_and(|n| {
                conds.iter().all(|(o, x)| match o.as_str() {
                    "<" => n < *x,
                    "<=" => n <= *x,
                    "=" => n == *x,
                    ">" => n > *x,
                    ">=" => n >= *x,
                    _ => false,
                })
            }),
            Op::Cidr(net) => v
                .as_str()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .is_some_and(|ip| net.contains(&ip)),
        }
    }
}

impl Node {
    fn matches(&self, event: &Value) -> bool {
        self.fields
            .iter()
            .all(|(k, f)| field_matches(event.get(k), f))
            && self
                .ors
                .iter()
                .all(|alts| alts.iter().any(|a| a.matches(event)))
    }
}

fn field_matches(v: Option<&Value>, f: &Field) -> bool {
    match f {
        Field::Nested(n) => match v {
            Some(Value::Object(_)) => n.matches(v.unwrap_or(&Value::Null)),
            Some(Value::Array(items)) => items.iter().any(|i| i.is_object() && n.matches(i)),
            // A nested pattern of only `exists: false` leaves matches a missing parent.
            _ => n.matches(&Value::Null),
        },
        Field::Leaf(ops) => match v {
            None => ops.contains(&Op::Exists(false)),
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    ops.contains(&Op::Exists(false))
                } else {
                    items.iter().any(|i| ops.iter().any(|o| o.matches(i)))
                }
            }
            Some(Value::Object(_)) => false,
            Some(s) => ops.iter().any(|o| o.matches(s)),
        },
    }
}

/// An EventBridge event for a bare CloudTrail record, as EventBridge builds
/// it: `detail-type` from `eventType`, `source` `aws.<service>` from
/// `eventSource`, the record as `detail`.
pub fn cloudtrail_envelope(record: &Value) -> Value {
    let s = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
    let detail_type = match s("eventType") {
        "AwsConsoleSignIn" => "AWS Console Sign In via CloudTrail",
        "AwsServiceEvent" => "AWS Service Event via CloudTrail",
        "AwsConsoleAction" => "AWS Console Action via CloudTrail",
        _ => "AWS API Call via CloudTrail",
    };
    let service = s("eventSource").split('.').next().unwrap_or_default();
    serde_json::json!({
        "version": "0",
        "id": s("eventID"),
        "detail-type": detail_type,
        "source": format!("aws.{service}"),
        "account": s("recipientAccountId"),
        "time": s("eventTime"),
        "region": s("awsRegion"),
        "resources": [],
        "detail": record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(pattern: Value, event: Value) -> bool {
        EventPattern::parse(&pattern).unwrap().matches(&event)
    }

    #[test]
    fn exact_lists_and_nesting() {
        let p = json!({"source": ["aws.iam", "aws.sts"], "detail": {"userIdentity": {"type": ["Root"]}}});
        assert!(m(
            p.clone(),
            json!({"source": "aws.iam", "detail": {"userIdentity": {"type": "Root"}}})
        ));
        assert!(!m(
            p.clone(),
            json!({"source": "aws.ec2", "detail": {"userIdentity": {"type": "Root"}}})
        ));
        assert!(!m(
            p.clone(),
            json!({"source": "aws.iam", "detail": {"userIdentity": {"type": "root"}}})
        ));
        assert!(!m(p, json!({"source": "aws.iam", "detail": {}})));
        assert!(m(json!({"n": [5]}), json!({"n": 5.0})));
        assert!(m(json!({"b": [true]}), json!({"b": true})));
        assert!(!m(json!({"b": [true]}), json!({"b": "true"})));
        assert!(m(json!({"x": [null]}), json!({"x": null})));
        // Arrays in the event: any element.
        assert!(m(json!({"r": ["a"]}), json!({"r": ["b", "a"]})));
        assert!(m(
            json!({"r": {"t": ["a"]}}),
            json!({"r": [{"t": "b"}, {"t": "a"}]})
        ));
    }

    #[test]
    fn prefix_suffix_wildcard_ignore_case() {
        assert!(m(
            json!({"e": [{"prefix": "Delete"}]}),
            json!({"e": "DeleteTrail"})
        ));
        assert!(!m(
            json!({"e": [{"prefix": "Delete"}]}),
            json!({"e": "deleteTrail"})
        ));
        assert!(m(
            json!({"e": [{"prefix": {"equals-ignore-case": "DELETE"}}]}),
            json!({"e": "deleteTrail"})
        ));
        assert!(m(
            json!({"e": [{"suffix": "UnauthorizedOperation"}]}),
            json!({"e": "Client.UnauthorizedOperation"})
        ));
        assert!(m(
            json!({"e": [{"equals-ignore-case": "root"}]}),
            json!({"e": "Root"})
        ));
        assert!(m(
            json!({"e": [{"wildcard": "*TruffleHog*"}]}),
            json!({"e": "x TruffleHog y"})
        ));
        assert!(!m(
            json!({"e": [{"wildcard": "*TruffleHog*"}]}),
            json!({"e": "x trufflehog y"})
        ));
        assert!(m(
            json!({"e": [{"wildcard": "a\\*b"}]}),
            json!({"e": "a*b"})
        ));
        assert!(!m(
            json!({"e": [{"wildcard": "a\\*b"}]}),
            json!({"e": "axb"})
        ));
        assert!(!m(json!({"e": [{"prefix": "1"}]}), json!({"e": 12})));
    }

    #[test]
    fn anything_but_exists_numeric_cidr() {
        let p = json!({"t": [{"anything-but": ["AwsServiceEvent", "x"]}]});
        assert!(m(p.clone(), json!({"t": "AwsApiCall"})));
        assert!(!m(p.clone(), json!({"t": "AwsServiceEvent"})));
        assert!(
            !m(p, json!({})),
            "anything-but does not match a missing field"
        );
        assert!(m(
            json!({"t": [{"anything-but": {"prefix": "Get"}}]}),
            json!({"t": "PutX"})
        ));
        assert!(!m(
            json!({"t": [{"anything-but": {"prefix": "Get"}}]}),
            json!({"t": "GetX"})
        ));
        assert!(m(json!({"i": [{"exists": false}]}), json!({})));
        assert!(!m(json!({"i": [{"exists": false}]}), json!({"i": "x"})));
        assert!(m(json!({"i": [{"exists": true}]}), json!({"i": "x"})));
        assert!(!m(json!({"i": [{"exists": true}]}), json!({})));
        assert!(m(json!({"u": {"i": [{"exists": false}]}}), json!({})));
        assert!(m(
            json!({"p": [{"numeric": [">=", 22, "<", 23]}]}),
            json!({"p": 22})
        ));
        assert!(!m(json!({"p": [{"numeric": [">", 22]}]}), json!({"p": 22})));
        assert!(m(
            json!({"ip": [{"cidr": "10.0.0.0/8"}]}),
            json!({"ip": "10.1.2.3"})
        ));
    }

    #[test]
    fn or_and_errors() {
        let p = json!({"detail": {"$or": [{"a": ["1"]}, {"b": ["2"]}]}});
        assert!(m(p.clone(), json!({"detail": {"b": "2"}})));
        assert!(!m(p, json!({"detail": {"c": "2"}})));
        for bad in [
            json!({"a": "x"}),
            json!({"a": []}),
            json!({"a": [{"bogus": 1}]}),
            json!({"a": [{"prefix": 1}]}),
            json!({"$or": [{"a": ["1"]}]}),
            json!({"a": [{"numeric": [">"]}]}),
            json!(["x"]),
        ] {
            assert!(EventPattern::parse(&bad).is_err(), "{bad}");
        }
        // CloudFormation allows the pattern as a JSON string.
        assert!(EventPattern::parse(&json!("{\"a\": [\"1\"]}")).is_ok());
    }

    #[test]
    fn envelope_from_record() {
        let e = cloudtrail_envelope(
            &json!({"eventType": "AwsConsoleSignIn", "eventSource": "signin.amazonaws.com"}),
        );
        assert_eq!(e["detail-type"], "AWS Console Sign In via CloudTrail");
        assert_eq!(e["source"], "aws.signin");
    }
}

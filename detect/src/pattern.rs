//! The EventBridge patterns that deliver to the CloudTrail function every
//! event some loaded rule can match, and (nearly) nothing else.
//!
//! Each rule's condition is reduced to a necessary condition over a few
//! always-scalar CloudTrail fields ([`PATTERN_FIELDS`]): alternatives (OR) of
//! per-field constraints (AND). Whatever a rule tests that EventBridge cannot
//! express (regular expressions, CIDR, nulls, negations, other fields) is
//! dropped, which only widens the pattern: never a missed event. The
//! alternatives of all rules are merged, subsumed ones pruned, and packed
//! into patterns under EventBridge's default size limit of 2048 characters
//! (several rules may be needed; each targets the same function).
//!
//! Gaps, by design: EventBridge matches strings case-sensitively while Sigma
//! does not, so patterns use the rule's own spelling (CloudTrail's names are
//! canonical); IAM, STS and Organizations events from global services reach
//! EventBridge in us-east-1 only.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::matcher::Constraint;
use super::sigma::{prune, Need};
use super::Rule;

/// The CloudTrail detail-types the function takes (console sign-in has two
/// documented spellings).
pub const DETAIL_TYPES: [&str; 3] = [
    "AWS API Call via CloudTrail",
    "AWS Console Sign In via CloudTrail",
    "AWS Console Signin via CloudTrail",
];

/// The `source` condition of every pattern: only AWS services can put events
/// whose source starts with `aws.` (PutEvents refuses them), so a custom
/// event that copies a CloudTrail detail-type never matches. CloudTrail's
/// sources are per service (`aws.iam`, `aws.signin`, ...), hence a prefix.
pub const AWS_SOURCE_PREFIX: &str = "aws.";

/// Fields a pattern may constrain: always present as scalars in CloudTrail
/// records, so EventBridge matching on them is exact.
pub const PATTERN_FIELDS: &[&str] = &[
    "eventSource",
    "eventName",
    "eventType",
    "errorCode",
    "userIdentity.type",
];

/// EventBridge's default event pattern size quota (characters).
pub const MAX_PATTERN_CHARS: usize = 2048;

/// Rule state that delivers read-only management events (Get/List/Describe).
pub const STATE_ALL_MANAGEMENT: &str = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS";

/// The derived delivery: patterns and the rule state they need.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// One EventBridge rule per pattern, each under [`MAX_PATTERN_CHARS`].
    pub patterns: Vec<Value>,
    /// Some rule can match read-only events: the EventBridge rules need
    /// [`STATE_ALL_MANAGEMENT`], else `ENABLED`.
    pub read_only: bool,
}

impl Delivery {
    pub fn state(&self) -> &'static str {
        if self.read_only {
            STATE_ALL_MANAGEMENT
        } else {
            "ENABLED"
        }
    }

    /// `{"state": ..., "patterns": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({ "state": self.state(), "patterns": self.patterns })
    }

    /// For people: what to deploy, one compact pattern a line.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# {} EventBridge rule(s) for the CloudTrail function, each with State {}{}\n",
            self.patterns.len(),
            self.state(),
            if self.read_only {
                " (some rules match read-only Get/List/Describe events)"
            } else {
                ""
            }
        );
        for p in &self.patterns {
            out.push_str(&serde_json::to_string(p).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// The patterns as a SAM `Events:` block for the CloudTrail function.
    pub fn sam_events(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.patterns.iter().enumerate() {
            out.push_str(&format!(
                "        CloudTrailRules{n}:\n          Type: EventBridgeRule\n          Properties:\n            State: {state}\n            Pattern: {pattern}\n            RetryPolicy:\n              MaximumRetryAttempts: 185\n              MaximumEventAgeInSeconds: 86400\n            DeadLetterConfig:\n              Arn: !GetAtt DeadLetterQueue.Arn\n",
                n = i + 1,
                state = self.state(),
                pattern = serde_json::to_string(p).unwrap_or_default(),
            ));
        }
        out
    }
}

/// Names of read-only API calls, by AWS convention.
const READ_PREFIXES: &[&str] = &[
    "Get", "List", "Describe", "BatchGet", "Lookup", "Head", "Search", "Scan", "Query", "Select",
    "View", "Check", "Preview", "Estimate", "Decrypt", "Generate",
];

fn is_read_name(name: &str) -> bool {
    READ_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether events matching `need` can be read-only.
fn can_be_read_only(need: &Need) -> bool {
    match need.get("eventName") {
        None => true,
        Some(cs) => cs.iter().any(|c| match c {
            Constraint::Exact(n) => is_read_name(n),
            _ => true,
        }),
    }
}

/// The alternatives all of `rules` need, merged and pruned.
pub fn alternatives<'a>(
    rules: impl IntoIterator<Item = &'a Rule>,
) -> Vec<BTreeMap<String, BTreeSet<Constraint>>> {
    // GuardDuty rules read findings, which their own function receives.
    let mut alts: Vec<Need> = rules
        .into_iter()
        .filter(|r| r.logsource().is_cloudtrail())
        .flat_map(|r| r.need(PATTERN_FIELDS))
        .collect();
    prune(&mut alts);
    // Merge alternatives that differ only in eventName.
    let mut groups: BTreeMap<Need, BTreeSet<Constraint>> = BTreeMap::new();
    let mut rest = Vec::new();
    for mut a in alts {
        match a.remove("eventName") {
            Some(names) => groups.entry(a).or_default().extend(names),
            None => rest.push(a),
        }
    }
    for (mut k, names) in groups {
        k.insert("eventName".into(), names);
        rest.push(k);
    }
    prune(&mut rest);
    rest
}

fn constraint_json(c: &Constraint) -> Value {
    match c {
        Constraint::Exact(s) => json!(s),
        Constraint::Prefix(s) => json!({ "prefix": s }),
        Constraint::Suffix(s) => json!({ "suffix": s }),
        Constraint::Wildcard(w) if w == "*" => json!({ "exists": true }),
        Constraint::Wildcard(w) => json!({ "wildcard": w }),
    }
}

fn insert_path(map: &mut Map<String, Value>, segs: &[&str], leaf: Value) {
    match segs {
        [] => {}
        [last] => {
            map.insert((*last).to_string(), leaf);
        }
        [head, rest @ ..] => {
            let entry = map
                .entry((*head).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(next) = entry {
                insert_path(next, rest, leaf);
            }
        }
    }
}

fn need_json(need: &Need) -> Value {
    let mut root = Map::new();
    for (path, cs) in need {
        let segs: Vec<&str> = path.split('.').collect();
        insert_path(
            &mut root,
            &segs,
            Value::Array(cs.iter().map(constraint_json).collect()),
        );
    }
    Value::Object(root)
}

fn pattern_json(alts: &[Need]) -> Value {
    let mut p = json!({
        "source": [{ "prefix": AWS_SOURCE_PREFIX }],
        "detail-type": DETAIL_TYPES,
    });
    let detail = match alts {
        [] => return p,
        [one] if one.is_empty() => return p,
        [one] => need_json(one),
        many => json!({ "$or": many.iter().map(need_json).collect::<Vec<_>>() }),
    };
    p["detail"] = detail;
    p
}

fn size(alts: &[Need]) -> usize {
    serde_json::to_string(&pattern_json(alts))
        .map(|s| s.len())
        .unwrap_or(usize::MAX)
}

/// Splits an alternative whose eventName list alone is too big for one pattern.
fn split_big(alt: Need) -> Vec<Need> {
    if size(std::slice::from_ref(&alt)) <= MAX_PATTERN_CHARS {
        return vec![alt];
    }
    let Some(names) = alt.get("eventName").filter(|n| n.len() > 1) else {
        return vec![alt]; // Cannot split further; reported by the size check in tests.
    };
    let names: Vec<Constraint> = names.iter().cloned().collect();
    let (a, b) = names.split_at(names.len() / 2);
    [a, b]
        .into_iter()
        .flat_map(|half| {
            let mut n = alt.clone();
            n.insert("eventName".into(), half.iter().cloned().collect());
            split_big(n)
        })
        .collect()
}

/// Derives the delivery for `rules`.
pub fn derive<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Delivery {
    let alts = alternatives(rules);
    let read_only = alts.iter().any(can_be_read_only);
    if alts.iter().any(Need::is_empty) {
        return Delivery {
            patterns: vec![pattern_json(&[])],
            read_only,
        };
    }
    let mut patterns = Vec::new();
    let mut current: Vec<Need> = Vec::new();
    for alt in alts.into_iter().flat_map(split_big) {
        current.push(alt);
        if current.len() > 1 && size(&current) > MAX_PATTERN_CHARS {
            let last = current.pop().unwrap_or_default();
            patterns.push(pattern_json(&current));
            current = vec![last];
        }
    }
    if !current.is_empty() {
        patterns.push(pattern_json(&current));
    }
    Delivery {
        patterns,
        read_only,
    }
}

/// A record that satisfies `need` (for checking that a template's patterns
/// cover the derived ones).
pub fn witness(need: &BTreeMap<String, BTreeSet<Constraint>>) -> Value {
    let mut record = json!({
        "eventVersion": "1.09",
        "eventType": "AwsApiCall",
        "eventSource": "witness.amazonaws.com",
        "eventName": "Witness",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "readOnly": false,
    });
    for (path, cs) in need {
        let Some(c) = cs.iter().next() else { continue };
        let value = match c {
            Constraint::Exact(s) => s.clone(),
            Constraint::Prefix(s) => format!("{s}Witness"),
            Constraint::Suffix(s) => format!("Witness{s}"),
            Constraint::Wildcard(w) => {
                let mut out = String::new();
                let mut it = w.chars();
                while let Some(ch) = it.next() {
                    match ch {
                        '\\' => out.extend(it.next()),
                        '*' => {}
                        c => out.push(c),
                    }
                }
                out
            }
        };
        let segs: Vec<&str> = path.split('.').collect();
        let mut cur = &mut record;
        for s in &segs[..segs.len() - 1] {
            if !cur.get(*s).is_some_and(Value::is_object) {
                cur[*s] = json!({});
            }
            cur = &mut cur[*s];
        }
        cur[segs.last().copied().unwrap_or_default()] = json!(value);
    }
    if need.get("eventName").is_some_and(|cs| {
        cs.iter()
            .any(|c| matches!(c, Constraint::Exact(n) if is_read_name(n)))
    }) {
        record["readOnly"] = json!(true);
    }
    record
}

// ------------------------------------------------------------------ templates

/// Why a template's EventBridge rules could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template is not valid YAML: {0}")]
    Yaml(String),
    #[error("template resource {resource}: {source}")]
    Pattern {
        resource: String,
        #[source]
        source: super::eventbridge::PatternError,
    },
}

/// An EventBridge rule of a CloudFormation/SAM template that takes
/// CloudTrail events.
#[derive(Debug, Clone)]
pub struct TemplateRule {
    /// `Resource` or `Function.Event`.
    pub name: String,
    /// `ENABLED` when the template does not say.
    pub state: String,
    pub pattern: super::eventbridge::EventPattern,
    /// The pattern as written, in JSON.
    pub raw: Value,
}

impl TemplateRule {
    /// Whether this rule delivers `event` (an EventBridge event): the
    /// pattern matches and, for read-only events, the state allows them.
    pub fn delivers(&self, event: &Value) -> bool {
        let read_only = event
            .pointer("/detail/readOnly")
            .is_some_and(|v| v == &json!(true) || v == &json!("true"));
        let state_ok = match self.state.as_str() {
            STATE_ALL_MANAGEMENT => true,
            "ENABLED" => !read_only,
            _ => false,
        };
        state_ok && self.pattern.matches(event)
    }
}

fn takes_cloudtrail(pattern: &Value) -> bool {
    let pattern = match pattern {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        v => v.clone(),
    };
    pattern
        .get("detail-type")
        .and_then(Value::as_array)
        .is_some_and(|dts| {
            dts.iter()
                .any(|d| d.as_str().is_some_and(|d| DETAIL_TYPES.contains(&d)))
        })
}

/// The CloudTrail EventBridge rules of a template: `AWS::Events::Rule`
/// resources and SAM function events of type `EventBridgeRule` /
/// `CloudWatchEvent` whose pattern names a CloudTrail detail-type.
pub fn template_rules(template: &str) -> Result<Vec<TemplateRule>, TemplateError> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(template).map_err(|e| TemplateError::Yaml(e.to_string()))?;
    let to_json = |v: &serde_yaml::Value| serde_json::to_value(v).unwrap_or(Value::Null);
    let mut out = Vec::new();
    let Some(resources) = doc.get("Resources").and_then(serde_yaml::Value::as_mapping) else {
        return Ok(out);
    };
    let mut push =
        |name: String, pattern: Option<&serde_yaml::Value>, state: Option<&serde_yaml::Value>| {
            let Some(raw) = pattern.map(to_json) else {
                return Ok(());
            };
            if !takes_cloudtrail(&raw) {
                return Ok(());
            }
            let pattern = super::eventbridge::EventPattern::parse(&raw).map_err(|source| {
                TemplateError::Pattern {
                    resource: name.clone(),
                    source,
                }
            })?;
            let state = state
                .and_then(serde_yaml::Value::as_str)
                .unwrap_or("ENABLED")
                .to_string();
            out.push(TemplateRule {
                name,
                state,
                pattern,
                raw,
            });
            Ok(())
        };
    for (key, res) in resources {
        let rname = key.as_str().unwrap_or_default().to_string();
        let ty = res
            .get("Type")
            .and_then(serde_yaml::Value::as_str)
            .unwrap_or_default();
        let props = res.get("Properties");
        match ty {
            "AWS::Events::Rule" => {
                let props = props.cloned().unwrap_or_default();
                push(rname, props.get("EventPattern"), props.get("State"))?;
            }
            "AWS::Serverless::Function" => {
                let Some(events) = props
                    .and_then(|p| p.get("Events"))
                    .and_then(serde_yaml::Value::as_mapping)
                else {
                    continue;
                };
                for (ename, ev) in events {
                    let ety = ev
                        .get("Type")
                        .and_then(serde_yaml::Value::as_str)
                        .unwrap_or_default();
                    if ety != "EventBridgeRule" && ety != "CloudWatchEvent" {
                        continue;
                    }
                    let p = ev.get("Properties").cloned().unwrap_or_default();
                    push(
                        format!("{rname}.{}", ename.as_str().unwrap_or_default()),
                        p.get("Pattern"),
                        p.get("State"),
                    )?;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventbridge::{cloudtrail_envelope, EventPattern};

    fn rule(yaml: &str) -> Rule {
        Rule::parse("t.yml", yaml).unwrap()
    }

    const HEAD: &str = "title: t\nlogsource: {product: aws, service: cloudtrail}\nlevel: high\n";

    #[test]
    fn needs_follow_the_condition() {
        let r = rule(&format!(
            "{HEAD}detection:\n  sel:\n    eventSource: ssm.amazonaws.com\n    eventName: SendCommand\n  ok:\n    errorCode: null\n  condition: sel and ok\n"
        ));
        let d = derive([&r]);
        assert_eq!(d.patterns.len(), 1);
        assert_eq!(
            d.patterns[0]["detail"],
            json!({"eventName": ["SendCommand"], "eventSource": ["ssm.amazonaws.com"]})
        );
        assert!(!d.read_only);
        // `not` and regexes widen: no constraint, every CloudTrail event.
        let r = rule(&format!(
            "{HEAD}detection:\n  sel:\n    userIdentity.arn|re: 'x'\n  condition: sel\n"
        ));
        let d = derive([&r]);
        assert!(d.patterns[0].get("detail").is_none());
        assert!(d.read_only);
    }

    #[test]
    fn alternatives_merge_by_source_and_split_by_size() {
        let names: Vec<String> = (0..300)
            .map(|i| format!("DeleteSomethingNumber{i}"))
            .collect();
        let r = rule(&format!(
            "{HEAD}detection:\n  sel:\n    eventSource: x.amazonaws.com\n    eventName: [{}]\n  e:\n    errorCode|startswith: AccessDenied\n  condition: sel or e\n",
            names.join(", ")
        ));
        let d = derive([&r]);
        assert!(d.patterns.len() > 1);
        for p in &d.patterns {
            assert!(serde_json::to_string(p).unwrap().len() <= MAX_PATTERN_CHARS);
        }
        let compiled: Vec<EventPattern> = d
            .patterns
            .iter()
            .map(|p| EventPattern::parse(p).unwrap())
            .collect();
        for n in &names {
            let ev =
                cloudtrail_envelope(&json!({"eventSource": "x.amazonaws.com", "eventName": n}));
            assert!(compiled.iter().any(|p| p.matches(&ev)), "{n}");
        }
        let ev = cloudtrail_envelope(
            &json!({"eventSource": "y.amazonaws.com", "eventName": "Get", "errorCode": "AccessDenied"}),
        );
        assert!(compiled.iter().any(|p| p.matches(&ev)));
        let ev = cloudtrail_envelope(
            &json!({"eventSource": "y.amazonaws.com", "eventName": "DeleteSomethingNumber1"}),
        );
        assert!(!compiled.iter().any(|p| p.matches(&ev)));
    }

    #[test]
    fn template_rules_are_found_with_state() {
        let t = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Ct:
          Type: EventBridgeRule
          Properties:
            State: ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS
            Pattern:
              detail-type: [AWS API Call via CloudTrail]
              detail: {eventName: [GetSecretValue]}
        Gd:
          Type: EventBridgeRule
          Properties:
            Pattern: {source: [aws.guardduty]}
  Raw:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: '{"detail-type": ["AWS API Call via CloudTrail"], "detail": {"eventName": ["StopLogging"]}}'
      Targets: [{Arn: !GetAtt Fn.Arn, Id: fn}]
"#;
        let rules = template_rules(t).unwrap();
        assert_eq!(rules.len(), 2);
        let get = cloudtrail_envelope(&json!({"eventName": "GetSecretValue", "readOnly": true}));
        let stop_ro = cloudtrail_envelope(&json!({"eventName": "StopLogging", "readOnly": true}));
        let stop = cloudtrail_envelope(&json!({"eventName": "StopLogging", "readOnly": false}));
        assert!(rules.iter().any(|r| r.delivers(&get)));
        assert!(
            !rules.iter().any(|r| r.delivers(&stop_ro)),
            "ENABLED takes no read-only events"
        );
        assert!(rules.iter().any(|r| r.delivers(&stop)));
    }

    #[test]
    fn derived_patterns_take_only_aws_sources() {
        let r = rule(&format!(
            "{HEAD}detection:\n  s:\n    eventSource: cloudtrail.amazonaws.com\n    eventName: StopLogging\n  condition: s\n"
        ));
        let d = derive([&r]);
        let pattern = EventPattern::parse(&d.patterns[0]).unwrap();
        let real = cloudtrail_envelope(
            &json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging"}),
        );
        assert_eq!(real["source"], "aws.cloudtrail");
        assert!(pattern.matches(&real));
        let mut forged = real.clone();
        forged["source"] = json!("attacker.custom");
        assert!(!pattern.matches(&forged), "{}", d.patterns[0]);
    }
}

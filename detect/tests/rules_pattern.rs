//! The EventBridge patterns that feed the CloudTrail function: derived from
//! the rules, and the ones in `template.yaml`, must deliver every event some
//! rule matches (a rule whose events never arrive is silently blind).

use std::path::Path;

use serde_json::{json, Value};
use vigil_detect::eventbridge::{cloudtrail_envelope, EventPattern};
use vigil_detect::pattern::{self, TemplateRule, MAX_PATTERN_CHARS, STATE_ALL_MANAGEMENT};
use vigil_detect::{Rule, RuleSet, RuleSource};

/// Every bundled rule's matching test records, with the rule's origin.
/// The matching test records of the CloudTrail rules (GuardDuty rules
/// read findings, which the guardduty function receives).
fn matching_records() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for src in vigil_detect::correlation::check::flatten(&RuleSource::bundled()) {
        let p = Rule::parse_full(&src.origin, &src.text).unwrap();
        if !p.rule.logsource().is_cloudtrail() {
            continue;
        }
        for r in p.tests.map(|t| t.matching).unwrap_or_default() {
            out.push((src.origin.clone(), r));
        }
    }
    assert!(out.len() > 60);
    out
}

fn derived_rules(delivery: &pattern::Delivery) -> Vec<TemplateRule> {
    delivery
        .patterns
        .iter()
        .enumerate()
        .map(|(i, p)| TemplateRule {
            name: format!("derived{i}"),
            state: delivery.state().to_string(),
            pattern: EventPattern::parse(p).unwrap(),
            raw: p.clone(),
        })
        .collect()
}

#[test]
fn derived_patterns_fit_and_deliver_every_rule_event() {
    let set = RuleSet::bundled().unwrap();
    let delivery = pattern::derive(set.rules());
    assert!(delivery.read_only, "bundled rules read Get/Describe calls");
    assert_eq!(delivery.state(), STATE_ALL_MANAGEMENT);
    for p in &delivery.patterns {
        let text = serde_json::to_string(p).unwrap();
        assert!(text.len() <= MAX_PATTERN_CHARS, "{} chars", text.len());
        assert!(
            p.get("detail").is_some(),
            "a pattern without detail takes every event"
        );
    }
    let rules = derived_rules(&delivery);
    let mut missed = Vec::new();
    for (origin, record) in matching_records() {
        let event = cloudtrail_envelope(&record);
        if !rules.iter().any(|r| r.delivers(&event)) {
            missed.push(format!("{origin}: {}", record["eventName"]));
        }
    }
    assert!(
        missed.is_empty(),
        "events no pattern delivers:\n{}",
        missed.join("\n")
    );
}

#[test]
fn derived_patterns_leave_out_routine_calls() {
    let set = RuleSet::bundled().unwrap();
    let rules = derived_rules(&pattern::derive(set.rules()));
    for (source, name, ro) in [
        ("ec2.amazonaws.com", "DescribeInstances", true),
        ("s3.amazonaws.com", "ListBuckets", true),
        ("dynamodb.amazonaws.com", "CreateTable", false),
        ("sts.amazonaws.com", "AssumeRole", true),
        ("lambda.amazonaws.com", "Invoke", false),
    ] {
        let event = cloudtrail_envelope(&json!({
            "eventVersion": "1.09", "eventSource": source, "eventName": name, "readOnly": ro,
            "eventType": "AwsApiCall", "userIdentity": {"type": "AssumedRole"},
            "awsRegion": "us-east-1", "eventID": "e"
        }));
        assert!(
            !rules.iter().any(|r| r.delivers(&event)),
            "{name} would be delivered for nothing"
        );
    }
}

#[test]
fn sigmahq_rules_widen_the_pattern_when_they_must() {
    // SigmaHQ's IMDS rule is a regex on the ARN of any call: only a pattern
    // without `detail` can deliver its events, and derive() must say so.
    let text = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    userIdentity.arn|re: 'aws:ec2'\n  condition: s\n";
    let rule = Rule::parse("imds.yml", text).unwrap();
    let d = pattern::derive([&rule]);
    assert_eq!(d.patterns.len(), 1);
    assert!(d.patterns[0].get("detail").is_none());
    assert!(d.read_only);
}

fn template_path() -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("note: {} not found: template checks skipped", p.display());
        None
    }
}

#[test]
fn the_template_delivers_every_event_a_rule_can_match() {
    let Some(path) = template_path() else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let rules = pattern::template_rules(&text).unwrap();
    assert!(
        !rules.is_empty(),
        "template.yaml has no EventBridge rule for CloudTrail events: add the output of `vigil rules pattern --sam`"
    );
    for r in &rules {
        let dts = r.raw["detail-type"].as_array().cloned().unwrap_or_default();
        for dt in pattern::DETAIL_TYPES {
            assert!(
                dts.contains(&json!(dt)),
                "{}: detail-type {dt} missing",
                r.name
            );
        }
    }

    // (a) The template covers the derived pattern: a record satisfying each
    // derived alternative is delivered.
    let set = RuleSet::bundled().unwrap();
    let mut uncovered = Vec::new();
    for need in pattern::alternatives(set.rules()) {
        let event = cloudtrail_envelope(&pattern::witness(&need));
        if !rules.iter().any(|r| r.delivers(&event)) {
            uncovered.push(format!("{need:?}"));
        }
    }
    assert!(
        uncovered.is_empty(),
        "template.yaml does not cover (regenerate with `vigil rules pattern --sam`):\n{}",
        uncovered.join("\n")
    );
    // ... and is exactly what the rules need, no more.
    let derived = pattern::derive(set.rules());
    let mut in_template: Vec<String> = rules.iter().map(|r| r.raw.to_string()).collect();
    let mut wanted: Vec<String> = derived.patterns.iter().map(Value::to_string).collect();
    in_template.sort();
    wanted.sort();
    assert_eq!(
        in_template, wanted,
        "template.yaml's CloudTrail patterns differ from `vigil rules pattern`"
    );
    for r in &rules {
        assert_eq!(r.state, derived.state(), "{}: rule state", r.name);
    }

    // (b) Every rule's own matching records reach the function.
    let mut missed = Vec::new();
    for (origin, record) in matching_records() {
        let event = cloudtrail_envelope(&record);
        if !rules.iter().any(|r| r.delivers(&event)) {
            missed.push(format!("{origin}: {}", record["eventName"]));
        }
    }
    assert!(
        missed.is_empty(),
        "rules whose events template.yaml never delivers:\n{}",
        missed.join("\n")
    );
}

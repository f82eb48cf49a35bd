//! Fuzzing every parser with property tests (stable Rust: cargo-fuzz needs
//! nightly). No input may panic: arbitrary bytes, arbitrary JSON, and real
//! samples with one value anywhere in them replaced by arbitrary JSON, which
//! reaches far deeper into each parser than random documents do.
//!
//! `cargo test` runs a short pass (256 cases per target, bounded sizes).
//! Long runs: `PROPTEST_CASES=100000 cargo test -p vigil --release --test fuzz`
//! (see docs/operations.md (Fuzzing)). Every test is named `fuzz_*`.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Map, Value};
use vigil::dedup::{Dedup, DedupSettings, Suppressions};
use vigil::detect::glob::{self, Syntax};
use vigil::detect::{Detector, RuleMeta, RuleSet, RuleSource};
use vigil::model::{Finding, Severity};
use vigil::render::{self, Alert};
use vigil::sinks::MemorySink;
use vigil::sources::log_file::input;
use vigil::sources::{self, Envelope, SourceEvent};
use vigil::{Config, Pipeline};

#[path = "../../tests/src/samples.rs"]
mod samples;

const GUARDDUTY: &[&str] = &[
    include_str!("../../examples/events/guardduty/attack-sequence-s3-critical.json"),
    include_str!("../../examples/events/guardduty/ec2-c2-dns-high.json"),
    include_str!("../../examples/events/guardduty/eks-anonymous-access-high.json"),
    include_str!("../../examples/events/guardduty/iam-tor-caller-medium.json"),
    include_str!("../../examples/events/guardduty/runtime-crypto-miner-high.json"),
    include_str!("../../examples/events/guardduty/s3-exfiltration-high.json"),
];

const CLOUDTRAIL: &str = r#"{"version":"0","id":"ct-1","detail-type":"AWS API Call via CloudTrail","source":"aws.cloudtrail",
 "account":"111122223333","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],
 "detail":{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA:alice","arn":"arn:aws:sts::111122223333:assumed-role/Admin/alice",
 "accountId":"111122223333","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/Admin"},
 "attributes":{"mfaAuthenticated":"false","creationDate":"2026-01-01T00:00:00Z"}}},"eventTime":"2026-01-01T00:00:00Z",
 "eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7",
 "userAgent":"aws-cli/2","requestParameters":{"name":"arn:aws:cloudtrail:us-east-1:111122223333:trail/main"},"responseElements":null,
 "eventID":"e-1","readOnly":false,"eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#;

const SECURITY_HUB: &str = r#"{"version":"0","id":"sh-1","detail-type":"Security Hub Findings - Imported","source":"aws.securityhub",
 "account":"111122223333","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],
 "detail":{"findings":[{"SchemaVersion":"2018-10-08","Id":"arn:aws:securityhub:us-east-1:111122223333:finding/1",
 "ProductArn":"arn:aws:securityhub:us-east-1::product/aws/inspector","ProductName":"Inspector","CompanyName":"Amazon",
 "GeneratorId":"g","AwsAccountId":"111122223333","Region":"us-east-1","Types":["Software and Configuration Checks/Vulnerabilities/CVE"],
 "CreatedAt":"2026-01-01T00:00:00Z","UpdatedAt":"2026-01-01T00:00:00Z","Severity":{"Label":"HIGH","Normalized":70},
 "Title":"CVE-2026-0001 in openssl","Description":"d","Resources":[{"Type":"AwsEc2Instance","Id":"arn:aws:ec2:us-east-1:111122223333:instance/i-1","Region":"us-east-1"}],
 "Workflow":{"Status":"NEW"},"RecordState":"ACTIVE"}]}}"#;

const MACIE: &str = r#"{"version":"0","id":"mc-1","detail-type":"Macie Finding","source":"aws.macie","account":"111122223333",
 "time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"id":"m1","type":"SensitiveData:S3Object/Personal",
 "title":"PII in object","description":"d","severity":{"score":3,"description":"High"},"accountId":"111122223333","region":"us-east-1",
 "resourcesAffected":{"s3Bucket":{"name":"b"},"s3Object":{"key":"k"}},"createdAt":"2026-01-01T00:00:00Z"}}"#;

fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("seed is JSON")
}

/// Seeds: the project's samples plus, where present, a slice of the public
/// samples beside the project.
fn seeds() -> Vec<Value> {
    let mut out: Vec<Value> = GUARDDUTY.iter().map(|s| parse(s)).collect();
    out.extend([parse(CLOUDTRAIL), parse(SECURITY_HUB), parse(MACIE)]);
    for sub in [
        "guardduty",
        "cloudtrail",
        "securityhub",
        "other-eventbridge",
    ] {
        let Some(dir) = samples::shared_events(sub) else {
            continue;
        };
        let files = input::files(&[dir]).expect("list samples");
        for f in files.iter().take(25) {
            if let Ok(events) = input::read_events(f) {
                out.extend(events.into_iter().take(2));
            }
        }
    }
    out
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        // Strings that look like what parsers look for, and anything else.
        prop_oneof![
            Just("arn:aws:iam::111122223333:root".to_string()),
            Just("2026-01-01T00:00:00Z".to_string()),
            Just("GuardDuty Finding".to_string()),
            Just("aws.guardduty".to_string()),
            Just("AWS API Call via CloudTrail".to_string()),
            Just("Security Hub Findings - Imported".to_string()),
            Just("AttackSequence:IAM/CompromisedCredentials".to_string()),
            Just("10.0.0.1".to_string()),
            Just("::1".to_string()),
            "\\PC{0,40}",
            ".{0,8}",
        ]
        .prop_map(Value::String),
    ]
}

/// Keys parsers read, mixed with arbitrary ones.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "type",
            "severity",
            "detail",
            "detail-type",
            "source",
            "account",
            "region",
            "time",
            "resource",
            "service",
            "accountId",
            "findings",
            "Records",
            "eventName",
            "eventSource",
            "userIdentity",
            "Severity",
            "Resources",
            "Id",
            "count",
            "additionalInfo",
            "sample",
            "action",
            "title",
            "arn",
        ])
        .prop_map(str::to_string),
        "\\PC{0,12}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Every JSON pointer into `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

/// A real sample with one or more values replaced by arbitrary JSON.
fn arb_mutated() -> impl Strategy<Value = Value> {
    let seeds = seeds();
    (
        prop::sample::select(seeds),
        prop::collection::vec((any::<prop::sample::Index>(), arb_json()), 1..4),
    )
        .prop_map(|(mut event, edits)| {
            for (at, replacement) in edits {
                let mut all = Vec::new();
                pointers(&event, String::new(), &mut all);
                if all.is_empty() {
                    event = replacement;
                    continue;
                }
                let p = &all[at.index(all.len())];
                if let Some(slot) = event.pointer_mut(p) {
                    *slot = replacement;
                }
            }
            event
        })
}

fn arb_event() -> impl Strategy<Value = Value> {
    prop_oneof![3 => arb_mutated(), 1 => arb_json()]
}

fn rule_meta() -> RuleMeta {
    RuleMeta {
        id: "fuzz-rule".into(),
        title: "Fuzz rule".into(),
        description: "d".into(),
        severity: Severity::High,
        tactics: Vec::new(),
        techniques: Vec::new(),
        false_positives: Vec::new(),
        references: Vec::new(),
        kind: vigil::detect::RuleKind::Attack,
    }
}

/// Runs whichever parser owns `event` and returns its findings.
fn findings_of(event: &Value) -> Vec<Finding> {
    let Ok(parsed) = sources::classify(event) else {
        return Vec::new();
    };
    match parsed {
        SourceEvent::GuardDuty { finding, envelope } => {
            sources::guardduty::parse(finding, envelope.as_ref())
                .into_iter()
                .collect()
        }
        SourceEvent::CloudTrail { record, envelope } => {
            vec![sources::cloudtrail::finding(
                record,
                envelope.as_ref(),
                &rule_meta(),
            )]
        }
        SourceEvent::SecurityHub { detail, envelope } => {
            sources::securityhub::parse(detail, &envelope).unwrap_or_default()
        }
        SourceEvent::Macie { finding, envelope } => sources::macie::parse(finding, Some(&envelope))
            .into_iter()
            .collect(),
        direct => sources::findings(direct, None)
            .map(|p| p.findings)
            .unwrap_or_default(),
    }
}

/// What every rendered alert must be, whatever the finding holds.
fn check_rendering(f: &Finding) -> Result<(), TestCaseError> {
    let alert = Alert {
        suppressed_repeats: 3,
        ..Alert::new(f)
    };
    let subject = render::subject(f);
    prop_assert!(subject.is_ascii(), "subject not ASCII: {subject:?}");
    prop_assert!(subject.len() <= 99, "subject too long: {}", subject.len());
    prop_assert!(!subject.chars().any(|c| c.is_control()), "{subject:?}");
    let msg = render::sns_message(&alert);
    prop_assert!(msg.len() < 256 * 1024, "message {} bytes", msg.len());
    let parsed: Value =
        serde_json::from_str(&msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for key in ["default", "email", "sqs", "lambda", "https"] {
        let Some(inner) = parsed[key].as_str() else {
            return Err(TestCaseError::fail(format!("{key} missing")));
        };
        if key != "email" {
            prop_assert!(
                serde_json::from_str::<Value>(inner).is_ok(),
                "{key} not JSON"
            );
        }
    }
    for (name, value) in render::attributes(f) {
        prop_assert!(!name.is_empty());
        let _ = value;
    }
    Ok(())
}

fn ruleset() -> &'static Arc<RuleSet> {
    static RULES: std::sync::OnceLock<Arc<RuleSet>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| Arc::new(RuleSet::bundled().expect("bundled rules load")))
}

proptest! {
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    /// GuardDuty, CloudTrail (classify + finding), Security Hub and Macie
    /// parsers on mutated samples and arbitrary JSON; what they produce renders.
    #[test]
    fn fuzz_sources_never_panic_and_render_within_sns_limits(event in arb_event()) {
        for f in findings_of(&event) {
            check_rendering(&f)?;
        }
    }

    /// The parsers called directly on arbitrary values, bypassing classify.
    #[test]
    fn fuzz_parsers_take_any_value(v in arb_json()) {
        let envelope = Envelope::read(&v).unwrap_or_default();
        let _ = sources::guardduty::parse(&v, Some(&envelope));
        let _ = sources::guardduty::parse(&v, None);
        let _ = sources::cloudtrail::finding(&v, Some(&envelope), &rule_meta());
        let _ = sources::cloudtrail::actor(&v);
        let _ = sources::securityhub::parse(&v, &envelope);
        let _ = sources::securityhub::parse_asff(&v, None);
        let _ = sources::securityhub::parse_ocsf(&v, None);
        let _ = sources::macie::parse(&v, None);
    }

    /// CloudTrail log files and replay input: arbitrary bytes.
    #[test]
    fn fuzz_input_parse_events_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = input::parse_events(&bytes);
    }

    /// The same, with bytes that are almost JSON lines or a log file.
    #[test]
    fn fuzz_input_parse_events_takes_broken_json(
        event in arb_event(),
        cut in any::<prop::sample::Index>(),
        wrap in 0u8..3,
    ) {
        let text = match wrap {
            0 => format!("{{\"Records\":[{event}]}}"),
            1 => format!("{event}\n{event}\n"),
            _ => event.to_string(),
        };
        let bytes = text.as_bytes();
        let end = cut.index(bytes.len() + 1);
        let _ = input::parse_events(&bytes[..end]);
        let _ = input::parse_events(bytes);
    }

    /// Detection: every bundled rule over mutated and arbitrary records.
    #[test]
    fn fuzz_detection_takes_any_record(event in arb_event()) {
        let record = event.get("detail").unwrap_or(&event);
        let mut hits = Vec::new();
        ruleset().detect(record, &mut hits);
        let _ = ruleset().matching(record);
    }

    /// Sigma rule loading: arbitrary text, and bundled rules with bytes cut,
    /// duplicated or replaced.
    #[test]
    fn fuzz_sigma_rule_loading_takes_any_text(
        text in "\\PC{0,400}",
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        len in 0usize..64,
        insert in "\\PC{0,16}",
    ) {
        let _ = vigil::detect::Rule::parse("fuzz", &text);
        let bundled = RuleSource::bundled();
        if !bundled.is_empty() {
            let src = &bundled[pick.index(bundled.len())].text;
            let chars: Vec<char> = src.chars().collect();
            let start = at.index(chars.len() + 1);
            let end = (start + len).min(chars.len());
            let mutated: String = chars[..start].iter().chain(insert.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect();
            let _ = vigil::detect::Rule::parse("fuzz", &mutated);
            let _ = RuleSet::strict(&[RuleSource { origin: "fuzz".into(), text: mutated.into() }]);
        }
    }

    /// The whole pipeline, dedup included, on anything an event could be.
    #[test]
    fn fuzz_pipeline_processes_any_event(events in prop::collection::vec(arb_event(), 1..4)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let settings = DedupSettings { storm_threshold: 2, ..DedupSettings::default() };
        let config = Config { min_severity: Severity::Informational, alert_samples: true, ..Config::default() };
        let pipeline = Pipeline::builder(&config)
            .detector(ruleset().clone())
            .sink(Box::new(MemorySink::new()))
            .dedup(Dedup::in_memory(&settings))
            .build();
        rt.block_on(async {
            for e in &events {
                let _ = pipeline.process_event(e).await;
            }
            pipeline.flush_storms().await;
        });
    }

    /// Suppression rules: arbitrary documents never panic; a glob of `*`
    /// matches everything and a literal matches itself.
    #[test]
    fn fuzz_suppression_rules_take_any_text(text in "\\PC{0,300}", s in "\\PC{0,40}", p in "[a-z*?]{0,12}") {
        let _ = Suppressions::parse(&text, "fuzz", 0);
        prop_assert!(glob::matches("*", &s, Syntax::SHELL));
        prop_assert!(glob::matches(
            &s.replace(['*', '?'], ""),
            &s.replace(['*', '?'], ""),
            Syntax::SHELL
        ));
        let _ = glob::matches(&p, &s, Syntax::SHELL);
    }
}

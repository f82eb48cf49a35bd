//! The real CloudTrail samples in `../shared/events/` (required under CI,
//! where their absence fails these tests; a fresh clone may lack them, and
//! then these tests say so and pass) through the rules: read and classified
//! by Vigil's sources, and through the pipeline.
//! The rule-only SigmaHQ tests are in `detect/tests/rules_sigmahq.rs`.

use serde_json::{json, Value};
use vigil::detect::{Detector, Rule, RuleSet, RuleSource};
use vigil::model::Severity;
use vigil::sources::log_file::input;
use vigil::sources::{classify, SourceEvent};

#[path = "../../tests/src/samples.rs"]
mod samples;
use samples::shared_events;

fn sigma_sources(sub: &str) -> Option<Vec<RuleSource>> {
    let dir = shared_events(&format!("sigma/{sub}"))?;
    let sources = RuleSource::dir(&dir).expect("read the SigmaHQ folder");
    assert!(!sources.is_empty(), "{} holds no rules", dir.display());
    Some(sources)
}

/// Every CloudTrail record in the sample folders (EventBridge events, bare
/// records and `{"Records": [...]}` log files).
fn sample_records() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for sub in ["cloudtrail", "cloudtrail-wrapped", "cloudtrail-logs"] {
        let Some(dir) = shared_events(sub) else {
            continue;
        };
        for file in input::files(&[dir]).expect("list samples") {
            for event in input::read_events(&file).expect("read sample") {
                if let Ok(SourceEvent::CloudTrail { record, .. }) = classify(&event) {
                    out.push((file.display().to_string(), record.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn every_sigmahq_cloudtrail_rule_loads_and_evaluates() {
    let Some(sources) = sigma_sources("aws_cloudtrail") else {
        return;
    };
    let records = sample_records();
    let mut failures = Vec::new();
    for src in &sources {
        match Rule::parse(&src.origin, &src.text) {
            Ok(rule) => {
                assert!(!rule.meta().title.is_empty());
                for (_, r) in &records {
                    rule.matches(r);
                }
                rule.matches(&json!({}));
                rule.matches(&json!(null));
                rule.matches(&json!([1, 2]));
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "SigmaHQ rules that do not load:\n{}",
        failures.join("\n")
    );
    let set = RuleSet::strict(&sources).expect("the whole folder compiles as one set");
    assert_eq!(set.rule_count(), sources.len());
}

#[test]
fn real_cloudtrail_samples_run_through_every_rule_without_panics() {
    let records = sample_records();
    if records.is_empty() {
        return;
    }
    let mut sources = RuleSource::bundled();
    if let Some(sigma) = sigma_sources("aws_cloudtrail") {
        sources.extend(sigma);
    }
    let set = RuleSet::strict(&sources).unwrap();
    let mut total = 0;
    for (file, record) in &records {
        let mut hits = Vec::new();
        set.detect(record, &mut hits);
        total += hits.len();
        // The index must agree with evaluating every rule.
        let mut a: Vec<&str> = set.matching(record).iter().map(|r| r.id()).collect();
        let mut b: Vec<&str> = set
            .matching_unindexed(record)
            .iter()
            .map(|r| r.id())
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{file}");
    }
    // The samples include StopConfigurationRecorder, DeleteDetector,
    // ScheduleKeyDeletion and UpdateTrail: real attacks on logging.
    assert!(total >= 4, "only {total} detections on the samples");
}

fn fired_at_or_above(set: &RuleSet, record: &Value, min: Severity) -> Vec<String> {
    let mut hits = Vec::new();
    set.detect(record, &mut hits);
    hits.iter()
        .filter(|m| m.severity >= min)
        .map(|m| format!("{} ({})", m.title, m.severity))
        .collect()
}

#[test]
fn benign_activity_raises_nothing_at_medium_or_above() {
    let set = RuleSet::bundled().unwrap();
    let describe = json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:deploy",
            "arn": "arn:aws:sts::111122223333:assumed-role/app-deployer/deploy",
            "accountId": "111122223333",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/app-deployer", "userName": "app-deployer"},
                "attributes": {"creationDate": "2026-03-03T10:00:00Z", "mfaAuthenticated": "false"}}},
        "eventTime": "2026-03-03T10:05:00Z", "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances", "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.3.17", "userAgent": "aws-sdk-go-v2/1.30.0",
        "requestParameters": {"instancesSet": {}, "filterSet": {}}, "responseElements": null,
        "eventID": "0b8c5d7e-3f1a-4a6b-9c2d-1e0f7a8b9c0d", "readOnly": true,
        "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": "111122223333", "eventCategory": "Management"
    });
    assert_eq!(
        fired_at_or_above(&set, &describe, Severity::Medium),
        Vec::<String>::new()
    );
    if let Some(dir) = shared_events("other-eventbridge") {
        for file in input::files(&[dir]).unwrap() {
            for event in input::read_events(&file).unwrap() {
                let record = match classify(&event) {
                    Ok(SourceEvent::CloudTrail { record, .. }) => record.clone(),
                    _ => event.get("detail").cloned().unwrap_or(event.clone()),
                };
                let fired = fired_at_or_above(&set, &record, Severity::Medium);
                assert!(fired.is_empty(), "{}: {fired:?}", file.display());
            }
        }
    }
}

#[tokio::test]
async fn real_samples_become_findings_through_the_pipeline() {
    use std::sync::Arc;
    use vigil::sinks::MemorySink;
    let mut events = Vec::new();
    for sub in ["cloudtrail", "cloudtrail-wrapped", "cloudtrail-logs"] {
        if let Some(dir) = shared_events(sub) {
            for file in input::files(&[dir]).unwrap() {
                events.extend(input::read_events(&file).unwrap());
            }
        }
    }
    if events.is_empty() {
        return;
    }
    let sink = MemorySink::new();
    let pipeline = vigil::Pipeline::builder(&vigil::Config::default())
        .detector(Arc::new(RuleSet::bundled().unwrap()))
        .sink(Box::new(sink.clone()))
        .build();
    let mut findings = 0;
    for event in &events {
        let Ok(SourceEvent::CloudTrail { .. }) = classify(event) else {
            continue;
        };
        let report = pipeline
            .process_event(event)
            .await
            .expect("a CloudTrail sample");
        for p in &report.findings {
            let f = &p.finding;
            assert!(f.rule.is_some() && !f.title.is_empty(), "{f:?}");
            assert!(!f.tactics.is_empty(), "{}", f.title);
        }
        findings += report.findings.len();
    }
    // DeleteDetector, StopConfigurationRecorder, ScheduleKeyDeletion,
    // DisableKey and UpdateTrail samples are in the set.
    assert!(findings >= 5, "{findings} findings");
    assert!(sink
        .sent()
        .iter()
        .any(|a| a.subject.contains("GuardDuty detector deleted")));
}

/// The project's own StopLogging sample (EventBridge shape).
fn stop_logging_event() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/events/cloudtrail/cloudtrail-stop-logging.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_failed_call_is_an_attempt_at_low_and_does_not_alert() {
    use std::sync::Arc;
    use vigil::pipeline::Decision;
    use vigil::sinks::MemorySink;
    let sink = MemorySink::new();
    let pipeline = vigil::Pipeline::builder(&vigil::Config::default())
        .detector(Arc::new(RuleSet::bundled().unwrap()))
        .sink(Box::new(sink.clone()))
        .build();

    // As it happened: one alert, the attack rule, CIS 4.5 listed beside it.
    let report = pipeline.process_event(&stop_logging_event()).await.unwrap();
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0].finding;
    assert!(f.severity >= Severity::High, "{:?}", f.severity);
    assert!(!f.rule.as_ref().unwrap().attempt);
    assert!(
        f.also_matched.iter().any(|r| r.title.contains("4.5")),
        "{:?}",
        f.also_matched
    );
    assert_eq!(sink.sent().len(), 1);

    // The same call refused: an attempt, LOW, logged and counted, not sent.
    let mut failed = stop_logging_event();
    failed["id"] = json!("9a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0e");
    failed["detail"]["eventID"] = json!("1f2e3d4c-0000-4000-8000-000000000001");
    failed["detail"]["errorCode"] = json!("AccessDenied");
    failed["detail"]["errorMessage"] =
        json!("User is not authorized to perform: cloudtrail:StopLogging");
    let report = pipeline.process_event(&failed).await.unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let p = &report.findings[0];
    let rule = p.finding.rule.as_ref().unwrap();
    assert!(rule.attempt, "{rule:?}");
    assert_eq!(p.finding.severity, Severity::Low);
    assert!(
        p.finding.title.starts_with("Attempted: "),
        "{}",
        p.finding.title
    );
    assert!(
        matches!(p.decision, Decision::BelowThreshold),
        "{:?}",
        p.decision
    );
    assert_eq!(sink.sent().len(), 1, "the attempt alerted");
}

#[test]
fn only_rules_that_leave_failed_calls_out_have_attempts() {
    let set = RuleSet::bundled().unwrap();
    let mut record = stop_logging_event()["detail"].clone();
    assert!(set.attempted(&record).is_empty(), "a successful call");
    record["errorCode"] = json!("AccessDenied");
    let attempted: Vec<&str> = set.attempted(&record).iter().map(|r| r.id()).collect();
    assert!(!attempted.is_empty());
    for id in &attempted {
        assert!(
            set.matching(&record).iter().all(|r| r.id() != *id),
            "{id} both matched and attempted"
        );
    }
}

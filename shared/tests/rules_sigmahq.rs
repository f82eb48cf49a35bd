//! SigmaHQ's public AWS CloudTrail rules and the real CloudTrail samples in
//! `../shared/events/` (present in CI; a fresh clone may lack them, and then
//! these tests say so and pass).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vigil::detect::{Detector, Rule, RuleErrorKind, RuleSet, RuleSource, Unsupported};
use vigil::model::Severity;
use vigil::sources::log_file::input;
use vigil::sources::{classify, SourceEvent};

fn shared_events(sub: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/events")
        .join(sub);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "note: {} not found (a fresh clone has no ../shared): skipped",
            p.display()
        );
        None
    }
}

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
fn sigmahq_rules_match_what_they_describe() {
    let Some(sources) = sigma_sources("aws_cloudtrail") else {
        return;
    };
    let set = RuleSet::strict(&sources).unwrap();
    let hits = |record: Value| -> Vec<String> {
        set.matching(&record)
            .iter()
            .map(|r| r.meta().title.clone())
            .collect()
    };
    // `additionalEventData.MFAUsed: 'NO'` is case-insensitive, as Sigma says.
    let login = hits(json!({
        "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
        "additionalEventData": {"MFAUsed": "No"},
        "responseElements": {"ConsoleLogin": "Success"}
    }));
    assert!(login.iter().any(|t| t.contains("Without MFA")), "{login:?}");
    // Root use, but not an AWS service event.
    let root = |event_type: &str| {
        hits(
            json!({"eventSource": "iam.amazonaws.com", "eventName": "ListUsers",
            "eventType": event_type, "userIdentity": {"type": "Root"}}),
        )
    };
    assert!(root("AwsApiCall")
        .iter()
        .any(|t| t == "AWS Root Credentials"));
    assert!(!root("AwsServiceEvent")
        .iter()
        .any(|t| t == "AWS Root Credentials"));
    // `|re` on the instance role ARN, with `not 1 of filter_main_*`.
    let imds = |ip: &str| {
        hits(
            json!({"eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
            "sourceIPAddress": ip,
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0abc"}}),
        )
    };
    assert!(imds("198.51.100.7").iter().any(|t| t.contains("IMDS")));
    assert!(!imds("AWS Internal").iter().any(|t| t.contains("IMDS")));
    // `errorCode: null` counts a missing errorCode.
    let ssm = hits(json!({"eventSource": "ssm.amazonaws.com", "eventName": "SendCommand"}));
    assert!(ssm.iter().any(|t| t.contains("System Manager")), "{ssm:?}");
    // `requestParameters|contains|all` over nested JSON (compared as its JSON text).
    let s3browser = hits(json!({
        "eventSource": "iam.amazonaws.com", "eventName": "PutUserPolicy",
        "userAgent": "S3 Browser 11.5.7 https://s3browser.com",
        "requestParameters": {"policyDocument": {"Statement": [{"Effect": "Allow",
            "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::<YOUR-BUCKET-NAME>/*"]}]}}
    }));
    assert!(
        s3browser.iter().any(|t| t.contains("S3Browser")),
        "{s3browser:?}"
    );
    // `|fieldref`: updating one's own login profile is filtered out.
    let profile = |arn: &str| {
        hits(
            json!({"eventSource": "iam.amazonaws.com", "eventName": "UpdateLoginProfile",
            "userIdentity": {"arn": arn}, "requestParameters": {"userName": "bob"}}),
        )
    };
    let title = "AWS User Login Profile Was Modified";
    assert!(profile("arn:aws:iam::1:user/alice")
        .iter()
        .any(|t| t == title));
    assert!(!profile("bob").iter().any(|t| t == title));
}

#[test]
fn rules_beyond_plain_matching_fail_with_a_reason() {
    let mut seen = 0;
    for sub in ["aws_unsupported", "aws_cloudtrail_placeholder"] {
        let Some(sources) = sigma_sources(sub) else {
            return;
        };
        for src in &sources {
            seen += 1;
            let err = Rule::parse(&src.origin, &src.text)
                .expect_err(&format!("{} should not load as a plain rule", src.origin));
            assert!(err.is_unsupported(), "{err}");
            assert!(err.to_string().contains(&src.origin));
            match (sub, &err.kind) {
                (
                    "aws_cloudtrail_placeholder",
                    RuleErrorKind::Unsupported(Unsupported::Placeholder { .. }),
                )
                | (
                    "aws_unsupported",
                    RuleErrorKind::Unsupported(
                        Unsupported::Aggregation(_) | Unsupported::Timeframe(_),
                    ),
                ) => {}
                _ => panic!("unexpected reason for {}: {err}", src.origin),
            }
        }
        // A user folder holding them loads, skipping each with its reason.
        let set = RuleSet::layered(&RuleSource::bundled(), &sources).unwrap();
        assert_eq!(set.skipped().len(), sources.len());
    }
    assert!(seen > 0);
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

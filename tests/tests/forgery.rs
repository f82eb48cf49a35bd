//! Forged events and storms, on moto's SNS, SQS and DynamoDB through the real
//! AWS SDK: a custom event copying a CloudTrail detail-type is refused (no
//! alert, no retry), a storm of one kind never swallows an alert of another
//! kind, and a storm's final summary is sent by the sweep of a process that
//! never saw the storm, once.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{json, Value};
use vigil::dedup::{Clock, Dedup, DedupSettings, DynamoStore, StateStores};
use vigil::detect::Detector;
use vigil::pipeline::decision_name;
use vigil::sinks::SnsSink;
use vigil::{app, Config, Pipeline, Source};
use vigil_e2e::{drain, moto_endpoint, sdk, state_table, topic_with_queue, unique};

/// 2026-01-01T00:00:00Z in ms: aligned to the storm windows used here.
const T0: i64 = 1_767_225_600_000;

fn signin(event_id: &str, source: &str, user: &str) -> Value {
    json!({
        "version": "0", "id": event_id, "detail-type": "AWS Console Sign In via CloudTrail",
        "source": source, "account": "111122223333", "time": "2026-01-01T00:00:10Z",
        "region": "us-east-1", "resources": [],
        "detail": {
            "eventVersion": "1.08", "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "eventID": format!("ct-{event_id}"), "eventTime": "2026-01-01T00:00:10Z",
            "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
            "sourceIPAddress": "203.0.113.9", "userAgent": "Mozilla/5.0",
            "userIdentity": {"type": "IAMUser", "accountId": "111122223333", "userName": user,
                "arn": format!("arn:aws:iam::111122223333:user/{user}")},
            "additionalEventData": {"MFAUsed": "No"},
            "responseElements": {"ConsoleLogin": "Success"}
        }
    })
}

fn stop_logging(event_id: &str) -> Value {
    json!({
        "version": "0", "id": event_id, "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.cloudtrail", "account": "111122223333", "time": "2026-01-01T00:01:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {
            "eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
            "eventID": "ct-stop", "eventTime": "2026-01-01T00:01:00Z", "awsRegion": "us-east-1",
            "recipientAccountId": "111122223333", "sourceIPAddress": "198.51.100.7",
            "userIdentity": {"type": "IAMUser", "accountId": "111122223333", "userName": "mallory",
                "arn": "arn:aws:iam::111122223333:user/mallory"},
            "requestParameters": {"name": "org-trail"}
        }
    })
}

fn guardduty(event_id: &str, finding_id: &str, severity: f64) -> Value {
    json!({
        "version": "0", "id": event_id, "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
        "account": "111122223333", "region": "us-east-1", "time": "2026-01-01T00:01:00Z", "resources": [],
        "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
            "id": finding_id, "type": "UnauthorizedAccess:IAMUser/MaliciousIPCaller", "severity": severity,
            "title": "API called from a known malicious IP", "description": "d",
            "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"userName": finding_id}},
            "service": {"serviceName": "guardduty", "count": 1, "additionalInfo": {"sample": false}}}
    })
}

/// moto's SDK config, a topic with a queue subscribed and a state table, all
/// named after `name`; None without moto.
async fn moto(name: &str) -> Option<(SdkConfig, String, String, String)> {
    moto_endpoint()?;
    let sdk = sdk().await;
    let (topic, queue) = topic_with_queue(&sdk, &unique(name)).await.unwrap();
    let table = state_table(&sdk, name).await.unwrap();
    Some((sdk, topic, queue, table))
}

/// One "process": a pipeline on the shared state table with its own clock,
/// as one Lambda environment of a function.
fn process(
    sdk: &SdkConfig,
    topic: &str,
    table: &str,
    clock: &Clock,
    accept: &[Source],
    detector: Option<Arc<dyn Detector>>,
) -> Pipeline {
    let settings = DedupSettings {
        state_table: Some(table.to_string()),
        ..DedupSettings::default()
    };
    let cfg = Config {
        topic_arn: Some(topic.to_string()),
        dedup: settings.clone(),
        ..Config::default()
    };
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
    let mut builder = app::pipeline_builder(&cfg, &Default::default(), None)
        .sink(Box::new(SnsSink::new(aws_sdk_sns::Client::new(sdk), topic)))
        .accept(accept)
        .dedup(
            Dedup::new(&settings, Some(StateStores::new(store)), None).with_clock(clock.clone()),
        );
    if let Some(d) = detector {
        builder = builder.detector(d);
    }
    builder.build()
}

/// A CloudTrail function's process, with the bundled rules.
fn cloudtrail_process(sdk: &SdkConfig, topic: &str, table: &str, clock: &Clock) -> Pipeline {
    let rules: Arc<dyn Detector> = Arc::new(app::detection_rules(&Config::default()).unwrap());
    process(sdk, topic, table, clock, &[Source::CloudTrail], Some(rules))
}

fn subjects(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["Subject"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_custom_event_copying_a_cloudtrail_detail_type_is_refused_not_alerted() {
    let Some((sdk, topic, queue, table)) = moto("forged").await else {
        return;
    };
    let clock = Clock::manual(T0);
    let ct = cloudtrail_process(&sdk, &topic, &table, &clock);

    let forged = signin("evt-forged", "attacker.custom", "alice");
    let out = app::handle_event(&ct, forged)
        .await
        .expect("a forged event is refused without failing the invocation (no retry, no DLQ)");
    assert_eq!(out["alerts"], 0, "{out}");
    let refused = out["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("attacker.custom") && refused.contains("aws.signin"),
        "{out}"
    );
    // A GuardDuty detail-type from another source is refused the same way.
    let mut fake_gd = guardduty("evt-fake-gd", "gd-fake", 8.0);
    fake_gd["source"] = json!("aws.guardduty.fake");
    let err = ct.process_event(&fake_gd).await.unwrap_err();
    assert!(err.is_refusal(), "{err}");

    // The real one alerts, with the envelope's account.
    let mut real = signin("evt-real", "aws.signin", "alice");
    real["detail"]["recipientAccountId"] = json!("999999999999");
    let out = app::handle_event(&ct, real).await.unwrap();
    assert_eq!(out["alerts"], 1, "{out}");
    let got = drain(&sdk, &queue, 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        got.len(),
        1,
        "only the real sign-in alerts: {:?}",
        subjects(&got)
    );
    let attrs = &got[0]["MessageAttributes"];
    assert_eq!(attrs["account"]["Value"], "111122223333", "{attrs}");
}

#[tokio::test]
async fn a_storm_of_sign_ins_does_not_swallow_stop_logging_or_a_guardduty_high() {
    let Some((sdk, topic, queue, table)) = moto("storm-kinds").await else {
        return;
    };
    let clock = Clock::manual(T0);
    let ct = cloudtrail_process(&sdk, &topic, &table, &clock);
    let gd = process(&sdk, &topic, &table, &clock, &[Source::GuardDuty], None);

    let (mut aggregated, mut per_sign_in) = (0, 0);
    for i in 0..60 {
        let r = ct
            .process_event(&signin(
                &format!("evt-signin-{i}"),
                "aws.signin",
                &format!("user{i}"),
            ))
            .await
            .unwrap();
        per_sign_in = r.findings.len();
        aggregated += r
            .findings
            .iter()
            .filter(|p| decision_name(&p.decision) == "aggregated")
            .count();
    }
    assert!(per_sign_in >= 1);
    assert_eq!(
        aggregated,
        10 * per_sign_in,
        "60 sign-ins past the threshold of 50"
    );

    let r = ct.process_event(&stop_logging("evt-stop")).await.unwrap();
    let decisions: Vec<&str> = r
        .findings
        .iter()
        .map(|p| decision_name(&p.decision))
        .collect();
    assert!(!decisions.is_empty());
    assert!(
        decisions.iter().all(|d| *d == "alerted"),
        "StopLogging alerts on its own: {decisions:?}"
    );
    let stop_alerts = decisions.len();
    let r = gd
        .process_event(&guardduty("evt-gd", "gd-high", 8.0))
        .await
        .unwrap();
    assert_eq!(decision_name(&r.findings[0].decision), "alerted");

    let expected = 50 * per_sign_in + per_sign_in + stop_alerts + 1;
    let got = subjects(
        &drain(&sdk, &queue, expected, Duration::from_secs(30))
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), expected, "{got:?}");
    assert!(got.iter().any(|s| s.contains("StopLogging")), "{got:?}");
    assert!(
        got.iter().any(|s| s.starts_with("[HIGH] GuardDuty")),
        "{got:?}"
    );
    let storm: Vec<&String> = got.iter().filter(|s| s.contains("storm")).collect();
    assert_eq!(
        storm.len(),
        per_sign_in,
        "in-progress summaries, for the sign-ins only: {storm:?}"
    );
    assert!(
        storm.iter().all(|s| s.starts_with("[MEDIUM] CloudTrail")),
        "{storm:?}"
    );
}

#[tokio::test]
async fn the_sweep_of_a_new_process_sends_a_dead_storms_final_summary_once() {
    let Some((sdk, topic, queue, table)) = moto("storm-sweep").await else {
        return;
    };
    let clock = Clock::manual(T0);
    {
        // The processes that counted the storm, then die.
        let counting = process(&sdk, &topic, &table, &clock, &[Source::GuardDuty], None);
        for i in 0..70 {
            let e = guardduty(&format!("evt-sweep-{i}"), &format!("gd-{i}"), 5.0);
            counting.process_event(&e).await.unwrap();
        }
    }
    let before = drain(&sdk, &queue, 51, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(before.len(), 51, "50 alerts and the in-progress summary");

    // The window closed 30 s ago: a new process's sweep sends the final summary.
    clock.advance(Duration::from_secs(330));
    let fresh = process(&sdk, &topic, &table, &clock, &[Source::GuardDuty], None);
    let (report, sent) = fresh.sweep_storms().await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(sent[0].finding.count, 20);
    assert_eq!(sent[0].finding.evidence["storm_final"], "true");
    let got = drain(&sdk, &queue, 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        subjects(&got)[0].contains("storm summary"),
        "{:?}",
        subjects(&got)
    );

    // A second sweep, of this process or another, sends nothing.
    let (again, _) = fresh.sweep_storms().await;
    assert_eq!((again.sent, again.storms_checked), (0, 1), "{again:?}");
    let another = process(&sdk, &topic, &table, &clock, &[Source::GuardDuty], None);
    assert_eq!(another.sweep_storms().await.0.sent, 0);
    assert!(drain(&sdk, &queue, 0, Duration::from_secs(2))
        .await
        .unwrap()
        .is_empty());
    // Once no count can land any more, the storm leaves the index.
    clock.advance(Duration::from_secs(60));
    let (settled, _) = another.sweep_storms().await;
    assert_eq!(
        (settled.sent, settled.storms_checked),
        (0, 1),
        "{settled:?}"
    );
    let (later, _) = another.sweep_storms().await;
    assert_eq!(later.storms_checked, 0, "{later:?}");
}

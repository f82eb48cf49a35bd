//! Nothing lost, nothing twice, under faults: the real pipeline, the real AWS
//! SDK, moto's SNS, SQS and DynamoDB, with SNS or DynamoDB made unreachable
//! (a closed loopback port) or flaky (a local stand-in that answers
//! Throttling and 503 before passing requests on to moto). Every test asserts
//! the exact alerts an SQS subscriber of the topic receives.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use serde_json::{json, Value};
use vigil::dedup::{Clock, Dedup, DedupSettings, DynamoStore, MemoryStore, StateStores};
use vigil::sinks::SnsSink;
use vigil::{app, Config, Source};
use vigil_e2e::fault_proxy::{Fault, FaultProxy};
use vigil_e2e::{drain, moto_endpoint, sdk, topic_with_queue, unique};

/// 2026-01-01T00:00:00Z in ms: aligned to every storm window used here.
const T0: i64 = 1_767_225_600_000;
const SUMMARY_TYPE: &str = "Vigil:AlertStorm/Summary";

fn gd_event(event_id: &str, finding_id: &str, resource: &str, severity: f64, count: u64) -> Value {
    json!({
        "version": "0", "id": event_id, "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
        "account": "111122223333", "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "resources": [],
        "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
            "id": finding_id, "type": "UnauthorizedAccess:EC2/TorClient", "severity": severity,
            "title": "EC2 instance talking to Tor", "description": "d",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": resource}},
            "service": {"serviceName": "guardduty", "count": count, "additionalInfo": {"sample": false}}}
    })
}

async fn create_table(sdk: &SdkConfig) -> String {
    vigil_e2e::state_table(sdk, "vigil-state").await.unwrap()
}

/// A loopback URL nothing listens on.
fn closed_port() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// An SNS sink publishing through `endpoint` (set on the service client:
/// `AWS_ENDPOINT_URL` would win over an `SdkConfig` override).
fn sns_sink(sdk: &SdkConfig, endpoint: &str, topic: &str, sdk_retries: u32) -> Box<SnsSink> {
    let conf = aws_sdk_sns::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::standard().with_max_attempts(sdk_retries))
        .build();
    Box::new(SnsSink::new(aws_sdk_sns::Client::from_conf(conf), topic))
}

/// Dedup whose DynamoDB is unreachable, without the SDK's own retries.
fn unreachable_dedup(sdk: &SdkConfig, settings: &DedupSettings) -> Dedup {
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
        .endpoint_url(closed_port())
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), "vigil-state");
    Dedup::new(
        settings,
        Some(StateStores::new(store.clone())),
        Some(Arc::new(store)),
    )
}

fn config(topic_arn: &str, dedup: DedupSettings) -> Config {
    Config {
        topic_arn: Some(topic_arn.to_string()),
        dedup,
        ..Config::default()
    }
}

/// The OCSF body, the finding type attribute and the suppressed count of a
/// notification as the SQS subscriber sees it.
struct Received {
    uid: String,
    finding_type: String,
    suppressed_repeats: Option<u64>,
    subject: String,
    ocsf: Value,
}

fn received(messages: &[Value]) -> Vec<Received> {
    messages
        .iter()
        .map(|m| {
            let ocsf: Value = serde_json::from_str(m["Message"].as_str().unwrap()).unwrap();
            let attrs = &m["MessageAttributes"];
            Received {
                uid: ocsf["finding_info"]["uid"].as_str().unwrap().to_string(),
                finding_type: attrs["finding_type"]["Value"].as_str().unwrap().to_string(),
                suppressed_repeats: attrs["suppressed_repeats"]["Value"]
                    .as_str()
                    .map(|v| v.parse().unwrap()),
                subject: m["Subject"].as_str().unwrap().to_string(),
                ocsf,
            }
        })
        .collect()
}

#[tokio::test]
async fn sns_unreachable_fails_the_invocation_and_the_retry_after_recovery_alerts_once() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, &unique("fault-sns-down"))
        .await
        .unwrap();
    let settings = DedupSettings {
        idempotency_table: Some(table.clone()),
        state_table: Some(table.clone()),
        ..DedupSettings::default()
    };
    let cfg = config(&topic, settings);
    let event = gd_event("evt-sns-down", "f-sns-down", "i-sns-down", 8.0, 1);

    // SNS unreachable: the invocation fails and nothing is marked complete.
    let broken = app::pipeline_builder(&cfg, &Default::default(), None)
        .sink(sns_sink(&sdk, &closed_port(), &topic, 1))
        .accept(&[Source::GuardDuty])
        .dedup(Dedup::from_settings(&cfg.dedup, &sdk))
        .build();
    let err = app::handle_event(&broken, event.clone()).await.unwrap_err();
    assert!(err.to_string().contains("not delivered"), "{err}");
    assert_eq!(
        vigil_e2e::idempotency_status(&sdk, &table, "evt-sns-down")
            .await
            .unwrap(),
        None
    );

    // After recovery, the retry (same event id) alerts once, and a further
    // duplicate delivery gets the stored result and alerts nothing.
    let fixed = app::function_pipeline(&cfg, &Default::default(), &sdk, &[Source::GuardDuty], None);
    let out = app::handle_event(&fixed, event.clone()).await.unwrap();
    assert_eq!(out["alerts"], 1, "{out}");
    assert_eq!(
        vigil_e2e::idempotency_status(&sdk, &table, "evt-sns-down")
            .await
            .unwrap()
            .as_deref(),
        Some("COMPLETE")
    );
    let again = app::handle_event(&fixed, event).await.unwrap();
    assert_eq!(again, out, "a duplicate returns the stored result");

    let got = received(
        &drain(&sdk, &queue, 1, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].uid, "f-sns-down");
}

/// A stand-in SNS endpoint: answers the first requests with the given
/// errors, then passes each request on to moto.
fn flaky_sns(upstream: &str, failures: Vec<(u16, &'static str)>) -> FaultProxy {
    FaultProxy::start(upstream, move |r| {
        failures
            .get(r.index)
            .map(|&(status, code)| Fault { status, code })
    })
}

#[tokio::test]
async fn sns_throttling_and_5xx_are_retried_and_delivered_once() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic, queue) = topic_with_queue(&sdk, &unique("fault-sns-flaky"))
        .await
        .unwrap();
    let failures = vec![
        (400, "Throttling"),
        (503, "ServiceUnavailable"),
        (500, "InternalError"),
        (400, "Throttling"),
    ];
    let injected = failures.len();
    let flaky = flaky_sns(&endpoint, failures);
    let cfg = config(&topic, DedupSettings::default());
    // The SDK's own retries (3 attempts) and the sink's (3) both apply.
    let pipeline = app::pipeline_builder(&cfg, &Default::default(), None)
        .sink(sns_sink(&sdk, &flaky.url, &topic, 3))
        .accept(&[Source::GuardDuty])
        .build();
    let out = app::handle_event(
        &pipeline,
        gd_event("evt-flaky", "f-flaky", "i-flaky", 8.0, 1),
    )
    .await
    .unwrap();
    assert_eq!(out["alerts"], 1);
    // Every injected failure was answered by a retry, and one publish got through.
    assert_eq!(flaky.requests(), injected + 1);
    let got = received(
        &drain(&sdk, &queue, 1, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].uid, "f-flaky");
}

#[tokio::test]
async fn dynamodb_unreachable_fails_open_and_the_alert_arrives() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let (topic, queue) = topic_with_queue(&sdk, &unique("fault-ddb-down"))
        .await
        .unwrap();
    let cfg = config(&topic, DedupSettings::default());
    let pipeline = app::pipeline_builder(&cfg, &Default::default(), Some(&sdk))
        .accept(&[Source::GuardDuty])
        .dedup(unreachable_dedup(&sdk, &cfg.dedup))
        .build();
    let out = app::handle_event(&pipeline, gd_event("evt-ddb", "f-ddb", "i-ddb", 8.0, 1))
        .await
        .unwrap();
    assert_eq!(out["alerts"], 1, "{out}");
    // The idempotency check and the fingerprint state each failed once (the
    // event stops asking a dead store after its first failure).
    assert_eq!(out["state_store_errors"], 2, "{out}");
    let got = received(
        &drain(&sdk, &queue, 1, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].uid, "f-ddb");
}

#[tokio::test]
async fn duplicate_deliveries_of_one_event_id_alert_once() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, &unique("fault-dup")).await.unwrap();
    // Idempotency alone: no fingerprint state that could hide a duplicate.
    let settings = DedupSettings {
        idempotency_table: Some(table.clone()),
        ..DedupSettings::default()
    };
    let cfg = config(&topic, settings);
    let pipeline =
        app::function_pipeline(&cfg, &Default::default(), &sdk, &[Source::GuardDuty], None);
    let event = gd_event("evt-dup", "f-dup", "i-dup", 8.0, 1);
    // Two deliveries at once: one runs, the other is told to retry later
    // (or, if the first finished already, gets its result).
    let (a, b) = tokio::join!(
        app::handle_event(&pipeline, event.clone()),
        app::handle_event(&pipeline, event.clone())
    );
    let ran = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert!(ran >= 1, "{a:?} {b:?}");
    for _ in 0..3 {
        let out = app::handle_event(&pipeline, event.clone()).await.unwrap();
        assert_eq!(out["alerts"], 1, "the stored result of the one run: {out}");
    }
    let got = received(
        &drain(&sdk, &queue, 1, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), 1, "one alert for five deliveries");
    assert_eq!(got[0].uid, "f-dup");
}

#[tokio::test]
async fn repeats_alert_once_per_window_and_the_next_alert_carries_the_count() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, &unique("fault-window"))
        .await
        .unwrap();
    let settings = DedupSettings {
        idempotency_table: Some(table.clone()),
        state_table: Some(table.clone()),
        suppression_window_seconds: 1,
        ..DedupSettings::default()
    };
    let cfg = config(&topic, settings);
    let clock = Clock::manual(T0);
    let pipeline = app::pipeline_builder(&cfg, &Default::default(), Some(&sdk))
        .accept(&[Source::GuardDuty])
        .dedup(Dedup::from_settings(&cfg.dedup, &sdk).with_clock(clock.clone()))
        .build();
    let alerts = |v: Value| v["alerts"].as_u64().unwrap();
    let run = |e: Value| app::handle_event(&pipeline, e);
    // First occurrence: alerts at once.
    assert_eq!(
        alerts(run(gd_event("w1", "f1", "i-w", 8.0, 1)).await.unwrap()),
        1
    );
    // GuardDuty re-sends f1 with a higher count: an update, not an alert.
    assert_eq!(
        alerts(run(gd_event("w2", "f1", "i-w", 8.0, 2)).await.unwrap()),
        0
    );
    // Another finding with the same fingerprint within the window: a repeat.
    assert_eq!(
        alerts(run(gd_event("w3", "f2", "i-w", 8.0, 1)).await.unwrap()),
        0
    );
    clock.advance(Duration::from_secs(2));
    // Past the window, f1 again is still an update of an alerted finding.
    assert_eq!(
        alerts(run(gd_event("w4", "f1", "i-w", 8.0, 3)).await.unwrap()),
        0
    );
    // A new finding after the window alerts and carries the three repeats.
    assert_eq!(
        alerts(run(gd_event("w5", "f3", "i-w", 8.0, 1)).await.unwrap()),
        1
    );

    let got = received(
        &drain(&sdk, &queue, 2, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let summary: Vec<(&str, Option<u64>)> = got
        .iter()
        .map(|r| (r.uid.as_str(), r.suppressed_repeats))
        .collect();
    assert_eq!(summary, vec![("f1", None), ("f3", Some(3))]);
}

/// Drives `n` GuardDuty findings (distinct resources, so distinct
/// fingerprints; `critical` of them CRITICAL) through `pipeline`, then one
/// more after the storm window closed. Returns what the subscriber got.
async fn storm(
    sdk: &SdkConfig,
    queue: &str,
    pipeline: &vigil::Pipeline,
    clock: &Clock,
    n: usize,
    critical: &[usize],
    expected_messages: usize,
) -> Vec<Received> {
    let mut alerts = 0;
    for i in 0..n {
        let severity = if critical.contains(&i) { 9.5 } else { 8.0 };
        let e = gd_event(
            &format!("s{i}"),
            &format!("storm-{i}"),
            &format!("i-{i:05}"),
            severity,
            1,
        );
        alerts += app::handle_event(pipeline, e).await.unwrap()["alerts"]
            .as_u64()
            .unwrap();
    }
    clock.advance(Duration::from_secs(300));
    let late = gd_event("s-late", "storm-late", "i-late", 8.0, 1);
    let out = app::handle_event(pipeline, late).await.unwrap();
    assert_eq!(
        out["storm_summaries"], 1,
        "the final summary goes out with the next event: {out}"
    );
    alerts += out["alerts"].as_u64().unwrap();
    let got = received(
        &drain(sdk, queue, expected_messages, Duration::from_secs(20))
            .await
            .unwrap(),
    );
    let individual = got
        .iter()
        .filter(|r| r.finding_type != SUMMARY_TYPE)
        .count();
    assert_eq!(individual as u64, alerts);
    got
}

fn evidence<'a>(r: &'a Received, key: &str) -> &'a str {
    r.ocsf["evidences"][0]["data"][key]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_10000_finding_storm_sends_the_threshold_then_summaries_and_loses_no_count() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let (topic, queue) = topic_with_queue(&sdk, &unique("fault-storm"))
        .await
        .unwrap();
    let settings = DedupSettings {
        storm_threshold: 50,
        storm_window_seconds: 300,
        ..DedupSettings::default()
    };
    let cfg = config(&topic, settings);
    let clock = Clock::manual(T0);
    // The storm logic is the same over any store; memory keeps 10,000
    // findings fast (the DynamoDB store runs the smaller storm below).
    let dedup = Dedup::new(&cfg.dedup, Some(StateStores::new(MemoryStore::new())), None)
        .with_clock(clock.clone());
    let pipeline = app::pipeline_builder(&cfg, &Default::default(), Some(&sdk))
        .accept(&[Source::GuardDuty])
        .dedup(dedup)
        .build();
    // 50 individual + 2 CRITICAL + the summary when the storm starts
    // + the late finding + the final summary.
    let got = storm(&sdk, &queue, &pipeline, &clock, 10_000, &[1234, 8765], 55).await;
    assert_eq!(got.len(), 55);
    let critical = got
        .iter()
        .filter(|r| r.subject.starts_with("[CRITICAL]"))
        .count();
    assert_eq!(critical, 2);
    let summaries: Vec<&Received> = got
        .iter()
        .filter(|r| r.finding_type == SUMMARY_TYPE)
        .collect();
    assert_eq!(summaries.len(), 2);
    for s in &summaries {
        assert!(s.subject.contains("Alert storm"), "{}", s.subject);
        assert!(s.subject.contains("alerts summarized"), "{}", s.subject);
    }
    let first = summaries
        .iter()
        .find(|s| evidence(s, "storm_final") == "false")
        .unwrap();
    assert_eq!(first.ocsf["count"], 1);
    let last = summaries
        .iter()
        .find(|s| evidence(s, "storm_final") == "true")
        .unwrap();
    let replaced: u64 = evidence(last, "storm_replaced_alerts").parse().unwrap();
    assert_eq!(last.ocsf["count"], replaced);
    assert_eq!(evidence(last, "storm_individual_alerts"), "50");
    assert_eq!(
        evidence(last, "storm_by_severity"),
        format!("HIGH={replaced}")
    );
    assert_eq!(
        evidence(last, "storm_by_account"),
        format!("111122223333={replaced}")
    );
    // Every one of the 10,000 is accounted for: sent alone or counted.
    assert_eq!(50 + 2 + replaced, 10_000);
}

#[tokio::test]
async fn a_storm_over_dynamodb_is_summarized_the_same_way() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let (topic, queue) = topic_with_queue(&sdk, &unique("fault-storm-ddb"))
        .await
        .unwrap();
    let settings = DedupSettings {
        state_table: Some(table),
        storm_threshold: 5,
        storm_window_seconds: 300,
        ..DedupSettings::default()
    };
    let cfg = config(&topic, settings);
    let clock = Clock::manual(T0);
    let pipeline = app::pipeline_builder(&cfg, &Default::default(), Some(&sdk))
        .accept(&[Source::GuardDuty])
        .dedup(Dedup::from_settings(&cfg.dedup, &sdk).with_clock(clock.clone()))
        .build();
    // 5 individual + 1 CRITICAL + start summary + late + final summary.
    let got = storm(&sdk, &queue, &pipeline, &clock, 30, &[7], 9).await;
    let seen: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r.uid.as_str(), r.subject.as_str()))
        .collect();
    assert_eq!(got.len(), 9, "{seen:#?}");
    let last = got
        .iter()
        .find(|r| r.finding_type == SUMMARY_TYPE && evidence(r, "storm_final") == "true")
        .unwrap();
    assert_eq!(evidence(last, "storm_replaced_alerts"), "24");
    assert_eq!(evidence(last, "storm_by_severity"), "HIGH=24");
    assert_eq!(evidence(last, "storm_other_resources"), "0");
    // 24 resources once each: the first ten by name, and how many more.
    let top = evidence(last, "storm_top_resources");
    assert!(top.starts_with("i-00005=1, i-00006=1, i-00008=1"), "{top}");
    assert!(top.ends_with("... 14 more"), "{top}");
}

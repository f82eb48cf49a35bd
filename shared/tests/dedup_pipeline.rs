//! The dedup stage inside the pipeline: what the sinks receive and what the
//! event report says, over the in-memory store with a hand-driven clock.

use std::time::Duration;

use serde_json::{json, Value};
use vigil::dedup::{Clock, Dedup, DedupSettings, MemoryStore, StateStores, Suppressions};
use vigil::pipeline::{decision_name, Decision};
use vigil::sinks::MemorySink;
use vigil::{Config, Pipeline, PipelineError};

const T0: i64 = 1_767_225_600_000;

fn gd(event_id: &str, finding_id: &str, resource: &str, severity: f64) -> Value {
    json!({
        "version": "0", "id": event_id, "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
        "account": "111122223333", "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "resources": [],
        "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
            "id": finding_id, "type": "UnauthorizedAccess:EC2/TorClient", "severity": severity,
            "title": "Tor client", "description": "d",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": resource}},
            "service": {"serviceName": "guardduty", "count": 1, "additionalInfo": {"sample": false}}}
    })
}

fn pipeline(
    sink: MemorySink,
    settings: &DedupSettings,
    store: MemoryStore,
    clock: &Clock,
) -> Pipeline {
    Pipeline::builder(&Config::default())
        .sink(Box::new(sink))
        .dedup(Dedup::new(settings, Some(StateStores::new(store)), None).with_clock(clock.clone()))
        .build()
}

#[tokio::test]
async fn the_alert_after_the_window_carries_the_suppressed_count_to_the_sinks() {
    let sink = MemorySink::new();
    let clock = Clock::manual(T0);
    let settings = DedupSettings {
        suppression_window_seconds: 60,
        ..DedupSettings::default()
    };
    let p = pipeline(sink.clone(), &settings, MemoryStore::new(), &clock);
    let r = p.process_event(&gd("e1", "f1", "i-1", 8.0)).await.unwrap();
    assert_eq!(r.alerts(), 1);
    for (i, id) in ["f2", "f3"].iter().enumerate() {
        let r = p
            .process_event(&gd(&format!("e{i}x"), id, "i-1", 8.0))
            .await
            .unwrap();
        assert_eq!(decision_name(&r.findings[0].decision), "suppressed");
    }
    clock.advance(Duration::from_secs(61));
    p.process_event(&gd("e9", "f9", "i-1", 8.0)).await.unwrap();
    let sent = sink.sent();
    let counts: Vec<(String, u64)> = sent
        .iter()
        .map(|a| (a.finding.id.clone(), a.suppressed_repeats))
        .collect();
    assert_eq!(counts, vec![("f1".into(), 0), ("f9".into(), 2)]);
}

#[tokio::test]
async fn a_failed_sink_keeps_the_alert_for_the_retry() {
    let clock = Clock::manual(T0);
    let store = MemoryStore::new();
    let settings = DedupSettings::default();
    let failing = pipeline(MemorySink::failing(), &settings, store.clone(), &clock);
    let event = gd("e1", "f1", "i-1", 8.0);
    assert!(matches!(
        failing.process_event(&event).await,
        Err(PipelineError::Delivery { .. })
    ));
    let sink = MemorySink::new();
    let working = pipeline(sink.clone(), &settings, store, &clock);
    let r = working.process_event(&event).await.unwrap();
    assert_eq!(
        r.alerts(),
        1,
        "the retry is not suppressed by its own failed attempt"
    );
    assert_eq!(sink.sent().len(), 1);
}

#[tokio::test]
async fn rules_suppress_with_a_reason_and_storms_report_summaries() {
    let sink = MemorySink::new();
    let clock = Clock::manual(T0);
    let settings = DedupSettings {
        storm_threshold: 2,
        ..DedupSettings::default()
    };
    let rules = Suppressions::parse(
        "- {name: lab, reason: lab instance, expires: never, resource: 'i-lab*'}",
        "test",
        0,
    )
    .unwrap();
    let p = Pipeline::builder(&Config::default())
        .sink(Box::new(sink.clone()))
        .dedup(
            Dedup::new(&settings, Some(StateStores::new(MemoryStore::new())), None)
                .with_clock(clock.clone())
                .with_suppressions(rules),
        )
        .build();
    let r = p
        .process_event(&gd("e0", "f0", "i-lab-1", 8.0))
        .await
        .unwrap();
    assert_eq!(
        r.findings[0].decision,
        Decision::SuppressedByRule {
            rule: "lab".into(),
            reason: "lab instance".into()
        }
    );
    let mut summaries = 0;
    for i in 1..=5 {
        let r = p
            .process_event(&gd(
                &format!("e{i}"),
                &format!("f{i}"),
                &format!("i-{i}"),
                8.0,
            ))
            .await
            .unwrap();
        summaries += r.summaries.len();
        if i > 2 {
            assert_eq!(decision_name(&r.findings[0].decision), "aggregated");
        }
    }
    assert_eq!(summaries, 1, "the summary when the storm starts");
    let flushed = p.flush_storms().await;
    assert_eq!(flushed.len(), 1);
    assert_eq!(flushed[0].finding.count, 3);
    assert!(flushed[0].decision.alerted());
    // 2 individual alerts + 2 summaries reached the sink; nothing else.
    assert_eq!(sink.sent().len(), 4);
}

#[tokio::test]
async fn a_state_store_outage_alerts_everything_and_says_so() {
    let sink = MemorySink::new();
    let clock = Clock::manual(T0);
    let store = MemoryStore::new();
    store.set_unavailable(true);
    let p = pipeline(sink.clone(), &DedupSettings::default(), store, &clock);
    for i in 0..3 {
        let r = p
            .process_event(&gd(&format!("e{i}"), "f1", "i-1", 8.0))
            .await
            .unwrap();
        assert_eq!(r.alerts(), 1);
        assert_eq!(r.state_store_errors, 1);
    }
    assert_eq!(sink.sent().len(), 3);
}

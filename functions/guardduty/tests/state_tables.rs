//! The real `guardduty` binary with its DynamoDB state as the template gives
//! it (`VIGIL_STATE_TABLE` = `VIGIL_IDEMPOTENCY_TABLE` = a moto table shaped
//! as `StateTable`): a duplicate EventBridge delivery alerts once and leaves
//! its records; an OTLP collector that accepts the connection and never
//! answers does not hang the invocation.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_e2e::stand_in::Silent;
use vigil_e2e::{
    assert_duplicate_delivery_alerts_once, errors_counted, own_sample_event, unique, FunctionBed,
};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_guardduty"))
}

/// The project's CRITICAL GuardDuty sample, with a fresh event id.
fn event() -> Value {
    own_sample_event("guardduty", "attack-sequence-s3-critical.json")
}

#[tokio::test]
async fn a_duplicate_delivery_alerts_once_and_leaves_its_records() {
    assert_duplicate_delivery_alerts_once(binary(), &event()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otlp_collector_that_never_answers_does_not_hang_the_invocation() {
    let collector = Silent::start().await;
    // The export deadline the deployer configures (milliseconds).
    let configured = Duration::from_millis(1000);
    let timeout = configured.as_millis().to_string();
    let extra = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.base.as_str()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", timeout.as_str()),
        // Two findings of one fingerprint: both alert, so both invocations
        // publish and export.
        ("VIGIL_SUPPRESSION_WINDOW_SECONDS", "0"),
    ];
    let Some(bed) = FunctionBed::start(binary(), &extra).await else {
        return;
    };
    let mut took = Vec::new();
    for _ in 0..2 {
        let mut event = event();
        event["detail"]["id"] = unique("gd-finding").into();
        let started = Instant::now();
        let out = bed.invoke(&event).unwrap_or_else(|e| panic!("{e}"));
        took.push(started.elapsed());
        assert_eq!(
            out["alerts"], 1,
            "the alert does not wait on telemetry: {out}"
        );
    }
    assert_eq!(bed.received(2).await.len(), 2);
    let logs = bed.function.logs();
    assert!(collector.connections() >= 1, "the exporter did connect");
    assert_eq!(
        logs.matches("trace export failed").count(),
        2,
        "each invocation says its spans were lost:\n{logs}"
    );
    assert_eq!(
        errors_counted(&logs, "trace_export"),
        2,
        "and counts it:\n{logs}"
    );
    // Each invocation is bounded by the export deadline (plus the 100 ms the
    // exporter's lock may take); twice that, plus a few seconds for the
    // emulator, moto and a slow machine, tells a bound from a hang.
    for t in took {
        assert!(
            t < configured * 2 + Duration::from_secs(5),
            "took {t:?}\n{logs}"
        );
    }
}

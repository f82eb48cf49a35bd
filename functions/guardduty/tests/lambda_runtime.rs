//! The real `guardduty` binary under cargo-lambda's Lambda runtime emulator,
//! publishing to moto's SNS: what `sam deploy` ships, minus AWS.

use std::time::Duration;

use vigil_e2e::{
    drain, moto_endpoint, project_root, sdk, topic_with_queue, unique, LambdaFunction,
};

#[tokio::test]
async fn the_function_binary_publishes_alerts_and_fails_on_bad_input() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("gd-lambda")).await.unwrap();
    let Some(function) = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_guardduty")),
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
        ],
    ) else {
        return;
    };

    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            project_root().join("examples/events/guardduty/attack-sequence-s3-critical.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let out = function
        .invoke(&event)
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    assert_eq!(out["alerts"], 1, "{out}");

    let messages = drain(&sdk, &queue_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert!(messages[0]["Subject"]
        .as_str()
        .unwrap()
        .starts_with("[CRITICAL] GuardDuty: "));

    // Input that is not a GuardDuty event: the invocation fails (so Lambda
    // retries and then dead-letters it) with a clear error, and the process lives on.
    let bad =
        serde_json::json!({"detail-type": "Something Else", "source": "aws.ec2", "detail": {}});
    let err = function.invoke(&bad).unwrap_err();
    assert!(err.0.contains("unsupported event"), "{err}");
    let again = function.invoke(&event).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again["alerts"], 1);
}

/// The storm sweep through the real binary: a storm counted an hour ago by
/// processes that are gone (an in-process pipeline on the same moto table),
/// then the `rate(5 minutes)` schedule's `Scheduled Event` invokes the
/// function, which sends the storm's final summary; the next sweep sends none.
#[tokio::test]
async fn a_scheduled_event_sweeps_the_final_summary_of_a_storm_nobody_finished() {
    use vigil::dedup::{Clock, Dedup, DedupSettings};
    use vigil::{app, Config, Source};

    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("gd-sweep")).await.unwrap();
    let table = vigil_e2e::state_table(&sdk, "gd-sweep").await.unwrap();
    let settings = DedupSettings {
        state_table: Some(table.clone()),
        storm_threshold: 3,
        ..DedupSettings::default()
    };
    let cfg = Config {
        topic_arn: Some(topic_arn.clone()),
        dedup: settings.clone(),
        ..Config::default()
    };
    let now_s = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let an_hour_ago = (now_s - 3600).div_euclid(300) * 300 * 1000;
    {
        let counting = app::pipeline_builder(&cfg, &Default::default(), Some(&sdk))
            .accept(&[Source::GuardDuty])
            .dedup(Dedup::from_settings(&settings, &sdk).with_clock(Clock::manual(an_hour_ago)))
            .build();
        for i in 0..6 {
            let r = counting
                .process_event(&finding_event(&format!("evt-sw-{i}"), &format!("f-sw-{i}")))
                .await
                .unwrap();
            assert_eq!(r.findings.len(), 1);
        }
    }
    let before = drain(&sdk, &queue_url, 4, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(before.len(), 4, "3 alerts and the in-progress summary");

    let Some(function) = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_guardduty")),
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("VIGIL_STATE_TABLE", &table),
            ("VIGIL_STORM_THRESHOLD", "3"),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
        ],
    ) else {
        return;
    };
    let schedule = serde_json::json!({
        "version": "0", "id": unique("sched"), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "111122223333", "time": "2026-01-01T00:10:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:111122223333:rule/vigil-storm-sweep"], "detail": {}
    });
    let out = function
        .invoke(&schedule)
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    assert_eq!(
        out["storm_sweep"]["summaries_sent"],
        1,
        "{out}\n{}",
        function.logs()
    );
    let got = drain(&sdk, &queue_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let subject = got[0]["Subject"].as_str().unwrap();
    assert!(subject.contains("storm summary: 3 "), "{subject}");

    let mut again = schedule.clone();
    again["id"] = serde_json::json!(unique("sched"));
    let out = function.invoke(&again).unwrap();
    assert_eq!(out["storm_sweep"]["summaries_sent"], 0, "{out}");
    assert_eq!(
        out["storm_sweep"]["storms_checked"], 0,
        "settled storms leave the index: {out}"
    );
}

fn finding_event(event_id: &str, finding_id: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": event_id, "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
        "account": "111122223333", "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "resources": [],
        "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
            "id": finding_id, "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 5.0,
            "title": "Unprotected port probed", "description": "d",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": finding_id}},
            "service": {"serviceName": "guardduty", "count": 1, "additionalInfo": {"sample": false}}}
    })
}

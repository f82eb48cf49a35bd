//! The real `notifier` binary under cargo-lambda's Lambda runtime emulator:
//! what `sam deploy` ships, minus AWS. Its SNS records are the ones SNS hands
//! a `lambda` subscriber for an alert the real pipeline published to moto's
//! SNS from a sample event; its secrets are in moto's Secrets Manager, its
//! Slack threads in a moto DynamoDB table shaped as the template's
//! `StateTable`; Slack and PagerDuty are local stand-ins
//! (`vigil_e2e::stand_in`): one that answers as the real APIs do, and one
//! that accepts connections and never answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aws_config::SdkConfig;
use serde_json::{json, Value};
use vigil::notify::HttpPolicy;
use vigil::telemetry::DEFAULT_EXPORT_TIMEOUT;
use vigil_e2e::stand_in::{Answer, Silent, StandIn};
use vigil_e2e::{
    create_secret, errors_counted, items_with_prefix, lambda_events_of, moto_endpoint,
    own_sample_event, sdk, state_table, topic_with_queue, unique, LambdaFunction,
};

/// The alert the real pipeline publishes for a CRITICAL GuardDuty sample, as
/// SNS delivers it to the notifier (one record).
async fn published_alert(sdk: &SdkConfig, endpoint: &str) -> Value {
    let (topic_arn, queue_url) = topic_with_queue(sdk, &unique("notifier-bin"))
        .await
        .unwrap();
    let config = vigil::Config {
        topic_arn: Some(topic_arn.clone()),
        ..vigil::Config::default()
    };
    let pipeline = vigil::app::pipeline_builder(&config, &Default::default(), Some(sdk)).build();
    let event = own_sample_event("guardduty", "attack-sequence-s3-critical.json");
    let report = pipeline.process_event(&event).await.unwrap();
    assert_eq!(report.alerts(), 1);
    let mut events = lambda_events_of(sdk, endpoint, &topic_arn, &queue_url, 1)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    events.remove(0)
}

async fn secret(sdk: &SdkConfig, value: Value) -> String {
    create_secret(sdk, &value.to_string()).await.unwrap()
}

/// Answers `chat.postMessage` as Slack does, numbering the messages.
async fn slack_api() -> StandIn {
    let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
    StandIn::start(move |r| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let channel = r.body["channel"].as_str().unwrap_or("C0");
        Answer::json(
            200,
            json!({"ok": true, "channel": channel, "ts": format!("1767225600.{i:06}")}).to_string(),
        )
    })
    .await
}

/// Answers as PagerDuty's Events v2 does.
async fn pagerduty() -> StandIn {
    StandIn::start(|r| {
        Answer::json(
            202,
            json!({"status": "success", "message": "Event processed", "dedup_key": r.body["dedup_key"]})
                .to_string(),
        )
    })
    .await
}

fn start(env: &[(&str, &str)]) -> Option<LambdaFunction> {
    LambdaFunction::start(Path::new(env!("CARGO_BIN_EXE_notifier")), env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_posts_to_slack_and_pages_once_even_when_delivered_twice() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let record = published_alert(&sdk, &endpoint).await;
    let (slack, pd) = (slack_api().await, pagerduty().await);
    let table = state_table(&sdk, "notifier-threads").await.unwrap();
    let bot = secret(
        &sdk,
        json!({"bot_token": "xoxb-test-token", "channel": "#security"}),
    )
    .await;
    let routing = secret(
        &sdk,
        json!({"routing_key": "R0UT1NGKEY0000000000000000000000"}),
    )
    .await;
    let (slack_url, pd_url) = (
        format!("{}/api", slack.base),
        format!("{}/v2/enqueue", pd.base),
    );
    let Some(function) = start(&[
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_REGION", "us-east-1"),
        ("VIGIL_SLACK_BOT_TOKEN_SECRET_ARN", &bot),
        ("VIGIL_SLACK_API_URL", &slack_url),
        ("VIGIL_STATE_TABLE", &table),
        ("VIGIL_PAGERDUTY_SECRET_ARN", &routing),
        ("VIGIL_PAGERDUTY_URL", &pd_url),
    ]) else {
        return;
    };

    let out = function
        .invoke(&record)
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    let outcomes = &out["deliveries"][0]["outcomes"];
    assert_eq!(
        outcomes,
        &json!([
            {"destination": "pagerduty", "outcome": "sent", "reason": null},
            {"destination": "slack", "outcome": "sent", "reason": null},
        ]),
        "{out}"
    );
    let posts = slack.received();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/api/chat.postMessage");
    assert_eq!(
        posts[0].header("authorization"),
        Some("Bearer xoxb-test-token")
    );
    assert_eq!(posts[0].body["channel"], "#security");
    let header = posts[0].body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(header.contains("CRITICAL"), "{header}");
    let pages = pd.bodies();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0]["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert_eq!(pages[0]["event_action"], "trigger");
    assert_eq!(pages[0]["payload"]["severity"], "critical");
    // The card's thread is kept beside the dedup state of its fingerprint.
    let threads = items_with_prefix(&sdk, &table, "fp#").await.unwrap();
    assert_eq!(threads.len(), 1, "{threads:?}");

    // SNS delivers the same record again (a retry, or at-least-once): Slack
    // is not posted twice, and PagerDuty gets the same dedup key (Events v2
    // is idempotent on it), so nobody is paged twice.
    let again = function
        .invoke(&record)
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    assert_eq!(
        again["deliveries"][0]["outcomes"][1]["outcome"], "skipped",
        "{again}"
    );
    assert_eq!(
        slack.received().len(),
        1,
        "one Slack card for two deliveries"
    );
    let pages = pd.bodies();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0]["dedup_key"], pages[1]["dedup_key"]);

    // Not a Vigil alert: the invocation fails (Lambda retries, then keeps it
    // in the dead-letter queue) and posts nothing.
    let mut bad = record.clone();
    bad["Records"][0]["Sns"]["Message"] = json!("{\"default\": \"not an alert\"}");
    let err = function.invoke(&bad).unwrap_err();
    assert!(
        err.0.contains("not a Vigil alert") || err.0.contains("SNS message"),
        "{err}"
    );
    assert_eq!(slack.received().len(), 1);
}

/// Slack, PagerDuty and the OTLP collector all accept the connection and
/// never answer: the invocation still ends within the configured timeouts
/// (one HTTP deadline per destination, one export deadline), fails so that
/// Lambda retries it, and says why in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_that_never_answer_do_not_hang_the_invocation() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let record = published_alert(&sdk, &endpoint).await;
    let (slack, pd, otlp) = (
        Silent::start().await,
        Silent::start().await,
        Silent::start().await,
    );
    let hook = secret(
        &sdk,
        json!({"webhook_url": format!("{}/hook/T0/B0/x", slack.base)}),
    )
    .await;
    let routing = secret(
        &sdk,
        json!({"routing_key": "R0UT1NGKEY0000000000000000000000"}),
    )
    .await;
    let pd_url = format!("{}/v2/enqueue", pd.base);
    let Some(function) = start(&[
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_REGION", "us-east-1"),
        ("VIGIL_SLACK_WEBHOOK_SECRET_ARN", &hook),
        ("VIGIL_PAGERDUTY_SECRET_ARN", &routing),
        ("VIGIL_PAGERDUTY_URL", &pd_url),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.base),
    ]) else {
        return;
    };

    let started = Instant::now();
    let err = function.invoke(&record).unwrap_err();
    let took = started.elapsed();
    // What the configuration allows: each destination's request deadline and
    // the span export's; twice that is a generous margin for a slow machine,
    // and still well inside the notifier's 60 s Lambda timeout.
    let configured = HttpPolicy::default().timeout * 2 + DEFAULT_EXPORT_TIMEOUT;
    assert!(
        took < configured * 2,
        "took {took:?}, configured {configured:?}\n{}",
        function.logs()
    );
    assert!(err.0.contains("2 of 2 deliveries failed"), "{err}");
    assert!(err.0.contains("timed out"), "{err}");
    let logs = function.logs();
    for destination in ["pagerduty", "slack"] {
        assert!(
            logs.lines().any(|l| l.contains("alert delivery failed")
                && l.contains(&format!("\"destination\":\"{destination}\""))),
            "no failure logged for {destination}:\n{logs}"
        );
    }
    assert!(logs.contains("trace export failed"), "{logs}");
    assert_eq!(errors_counted(&logs, "delivery"), 1, "counted:\n{logs}");
    assert_eq!(errors_counted(&logs, "trace_export"), 1, "counted:\n{logs}");
    assert!(slack.connections() >= 1 && pd.connections() >= 1 && otlp.connections() >= 1);

    // The process is not stuck: the next invocation runs (and fails the same
    // bounded way).
    let started = Instant::now();
    assert!(function.invoke(&record).is_err());
    assert!(started.elapsed() < configured * 2);
}

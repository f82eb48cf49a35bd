//! The real `securityhub` binary with its DynamoDB state as the template
//! gives it (`VIGIL_STATE_TABLE` = `VIGIL_IDEMPOTENCY_TABLE` = a moto table
//! shaped as `StateTable`): a duplicate EventBridge delivery alerts once, and
//! an event with several findings whose second publish fails sends the first
//! alert, fails the invocation (so EventBridge retries it), and on the retry
//! sends the second alert without sending the first again. The publish is
//! made to fail by a fault-injecting proxy in front of moto's SNS
//! (`vigil_e2e::fault_proxy`, through `AWS_ENDPOINT_URL_SNS`): SNS answers
//! `KMSDisabled`, as it does when the topic's key is disabled.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vigil_e2e::fault_proxy::{Fault, FaultProxy};
use vigil_e2e::{
    assert_duplicate_delivery_alerts_once, drain, function_env, idempotency_status,
    items_with_prefix, moto_endpoint, own_sample_event, sdk, state_table, topic_with_queue, unique,
    LambdaFunction,
};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_securityhub"))
}

/// The project's own HIGH S3.8 control failure, with a fresh event id (a
/// Security Hub finding no direct source also delivers, so it alerts).
fn control_event() -> Value {
    own_sample_event("securityhub", "control-s3-public-access-failed.json")
}

/// The sample's finding twice over, the copy about another bucket and
/// carrying `marker` in its id (letters and digits: it reaches the publish
/// body unescaped).
fn two_finding_event(marker: &str) -> Value {
    let mut event = control_event();
    let first = event["detail"]["findings"][0].clone();
    let mut second = first.clone();
    second["Id"] = format!(
        "arn:aws:securityhub:eu-west-1:111122223333:security-control/S3.8/finding/{marker}"
    )
    .into();
    second["Resources"][0]["Id"] = "arn:aws:s3:::example-other-bucket".into();
    event["detail"]["findings"] = vec![first, second].into();
    event
}

fn uids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let ocsf: Value = serde_json::from_str(m["Message"].as_str().unwrap()).unwrap();
            ocsf["finding_info"]["uid"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_duplicate_delivery_alerts_once_and_leaves_its_records() {
    assert_duplicate_delivery_alerts_once(binary(), &control_event()).await;
}

#[tokio::test]
async fn a_failed_second_publish_is_retried_without_sending_the_first_twice() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let table = state_table(&sdk, "vigil-state").await.unwrap();
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("sh-partial")).await.unwrap();
    let marker = unique("secondfinding").replace('-', "0");
    let failing = Arc::new(AtomicBool::new(true));
    let (armed, needle) = (failing.clone(), marker.clone());
    let proxy = FaultProxy::start(&endpoint, move |r| {
        (armed.load(Ordering::SeqCst) && r.is_action("Publish") && r.body_contains(&needle))
            .then_some(Fault {
                status: 400,
                code: "KMSDisabled",
            })
    });
    let mut env = function_env(&endpoint, &topic_arn, &table);
    env.push(("AWS_ENDPOINT_URL_SNS", &proxy.url));
    let Some(function) = LambdaFunction::start(binary(), &env) else {
        return;
    };
    let event = two_finding_event(&marker);
    let first_uid = event["detail"]["findings"][0]["Id"].as_str().unwrap();

    // The second publish fails: the first alert is out, the invocation fails.
    let err = function.invoke(&event).unwrap_err();
    assert!(err.0.contains("not delivered"), "{err}");
    assert!(proxy.injected() >= 1, "the fault was injected");
    let got = uids(
        &drain(&sdk, &queue_url, 1, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        first_uid.ends_with(got[0].rsplit('/').next().unwrap()),
        "{got:?}"
    );
    let id = event["id"].as_str().unwrap();
    assert_ne!(
        idempotency_status(&sdk, &table, id)
            .await
            .unwrap()
            .as_deref(),
        Some("COMPLETE"),
        "a failed event is not recorded as done"
    );
    let logs = function.logs();
    assert!(
        logs.contains("KMSDisabled"),
        "the failure is logged:\n{logs}"
    );

    // SNS recovers; EventBridge retries the same event: only the second
    // alert goes out. A further duplicate alerts nothing.
    failing.store(false, Ordering::SeqCst);
    let out = function
        .invoke(&event)
        .unwrap_or_else(|e| panic!("{e}\n{}", function.logs()));
    let again = function.invoke(&event).unwrap();
    assert_eq!(again, out, "{again}");
    let got = uids(
        &drain(&sdk, &queue_url, 1, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), 1, "only the second alert on the retry: {got:?}");
    assert!(got[0].contains(&marker), "{got:?}");
    assert_eq!(
        idempotency_status(&sdk, &table, id)
            .await
            .unwrap()
            .as_deref(),
        Some("COMPLETE")
    );
    assert_eq!(
        items_with_prefix(&sdk, &table, "fp#").await.unwrap().len(),
        2
    );
}

//! Correlations through the real `cloudtrail` binary on moto: two function
//! processes (two Lambda instances) racing on the same window of the state
//! table fire a bundled correlation exactly once, whatever order the events
//! arrive in; its near miss fires nothing.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vigil_e2e::sequences::{eventbridge, fired_groups, firing_and_near_miss};
use vigil_e2e::{
    drain, function_env, moto_endpoint, sdk, state_table, topic_with_queue, unique, LambdaFunction,
};

const BRUTE_FORCE: &str = "Console brute force against one user";

/// Invokes `function` with each of `events` (EventBridge envelopes).
fn invoke_all(function: &LambdaFunction, events: &[Value]) {
    for e in events {
        function
            .invoke(e)
            .unwrap_or_else(|err| panic!("{err}\nlogs:\n{}", function.logs()));
    }
}

#[tokio::test]
async fn two_instances_racing_on_one_window_alert_once_and_a_near_miss_not_at_all() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let table = state_table(&sdk, "corr-fn").await.unwrap();
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("corr-fn")).await.unwrap();
    let env = function_env(&endpoint, &topic_arn, &table);
    let binary = Path::new(env!("CARGO_BIN_EXE_cloudtrail"));
    let (Some(a), Some(b)) = (
        LambdaFunction::start(binary, &env),
        LambdaFunction::start(binary, &env),
    ) else {
        return;
    };
    let (fires, near) = firing_and_near_miss("console_brute_force");
    let run = unique("ev");
    // Newest first: out of order, as EventBridge may deliver.
    let burst: Vec<Value> = fires
        .events
        .iter()
        .rev()
        .enumerate()
        .map(|(i, r)| eventbridge(r, &format!("{run}-fires-{i}")))
        .collect();
    let (even, odd): (Vec<_>, Vec<_>) = burst
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let even: Vec<Value> = even.into_iter().map(|(_, e)| e).collect();
    let odd: Vec<Value> = odd.into_iter().map(|(_, e)| e).collect();
    std::thread::scope(|s| {
        s.spawn(|| invoke_all(&a, &even));
        s.spawn(|| invoke_all(&b, &odd));
    });
    let received = drain(&sdk, &queue_url, 1, Duration::from_secs(15))
        .await
        .unwrap();
    let subjects: Vec<&str> = received
        .iter()
        .filter_map(|m| m["Subject"].as_str())
        .collect();
    assert_eq!(
        received.len(),
        1,
        "{subjects:?}\nlogs A:\n{}\nlogs B:\n{}",
        a.logs(),
        b.logs()
    );
    assert!(subjects[0].contains(BRUTE_FORCE), "{subjects:?}");
    let message = received[0]["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cloudtrailv2"),
        "the events' console links: {message}"
    );
    // Both window sets hold the burst; each fired once, by one instance.
    let fired = fired_groups(&sdk, &table).await;
    assert_eq!(fired.len(), 2, "{fired:?}");

    let near_events: Vec<Value> = near
        .events
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            // Another user, so the burst's fired windows do not hide a firing.
            r["userIdentity"]["userName"] = "near-miss".into();
            eventbridge(&r, &format!("{run}-near-{i}"))
        })
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| invoke_all(&a, &near_events[..near_events.len() / 2]));
        s.spawn(|| invoke_all(&b, &near_events[near_events.len() / 2..]));
    });
    let received = drain(&sdk, &queue_url, 0, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(received.is_empty(), "{received:?}");
    assert_eq!(fired_groups(&sdk, &table).await.len(), 2);
}

use serde_json::{json, Value};

use super::*;
use crate::detect::{Detector, RuleSet};

/// A failed console sign-in for `user` at `time`, with `id`.
fn failed_login(user: &str, time: &str, id: &str) -> Value {
    json!({
        "eventVersion": "1.09", "eventTime": time, "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
        "eventID": id, "eventType": "AwsConsoleSignIn", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111122223333:user/{user}"),
            "accountId": "111122223333", "userName": user},
        "responseElements": {"ConsoleLogin": "Failure"}
    })
}

fn observations(rules: &RuleSet, records: &[Value]) -> Vec<Observation> {
    let mut out = Vec::new();
    for r in records {
        rules.correlate(r, &mut out);
    }
    out
}

fn burst(user: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            failed_login(
                user,
                &format!("2026-03-03T08:0{}:{:02}Z", i / 6, i * 7 % 60),
                &format!("ev-{user}-{i}"),
            )
        })
        .collect()
}

fn is_brute_force(f: &Fired) -> bool {
    f.correlation.title == "Console brute force against one user"
}

#[tokio::test]
async fn memory_store_fires_each_window_once_across_batches() {
    let rules = RuleSet::bundled().unwrap();
    let store = MemoryCorrelations::new();
    let obs = observations(&rules, &burst("alice", 12));
    let (a, b) = obs.split_at(obs.len() / 2);
    let mut fired = store.observe(a).await.unwrap();
    fired.extend(store.observe(b).await.unwrap());
    fired.extend(store.observe(b).await.unwrap());
    let brute: Vec<_> = fired.iter().filter(|f| is_brute_force(f)).collect();
    assert!(!brute.is_empty() && brute.len() <= 2, "{}", brute.len());
    let mut keys: Vec<_> = brute.iter().map(|f| (f.window, f.group.clone())).collect();
    keys.dedup();
    assert_eq!(keys.len(), brute.len(), "a window fired twice");
}

#[tokio::test]
async fn nine_failures_do_not_fire_and_a_down_store_errors() {
    let rules = RuleSet::bundled().unwrap();
    let store = MemoryCorrelations::new();
    let fired = store
        .observe(&observations(&rules, &burst("bob", 9)))
        .await
        .unwrap();
    assert!(!fired.iter().any(is_brute_force));
    store.set_unavailable(true);
    let err = store.observe(&observations(&rules, &burst("bob", 1))).await;
    assert!(matches!(err, Err(CorrelateError::Unavailable(_))));
}

#[tokio::test]
async fn the_finding_names_group_count_window_and_linked_events() {
    let rules = RuleSet::bundled().unwrap();
    let store = MemoryCorrelations::new();
    let fired = store
        .observe(&observations(&rules, &burst("alice", 10)))
        .await
        .unwrap();
    let f = finding(fired.iter().find(|f| is_brute_force(f)).expect("fires"));
    assert_eq!(f.source, crate::Source::CloudTrail);
    assert_eq!(
        f.rule.as_ref().unwrap().title,
        "Console brute force against one user"
    );
    assert_eq!(f.severity, crate::Severity::High);
    assert_eq!(f.account_id, "111122223333");
    assert!(
        f.title.contains("alice") && f.title.contains("10 events"),
        "{}",
        f.title
    );
    assert_eq!(f.count, 10);
    assert_eq!(f.evidence["group.userIdentity.userName"], "alice");
    assert!(f.evidence["event_1"].contains("ConsoleLogin ev-alice-0 https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/ev-alice-0"), "{}", f.evidence["event_1"]);
    assert!(f.evidence.contains_key("event_5") && !f.evidence.contains_key("event_6"));
    assert_eq!(
        f.actor.as_ref().unwrap().user_name.as_deref(),
        Some("alice")
    );
    assert!(f
        .links
        .console
        .as_deref()
        .unwrap()
        .ends_with("#/events/ev-alice-0"));
}

#[tokio::test]
async fn hostile_group_values_cannot_forge_lines_or_links() {
    let rules = RuleSet::bundled().unwrap();
    let store = MemoryCorrelations::new();
    let user = "mallory\n*URGENT* <https://evil.example|click>";
    let mut events = burst("x", 10);
    for (i, e) in events.iter_mut().enumerate() {
        e["userIdentity"]["userName"] = json!(user);
        e["eventID"] = json!(format!("id/../{i}?x=<y>"));
        e["awsRegion"] = json!("evil.example/x?");
    }
    let fired = store.observe(&observations(&rules, &events)).await.unwrap();
    let f = finding(fired.iter().find(|f| is_brute_force(f)).expect("fires"));
    assert!(!f.title.contains('\n'), "{}", f.title);
    assert!(f.evidence.values().all(|v| !v.contains('\n')));
    assert!(f.links.console.is_none(), "a bad region makes no link");
    assert!(!f.evidence["event_1"].contains("https://"));
}

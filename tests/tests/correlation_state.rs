//! The DynamoDB correlation store on moto: atomic counts, exactly-once
//! firing when instances race on one window, and writes that stop once a
//! window fired.

use std::sync::Arc;

use serde_json::{json, Value};

use vigil::correlate::{CorrelationStore, DynamoCorrelations, Fired, Observation};
use vigil::detect::{Detector, RuleSet};
use vigil_e2e::{moto_endpoint, sdk, state_table};

const BRUTE_FORCE: &str = "Console brute force against one user";

fn failed_login(user: &str, second: u32, id: &str) -> Value {
    json!({
        "eventVersion": "1.09", "eventTime": format!("2026-03-03T08:0{}:{:02}Z", second / 60, second % 60),
        "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7", "eventID": id, "eventType": "AwsConsoleSignIn",
        "recipientAccountId": "111122223333",
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

fn brute_force(fired: &[Fired]) -> usize {
    fired
        .iter()
        .filter(|f| f.correlation.title == BRUTE_FORCE)
        .count()
}

/// Two stores (two instances' clients) each send one event at a time of a
/// 20-failure burst, racing: every window that reaches 10 fires exactly once
/// in all, and the count in the table is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_on_one_window_fire_once() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = state_table(&sdk, "corr-race").await.unwrap();
    let rules = Arc::new(RuleSet::bundled().unwrap());
    // 20 failures in 100 s: inside one window of each set (10 min, offset 5).
    let events: Vec<Value> = (0..20)
        .map(|i| failed_login("alice", 10 + i * 5, &format!("race-{i}")))
        .collect();
    let mut tasks = Vec::new();
    for half in 0..2 {
        let store = DynamoCorrelations::from_sdk(&sdk, table.clone());
        let mine: Vec<Value> = events.iter().skip(half).step_by(2).cloned().collect();
        let rules = rules.clone();
        tasks.push(tokio::spawn(async move {
            let mut fired = 0;
            for e in &mine {
                let obs = observations(&rules, std::slice::from_ref(e));
                fired += brute_force(&store.observe(&obs).await.unwrap());
            }
            fired
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 2, "one alert per window set, whichever instance");
    let items = aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let brute: Vec<_> = items
        .iter()
        .filter(|i| {
            i.get("group")
                .and_then(|g| g.as_s().ok())
                .is_some_and(|g| g.contains("alice"))
        })
        .filter(|i| i.contains_key("fired"))
        .collect();
    assert_eq!(brute.len(), 2, "both windows marked fired");
    for item in brute {
        let c: u64 = item["c"].as_n().unwrap().parse().unwrap();
        assert!((10..=20).contains(&c), "count {c}");
        assert!(item.contains_key("expiration"));
    }
}

/// One batch of a whole burst costs one update per window item and one
/// claim per firing; later events of a fired window are refused by the
/// condition (no growth), and a near miss of 9 never fires.
#[tokio::test]
async fn a_batch_costs_one_write_per_window_and_a_near_miss_stays_quiet() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = state_table(&sdk, "corr-cost").await.unwrap();
    let rules = RuleSet::bundled().unwrap();
    let store = DynamoCorrelations::from_sdk(&sdk, table);
    let nine: Vec<Value> = (0..9)
        .map(|i| failed_login("bob", 10 + i, &format!("nm-{i}")))
        .collect();
    let fired = store.observe(&observations(&rules, &nine)).await.unwrap();
    assert_eq!(brute_force(&fired), 0);
    let batch_items = store.writes();
    assert!(
        batch_items > 0 && batch_items <= 8,
        "{batch_items} writes for 9 events"
    );
    let tenth = [failed_login("bob", 30, "nm-9")];
    let before = store.writes();
    let fired = store.observe(&observations(&rules, &tenth)).await.unwrap();
    assert_eq!(brute_force(&fired), 2);
    let again = store.observe(&observations(&rules, &tenth)).await.unwrap();
    assert_eq!(brute_force(&again), 0, "a fired window never fires again");
    assert!(store.writes() > before);
}

#[path = "../../shared/benches/cloudtrail_data/mod.rs"]
mod cloudtrail_data;

/// The cost figure in docs/detections.md: DynamoDB `UpdateItem` requests
/// per 1,000 records of the generated corpus, sent as log files of 1,000
/// records (one state call per file) and one record at a time (the
/// EventBridge function), with a brute force mixed in so something fires.
#[tokio::test]
async fn writes_per_thousand_records() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = state_table(&sdk, "corr-cost").await.unwrap();
    let rules = RuleSet::bundled().unwrap();
    let mut records = cloudtrail_data::records(0x5eed_c10d_7a11, 5_000);
    for i in 0..12 {
        records.insert(
            i * 400,
            failed_login("carol", 10 + i as u32 * 7, &format!("cost-{i}")),
        );
    }
    let per_file = DynamoCorrelations::from_sdk(&sdk, table.clone());
    let mut observations = 0;
    for file in records.chunks(1000) {
        let obs = observations_of(&rules, file);
        observations += obs.len();
        per_file.observe(&obs).await.unwrap();
    }
    let per_event =
        DynamoCorrelations::from_sdk(&sdk, state_table(&sdk, "corr-cost1").await.unwrap());
    for r in &records {
        per_event
            .observe(&observations_of(&rules, std::slice::from_ref(r)))
            .await
            .unwrap();
    }
    let (mut counted, mut joining) = (0, 0);
    for r in &records {
        let obs = observations_of(&rules, std::slice::from_ref(r));
        counted += usize::from(obs.iter().any(|o| !o.join_only));
        joining += usize::from(obs.iter().any(|o| o.join_only));
    }
    eprintln!("records a counted rule matches: {counted}; join-only: {joining}");
    let per_k = |w: u64| w as f64 * 1000.0 / records.len() as f64;
    eprintln!(
        "correlation cost on {} records: {observations} observations; UpdateItem per 1,000 records: {:.1} in files of 1,000, {:.1} one event at a time; BatchGetItem (join-only lookups) per 1,000 records: {:.1} in files, {:.1} one at a time",
        records.len(),
        per_k(per_file.writes()),
        per_k(per_event.writes()),
        per_k(per_file.reads()),
        per_k(per_event.reads())
    );
    assert!(observations > 0);
    assert!(
        per_file.writes() < per_event.writes(),
        "a file's batch is aggregated per item"
    );
    assert!(
        per_event.writes() <= observations as u64 + 4,
        "one update per observation, plus claims"
    );
}

fn observations_of(rules: &RuleSet, records: &[Value]) -> Vec<Observation> {
    observations(rules, records)
}

const NEW_KEY: &str = "New access key used from another address than the one that created it";

fn key_call(name: &str, minute: u32, ip: &str, id: &str) -> Value {
    let mut r = json!({
        "eventVersion": "1.09", "eventTime": format!("2026-03-04T08:{minute:02}:00Z"),
        "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": ip, "eventID": id, "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/deploy",
            "accountId": "111122223333", "userName": "deploy", "accessKeyId": "AKIAJOINONLYTEST0001"}
    });
    if name == "CreateAccessKey" {
        r["userIdentity"]["accessKeyId"] = json!("AKIAJOINONLYADMIN001");
        r["responseElements"] = json!({"accessKey": {"accessKeyId": "AKIAJOINONLYTEST0001"}});
    }
    r
}

/// A join-only use of a key the table has no window for costs one read and
/// no write; once its creation is counted, a use from another address joins
/// it (a write) and fires.
#[tokio::test]
async fn a_join_only_use_reads_first_and_writes_only_into_an_existing_window() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = state_table(&sdk, "corr-join").await.unwrap();
    let rules = RuleSet::bundled().unwrap();
    let store = DynamoCorrelations::from_sdk(&sdk, table.clone());
    let early_use = [key_call("ListUsers", 5, "203.0.113.50", "j-0")];
    let obs = observations(&rules, &early_use);
    assert!(
        !obs.is_empty() && obs.iter().all(|o| o.join_only),
        "{obs:?}"
    );
    assert!(store.observe(&obs).await.unwrap().is_empty());
    assert_eq!(
        (store.reads(), store.writes()),
        (1, 0),
        "a lookup, no write"
    );
    let items = vigil_e2e::items_with_prefix(&sdk, &table, "corr#")
        .await
        .unwrap();
    assert!(items.is_empty(), "{items:?}");

    let created = [key_call("CreateAccessKey", 0, "198.51.100.7", "j-1")];
    let fired = store
        .observe(&observations(&rules, &created))
        .await
        .unwrap();
    assert!(fired.is_empty());
    let used = [key_call("ListUsers", 10, "203.0.113.50", "j-2")];
    let fired = store.observe(&observations(&rules, &used)).await.unwrap();
    let named = fired
        .iter()
        .filter(|f| f.correlation.title == NEW_KEY)
        .count();
    assert_eq!(named, 2, "one per window set: {fired:?}");
}

//! The test sequences of the bundled correlations (`vigil_tests:
//! sequences:` in rules/correlations/*.yml), read for end-to-end tests that
//! send them through the real functions and `vigil replay`.
//!
//! Each event is written on one line as a JSON flow mapping (`- {...}`), so
//! the events are read line by line without a YAML parser.

use std::path::PathBuf;

use serde_json::Value;

/// One sequence: whether it must fire, and its events in order.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub fires: bool,
    pub events: Vec<Value>,
}

/// The bundled correlation file `rules/correlations/<name>.yml`.
pub fn correlation_file(name: &str) -> PathBuf {
    crate::project_root()
        .join("rules")
        .join("correlations")
        .join(format!("{name}.yml"))
}

/// The sequences of the file `name`, in file order.
pub fn sequences(name: &str) -> Vec<Sequence> {
    let text = std::fs::read_to_string(correlation_file(name)).expect("correlation file");
    let Some((_, tests)) = text.split_once("    sequences:") else {
        return Vec::new();
    };
    let mut out: Vec<Sequence> = Vec::new();
    for line in tests.lines().map(str::trim) {
        if let Some(fires) = line.strip_prefix("- fires:") {
            out.push(Sequence {
                fires: fires.trim() == "true",
                events: Vec::new(),
            });
        } else if let (Some(event), Some(seq)) = (line.strip_prefix("- {"), out.last_mut()) {
            let json: Value = serde_json::from_str(&format!("{{{event}")).expect("event JSON");
            seq.events.push(json);
        }
    }
    out
}

/// The first sequence that fires and the first that must not.
pub fn firing_and_near_miss(name: &str) -> (Sequence, Sequence) {
    let all = sequences(name);
    let pick = |fires: bool| {
        all.iter()
            .find(|s| s.fires == fires)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: no sequence with fires: {fires}"))
    };
    (pick(true), pick(false))
}

/// `record` as EventBridge delivers it to the cloudtrail function, with
/// event id `id`.
pub fn eventbridge(record: &Value, id: &str) -> Value {
    let detail_type = match record["eventSource"].as_str() {
        Some("signin.amazonaws.com") => "AWS Console Sign In via CloudTrail",
        _ => "AWS API Call via CloudTrail",
    };
    let source = record["eventSource"]
        .as_str()
        .and_then(|s| s.strip_suffix(".amazonaws.com"))
        .map_or("aws.cloudtrail".to_string(), |s| format!("aws.{s}"));
    serde_json::json!({
        "version": "0", "id": id, "detail-type": detail_type, "source": source,
        "account": record["recipientAccountId"].as_str().unwrap_or("111122223333"),
        "time": record["eventTime"], "region": record["awsRegion"], "resources": [],
        "detail": record,
    })
}

/// The correlation windows of `table` that fired (`corr#` items with
/// `fired`), by the group they counted.
pub async fn fired_groups(sdk: &aws_config::SdkConfig, table: &str) -> Vec<String> {
    crate::items_with_prefix(sdk, table, "corr#")
        .await
        .expect("scan the state table")
        .iter()
        .filter(|i| i.contains_key("fired"))
        .filter_map(|i| i.get("group").and_then(|g| g.as_s().ok()).cloned())
        .collect()
}

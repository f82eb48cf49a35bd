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

/// One bundled correlation and its test sequences.
#[derive(Debug, Clone)]
pub struct Case {
    /// The file stem under rules/correlations/.
    pub file: String,
    /// The correlation's title, which its alert names.
    pub title: String,
    pub sequences: Vec<Sequence>,
}

/// Every bundled correlation (one per file of rules/correlations/, as the
/// bundled rule set loads them), with its sequences, in file order.
pub fn bundled_cases() -> Vec<Case> {
    let rules = vigil::detect::RuleSet::bundled().expect("the bundled rules load");
    let mut cases: Vec<Case> = rules
        .correlations()
        .iter()
        .filter_map(|c| {
            let file = c
                .origin
                .strip_prefix("bundled:correlations/")?
                .strip_suffix(".yml")?;
            Some(Case {
                file: file.to_string(),
                title: c.title.clone(),
                sequences: sequences(file),
            })
        })
        .collect();
    cases.sort_by(|a, b| a.file.cmp(&b.file));
    cases
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

/// How many of `received` (SNS envelopes at the subscriber) name `title`,
/// in their subject or their message.
pub fn naming(received: &[Value], title: &str) -> usize {
    received
        .iter()
        .filter(|m| {
            ["Subject", "Message"]
                .iter()
                .any(|k| m[*k].as_str().is_some_and(|s| s.contains(title)))
        })
        .count()
}

/// Whether the sequence `index` of `case` got what it promises: exactly one
/// alert naming the correlation when it fires, none when it must not. The
/// error says which sequence, what arrived and `logs`.
pub fn verdict(
    case: &Case,
    index: usize,
    received: &[Value],
    logs: &dyn Fn() -> String,
) -> Result<(), String> {
    let seq = &case.sequences[index];
    let named = naming(received, &case.title);
    if named == usize::from(seq.fires) {
        return Ok(());
    }
    let subjects: Vec<&str> = received
        .iter()
        .filter_map(|m| m["Subject"].as_str())
        .collect();
    Err(format!(
        "{} sequence {index} (fires: {}): {named} alerts naming {:?}; subjects {subjects:?}\nlogs:\n{}",
        case.file,
        seq.fires,
        case.title,
        logs()
    ))
}

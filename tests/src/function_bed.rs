//! A function binary as `template.yaml` runs it, on moto, and what to look
//! at afterwards: its state table (idempotency and fingerprint records), its
//! subscriber queue and the metrics in its log.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::{
    drain, moto_endpoint, own_events, sdk, state_table, topic_with_queue, unique, LambdaFunction,
};

/// Every item of `table` whose `id` starts with `prefix` (`idem#`, `fp#`),
/// read consistently.
pub async fn items_with_prefix(
    sdk: &SdkConfig,
    table: &str,
    prefix: &str,
) -> anyhow::Result<Vec<HashMap<String, AttributeValue>>> {
    let items = aws_sdk_dynamodb::Client::new(sdk)
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await?
        .items
        .unwrap_or_default();
    Ok(items
        .into_iter()
        .filter(|i| {
            i.get("id")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|id| id.starts_with(prefix))
        })
        .collect())
}

/// The environment a pipeline function runs with in `template.yaml`, on
/// moto: its topic, and the one state table as both `VIGIL_STATE_TABLE` and
/// `VIGIL_IDEMPOTENCY_TABLE` (as the template's Globals set them).
pub fn function_env<'a>(
    endpoint: &'a str,
    topic_arn: &'a str,
    table: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("VIGIL_TOPIC_ARN", topic_arn),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("VIGIL_STATE_TABLE", table),
        ("VIGIL_IDEMPOTENCY_TABLE", table),
    ]
}

/// The `status` of the idempotency record of `event_id` (`idem#<id>`:
/// `INPROGRESS` or `COMPLETE`), or `None` when there is none.
pub async fn idempotency_status(
    sdk: &SdkConfig,
    table: &str,
    event_id: &str,
) -> anyhow::Result<Option<String>> {
    let item = aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(format!("idem#{event_id}")))
        .consistent_read(true)
        .send()
        .await?
        .item;
    Ok(item.and_then(|i| i.get("status").and_then(|s| s.as_s().ok()).cloned()))
}

/// A function binary running as the template runs it, on moto: its own
/// topic with an SQS subscriber, and the one state table as both
/// `VIGIL_STATE_TABLE` and `VIGIL_IDEMPOTENCY_TABLE`.
pub struct FunctionBed {
    pub sdk: SdkConfig,
    pub table: String,
    pub topic_arn: String,
    queue_url: String,
    pub function: LambdaFunction,
}

impl FunctionBed {
    /// Starts `binary` with `extra` settings on top of the template's.
    /// `None` without moto or cargo-lambda (see [`moto_endpoint`]).
    pub async fn start(binary: &Path, extra: &[(&str, &str)]) -> Option<FunctionBed> {
        let endpoint = moto_endpoint()?;
        let sdk = sdk().await;
        let table = state_table(&sdk, "vigil-state").await.expect("state table");
        let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("fn-state"))
            .await
            .expect("topic and queue");
        let mut env = function_env(&endpoint, &topic_arn, &table);
        env.extend_from_slice(extra);
        let function = LambdaFunction::start(binary, &env)?;
        Some(FunctionBed {
            sdk,
            table,
            topic_arn,
            queue_url,
            function,
        })
    }

    /// Invokes the function; on failure the error and the function's logs.
    pub fn invoke(&self, event: &Value) -> Result<Value, String> {
        self.function
            .invoke(event)
            .map_err(|e| format!("{e}\nlogs:\n{}", self.function.logs()))
    }

    /// What the subscriber received since the last call: waits for
    /// `expected` messages (then for stragglers), at most 20 s.
    pub async fn received(&self, expected: usize) -> Vec<Value> {
        drain(
            &self.sdk,
            &self.queue_url,
            expected,
            Duration::from_secs(20),
        )
        .await
        .expect("the subscriber queue")
    }
}

/// Runs `binary` as the template does ([`FunctionBed`]) on `event` twice, as
/// EventBridge may deliver it, and checks what Vigil promises: the alerts of
/// the first delivery at the subscriber and none of the second, the stored
/// result returned the second time, the event's idempotency record
/// `COMPLETE` and one fingerprint record per alert in the state table.
pub async fn assert_duplicate_delivery_alerts_once(binary: &Path, event: &Value) {
    let Some(bed) = FunctionBed::start(binary, &[]).await else {
        return;
    };
    let first = bed.invoke(event).unwrap_or_else(|e| panic!("{e}"));
    let alerts = first["alerts"].as_u64().expect("an alert count") as usize;
    assert!(alerts >= 1, "the sample alerts: {first}");
    assert_eq!(bed.received(alerts).await.len(), alerts, "{first}");
    let second = bed.invoke(event).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second, first, "the duplicate gets the stored result");
    assert_eq!(bed.received(0).await, Vec::<Value>::new(), "nothing twice");
    let logs = bed.function.logs();
    assert!(logs.contains("duplicate delivery"), "{logs}");

    let id = event["id"].as_str().expect("an EventBridge event id");
    let status = idempotency_status(&bed.sdk, &bed.table, id).await.unwrap();
    assert_eq!(status.as_deref(), Some("COMPLETE"));
    let fingerprints = items_with_prefix(&bed.sdk, &bed.table, "fp#")
        .await
        .unwrap();
    assert_eq!(fingerprints.len(), alerts, "{fingerprints:?}");
}

/// The project's own sample `examples/events/<sub>/<file>` (one EventBridge
/// event) with a fresh event id, so tests sharing a state table do not see
/// each other's deliveries as duplicates.
pub fn own_sample_event(sub: &str, file: &str) -> Value {
    let path = own_events(sub).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: Value = serde_json::from_str(&text).expect("a JSON event");
    event["id"] = unique(sub).into();
    event
}

/// How many EMF lines in `logs` (a function's output) count one error of
/// `kind` (the `Errors` metric with that `error_kind`).
pub fn errors_counted(logs: &str, kind: &str) -> usize {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some() && v["error_kind"] == kind)
        .filter(|v| v["Errors"].as_f64() == Some(1.0))
        .count()
}

//! The real `cloudtrail-logs` binary with its DynamoDB state as the template
//! gives it (`VIGIL_STATE_TABLE` = `VIGIL_IDEMPOTENCY_TABLE` = a moto table
//! shaped as `StateTable`): the same S3 notification delivered twice (SQS is
//! at least once; S3 may notify twice) alerts once, and the finding's
//! fingerprint record is in the table. Log-file records carry no EventBridge
//! event id, so here the fingerprint state, not an idempotency record, is
//! what stops the repeat.

use std::io::Write;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};
use vigil_e2e::{items_with_prefix, moto_endpoint, own_events, sdk, unique, FunctionBed};

/// One CloudTrail log file holding the project's StopLogging sample record.
fn log_file() -> Vec<u8> {
    let file = own_events("cloudtrail").join("cloudtrail-stop-logging.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"Records": [event["detail"]]}).to_string().as_bytes())
        .unwrap();
    gz.finish().unwrap()
}

/// The SQS event Lambda's event source mapping builds for one S3
/// `ObjectCreated` notification (the body S3 sends).
fn sqs_event(message_id: &str, bucket: &str, key: &str) -> Value {
    let notification = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "awsRegion": "us-east-1", "eventTime": "2024-05-01T10:05:30.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "vigil",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": key, "size": 1, "sequencer": "0066"}}}]});
    json!({"Records": [{
        "messageId": message_id, "receiptHandle": "handle", "body": notification.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1714557600000",
            "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1714557600001"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:vigil-log-files", "awsRegion": "us-east-1",
    }]})
}

#[tokio::test]
async fn the_same_log_file_notified_twice_alerts_once() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let bucket = unique("org-trail-dup");
    let key = "AWSLogs/o-e2etest01/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T1000Z_dup.json.gz";
    let s3 = aws_sdk_s3::Client::new(&sdk);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(ByteStream::from(log_file()))
        .send()
        .await
        .unwrap();
    // Two SQS messages (two notifications of one object), one invocation each.
    let binary = Path::new(env!("CARGO_BIN_EXE_cloudtrail-logs"));
    let Some(bed) = FunctionBed::start(binary, &[]).await else {
        return;
    };
    let first = bed
        .invoke(&sqs_event(&unique("msg"), &bucket, key))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first["batchItemFailures"], json!([]), "{first}");
    let alerts = bed.received(1).await;
    let logs = bed.function.logs();
    assert!(!alerts.is_empty(), "the sample record alerts:\n{logs}");
    assert!(
        alerts.iter().any(|m| m["Subject"]
            .as_str()
            .is_some_and(|s| s.contains("CloudTrail logging stopped"))),
        "{alerts:?}"
    );
    let second = bed
        .invoke(&sqs_event(&unique("msg"), &bucket, key))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second["batchItemFailures"], json!([]), "{second}");
    assert_eq!(
        bed.received(0).await,
        Vec::<Value>::new(),
        "the second notification alerts nothing:\n{}",
        bed.function.logs()
    );
    let fingerprints = items_with_prefix(&bed.sdk, &bed.table, "fp#")
        .await
        .unwrap();
    assert_eq!(fingerprints.len(), alerts.len(), "{fingerprints:?}");
}

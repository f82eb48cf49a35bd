//! Log files through the pipeline, and SQS batches of them, from memory.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use flate2::write::GzEncoder;
use serde_json::{json, Value};

use super::handler::handle_batch;
use super::*;
use crate::config::Config;
use crate::detect::Detector;
use crate::model::Source;
use crate::sinks::MemorySink;
use crate::sources::log_file::EventStream;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn log_file(names: &[&str]) -> Vec<u8> {
    let records: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({"eventVersion": "1.08", "eventName": n, "eventSource": "iam.amazonaws.com",
            "awsRegion": "us-east-1", "recipientAccountId": "111122223333"})
        })
        .collect();
    json!({"Records": records}).to_string().into_bytes()
}

/// Matches records whose `eventName` is in the map, with that rule.
struct ByName(HashMap<&'static str, RuleMeta>);

impl ByName {
    fn new(names: &[(&'static str, crate::model::Severity)]) -> Arc<ByName> {
        Arc::new(ByName(
            names
                .iter()
                .map(|(n, sev)| {
                    (
                        *n,
                        RuleMeta {
                            id: format!("rule-{n}"),
                            title: format!("{n} seen"),
                            description: "test rule".into(),
                            severity: *sev,
                            tactics: vec![],
                            techniques: vec![],
                            false_positives: vec![],
                            references: vec![],
                        },
                    )
                })
                .collect(),
        ))
    }
}

impl Detector for ByName {
    fn detect<'a>(&'a self, record: &Value, hits: &mut Vec<&'a RuleMeta>) {
        if let Some(rule) = record["eventName"].as_str().and_then(|n| self.0.get(n)) {
            hits.push(rule);
        }
    }

    fn rule_count(&self) -> usize {
        self.0.len()
    }
}

fn pipeline(sink: MemorySink) -> Pipeline {
    use crate::model::Severity::*;
    Pipeline::builder(&Config::default())
        .accept(&[Source::CloudTrail])
        .detector(ByName::new(&[("StopLogging", High), ("ListBuckets", Low)]))
        .sink(Box::new(sink))
        .build()
}

#[tokio::test]
async fn processes_a_file_through_the_pipeline() {
    let sink = MemorySink::new();
    let p = pipeline(sink.clone());
    let bytes = gzip(&log_file(&[
        "GetObject",
        "StopLogging",
        "ListBuckets",
        "AssumeRole",
    ]));
    let report = process_file(&p, EventStream::spawn(std::io::Cursor::new(bytes.clone())))
        .await
        .unwrap();
    assert_eq!(
        report,
        FileReport {
            records: 4,
            matched: 2,
            findings: 2,
            alerts: 1,
            refused: 0,
            bytes: bytes.len() as u64,
        }
    );
    assert_eq!(sink.sent().len(), 1);
    assert!(
        sink.sent()[0].subject.starts_with("[HIGH]"),
        "{}",
        sink.sent()[0].subject
    );
}

#[tokio::test]
async fn a_failed_delivery_fails_the_file_and_a_bad_record_does_not() {
    let p = pipeline(MemorySink::failing());
    let bytes = log_file(&["StopLogging", "GetObject"]);
    let err = process_file(&p, EventStream::spawn(std::io::Cursor::new(bytes)))
        .await
        .unwrap_err();
    assert!(matches!(err, LogFileError::Delivery(_)), "{err}");

    // A matched record the pipeline cannot read (no eventSource) is
    // counted and skipped.
    let sink = MemorySink::new();
    let p = pipeline(sink.clone());
    let bytes = br#"{"Records":[{"eventName":"StopLogging"},{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com"}]}"#;
    let report = process_file(&p, EventStream::spawn(&bytes[..]))
        .await
        .unwrap();
    assert_eq!((report.records, report.refused, report.alerts), (2, 1, 1));
}

/// Log files from memory, by key.
struct MemoryFiles(HashMap<String, Vec<u8>>);

impl LogFiles for MemoryFiles {
    async fn open(&self, object: &ObjectRef) -> Result<EventStream, LogFileError> {
        let bytes = self
            .0
            .get(&object.key)
            .cloned()
            .ok_or_else(|| LogFileError::Fetch {
                object: object.to_string(),
                message: "NoSuchKey".into(),
            })?;
        Ok(EventStream::from_async(std::io::Cursor::new(bytes)))
    }
}

fn message(id: &str, body: Value) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_string());
    m.body = Some(body.to_string());
    m
}

fn notification(key: &str) -> Value {
    json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "trail"}, "object": {"key": key}}}]})
}

#[tokio::test]
async fn only_failed_messages_are_reported() {
    let sink = MemorySink::new();
    let p = pipeline(sink.clone());
    let good = gzip(&log_file(&["StopLogging", "GetObject"]));
    let corrupt = gzip(&log_file(&["ListBuckets", "GetObject"]));
    let files = MemoryFiles(HashMap::from([
        ("good 1.json.gz".to_string(), good.clone()),
        ("good2.json.gz".to_string(), good.clone()),
        // Truncated: the records before the damage may be processed,
        // so it holds only a record below the alerting threshold.
        (
            "corrupt.json.gz".to_string(),
            corrupt[..corrupt.len() - 10].to_vec(),
        ),
        ("notjson.json.gz".to_string(), gzip(b"<html>")),
    ]));
    let mut event = SqsEvent::default();
    event.records = vec![
        message("m1", notification("good+1.json.gz")),
        message("m2", notification("corrupt.json.gz")),
        message(
            "m3",
            json!({"Type": "Notification", "TopicArn": "t",
            "Message": notification("good2.json.gz").to_string()}),
        ),
        message("m4", notification("notjson.json.gz")),
        message("m5", notification("missing.json.gz")),
        message(
            "m6",
            json!({"Event": "s3:TestEvent", "Service": "Amazon S3"}),
        ),
        message("m7", notification("AWSLogs/1/CloudTrail-Digest/x.json.gz")),
        message("m8", json!("garbage")),
    ];
    let response = handle_batch(&p, &files, event).await.unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m2", "m4", "m5", "m8"]);
    // The two good files alerted.
    assert_eq!(sink.sent().len(), 2);
}

#[tokio::test]
async fn a_failure_without_a_message_id_fails_the_batch() {
    let p = pipeline(MemorySink::new());
    let mut m = message("", json!("garbage"));
    m.message_id = None;
    let mut event = SqsEvent::default();
    event.records = vec![m];
    assert!(handle_batch(&p, &MemoryFiles(HashMap::new()), event)
        .await
        .is_err());
}

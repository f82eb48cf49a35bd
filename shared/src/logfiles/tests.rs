//! Log files through the pipeline, and SQS batches of them, from memory.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use flate2::write::GzEncoder;
use serde_json::{json, Value};

use super::handler::{handle_batch, Batch};
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
                            kind: crate::detect::RuleKind::Attack,
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
    let report = process_file(
        &p,
        &object("f.json.gz"),
        EventStream::spawn(std::io::Cursor::new(bytes.clone())),
        None,
    )
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
            skipped: 0,
            bytes: bytes.len() as u64,
            observations: 0,
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
    let err = process_file(
        &p,
        &object("f.json.gz"),
        EventStream::spawn(std::io::Cursor::new(bytes)),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LogFileError::Delivery(_)), "{err}");

    // A matched record the pipeline cannot read (no eventSource) is
    // counted and skipped.
    let sink = MemorySink::new();
    let p = pipeline(sink.clone());
    let bytes = br#"{"Records":[{"eventName":"StopLogging"},{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com"}]}"#;
    let report = process_file(
        &p,
        &object("f.json.gz"),
        EventStream::spawn(&bytes[..]),
        None,
    )
    .await
    .unwrap();
    assert_eq!((report.records, report.refused, report.alerts), (2, 1, 1));
}

fn object(key: &str) -> ObjectRef {
    ObjectRef {
        bucket: "trail".into(),
        key: key.into(),
        size: None,
        version_id: None,
    }
}

/// Log files from memory, by key, each taking `delay` to open.
struct MemoryFiles {
    files: HashMap<String, Vec<u8>>,
    delay: std::time::Duration,
}

impl MemoryFiles {
    fn new<const N: usize>(files: [(String, Vec<u8>); N]) -> MemoryFiles {
        MemoryFiles {
            files: HashMap::from(files),
            delay: std::time::Duration::ZERO,
        }
    }
}

impl LogFiles for MemoryFiles {
    async fn open(&self, object: &ObjectRef) -> Result<EventStream, LogFileError> {
        tokio::time::sleep(self.delay).await;
        let bytes = self
            .files
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

/// The messages of `event` the batch reports as failed.
async fn failed_ids(
    p: &Pipeline,
    files: &MemoryFiles,
    event: SqsEvent,
    batch: Batch<'_>,
) -> Vec<String> {
    let response = handle_batch(p, files, event, batch).await.unwrap();
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

#[tokio::test]
async fn only_failed_messages_are_reported() {
    let sink = MemorySink::new();
    let p = pipeline(sink.clone());
    let good = gzip(&log_file(&["StopLogging", "GetObject"]));
    let corrupt = gzip(&log_file(&["ListBuckets", "GetObject"]));
    let files = MemoryFiles::new([
        ("good 1.json.gz".to_string(), good.clone()),
        ("good2.json.gz".to_string(), good.clone()),
        // Truncated: the records before the damage may be processed,
        // so it holds only a record below the alerting threshold.
        (
            "corrupt.json.gz".to_string(),
            corrupt[..corrupt.len() - 10].to_vec(),
        ),
        ("notjson.json.gz".to_string(), gzip(b"<html>")),
    ]);
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
    let failed = failed_ids(&p, &files, event, Batch::default()).await;
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
    assert!(
        handle_batch(&p, &MemoryFiles::new([]), event, Batch::default())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_record_nested_too_deeply_is_skipped_and_the_records_after_it_alert() {
    let sink = MemorySink::new();
    let p = pipeline(sink.clone());
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let file = format!(
        r#"{{"Records":[{{"eventName":"GetObject","eventSource":"s3.amazonaws.com"}},{{"eventName":"StopLogging","x":{deep}}},{{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","awsRegion":"us-east-1"}}]}}"#
    );
    let stream = EventStream::spawn(std::io::Cursor::new(gzip(file.as_bytes())));
    let report = process_file(&p, &object("deep.json.gz"), stream, None)
        .await
        .unwrap();
    assert_eq!((report.records, report.skipped, report.alerts), (2, 1, 1));
    assert_eq!(sink.sent().len(), 1);
}

#[tokio::test]
async fn a_file_over_its_limit_fails_and_the_batch_goes_on() {
    let sink = MemorySink::new();
    let p = pipeline(sink.clone());
    let mut bomb = br#"{"Records":[{"x":""#.to_vec();
    bomb.extend(std::iter::repeat_n(b'a', 8 << 20));
    let files = MemoryFiles::new([
        ("bomb.json.gz".to_string(), gzip(&bomb)),
        (
            "good.json.gz".to_string(),
            gzip(&log_file(&["StopLogging"])),
        ),
    ]);
    let mut event = SqsEvent::default();
    event.records = vec![
        message("m1", notification("bomb.json.gz")),
        message("m2", notification("good.json.gz")),
    ];
    let failed = failed_ids(&p, &files, event, Batch::default()).await;
    assert_eq!(failed, ["m1"]);
    assert_eq!(sink.sent().len(), 1);
}

#[tokio::test]
async fn the_batch_stops_at_its_cutoff_and_fails_only_what_it_did_not_finish() {
    use std::time::Duration;
    let sink = MemorySink::new();
    let p = pipeline(sink.clone());
    let good = gzip(&log_file(&["StopLogging", "GetObject"]));
    let mut files = MemoryFiles::new([
        ("a.json.gz".to_string(), good.clone()),
        ("b.json.gz".to_string(), good.clone()),
        ("c.json.gz".to_string(), good.clone()),
    ]);
    files.delay = Duration::from_millis(600);
    let mut event = SqsEvent::default();
    event.records = vec![
        message("m1", notification("a.json.gz")),
        message("m2", notification("b.json.gz")),
        message("m3", notification("c.json.gz")),
    ];
    // a is done at 0.6 s; b opens at 1.2 s, past the cutoff: it is cut; c
    // never starts.
    let batch = Batch {
        cutoff: Some(tokio::time::Instant::now() + Duration::from_millis(900)),
        telemetry: None,
    };
    let failed = failed_ids(&p, &files, event, batch).await;
    assert_eq!(failed, ["m2", "m3"]);
    assert_eq!(sink.sent().len(), 1, "only a alerted");
}

#[tokio::test]
async fn a_prefiltered_file_reports_what_the_whole_parse_does() {
    // A prefilter for the names the test detector matches.
    let rule = crate::detect::Rule::parse(
        "t.yml",
        "title: t\nlogsource: {product: aws, service: cloudtrail}\nlevel: high\n\
         detection:\n  s:\n    eventName: [StopLogging, ListBuckets]\n  condition: s\n",
    )
    .unwrap();
    let filter = Arc::new(crate::detect::Prefilter::new([&rule]));
    let bytes = gzip(&log_file(&[
        "GetObject",
        "StopLogging",
        "ListBuckets",
        "AssumeRole",
    ]));
    let mut reports = Vec::new();
    for prefilter in [None, Some(filter)] {
        let sink = MemorySink::new();
        let stream = EventStream::spawn_filtered(
            std::io::Cursor::new(bytes.clone()),
            crate::sources::log_file::ReadLimits::default(),
            prefilter,
        );
        let report = process_file(&pipeline(sink.clone()), &object("f"), stream, None)
            .await
            .unwrap();
        reports.push((report, sink.sent().len()));
    }
    assert_eq!(reports[0], reports[1]);
    assert_eq!((reports[1].0.records, reports[1].0.matched), (4, 2));
}

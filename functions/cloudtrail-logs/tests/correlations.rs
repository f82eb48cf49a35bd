//! Correlations through the real `cloudtrail-logs` binary on moto: a burst
//! split across two log files, the one holding its first half delivered ten
//! minutes after the other, still correlates in its event-time window, and
//! alerts once, after the late file; and every bundled correlation's test
//! sequences, each as one log file, alert exactly when they fire.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};
use vigil_e2e::sequence_bed::{check_every_sequence, is_finding, SequenceBed};
use vigil_e2e::sequences::{fired_groups, firing_and_near_miss, verdict, Case};
use vigil_e2e::{
    drain, function_env, moto_endpoint, sdk, state_table, topic_with_queue, unique, LambdaFunction,
};

fn gzip(records: &[Value]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({ "Records": records }).to_string().as_bytes())
        .unwrap();
    gz.finish().unwrap()
}

/// `records` as a gzipped log file at `bucket`/`key`.
async fn put_log_file(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    records: &[Value],
) -> Result<(), String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(gzip(records)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

fn notification(bucket: &str, key: &str) -> Value {
    json!({"Records": [{"messageId": key, "receiptHandle": "r", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:ctl", "awsRegion": "us-east-1",
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "body": json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
            "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}).to_string()}]})
}

#[tokio::test]
async fn a_log_file_ten_minutes_late_still_correlates_once() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let table = state_table(&sdk, "corr-logs").await.unwrap();
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("corr-logs")).await.unwrap();
    let Some(function) = LambdaFunction::start(
        Path::new(env!("CARGO_BIN_EXE_cloudtrail-logs")),
        &function_env(&endpoint, &topic_arn, &table),
    ) else {
        return;
    };
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let bucket = unique("corr-trail");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let (fires, _) = firing_and_near_miss("console_brute_force");
    let (early, late) = fires.events.split_at(fires.events.len() / 2);
    // The later half arrives first, with a record ten minutes on; the file
    // with the first half comes after it.
    let mut on_time = late.to_vec();
    let mut later = late[0].clone();
    later["eventTime"] = json!("2026-03-03T08:12:00Z");
    later["userIdentity"]["userName"] = json!("someone-else");
    on_time.push(later);
    let prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/03/";
    let mut delivered = Vec::new();
    for (name, records) in [("0810Z_a", on_time), ("0800Z_b", early.to_vec())] {
        let key = format!("{prefix}111122223333_CloudTrail_us-east-1_20260303T{name}.json.gz");
        put_log_file(&s3, &bucket, &key, &records).await.unwrap();
        let response = function
            .invoke(&notification(&bucket, &key))
            .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
        assert_eq!(
            response["batchItemFailures"],
            json!([]),
            "{}",
            function.logs()
        );
        let wait = if delivered.is_empty() { 0 } else { 1 };
        delivered.push(
            drain(&sdk, &queue_url, wait, Duration::from_secs(10))
                .await
                .unwrap(),
        );
    }
    assert!(
        delivered[0].is_empty(),
        "half a burst alerts nothing: {:?}",
        delivered[0]
    );
    let subjects: Vec<&str> = delivered[1]
        .iter()
        .filter_map(|m| m["Subject"].as_str())
        .collect();
    assert_eq!(subjects.len(), 1, "{subjects:?}\n{}", function.logs());
    assert!(
        subjects[0].contains("Console brute force against one user"),
        "{subjects:?}"
    );
    assert_eq!(fired_groups(&sdk, &table).await.len(), 2);
}

/// Sequence `index` of `case`: its CloudTrail records as one log file in
/// moto S3, read by its own function (own state table and topic), after its
/// GuardDuty findings went to the guardduty function; its verdict.
async fn run_as_log_file(case: &Case, index: usize) -> Result<(), String> {
    let binary = Path::new(env!("CARGO_BIN_EXE_cloudtrail-logs"));
    let seq = &case.sequences[index];
    let Some(bed) = SequenceBed::start(binary, seq).await else {
        return Ok(());
    };
    let run = unique(&case.file);
    let (findings, records): (Vec<Value>, Vec<Value>) =
        seq.events.iter().cloned().partition(is_finding);
    for (i, f) in findings.iter().enumerate() {
        bed.send_finding(f, &format!("{run}-{i}"))?;
    }
    let s3 = aws_sdk_s3::Client::new(&bed.bed.sdk);
    let bucket = unique("seq-trail");
    let key = format!("AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/03/{run}.json.gz");
    let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", case.file);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| failed(&e))?;
    put_log_file(&s3, &bucket, &key, &records)
        .await
        .map_err(|e| failed(&e))?;
    let response = bed.bed.invoke(&notification(&bucket, &key))?;
    if response["batchItemFailures"] != json!([]) {
        return Err(failed(&format!("{response}\n{}", bed.logs())));
    }
    let received = bed.bed.received(usize::from(seq.fires)).await;
    verdict(case, index, &received, &|| bed.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bundled_correlation_alerts_on_its_sequences_as_log_files() {
    if moto_endpoint().is_none() {
        return;
    }
    check_every_sequence(|case, index| async move { run_as_log_file(&case, index).await }).await;
}

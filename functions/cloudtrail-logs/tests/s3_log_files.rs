//! The real `cloudtrail-logs` binary under cargo-lambda's Lambda runtime
//! emulator, reading gzip CloudTrail log files from moto's S3, named by S3
//! notifications in every shape the function takes (moto's own S3 → SQS
//! notifications, SNS-wrapped, EventBridge), publishing to moto's SNS; and
//! its spans, exported to an OTLP receiver on loopback, as the semantic
//! conventions for Lambda's SQS trigger describe them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    QueueAttributeName,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use prost::Message;
use serde_json::{json, Value};
use vigil::detect::{RuleSet, RuleSource};
use vigil::sinks::MemorySink;
use vigil::sources::log_file::input;
use vigil::{Config, Pipeline, Source};
use vigil_e2e::{
    drain, moto_endpoint, sdk, shared_events, topic_with_queue, unique, LambdaFunction,
};

/// Test rules beside the bundled ones, so the test knows two records that
/// must alert whatever the bundled set holds.
const RULES: [(&str, &str); 2] = [
    (
        "e2e_guardduty_detector_deleted.yml",
        r#"title: Vigil e2e - GuardDuty detector deleted
id: 5b0c9a53-4a4e-4bde-9d43-8c0e2f3a7e11
status: test
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: guardduty.amazonaws.com
    eventName: DeleteDetector
  condition: selection
level: high
"#,
    ),
    (
        "e2e_kms_key_deletion.yml",
        r#"title: Vigil e2e - KMS key deletion scheduled
id: 0f7d2a61-93c4-4f55-a0a2-6d1b8e4c2b90
status: test
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: kms.amazonaws.com
    eventName: ScheduleKeyDeletion
  condition: selection
level: critical
"#,
    ),
];

/// Bare CloudTrail records: the real public samples when they are beside
/// the project, else a few written here.
fn records() -> Vec<Value> {
    let mut out = Vec::new();
    for sub in ["cloudtrail", "cloudtrail-logs"] {
        let Some(dir) = shared_events(sub) else {
            continue;
        };
        for f in input::files(&[dir]).unwrap() {
            for e in input::read_events(&f).unwrap() {
                let r = if e.get("detail-type").is_some() {
                    e["detail"].clone()
                } else {
                    e
                };
                if r.get("eventName").is_some() && r.get("eventSource").is_some() {
                    out.push(r);
                }
            }
        }
    }
    let has = |out: &[Value], name: &str| out.iter().any(|r| r["eventName"] == name);
    let own = |name: &str, source: &str| {
        json!({"eventVersion": "1.08", "eventTime": "2024-05-01T10:00:00Z", "eventSource": source,
            "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice",
                "accountId": "111122223333", "userName": "alice"},
            "eventID": format!("e2e-{name}"), "eventType": "AwsApiCall", "recipientAccountId": "111122223333"})
    };
    for (name, source) in [
        ("DeleteDetector", "guardduty.amazonaws.com"),
        ("ScheduleKeyDeletion", "kms.amazonaws.com"),
        ("DescribeInstances", "ec2.amazonaws.com"),
        ("GetObject", "s3.amazonaws.com"),
    ] {
        if !has(&out, name) {
            out.push(own(name, source));
        }
    }
    out
}

/// A fresh folder holding the test rules.
fn rules_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in RULES {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn gzip(records: &[Value]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"Records": records}).to_string().as_bytes())
        .unwrap();
    gz.finish().unwrap()
}

/// What the same rules and pipeline alert on for `records`, in process:
/// the subjects the function must publish.
async fn expected_subjects(rules_dir: &Path, records: &[Value]) -> Vec<String> {
    let config = Config {
        rules_dir: Some(rules_dir.display().to_string()),
        ..Config::default()
    };
    let sink = MemorySink::new();
    let pipeline = Pipeline::builder(&config)
        .accept(&[Source::CloudTrail])
        .detector(std::sync::Arc::new(RuleSet::load(Some(rules_dir)).unwrap()))
        .sink(Box::new(sink.clone()))
        .build();
    for r in records {
        let _ = pipeline.process_event(r).await;
    }
    sink.sent().into_iter().map(|a| a.subject).collect()
}

fn counts(subjects: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in subjects {
        *m.entry(s).or_default() += 1;
    }
    m
}

/// The Lambda SQS event for received messages, as the event source mapping
/// builds it (with the `AWSTraceHeader` system attribute SQS returned).
fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut attributes = json!({"ApproximateReceiveCount": "1",
                "SentTimestamp": "1714557600000", "SenderId": "AIDAEXAMPLE",
                "ApproximateFirstReceiveTimestamp": "1714557600001"});
            if let Some(h) = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader))
            {
                attributes["AWSTraceHeader"] = json!(h);
            }
            json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({"Records": records})
}

#[tokio::test]
async fn log_files_alert_and_only_the_bad_files_fail() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (topic_arn, alerts_url) = topic_with_queue(&sdk, &unique("ctl-alerts")).await.unwrap();

    let rules_dir = rules_dir("ctl-rules");
    let rules = RuleSet::layered(
        &RuleSource::bundled(),
        &RuleSource::dir(&rules_dir).unwrap(),
    )
    .unwrap();

    // Good file A: every record but the KMS one, plus many copies of the
    // records no rule matches, so the file spans many reads and channel
    // hand-overs. Good file B: the KMS one among non-matching records.
    let all = records();
    let quiet: Vec<Value> = all
        .iter()
        .filter(|r| rules.matching(r).is_empty())
        .cloned()
        .collect();
    assert!(!quiet.is_empty(), "some sample records match no rule");
    let is_kms = |r: &Value| r["eventName"] == "ScheduleKeyDeletion";
    let mut file_a: Vec<Value> = all.iter().filter(|r| !is_kms(r)).cloned().collect();
    file_a.extend(quiet.iter().cycle().take(3000).cloned());
    let mut file_b: Vec<Value> = quiet.iter().take(5).cloned().collect();
    file_b.extend(all.iter().filter(|r| is_kms(r)).cloned());
    let expected = counts(
        expected_subjects(&rules_dir, &file_a)
            .await
            .into_iter()
            .chain(expected_subjects(&rules_dir, &file_b).await),
    );
    for title in [
        "Vigil e2e - GuardDuty detector deleted",
        "Vigil e2e - KMS key deletion scheduled",
    ] {
        assert!(
            expected.keys().any(|s| s.contains(title)),
            "{title} in {expected:?}"
        );
    }

    // The bucket and the function's queue.
    let bucket = unique("org-trail");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("ctl-files"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap();
    let prefix = "AWSLogs/o-e2etest01/111122223333/CloudTrail/us-east-1/2024/05/01/";
    let put = |key: String, body: Vec<u8>| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap();
        }
    };
    let truncated = {
        let whole = gzip(&quiet.iter().cycle().take(200).cloned().collect::<Vec<_>>());
        whole[..whole.len() / 2].to_vec()
    };

    // Written before the bucket notifies: their notifications are sent by hand below.
    let key_b = format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1005Z_b.json.gz");
    let key_not_json =
        format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1010Z_html.json.gz");
    put(key_b.clone(), gzip(&file_b)).await;
    put(key_not_json.clone(), {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"<html><body>Access denied</body></html>")
            .unwrap();
        gz.finish().unwrap()
    })
    .await;

    // Moto's S3 sends its own notifications (and an s3:TestEvent) from here on.
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(&queue_arn)
                        .events(Event::S3ObjectCreated)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A key with a space: S3 notifications URL-encode it.
    let key_a = format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1000Z_a copy.json.gz");
    put(key_a.clone(), gzip(&file_a)).await;
    let key_truncated =
        format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1015Z_truncated.json.gz");
    put(key_truncated.clone(), truncated).await;
    put(
        "AWSLogs/o-e2etest01/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/digest.json.gz"
            .into(),
        gzip(&[]),
    )
    .await;

    // File B through SNS (S3 → SNS → SQS), the HTML file through EventBridge,
    // and a body that is no notification at all.
    let s3_notification = |key: &str| {
        json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-05-01T10:05:30.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "vigil",
                "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": key, "size": 1, "sequencer": "0066"}}}]})
    };
    let sns_wrapped = json!({"Type": "Notification", "MessageId": "6f1c6f3e-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:111122223333:org-trail-notifications",
        "Subject": "Amazon S3 Notification", "Message": s3_notification(&key_b).to_string(),
        "Timestamp": "2024-05-01T10:05:31.000Z", "SignatureVersion": "1"});
    let eventbridge = json!({"version": "0", "id": "0b4e7c2d-1111-4222-8333-944455556666",
        "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
        "time": "2024-05-01T10:10:30Z", "region": "us-east-1", "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {"version": "0", "bucket": {"name": bucket},
            "object": {"key": key_not_json, "size": 60}, "reason": "PutObject"}});
    // Each sent by a producer in a trace of its own, whose context SQS keeps
    // in the AWSTraceHeader system attribute.
    let producer = |i: usize| {
        format!(
            "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=1",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            0xabc0 + i,
            0x5150 + i
        )
    };
    let mut producers = Vec::new();
    for (i, body) in [
        sns_wrapped.to_string(),
        eventbridge.to_string(),
        "hello".to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        let header = producer(i);
        producers.push(header.clone());
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                MessageSystemAttributeValue::builder()
                    .data_type("String")
                    .string_value(header)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    // Receive the batch as the event source mapping would: 1 test event, 3
    // moto notifications (A, truncated, digest), 3 sent by hand.
    let mut messages = Vec::new();
    let started = std::time::Instant::now();
    while messages.len() < 7 && started.elapsed() < Duration::from_secs(20) {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
            .send()
            .await
            .unwrap();
        messages.extend(got.messages().iter().cloned());
    }
    assert_eq!(messages.len(), 7, "{messages:?}");
    let id_where = |pred: &dyn Fn(&str) -> bool| -> String {
        let found: Vec<&aws_sdk_sqs::types::Message> = messages
            .iter()
            .filter(|m| pred(m.body().unwrap_or_default()))
            .collect();
        assert_eq!(found.len(), 1, "one message matches");
        found[0].message_id().unwrap().to_string()
    };
    let mut expected_failures = vec![
        id_where(&|b| b.contains("truncated.json.gz")),
        id_where(&|b| b.contains("html.json.gz")),
        id_where(&|b| b == "hello"),
    ];
    expected_failures.sort();
    // Moto encodes the space as S3 does.
    id_where(&|b| b.contains("a+copy.json.gz"));

    let rules_dir_str = rules_dir.display().to_string();
    let (otlp, exported) = otlp_receiver();
    let Some(function) = LambdaFunction::start(
        Path::new(env!("CARGO_BIN_EXE_cloudtrail-logs")),
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("VIGIL_RULES_DIR", &rules_dir_str),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp),
        ],
    ) else {
        return;
    };
    let response = function
        .invoke(&sqs_event(&messages, &queue_arn))
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    let mut failures: Vec<String> = response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("{response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect();
    failures.sort();
    assert_eq!(failures, expected_failures, "logs:\n{}", function.logs());

    // Every alert the good files should raise arrived, and nothing else.
    let total: usize = expected.values().sum();
    let arrived = drain(&sdk, &alerts_url, total, Duration::from_secs(30))
        .await
        .unwrap();
    let got = counts(
        arrived
            .iter()
            .map(|m| m["Subject"].as_str().unwrap_or_default().to_string()),
    );
    assert_eq!(got, expected, "logs:\n{}", function.logs());

    // One log line per good file with its counts; none for the skipped ones.
    let logs = function.logs();
    let processed: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("log file processed"))
        .collect();
    assert_eq!(processed.len(), 2, "{logs}");
    let a_line = processed
        .iter()
        .find(|l| l.contains("a copy.json.gz"))
        .expect("file A's line");
    assert!(
        a_line.contains(&format!("{} records", file_a.len())),
        "{a_line}"
    );
    let b_line = processed
        .iter()
        .find(|l| l.contains("_b.json.gz"))
        .expect("file B's line");
    assert!(
        b_line.contains(&format!("{} records", file_b.len())),
        "{b_line}"
    );
    assert!(
        !logs.contains("digest.json.gz"),
        "digest files are not read"
    );
    let queue_name = queue_arn.rsplit(':').next().unwrap();
    assert_sqs_spans(&exported.spans(), queue_name, &messages, &producers);
    let _ = std::fs::remove_dir_all(&rules_dir);
}

/// The spans of the invocation, as the semantic conventions' "Instrumenting
/// AWS Lambda" (SQS) asks: the invocation is the SQS event's CONSUMER span
/// `process <queue>`, linked to the producers; each message a CONSUMER span
/// `process <queue>` under it, linked to its own producer.
fn assert_sqs_spans(
    spans: &[Span],
    queue: &str,
    messages: &[aws_sdk_sqs::types::Message],
    producers: &[String],
) {
    let name = format!("process {queue}");
    let process: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(process.len(), messages.len() + 1, "{:?}", names(spans));
    let str_attr = |s: &Span, k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
    };
    let text = |v: &str| Some(AnyValue::StringValue(v.to_string()));
    for s in &process {
        assert_eq!(s.kind, SpanKind::Consumer as i32, "{}", s.name);
        assert_eq!(str_attr(s, "messaging.system"), text("aws_sqs"));
        assert_eq!(str_attr(s, "messaging.operation.type"), text("process"));
        assert_eq!(str_attr(s, "messaging.destination.name"), text(queue));
        assert_eq!(str_attr(s, "faas.trigger"), text("pubsub"));
    }
    let (batch, per_message): (Vec<&Span>, Vec<&Span>) = process
        .into_iter()
        .partition(|s| str_attr(s, "faas.invocation_id").is_some());
    assert_eq!(batch.len(), 1);
    let batch = batch[0];
    assert_eq!(
        str_attr(batch, "messaging.batch.message_count"),
        Some(AnyValue::IntValue(messages.len() as i64))
    );
    // The producers' contexts, as X-Ray headers, to compare with the links.
    let header_of = |l: &opentelemetry_proto::tonic::trace::v1::span::Link| {
        let t = hex(&l.trace_id);
        format!(
            "Root=1-{}-{};Parent={};Sampled=1",
            &t[..8],
            &t[8..],
            hex(&l.span_id)
        )
    };
    let mut linked: Vec<String> = batch.links.iter().map(header_of).collect();
    linked.sort();
    let mut expected = producers.to_vec();
    expected.sort();
    assert_eq!(linked, expected, "the batch links every producer");
    for m in messages {
        let id = m.message_id().unwrap();
        let span = per_message
            .iter()
            .find(|s| str_attr(s, "messaging.message.id") == text(id))
            .unwrap_or_else(|| panic!("no span for message {id}"));
        assert_eq!(span.parent_span_id, batch.span_id);
        let producer = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader));
        let links: Vec<String> = span.links.iter().map(header_of).collect();
        assert_eq!(links, producer.into_iter().cloned().collect::<Vec<_>>());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

/// What an OTLP/HTTP receiver on loopback got.
#[derive(Clone, Default)]
struct Exported(Arc<Mutex<Vec<Vec<u8>>>>);

impl Exported {
    /// Every span received, decoded with the official protobuf types.
    fn spans(&self) -> Vec<Span> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|body| {
                ExportTraceServiceRequest::decode(body.as_slice())
                    .expect("an OTLP ExportTraceServiceRequest")
                    .resource_spans
            })
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }
}

/// An OTLP/HTTP receiver (HTTP/1.1, Content-Length bodies, 200), on a thread.
fn otlp_receiver() -> (String, Exported) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let exported = Exported::default();
    let store = exported.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let store = store.clone();
            std::thread::spawn(move || serve(stream, &store));
        }
    });
    (url, exported)
}

fn serve(stream: std::net::TcpStream, store: &Exported) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if line.starts_with("POST /v1/traces ") {
            store.0.lock().unwrap().push(body);
        }
        let _ = reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }
}

/// A gzip whose first member opens `prefix` and whose members then hold
/// `a`s: a few hundred KB that decompress to `members` MiB, one string.
fn gzip_bomb(prefix: &str, members: usize) -> Vec<u8> {
    let member = |bytes: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    };
    let mut first = prefix.as_bytes().to_vec();
    first.extend(std::iter::repeat_n(b'a', 1 << 20));
    let mut out = member(&first);
    let rest = member(&vec![b'a'; 1 << 20]);
    for _ in 1..members {
        out.extend_from_slice(&rest);
    }
    out
}

/// One bad record costs only itself, and a gzip bomb only its own file: the
/// real function, on moto, with a record nested deeper than serde_json's
/// limit in the middle of a file (the records after it alert), and a 2 GiB
/// bomb in the same batch (refused at the size limits, the process lives
/// and the batch's other files alert).
#[tokio::test]
async fn a_bad_record_or_a_gzip_bomb_costs_only_itself() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let (topic_arn, alerts_url) = topic_with_queue(&sdk, &unique("ctl-bad-alerts"))
        .await
        .unwrap();
    let rules_dir = rules_dir("ctl-bad-rules");
    let all = records();
    let record = |name: &str| all.iter().find(|r| r["eventName"] == name).unwrap().clone();
    let (detector, kms, quiet) = (
        record("DeleteDetector"),
        record("ScheduleKeyDeletion"),
        record("GetObject"),
    );
    // A record some rule may match (a DeleteDetector): the prefilter admits
    // it, so its full parse meets the depth limit. (A quiet record nested as
    // deep is only scanned and left out, as no rule can match it.)
    let mut deep = detector.clone();
    deep["eventID"] = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b".into();
    deep["requestParameters"] = serde_json::from_str::<Value>("[1]").unwrap();
    let deep_text = deep.to_string().replace(
        "\"requestParameters\":[1]",
        &format!(
            "\"requestParameters\":{}1{}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    // File D: a quiet record, the too-deep one, then the two that alert.
    let file_d = format!(r#"{{"Records":[{quiet},{deep_text},{detector},{kms}]}}"#);
    let expected = counts(expected_subjects(&rules_dir, &[detector.clone(), kms.clone()]).await);
    for title in [
        "Vigil e2e - GuardDuty detector deleted",
        "Vigil e2e - KMS key deletion scheduled",
    ] {
        assert!(
            expected.keys().any(|s| s.contains(title)),
            "{title} in {expected:?}"
        );
    }
    let total: usize = expected.values().sum();

    let bucket = unique("org-trail-bad");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let prefix = "AWSLogs/o-e2etest01/111122223333/CloudTrail/us-east-1/2024/05/01/";
    let key_deep = format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1100Z_deep.json.gz");
    let key_bomb = format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1105Z_bomb.json.gz");
    let bomb = gzip_bomb(r#"{"Records":[{"eventName":"x","p":""#, 2048);
    assert!(bomb.len() < 8 << 20, "{} bytes", bomb.len());
    for (key, body) in [
        (&key_bomb, bomb),
        (&key_deep, {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(file_d.as_bytes()).unwrap();
            gz.finish().unwrap()
        }),
    ] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
    let notification = |id: &str, key: &str| {
        json!({"messageId": id, "receiptHandle": "r", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:ctl", "awsRegion": "us-east-1",
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
            "body": json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}).to_string()})
    };
    let rules_dir_str = rules_dir.display().to_string();
    let Some(function) = LambdaFunction::start(
        Path::new(env!("CARGO_BIN_EXE_cloudtrail-logs")),
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("VIGIL_RULES_DIR", &rules_dir_str),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
        ],
    ) else {
        return;
    };
    // The bomb first: the file after it must still be read.
    let event =
        json!({"Records": [notification("m-bomb", &key_bomb), notification("m-deep", &key_deep)]});
    let response = function
        .invoke(&event)
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    let logs = function.logs();
    assert_eq!(
        response["batchItemFailures"],
        json!([{"itemIdentifier": "m-bomb"}]),
        "logs:\n{logs}"
    );
    let refused = logs
        .lines()
        .find(|l| l.contains("log file failed") && l.contains("bomb.json.gz"))
        .unwrap_or_else(|| panic!("the bomb's error line in:\n{logs}"));
    assert!(
        refused.contains("record 1 is larger than 2097152 bytes (VIGIL_LOG_RECORD_MAX_BYTES)"),
        "{refused}"
    );
    assert!(logs.contains("\"LogFilesRejected\":1"), "{logs}");
    let skipped = logs
        .lines()
        .find(|l| l.contains("log file record skipped"))
        .unwrap_or_else(|| panic!("the deep record's line in:\n{logs}"));
    assert!(
        skipped.contains("deep.json.gz") && skipped.contains("record 2"),
        "{skipped}"
    );
    assert!(skipped.contains("recursion limit"), "{skipped}");
    assert!(logs.contains("3 records, 1 skipped"), "{logs}");
    assert!(logs.contains("\"LogRecordsSkipped\":1"), "{logs}");
    let arrived = drain(&sdk, &alerts_url, total, Duration::from_secs(30))
        .await
        .unwrap();
    let got = counts(
        arrived
            .iter()
            .map(|m| m["Subject"].as_str().unwrap_or_default().to_string()),
    );
    assert_eq!(got, expected, "logs:\n{logs}");
    // The process lived: it answers the next invocation.
    let again = function
        .invoke(&json!({"Records": [notification("m-again", &key_deep)]}))
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    assert_eq!(again["batchItemFailures"], json!([]), "{again}");
    let _ = std::fs::remove_dir_all(&rules_dir);
}

//! `vigil backfill` on moto: a trail bucket of 1,008 small log files over 3
//! days, 2 accounts and 2 regions (one account under an organization
//! folder), beside digest files and keys outside the layout. A backfill of
//! one day and one account sends exactly that day's and account's keys, as
//! S3 notifications `vigil::sources::s3_notifications` reads back to the
//! same keys; a run stopped by `--limit` resumes from its state file without
//! resending; `--rate` spaces the messages; `--dry-run` sends nothing.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use vigil::sources::s3_notifications;
use vigil_e2e::{moto_endpoint, project_root, sdk, unique};

const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const DAYS: [(u32, &str); 3] = [(1, "2024/05/01"), (2, "2024/05/02"), (3, "2024/05/03")];
/// Files per account, region and day: 3 x 2 x 2 x 84 = 1,008.
const FILES_PER_FOLDER: u32 = 84;

/// The `vigil` binary with no VIGIL_* setting from the caller's environment.
fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(project_root());
    cmd
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The folder of an account: the second account's trail is an organization's.
fn account_root(account: &str) -> String {
    match account {
        "444455556666" => format!("AWSLogs/o-abc123defg/{account}/"),
        _ => format!("AWSLogs/{account}/"),
    }
}

/// Every log file key of the bucket, as CloudTrail names them (one every
/// 17 minutes of the day, so `--from`/`--to` times cut inside a day).
fn log_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for account in ACCOUNTS {
        for region in REGIONS {
            for (day, path) in DAYS {
                for n in 0..FILES_PER_FOLDER {
                    let minutes = n * 17;
                    let stamp = format!("202405{day:02}T{:02}{:02}Z", minutes / 60, minutes % 60);
                    keys.push(format!(
                        "{}CloudTrail/{region}/{path}/{account}_CloudTrail_{region}_{stamp}_f{n:03}.json.gz",
                        account_root(account)
                    ));
                }
            }
        }
    }
    keys
}

/// The bucket, with the log files and what a backfill must leave alone.
async fn trail_bucket(s3: &aws_sdk_s3::Client) -> (String, Vec<String>) {
    let bucket = unique("backfill-trail");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let keys = log_keys();
    let body = gzip(br#"{"Records":[]}"#);
    let mut others = vec![
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/02/d.json.gz".to_string(),
        "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2024/05/02/x.log.gz".to_string(),
        "AWSLogs/not-an-account/CloudTrail/us-east-1/2024/05/02/x.json.gz".to_string(),
    ];
    others.extend(keys.iter().cloned());
    for chunk in others.chunks(50) {
        let mut tasks = tokio::task::JoinSet::new();
        for key in chunk {
            let put = s3.put_object().bucket(&bucket).key(key);
            tasks.spawn(put.body(ByteStream::from(body.clone())).send());
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
    }
    (bucket, keys)
}

async fn queue(sqs: &aws_sdk_sqs::Client) -> String {
    let name = unique("backfill-q");
    let q = sqs.create_queue().queue_name(name).send().await.unwrap();
    q.queue_url().unwrap().to_string()
}

/// A queue's ARN (the stack output that names the cloudtrail-logs queue).
async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    let got = sqs.get_queue_attributes().queue_url(url);
    let got = got
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    got.attributes().unwrap()[&QueueAttributeName::QueueArn].clone()
}

/// One message the backfill sent: its body and when SQS took it (epoch ms).
struct Received {
    body: String,
    sent_ms: u64,
}

/// Every message in the queue, deleted as it is read.
async fn receive_all(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Received> {
    let mut out = Vec::new();
    loop {
        let resp = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .unwrap();
        let messages = resp.messages();
        if messages.is_empty() {
            return out;
        }
        let mut entries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let sent = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp));
            out.push(Received {
                body: m.body().unwrap().to_string(),
                sent_ms: sent.and_then(|s| s.parse().ok()).unwrap_or(0),
            });
            let entry = DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap());
            entries.push(entry.build().unwrap());
        }
        let delete = sqs.delete_message_batch().queue_url(queue_url);
        delete.set_entries(Some(entries)).send().await.unwrap();
    }
}

/// The keys the messages name, read back as the function reads them; each
/// message names one object of `bucket`.
fn keys_of(received: &[Received], bucket: &str) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            let objects = s3_notifications::objects(&r.body).unwrap();
            assert_eq!(objects.files.len(), 1, "{}", r.body);
            assert_eq!(objects.files[0].bucket, bucket);
            assert!(objects.files[0].size.is_some());
            objects.files[0].key.clone()
        })
        .collect()
}

fn backfill(bucket: &str, args: &[&str]) -> Output {
    let out = vigil()
        .args(["backfill", "--bucket", bucket])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn expected(keys: &[String], account: &str, day: &str) -> BTreeSet<String> {
    let day = format!("/{day}/");
    keys.iter()
        .filter(|k| k.contains(&format!("/{account}/")) && k.contains(&day))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_sends_the_range_once_resumes_and_keeps_the_rate() {
    if moto_endpoint().is_none() {
        return;
    }
    let config = sdk().await;
    let (s3, sqs) = (
        aws_sdk_s3::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    );
    let (bucket, keys) = trail_bucket(&s3).await;
    assert!(keys.len() >= 1000);
    let org_account = ACCOUNTS[1];
    let want = expected(&keys, org_account, "2024/05/02");
    assert_eq!(want.len(), 2 * FILES_PER_FOLDER as usize);
    let day = [
        "--from",
        "2024-05-02",
        "--to",
        "2024-05-02",
        "--account",
        org_account,
    ];

    // Dry run: counts, nothing sent.
    let q = queue(&sqs).await;
    let mut args = day.to_vec();
    args.extend(["--dry-run", "--queue-url", &q]);
    let dry = backfill(&bucket, &args);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains(&format!("Would send {} log files", want.len())),
        "{text}"
    );
    assert!(receive_all(&sqs, &q).await.is_empty());

    // One day of one account: exactly its keys, each once (the queue
    // named by its ARN, as the stack's outputs name it).
    let arn = queue_arn(&sqs, &q).await;
    let mut args = day.to_vec();
    args.extend(["--queue-url", &arn, "--rate", "1000"]);
    backfill(&bucket, &args);
    let sent = keys_of(&receive_all(&sqs, &q).await, &bucket);
    assert_eq!(sent.len(), want.len(), "a key was sent twice or missed");
    assert_eq!(sent.into_iter().collect::<BTreeSet<_>>(), want);

    // Stopped after 25 files, then resumed from the state file.
    let state = scratch("backfill-state").join("state.json");
    let state = state.to_str().unwrap();
    let q = queue(&sqs).await;
    let mut args = day.to_vec();
    args.extend(["--queue-url", &q, "--rate", "1000", "--state", state]);
    let mut first = args.clone();
    first.extend(["--limit", "25"]);
    backfill(&bucket, &first);
    let before = keys_of(&receive_all(&sqs, &q).await, &bucket);
    assert_eq!(before.len(), 25);
    let mut dry = args.clone();
    dry.push("--dry-run");
    let text = String::from_utf8_lossy(&backfill(&bucket, &dry).stdout).to_string();
    let rest = format!("Would send {} log files", want.len() - 25);
    assert!(
        text.contains(&rest) && text.contains("1 of them resumed"),
        "{text}"
    );
    let out = backfill(&bucket, &args);
    let after = keys_of(&receive_all(&sqs, &q).await, &bucket);
    assert_eq!(
        after.len(),
        want.len() - 25,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let both: BTreeSet<String> = before.iter().chain(&after).cloned().collect();
    assert_eq!(
        both.len(),
        want.len(),
        "a key was sent again after the resume"
    );
    assert_eq!(both, want);
    // A third run has nothing left to send.
    backfill(&bucket, &args);
    assert!(receive_all(&sqs, &q).await.is_empty());

    // The rate: 60 files at 20 a second take at least 2.5 s of sending.
    let q = queue(&sqs).await;
    let started = Instant::now();
    let mut args = day.to_vec();
    args.extend(["--queue-url", &q, "--rate", "20", "--limit", "60"]);
    backfill(&bucket, &args);
    let elapsed = started.elapsed();
    let received = receive_all(&sqs, &q).await;
    assert_eq!(received.len(), 60);
    assert!(elapsed >= Duration::from_millis(2400), "{elapsed:?}");
    let times: Vec<u64> = received.iter().map(|r| r.sent_ms).collect();
    let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(
        last - first >= 2000,
        "60 messages within {} ms",
        last - first
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_time_range_and_a_region_cut_inside_the_days() {
    if moto_endpoint().is_none() {
        return;
    }
    let config = sdk().await;
    let (s3, sqs) = (
        aws_sdk_s3::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    );
    let (bucket, keys) = trail_bucket(&s3).await;
    let q = queue(&sqs).await;
    // From 22:00 on the 1st to 01:59 on the 2nd, eu-west-1, both accounts.
    let args = [
        "--from",
        "2024-05-01T22:00:00Z",
        "--to",
        "2024-05-02T01:59:00Z",
        "--region",
        "eu-west-1",
        "--queue-url",
        &q,
        "--rate",
        "1000",
    ];
    backfill(&bucket, &args);
    let sent: BTreeSet<String> = keys_of(&receive_all(&sqs, &q).await, &bucket)
        .into_iter()
        .collect();
    let want: BTreeSet<String> = keys
        .iter()
        .filter(|k| k.contains("/eu-west-1/"))
        .filter(|k| {
            let stamp = k.split('_').nth(3).unwrap();
            ("20240501T2200Z"..="20240502T0159Z").contains(&stamp)
        })
        .cloned()
        .collect();
    assert!(want.len() > 10, "{}", want.len());
    assert_eq!(sent, want);
}

/// The cloudtrail-logs function's binary, built beside `vigil` (the
/// workspace's `cargo test` builds it; alone: `cargo build -p vigil-cloudtrail-logs`).
fn cloudtrail_logs_binary() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_BIN_EXE_vigil")).with_file_name("cloudtrail-logs");
    if path.exists() {
        return Some(path);
    }
    let note = "needs target/debug/cloudtrail-logs: cargo build -p vigil-cloudtrail-logs";
    assert!(
        std::env::var("VIGIL_REQUIRE_MOTO").as_deref() != Ok("1"),
        "{note}"
    );
    eprintln!("skipping: {note}");
    None
}

/// The Lambda SQS event for received messages, as the event source mapping builds it.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> serde_json::Value {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1714557600000",
                    "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1714557600001"},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// The messages a backfill put in the queue, received as Lambda's poller would.
async fn take(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    n: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    let started = Instant::now();
    while out.len() < n && started.elapsed() < Duration::from_secs(20) {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10);
        let got = got.visibility_timeout(300).send().await.unwrap();
        out.extend(got.messages().iter().cloned());
    }
    assert_eq!(out.len(), n);
    out
}

/// A CloudTrail record the bundled rule "CloudTrail logging stopped" (HIGH) alerts on.
fn stop_logging(event_id: &str) -> serde_json::Value {
    let path = project_root().join("examples/events/cloudtrail/cloudtrail-stop-logging.json");
    let sample: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut record = sample["detail"].clone();
    record["eventID"] = serde_json::json!(event_id);
    record
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfilled_file_alerts_through_the_function_and_a_second_backfill_does_not() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let Some(binary) = cloudtrail_logs_binary() else {
        return;
    };
    let config = sdk().await;
    let (s3, sqs) = (
        aws_sdk_s3::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    );
    let bucket = unique("backfill-e2e");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let day = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/";
    for (n, stamp) in ["20240501T0900Z", "20240501T0905Z"].iter().enumerate() {
        let body = serde_json::json!({"Records": [stop_logging(&format!("backfill-e2e-{n}"))]});
        let key = format!("{day}111122223333_CloudTrail_us-east-1_{stamp}_e2e{n}.json.gz");
        let put = s3.put_object().bucket(&bucket).key(key);
        put.body(ByteStream::from(gzip(body.to_string().as_bytes())))
            .send()
            .await
            .unwrap();
    }
    let q = queue(&sqs).await;
    let queue_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        q.rsplit('/').next().unwrap()
    );
    let (topic_arn, alerts_url) = vigil_e2e::topic_with_queue(&config, &unique("backfill-alerts"))
        .await
        .unwrap();
    let table = vigil_e2e::state_table(&config, "backfill-state")
        .await
        .unwrap();
    let Some(function) = vigil_e2e::LambdaFunction::start(
        &binary,
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("VIGIL_STATE_TABLE", &table),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
        ],
    ) else {
        return;
    };
    let args = [
        "--from",
        "2024-05-01",
        "--to",
        "2024-05-01",
        "--queue-url",
        &q,
        "--rate",
        "100",
    ];

    // Two files with the same call by the same caller: one alert, the
    // second finding suppressed by the fingerprint window.
    backfill(&bucket, &args);
    let response = function.invoke(&sqs_event(&take(&sqs, &q, 2).await, &queue_arn));
    let response = response.unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([]),
        "{}",
        function.logs()
    );
    let alerts = vigil_e2e::drain(&config, &alerts_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    let subjects: Vec<&str> = alerts
        .iter()
        .filter_map(|m| m["Subject"].as_str())
        .collect();
    assert_eq!(
        subjects.len(),
        1,
        "{subjects:?}\nlogs:\n{}",
        function.logs()
    );
    assert!(
        subjects[0].contains("CloudTrail logging stopped"),
        "{subjects:?}"
    );

    // The same day backfilled again: read again, nothing alerted again.
    backfill(&bucket, &args);
    let response = function.invoke(&sqs_event(&take(&sqs, &q, 2).await, &queue_arn));
    let response = response.unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    let again = vigil_e2e::drain(&config, &alerts_url, 0, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(again.is_empty(), "alerted again: {again:?}");
    let logs = function.logs();
    let processed = logs
        .lines()
        .filter(|l| l.contains("log file processed"))
        .count();
    assert_eq!(processed, 4, "{logs}");
}

#[test]
fn bad_arguments_stop_before_anything_is_listed() {
    for (args, said) in [
        (vec!["--from", "yesterday"], "neither a date"),
        (
            vec!["--from", "2024-05-02", "--to", "2024-05-01"],
            "--from is after --to",
        ),
        (
            vec!["--from", "2024-05-01", "--rate", "0"],
            "--rate is files per second",
        ),
        (
            vec!["--from", "2024-05-01", "--rate", "NaN"],
            "--rate is files per second",
        ),
    ] {
        let out = vigil()
            .args(["backfill", "--bucket", "trail", "--dry-run"])
            .args(&args)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
}

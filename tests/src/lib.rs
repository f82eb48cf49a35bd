//! Test bed for Vigil's end-to-end tests: moto server through the real AWS
//! SDK, sample events, and helpers to read what arrives in SQS.
//!
//! `scripts/test.sh` starts moto and exports `AWS_ENDPOINT_URL` and
//! `VIGIL_REQUIRE_MOTO=1`. Run alone (`cargo test`), tests that need moto say
//! so and return; under the script a missing endpoint is a failure.

pub mod fault_proxy;
pub mod function_bed;
pub mod samples;
pub mod sequence_bed;
pub mod sequences;
pub mod stand_in;

pub use function_bed::{
    assert_duplicate_delivery_alerts_once, errors_counted, function_env, idempotency_status,
    items_with_prefix, own_sample_event, FunctionBed,
};
pub use samples::{own_events, project_root, sample_dir, shared_events};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use vigil::sources::log_file::input;

/// The moto endpoint, or `None` (with a note) when the test runs without it.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(url) => Some(url),
        None if std::env::var("VIGIL_REQUIRE_MOTO").as_deref() == Ok("1") => {
            panic!(
                "VIGIL_REQUIRE_MOTO=1 but AWS_ENDPOINT_URL is not set: moto server is not running"
            )
        }
        None => {
            eprintln!("skipping: needs moto server (run scripts/test.sh)");
            None
        }
    }
}

/// SDK configuration pointed at moto.
pub async fn sdk() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await
}

/// A unique name per test run, so tests sharing one moto server do not collide.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An SNS topic with an SQS queue subscribed to it (envelope delivery, as an
/// SQS subscriber of Vigil's topic sees it). Returns (topic ARN, queue URL).
pub async fn topic_with_queue(sdk: &SdkConfig, name: &str) -> anyhow::Result<(String, String)> {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic_arn = sns
        .create_topic()
        .name(name)
        .send()
        .await?
        .topic_arn()
        .unwrap_or_default()
        .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await?;
    Ok((topic_arn, queue_url))
}

/// Receives messages until `expected` have arrived or `timeout` passes, and
/// returns their bodies parsed as JSON (the SNS notification envelope).
pub async fn drain(
    sdk: &SdkConfig,
    queue_url: &str,
    expected: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<Value>> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let started = Instant::now();
    let mut out = Vec::new();
    loop {
        let resp = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await?;
        let msgs = resp.messages();
        for m in msgs {
            out.push(serde_json::from_str(m.body().unwrap_or("null"))?);
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
        if (out.len() >= expected && msgs.is_empty()) || started.elapsed() > timeout {
            return Ok(out);
        }
        if msgs.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every event in the files under `dir`, with the file it came from.
pub fn events_in(dir: &Path) -> Vec<(PathBuf, Value)> {
    let files = input::files(&[dir.to_path_buf()]).expect("sample folder readable");
    files
        .into_iter()
        .flat_map(|f| {
            let events = input::read_events(&f).unwrap_or_else(|e| panic!("{e}"));
            events.into_iter().map(move |e| (f.clone(), e))
        })
        .collect()
}

/// A function binary running under cargo-lambda's Lambda runtime API emulator
/// (`cargo lambda watch --only-lambda-apis`), invoked with `cargo lambda invoke`:
/// the real runtime loop, the real serialization, the real error reporting.
/// Both processes are killed on drop.
pub struct LambdaFunction {
    emulator: std::process::Child,
    function: std::process::Child,
    port: u16,
    /// Where the function's stdout and stderr (its log lines) are written.
    pub log_path: PathBuf,
}

/// Why an invocation did not return a result.
#[derive(Debug)]
pub struct InvokeError(pub String);

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn cargo_lambda_available() -> bool {
    std::process::Command::new("cargo-lambda")
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl LambdaFunction {
    /// Starts `binary` under the emulator with `env` added to its environment.
    /// `None` (with a note) when cargo-lambda is not installed and the test
    /// runs outside scripts/test.sh; under the script that is a failure.
    pub fn start(binary: &Path, env: &[(&str, &str)]) -> Option<LambdaFunction> {
        if !cargo_lambda_available() {
            if std::env::var("VIGIL_REQUIRE_MOTO").as_deref() == Ok("1") {
                panic!("cargo-lambda is not on PATH (scripts/test.sh installs it into .venv)");
            }
            eprintln!("skipping: needs cargo-lambda (run scripts/test.sh)");
            return None;
        }
        let port = free_port();
        let emulator = std::process::Command::new("cargo-lambda")
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cargo lambda watch starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the runtime emulator did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let log_path = std::env::temp_dir().join(format!("{}.log", unique("lambda")));
        let log = std::fs::File::create(&log_path).expect("log file");
        let function = std::process::Command::new(binary)
            .envs(env.iter().copied())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        Some(LambdaFunction {
            emulator,
            function,
            port,
            log_path,
        })
    }

    /// Invokes the function with `event`; the function's error on failure.
    pub fn invoke(&self, event: &Value) -> Result<Value, InvokeError> {
        let file = std::env::temp_dir().join(format!("{}.json", unique("event")));
        std::fs::write(&file, event.to_string()).expect("event file");
        let out = std::process::Command::new("cargo-lambda")
            .args([
                "lambda",
                "invoke",
                "_",
                "-A",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "--data-file",
            ])
            .arg(&file)
            .output()
            .expect("cargo lambda invoke runs");
        let _ = std::fs::remove_file(&file);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            serde_json::from_str(stdout.trim())
                .map_err(|e| InvokeError(format!("not JSON ({e}): {stdout}")))
        } else {
            Err(InvokeError(format!(
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// The function's output so far (its JSON log lines).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.emulator.kill();
        let _ = self.function.wait();
        let _ = self.emulator.wait();
    }
}

/// A DynamoDB table shaped as Vigil's state table (`template.yaml`
/// `StateTable`: string key `id`, on demand), under a unique name.
pub async fn state_table(sdk: &SdkConfig, prefix: &str) -> anyhow::Result<String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let name = unique(prefix);
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(&name)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    Ok(name)
}

/// The SNS event Lambda hands a subscribed function (the notifier), as JSON,
/// for a message an SQS subscriber received: the same envelope, with the
/// fields SQS leaves out filled in.
pub fn lambda_sns_event(envelope: &Value) -> Value {
    let mut envelope = envelope.clone();
    if let Some(fields) = envelope.as_object_mut() {
        for k in [
            "Signature",
            "SignatureVersion",
            "SigningCertURL",
            "UnsubscribeURL",
        ] {
            fields.entry(k).or_insert(Value::from(""));
        }
    }
    serde_json::json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:vigil:sub",
        "Sns": envelope,
    }]})
}

/// The JSON message structures moto's SNS recorded for `topic_arn`, by SNS
/// message id (moto's internal API: an SQS subscriber sees only `sqs`).
pub async fn published(endpoint: &str, topic_arn: &str) -> HashMap<String, (Value, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    let data: Value = serde_json::from_str(body).unwrap();
    let topic = data["sns"]["Topic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["arn"] == topic_arn)
        .unwrap_or_else(|| panic!("moto has no topic {topic_arn}"));
    topic["sent_notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let message: Value = serde_json::from_str(n[1].as_str().unwrap())
                .expect("MessageStructure=json: the message is a JSON object");
            (
                n[0].as_str().unwrap().to_string(),
                (message, n[2].as_str().unwrap_or_default().to_string()),
            )
        })
        .collect()
}

/// The SNS events Lambda hands a function subscribed to `topic_arn` (the
/// notifier) for the `expected` messages its SQS subscriber `queue_url`
/// receives: each envelope as SNS sent it, with the message a `lambda`
/// subscriber gets (the `lambda` key of what Vigil published, read from moto).
pub async fn lambda_events_of(
    sdk: &SdkConfig,
    endpoint: &str,
    topic_arn: &str,
    queue_url: &str,
    expected: usize,
) -> anyhow::Result<Vec<Value>> {
    let envelopes = drain(sdk, queue_url, expected, Duration::from_secs(20)).await?;
    let structures = published(endpoint, topic_arn).await;
    envelopes
        .into_iter()
        .map(|mut envelope| {
            let id = envelope["MessageId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (structure, _) = structures
                .get(&id)
                .ok_or_else(|| anyhow::anyhow!("moto recorded no message {id}"))?;
            envelope["Message"] = structure["lambda"].clone();
            Ok(lambda_sns_event(&envelope))
        })
        .collect()
}

/// A secret in moto's Secrets Manager holding `value`, under a unique name;
/// its ARN.
pub async fn create_secret(sdk: &SdkConfig, value: &str) -> anyhow::Result<String> {
    let created = aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(unique("vigil/secret"))
        .secret_string(value)
        .send()
        .await?;
    Ok(created.arn().unwrap_or_default().to_string())
}

//! Test bed for Vigil's end-to-end tests: moto server through the real AWS
//! SDK, sample events, and helpers to read what arrives in SQS.
//!
//! `scripts/test.sh` starts moto and exports `AWS_ENDPOINT_URL` and
//! `VIGIL_REQUIRE_MOTO=1`. Run alone (`cargo test`), tests that need moto say
//! so and return; under the script a missing endpoint is a failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

/// The project root (the workspace).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `../shared/events/<sub>` beside the project, when it exists (CI has it; a
/// user's fresh clone may not).
pub fn shared_events(sub: &str) -> Option<PathBuf> {
    let p = project_root().join("..").join("shared").join("events").join(sub);
    p.is_dir().then_some(p)
}

/// The real public samples in `../shared/events/<sub>` when present, else the
/// project's own `examples/events/<own>`.
pub fn sample_dir(sub: &str, own: &str) -> PathBuf {
    shared_events(sub).unwrap_or_else(|| project_root().join("examples").join("events").join(own))
}

/// The moto endpoint, or `None` (with a note) when the test runs without it.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL").ok().filter(|s| !s.is_empty()) {
        Some(url) => Some(url),
        None if std::env::var("VIGIL_REQUIRE_MOTO").as_deref() == Ok("1") => {
            panic!("VIGIL_REQUIRE_MOTO=1 but AWS_ENDPOINT_URL is not set: moto server is not running")
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
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An SNS topic with an SQS queue subscribed to it (envelope delivery, as an
/// SQS subscriber of Vigil's topic sees it). Returns (topic ARN, queue URL).
pub async fn topic_with_queue(sdk: &SdkConfig, name: &str) -> anyhow::Result<(String, String)> {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic_arn = sns.create_topic().name(name).send().await?.topic_arn().unwrap_or_default().to_string();
    let queue_url = sqs.create_queue().queue_name(name).send().await?.queue_url().unwrap_or_default().to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(queue_arn).send().await?;
    Ok((topic_arn, queue_url))
}

/// Receives messages until `expected` have arrived or `timeout` passes, and
/// returns their bodies parsed as JSON (the SNS notification envelope).
pub async fn drain(sdk: &SdkConfig, queue_url: &str, expected: usize, timeout: Duration) -> anyhow::Result<Vec<Value>> {
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
                sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await?;
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
    let files = vigil::input::files(&[dir.to_path_buf()]).expect("sample folder readable");
    files
        .into_iter()
        .flat_map(|f| {
            let events = vigil::input::read_events(&f).unwrap_or_else(|e| panic!("{e}"));
            events.into_iter().map(move |e| (f.clone(), e))
        })
        .collect()
}

//! Sending log files to the cloudtrail-logs queue: each as the S3
//! event notification the bucket itself would send (one `Records[]` entry,
//! `ObjectCreated:Put`, the key form-encoded as S3 encodes it), ten to a
//! SendMessageBatch, paced to at most `--rate` files a second.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::{json, Value};

use super::list::LogObject;

/// SendMessageBatch takes ten messages at most.
pub(crate) const MAX_BATCH: usize = 10;

/// Attempts for the entries of a batch SQS did not take.
const ATTEMPTS: u32 = 4;

/// Why files could not be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("{0:?} is neither a queue URL (https://sqs...) nor a queue ARN (arn:aws:sqs:...)")]
    NotAQueue(String),
    #[error("GetQueueUrl for {arn}: {message}")]
    Lookup { arn: String, message: String },
    #[error("SendMessageBatch: {0}")]
    Call(String),
    #[error("SQS refused {count} messages after {ATTEMPTS} attempts, the first {key}: {reason}")]
    Refused {
        count: usize,
        key: String,
        reason: String,
    },
}

/// Encodes a key as S3 does in its notifications: form encoding, `+` for a
/// space and `%XX` for every byte that is not a letter, digit, `/` or one of
/// `-_.~*'()!`. `vigil::sources::s3_notifications` decodes it back.
pub(crate) fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            b'/' | b'-' | b'_' | b'.' | b'~' | b'*' | b'\'' | b'(' | b')' | b'!' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The S3 event notification for one object, as the bucket sends it to the
/// queue. `region` is the bucket's (`awsRegion`).
pub(crate) fn notification(bucket: &str, region: &str, object: &LogObject) -> Value {
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let mut s3_object = json!({"key": encode_key(&object.key), "size": object.size});
    if let Some(etag) = &object.etag {
        s3_object["eTag"] = json!(etag);
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": now,
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "vigil-backfill"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "vigil-backfill",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": s3_object,
        }
    }]})
}

/// The queue a backfill sends to, and a client in its region.
pub(crate) struct Queue {
    pub(crate) client: aws_sdk_sqs::Client,
    pub(crate) url: String,
    /// The queue's region, written as the notifications' `awsRegion`.
    pub(crate) region: String,
}

/// An SQS queue ARN's region, account and name.
fn arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", region, account, name]
            if !region.is_empty() && !account.is_empty() && !name.is_empty() =>
        {
            Some((region, account, name))
        }
        _ => None,
    }
}

impl Queue {
    /// `given` as a URL, or an ARN looked up with GetQueueUrl in its own
    /// region (the stack's outputs name the queue by ARN).
    pub(crate) async fn resolve(
        sdk: &aws_config::SdkConfig,
        given: &str,
    ) -> Result<Queue, SendError> {
        let default_region = sdk.region().map_or("us-east-1", |r| r.as_ref());
        if given.starts_with("https://") || given.starts_with("http://") {
            return Ok(Queue {
                client: aws_sdk_sqs::Client::new(sdk),
                url: given.to_string(),
                region: default_region.to_string(),
            });
        }
        let Some((region, account, name)) = arn_parts(given) else {
            return Err(SendError::NotAQueue(given.to_string()));
        };
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .region(aws_sdk_sqs::config::Region::new(region.to_string()))
            .build();
        let client = aws_sdk_sqs::Client::from_conf(config);
        let lookup = client.get_queue_url().queue_name(name);
        let found = lookup.queue_owner_aws_account_id(account).send().await;
        let found = found.map_err(|e| SendError::Lookup {
            arn: given.to_string(),
            message: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
        })?;
        let url = found.queue_url().unwrap_or_default().to_string();
        Ok(Queue {
            client,
            url,
            region: region.to_string(),
        })
    }
}

/// Keeps the files sent to at most `rate` a second since the start, plus
/// one batch: a batch waits until the files before it are due.
#[derive(Debug)]
pub(crate) struct Pacer {
    rate: f64,
    started: Instant,
    sent: u64,
}

impl Pacer {
    pub(crate) fn new(rate: f64) -> Pacer {
        Pacer {
            rate,
            started: Instant::now(),
            sent: 0,
        }
    }

    /// Files per batch: ten, or fewer under ten a second, so a slow rate
    /// sends evenly rather than in bursts.
    pub(crate) fn batch(&self) -> usize {
        (self.rate.floor() as usize).clamp(1, MAX_BATCH)
    }

    /// When the next batch may go.
    fn due(&self) -> Instant {
        self.started + Duration::from_secs_f64(self.sent as f64 / self.rate)
    }

    /// Waits until the next batch may go.
    pub(crate) async fn wait(&self) {
        tokio::time::sleep_until(self.due().into()).await;
    }

    pub(crate) fn sent(&mut self, n: usize) {
        self.sent += n as u64;
    }
}

/// The queue, and what each message says.
pub(crate) struct Sender<'a> {
    pub(crate) client: &'a aws_sdk_sqs::Client,
    pub(crate) queue_url: &'a str,
    pub(crate) bucket: &'a str,
    pub(crate) region: &'a str,
}

impl Sender<'_> {
    /// Sends one batch (at most [`MAX_BATCH`] files); the entries SQS did
    /// not take are sent again, a few times, before the batch fails.
    pub(crate) async fn send(&self, objects: &[LogObject]) -> Result<(), SendError> {
        let mut pending: Vec<usize> = (0..objects.len()).collect();
        let mut last = (String::new(), String::new());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            let entries = pending
                .iter()
                .map(|&i| self.entry(i, &objects[i]))
                .collect();
            let out = self
                .client
                .send_message_batch()
                .queue_url(self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    SendError::Call(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
                })?;
            let mut failed = Vec::new();
            for f in out.failed() {
                let Some(i) = f.id().parse::<usize>().ok().filter(|i| *i < objects.len()) else {
                    continue;
                };
                last = (
                    objects[i].key.clone(),
                    f.message().unwrap_or(f.code()).to_string(),
                );
                // A sender's fault (a bad entry) does not get better by retrying.
                if f.sender_fault() {
                    return Err(self.refused(1, last));
                }
                failed.push(i);
            }
            if failed.is_empty() {
                return Ok(());
            }
            pending = failed;
        }
        Err(self.refused(pending.len(), last))
    }

    fn refused(&self, count: usize, (key, reason): (String, String)) -> SendError {
        SendError::Refused { count, key, reason }
    }

    fn entry(&self, id: usize, object: &LogObject) -> SendMessageBatchRequestEntry {
        let body = notification(self.bucket, self.region, object).to_string();
        SendMessageBatchRequestEntry::builder()
            .id(id.to_string())
            .message_body(body)
            .build()
            .expect("id and body are set")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil::sources::s3_notifications;

    #[test]
    fn the_notification_reads_back_as_the_same_object() {
        for key in [
            "AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T1005Z_a1.json.gz",
            "logs/a copy+1%2F=é?&#.json.gz",
            "logs/new\nline.json.gz",
        ] {
            let object = LogObject {
                key: key.to_string(),
                size: 1234,
                etag: Some("abc".into()),
            };
            let body = notification("org-trail", "eu-west-1", &object).to_string();
            let got = s3_notifications::objects(&body).unwrap();
            assert_eq!(got.skipped, 0);
            assert_eq!(got.files.len(), 1, "{body}");
            assert_eq!(got.files[0].bucket, "org-trail");
            assert_eq!(got.files[0].key, key);
            assert_eq!(got.files[0].size, Some(1234));
        }
    }

    #[test]
    fn queue_arns_are_read_and_anything_else_refused() {
        assert_eq!(
            arn_parts("arn:aws:sqs:eu-west-1:111122223333:vigil-CloudTrailLogsQueue-AB12"),
            Some((
                "eu-west-1",
                "111122223333",
                "vigil-CloudTrailLogsQueue-AB12"
            ))
        );
        assert_eq!(arn_parts("arn:aws:sns:eu-west-1:111122223333:topic"), None);
        assert_eq!(arn_parts("arn:aws:sqs:eu-west-1:111122223333"), None);
        assert_eq!(arn_parts("arn:aws:sqs::111122223333:q"), None);
        assert_eq!(arn_parts("my-queue"), None);
    }

    #[test]
    fn keys_are_encoded_as_s3_encodes_them() {
        assert_eq!(encode_key("a b+c/d.json.gz"), "a+b%2Bc/d.json.gz");
        assert_eq!(encode_key("100%"), "100%25");
        assert_eq!(encode_key("é"), "%C3%A9");
    }

    #[test]
    fn the_pacer_spaces_batches_at_the_rate() {
        let mut p = Pacer::new(20.0);
        assert_eq!(p.batch(), 10);
        assert_eq!(Pacer::new(3.5).batch(), 3);
        assert_eq!(Pacer::new(0.2).batch(), 1);
        let start = p.due();
        p.sent(10);
        assert_eq!(p.due() - start, Duration::from_millis(500));
        p.sent(10);
        assert_eq!(p.due() - start, Duration::from_secs(1));
    }
}

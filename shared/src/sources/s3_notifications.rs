//! S3 object-created notifications, as an SQS message body carries them:
//! which CloudTrail log files to read.
//!
//! An organization trail's bucket can tell Vigil about new log files in four
//! shapes, and [`objects`] reads them all, so the wiring is the user's choice:
//!
//! - an S3 event notification (`{"Records":[{"eventSource":"aws:s3", ...}]}`),
//!   sent by the bucket straight to the queue;
//! - the same inside an SNS notification (`{"Type":"Notification","Message":"..."}`),
//!   when the bucket notifies a topic the queue subscribes to;
//! - CloudTrail's own SNS notification (`{"s3Bucket":..., "s3ObjectKey":[...]}`),
//!   when the trail is configured with an SNS topic;
//! - an EventBridge `Object Created` event (`source` `aws.s3`), when the
//!   bucket sends its events to EventBridge and a rule targets the queue.
//!
//! What is not a log file to read is skipped, not failed: S3's
//! `s3:TestEvent` (sent when a notification is configured), other event types
//! (deletes), digest files (`CloudTrail-Digest`, signatures, no records) and
//! folder markers. Only a body that is none of these is an error, so the
//! message goes to the dead-letter queue for a person to look at.

use serde_json::Value;

use crate::json;

/// One S3 object a notification points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key as S3 knows it (URL-decoded).
    pub key: String,
    /// The size the notification states, when it does.
    pub size: Option<u64>,
    /// The version the notification names, so a retry reads the same bytes.
    pub version_id: Option<String>,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Why a message body names no object to read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NotificationError {
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    #[error("not an S3, SNS, CloudTrail or EventBridge object notification")]
    Unrecognised,
    #[error("S3 notification record without `{0}`")]
    MissingField(&'static str),
}

/// What one message body asks for: the log files to read, and how many
/// objects it named that are not to be read (test events, digests, deletes).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Objects {
    pub files: Vec<ObjectRef>,
    pub skipped: usize,
}

/// Reads an SQS message body (see the module docs for the shapes).
pub fn objects(body: &str) -> Result<Objects, NotificationError> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| NotificationError::NotJson(e.to_string()))?;
    objects_in(&value, 0)
}

/// SNS notifications wrap one message; nothing legitimate nests deeper, and
/// the limit keeps a hostile body from recursing without end.
const MAX_NESTING: usize = 2;

fn objects_in(v: &Value, depth: usize) -> Result<Objects, NotificationError> {
    if !v.is_object() {
        return Err(NotificationError::Unrecognised);
    }
    // S3 test event, sent once when a notification configuration is saved.
    if json::str_at(v, &["Event"]) == Some("s3:TestEvent") {
        return Ok(Objects {
            files: Vec::new(),
            skipped: 1,
        });
    }
    // SNS notification (raw message delivery off): the payload is a string.
    if json::str_at(v, &["Type"]).is_some() && v.get("TopicArn").is_some() {
        return match json::str_at(v, &["Type"]) {
            Some("Notification") if depth < MAX_NESTING => {
                let message = json::str_at(v, &["Message"])
                    .ok_or(NotificationError::MissingField("Message"))?;
                let inner: Value = serde_json::from_str(message)
                    .map_err(|e| NotificationError::NotJson(format!("SNS Message: {e}")))?;
                objects_in(&inner, depth + 1)
            }
            // Subscription confirmations and the like name no object.
            Some("SubscriptionConfirmation" | "UnsubscribeConfirmation") => Ok(Objects {
                files: Vec::new(),
                skipped: 1,
            }),
            _ => Err(NotificationError::Unrecognised),
        };
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        return s3_records(records);
    }
    if let Some(bucket) = json::str_at(v, &["s3Bucket"]) {
        return cloudtrail_sns(bucket, v);
    }
    if json::str_at(v, &["source"]) == Some("aws.s3") && v.get("detail").is_some() {
        return eventbridge(v);
    }
    Err(NotificationError::Unrecognised)
}

/// S3 event notification records (`eventSource` `aws:s3`).
fn s3_records(records: &[Value]) -> Result<Objects, NotificationError> {
    let mut out = Objects::default();
    for r in records {
        let event_name = json::str_at(r, &["eventName"]).unwrap_or_default();
        let is_s3 = json::str_at(r, &["eventSource"]) == Some("aws:s3") || r.get("s3").is_some();
        if !is_s3 {
            return Err(NotificationError::Unrecognised);
        }
        if !event_name.starts_with("ObjectCreated:") {
            out.skipped += 1;
            continue;
        }
        let bucket = json::str_at(r, &["s3", "bucket", "name"])
            .ok_or(NotificationError::MissingField("s3.bucket.name"))?;
        let key = json::str_at(r, &["s3", "object", "key"])
            .ok_or(NotificationError::MissingField("s3.object.key"))?;
        push(
            &mut out,
            ObjectRef {
                bucket: bucket.to_string(),
                key: url_decode(key),
                size: json::number(r, &["s3", "object", "size"]).map(|n| n as u64),
                version_id: json::string(r, &["s3", "object", "versionId"]),
            },
        );
    }
    Ok(out)
}

/// CloudTrail's notification on the trail's SNS topic: keys as written, not encoded.
fn cloudtrail_sns(bucket: &str, v: &Value) -> Result<Objects, NotificationError> {
    let keys = v
        .get("s3ObjectKey")
        .and_then(Value::as_array)
        .ok_or(NotificationError::MissingField("s3ObjectKey"))?;
    let mut out = Objects::default();
    for key in keys.iter().filter_map(Value::as_str) {
        push(
            &mut out,
            ObjectRef {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size: None,
                version_id: None,
            },
        );
    }
    Ok(out)
}

/// EventBridge `Object Created` from S3 (the bucket's EventBridge notifications).
fn eventbridge(v: &Value) -> Result<Objects, NotificationError> {
    if json::str_at(v, &["detail-type"]) != Some("Object Created") {
        return Ok(Objects {
            files: Vec::new(),
            skipped: 1,
        });
    }
    let bucket = json::str_at(v, &["detail", "bucket", "name"])
        .ok_or(NotificationError::MissingField("detail.bucket.name"))?;
    let key = json::str_at(v, &["detail", "object", "key"])
        .ok_or(NotificationError::MissingField("detail.object.key"))?;
    let mut out = Objects::default();
    push(
        &mut out,
        ObjectRef {
            bucket: bucket.to_string(),
            key: url_decode(key),
            size: json::number(v, &["detail", "object", "size"]).map(|n| n as u64),
            version_id: json::string(v, &["detail", "object", "version-id"]),
        },
    );
    Ok(out)
}

fn push(out: &mut Objects, obj: ObjectRef) {
    if is_log_file(&obj.key) {
        out.files.push(obj);
    } else {
        out.skipped += 1;
    }
}

/// Whether a key is a CloudTrail file with records: not a digest file (it
/// holds hashes and signatures, no events) and not a folder marker.
fn is_log_file(key: &str) -> bool {
    !key.is_empty() && !key.ends_with('/') && !key.contains("CloudTrail-Digest")
}

/// Decodes an S3 notification key: S3 form-encodes keys, `+` for a space and
/// `%XX` for other bytes. A malformed escape is kept as it is (the object
/// lookup then fails loudly rather than reading some other object); bytes
/// that are not UTF-8 are replaced.
fn url_decode(key: &str) -> String {
    if !key.contains(['+', '%']) {
        return key.to_string();
    }
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex_value(*b)),
                bytes.get(i + 2).and_then(|b| hex_value(*b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "AWSLogs/o-abc123/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_a1.json.gz";

    fn s3_notification(event_name: &str, key: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-05-01T00:05:00.000Z", "eventName": event_name,
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "vigil",
                "bucket": {"name": "org-trail", "arn": "arn:aws:s3:::org-trail"},
                "object": {"key": key, "size": 1234, "eTag": "e", "sequencer": "00"}}
        }]})
    }

    fn one(body: &Value) -> Objects {
        objects(&body.to_string()).unwrap()
    }

    #[test]
    fn reads_a_direct_s3_notification() {
        let got = one(&s3_notification("ObjectCreated:Put", KEY));
        assert_eq!(got.skipped, 0);
        assert_eq!(
            got.files,
            vec![ObjectRef {
                bucket: "org-trail".into(),
                key: KEY.into(),
                size: Some(1234),
                version_id: None,
            }]
        );
    }

    #[test]
    fn reads_s3_inside_sns_and_cloudtrail_sns() {
        let sns = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": s3_notification("ObjectCreated:CompleteMultipartUpload", KEY).to_string()});
        assert_eq!(one(&sns).files[0].key, KEY);
        let trail = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": json!({"s3Bucket": "org-trail", "s3ObjectKey": [KEY, "b.json.gz"]}).to_string()});
        let got = one(&trail);
        assert_eq!(got.files.len(), 2);
        assert_eq!(got.files[1].key, "b.json.gz");
    }

    #[test]
    fn reads_eventbridge_object_created() {
        let eb = json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
            "account": "111122223333", "region": "us-east-1", "resources": ["arn:aws:s3:::org-trail"],
            "detail": {"version": "0", "bucket": {"name": "org-trail"},
                "object": {"key": "logs/a+b%2Bc.json.gz", "size": 9, "version-id": "v1"}, "reason": "PutObject"}});
        let got = one(&eb);
        assert_eq!(got.files[0].key, "logs/a b+c.json.gz");
        assert_eq!(got.files[0].version_id.as_deref(), Some("v1"));
        let deleted = json!({"detail-type": "Object Deleted", "source": "aws.s3", "detail": {}});
        assert_eq!(
            one(&deleted),
            Objects {
                files: vec![],
                skipped: 1
            }
        );
    }

    #[test]
    fn skips_test_events_digests_and_deletes() {
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-05-01T00:00:00Z",
            "Bucket": "org-trail", "RequestId": "r", "HostId": "h"});
        assert_eq!(
            one(&test),
            Objects {
                files: vec![],
                skipped: 1
            }
        );
        let digest = s3_notification(
            "ObjectCreated:Put",
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/x.json.gz",
        );
        assert_eq!(
            one(&digest),
            Objects {
                files: vec![],
                skipped: 1
            }
        );
        assert_eq!(
            one(&s3_notification("ObjectRemoved:Delete", KEY)).skipped,
            1
        );
        assert_eq!(
            one(&s3_notification("ObjectCreated:Put", "AWSLogs/")).skipped,
            1
        );
    }

    #[test]
    fn refuses_what_is_no_notification() {
        assert!(matches!(
            objects("not json"),
            Err(NotificationError::NotJson(_))
        ));
        assert_eq!(objects("[1]"), Err(NotificationError::Unrecognised));
        assert_eq!(
            objects(r#"{"hello":1}"#),
            Err(NotificationError::Unrecognised)
        );
        // CloudTrail log records are not S3 notifications.
        assert_eq!(
            objects(
                r#"{"Records":[{"eventSource":"iam.amazonaws.com","eventName":"CreateUser"}]}"#
            ),
            Err(NotificationError::Unrecognised)
        );
        let no_key = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {}}}]});
        assert_eq!(
            objects(&no_key.to_string()),
            Err(NotificationError::MissingField("s3.object.key"))
        );
        let bad_sns = json!({"Type": "Notification", "TopicArn": "t", "Message": "{oops"});
        assert!(matches!(
            objects(&bad_sns.to_string()),
            Err(NotificationError::NotJson(_))
        ));
        // SNS inside SNS inside SNS: refused rather than followed forever.
        let mut nested = s3_notification("ObjectCreated:Put", KEY);
        for _ in 0..3 {
            nested =
                json!({"Type": "Notification", "TopicArn": "t", "Message": nested.to_string()});
        }
        assert_eq!(
            objects(&nested.to_string()),
            Err(NotificationError::Unrecognised)
        );
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("a+b"), "a b");
        assert_eq!(url_decode("a%2Bb%3d"), "a+b=");
        assert_eq!(url_decode("caf%C3%A9"), "café");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        assert_eq!(url_decode("%FF"), "\u{FFFD}");
        assert_eq!(url_decode(KEY), KEY);
    }
}

//! Credentials the notifier posts with (the Slack webhook URL, the PagerDuty
//! routing key), read from AWS Secrets Manager.
//!
//! Read lazily on first use and cached for the life of the execution
//! environment: one `GetSecretValue` per cold start, not per alert. When the
//! destination says the credential is no longer valid (a revoked webhook), the
//! cache is dropped so the next invocation reads the secret again and picks up
//! a rotation without a redeploy.
//!
//! A secret is either the bare value or a JSON object holding it under one of
//! a few names (`{"webhook_url": "..."}`, `{"routing_key": "..."}`), the two
//! shapes the Secrets Manager console makes easy. A JSON secret may also hold
//! named values for the routing table's destinations, one object per kind
//! (`{"routing_key": "...", "services": {"payments": "..."}}`): see
//! `Secret::get_named`.

use std::fmt;
use std::sync::Arc;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;
use tokio::sync::Mutex;

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Throttling, network, 5xx: the invocation's retry may succeed.
    #[error("reading secret {arn}: {message}")]
    Unavailable { arn: String, message: String },
    /// Missing secret, no permission, empty value: fix the configuration.
    #[error("secret {arn}: {message}")]
    Invalid { arn: String, message: String },
}

impl SecretError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SecretError::Unavailable { .. })
    }
}

/// A secret value that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Arc<str>);

impl SecretString {
    pub fn new(s: impl Into<Arc<str>>) -> SecretString {
        SecretString(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

enum Origin {
    SecretsManager {
        client: aws_sdk_secretsmanager::Client,
        arn: String,
    },
    /// A value given directly (tests, local runs).
    Value(SecretString),
}

/// One credential: where it comes from, and the cached value.
pub struct Secret {
    origin: Origin,
    /// Names the value may sit under when the secret is a JSON object.
    json_keys: &'static [&'static str],
    /// The secret as stored (bare value or JSON), once read.
    cached: Mutex<Option<SecretString>>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match &self.origin {
            Origin::SecretsManager { arn, .. } => arn.as_str(),
            Origin::Value(_) => "<value>",
        };
        f.debug_struct("Secret").field("origin", &origin).finish()
    }
}

impl Secret {
    /// The secret `arn` (or name) in Secrets Manager.
    pub(crate) fn secrets_manager(
        client: aws_sdk_secretsmanager::Client,
        arn: impl Into<String>,
        json_keys: &'static [&'static str],
    ) -> Secret {
        Secret {
            origin: Origin::SecretsManager {
                client,
                arn: arn.into(),
            },
            json_keys,
            cached: Mutex::new(None),
        }
    }

    /// A value known up front.
    pub fn value(value: impl Into<Arc<str>>) -> Secret {
        Secret {
            origin: Origin::Value(SecretString::new(value)),
            json_keys: &[],
            cached: Mutex::new(None),
        }
    }

    /// The names the value may sit under when the secret is JSON.
    pub fn with_keys(mut self, json_keys: &'static [&'static str]) -> Secret {
        self.json_keys = json_keys;
        self
    }

    /// The value, from the cache or read now.
    pub async fn get(&self) -> Result<SecretString, SecretError> {
        let raw = self.raw().await?;
        let value = extract(raw.expose(), self.json_keys).ok_or_else(|| SecretError::Invalid {
            arn: self.origin_name().to_string(),
            message: format!(
                "empty, or a JSON object without any of the keys {:?}",
                self.json_keys
            ),
        })?;
        Ok(SecretString::new(value))
    }

    /// A named value from the object under `group` in a JSON secret
    /// (`group` "services", `name` "payments" reads
    /// `{"services": {"payments": "..."}}`). `Ok(None)` when the secret has
    /// no such entry: the caller falls back to [`Secret::get`].
    pub(crate) async fn get_named(
        &self,
        group: &str,
        name: &str,
    ) -> Result<Option<SecretString>, SecretError> {
        let raw = self.raw().await?;
        Ok(extract_named(raw.expose(), group, name).map(SecretString::new))
    }

    /// A top-level string beside the value in a JSON secret (`channel` in
    /// `{"bot_token": "xoxb-...", "channel": "#security"}`). `Ok(None)` for a
    /// bare secret or a missing or empty entry.
    pub(crate) async fn get_field(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        let raw = self.raw().await?;
        Ok(extract_field(raw.expose(), key).map(SecretString::new))
    }

    fn origin_name(&self) -> &str {
        match &self.origin {
            Origin::SecretsManager { arn, .. } => arn,
            Origin::Value(_) => "<value>",
        }
    }

    /// The secret as stored, from the cache or read now.
    async fn raw(&self) -> Result<SecretString, SecretError> {
        let (client, arn) = match &self.origin {
            Origin::Value(v) => return Ok(v.clone()),
            Origin::SecretsManager { client, arn } => (client, arn),
        };
        let mut cached = self.cached.lock().await;
        if let Some(v) = cached.as_ref() {
            return Ok(v.clone());
        }
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| classify(arn, &e))?;
        let raw = match (out.secret_string(), out.secret_binary()) {
            (Some(s), _) => s.to_string(),
            (None, Some(b)) => String::from_utf8_lossy(b.as_ref()).into_owned(),
            (None, None) => String::new(),
        };
        let raw = SecretString::new(raw);
        *cached = Some(raw.clone());
        Ok(raw)
    }

    /// Forgets the cached value: the next [`Secret::get`] reads it again.
    pub(crate) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

/// The value in `raw`: the string itself, or the first of `keys` when `raw`
/// is a JSON object. Surrounding whitespace (a pasted newline) is dropped.
pub(crate) fn extract(raw: &str, keys: &[&str]) -> Option<String> {
    let raw = raw.trim();
    let value = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => keys
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str))?
            .trim()
            .to_string(),
        _ => raw.to_string(),
    };
    (!value.is_empty()).then_some(value)
}

/// `raw[group][name]` when `raw` is a JSON object and that entry a non-empty string.
pub(crate) fn extract_named(raw: &str, group: &str, name: &str) -> Option<String> {
    let v: Value = serde_json::from_str(raw.trim()).ok()?;
    let value = v.get(group)?.get(name)?.as_str()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// `raw[key]` when `raw` is a JSON object and that entry a non-empty string.
pub(crate) fn extract_field(raw: &str, key: &str) -> Option<String> {
    let v: Value = serde_json::from_str(raw.trim()).ok()?;
    let value = v.get(key)?.as_str()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

fn classify<E: ProvideErrorMetadata + fmt::Debug, R>(
    arn: &str,
    err: &SdkError<E, R>,
) -> SecretError {
    let (transient, message) = match err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("unknown");
            let transient = code.contains("Throttl") || code == "InternalServiceError";
            (
                transient,
                format!("{code}: {}", e.err().message().unwrap_or("")),
            )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (true, format!("{err}"))
        }
        other => (false, format!("{other}")),
    };
    let arn = arn.to_string();
    if transient {
        SecretError::Unavailable { arn, message }
    } else {
        SecretError::Invalid { arn, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_json_secrets_both_work() {
        let keys = &["webhook_url", "url"];
        assert_eq!(
            extract(" https://hooks.slack.com/x\n", keys).as_deref(),
            Some("https://hooks.slack.com/x")
        );
        assert_eq!(
            extract(r#"{"url": "https://a"}"#, keys).as_deref(),
            Some("https://a")
        );
        assert_eq!(
            extract(r#"{"webhook_url": "https://b", "url": "https://a"}"#, keys).as_deref(),
            Some("https://b")
        );
        assert_eq!(extract(r#"{"other": "x"}"#, keys), None);
        assert_eq!(extract("   ", keys), None);
    }

    #[test]
    fn values_are_redacted_in_debug_output() {
        let s = SecretString::new("R0UT1NGKEY");
        assert!(!format!("{s:?}").contains("R0UT1NGKEY"));
        let secret = Secret::value("R0UT1NGKEY");
        assert!(!format!("{secret:?}").contains("R0UT1NGKEY"));
    }

    #[tokio::test]
    async fn named_values_sit_in_groups_beside_the_default() {
        let s = Secret::value(
            r#"{"routing_key": "DEFAULT", "services": {"payments": " PAYKEY ", "empty": ""}}"#,
        )
        .with_keys(&["routing_key"]);
        assert_eq!(s.get().await.unwrap().expose(), "DEFAULT");
        let named = |n: &'static str| {
            let s = &s;
            async move {
                s.get_named("services", n)
                    .await
                    .unwrap()
                    .map(|v| v.expose().to_string())
            }
        };
        assert_eq!(named("payments").await.as_deref(), Some("PAYKEY"));
        assert_eq!(named("empty").await, None);
        assert_eq!(named("unknown").await, None);
        assert_eq!(extract_named("bare-value", "services", "payments"), None);
    }

    #[tokio::test]
    async fn fields_sit_beside_the_value() {
        let s = Secret::value(r##"{"bot_token": "xoxb-1", "channel": " #security "}"##)
            .with_keys(&["bot_token"]);
        assert_eq!(s.get().await.unwrap().expose(), "xoxb-1");
        let field = s.get_field("channel").await.unwrap();
        assert_eq!(field.as_ref().map(SecretString::expose), Some("#security"));
        assert_eq!(s.get_field("nope").await.unwrap(), None);
        assert_eq!(extract_field("xoxb-bare", "channel"), None);
        assert_eq!(extract_field(r#"{"channel": 7}"#, "channel"), None);
    }

    #[tokio::test]
    async fn a_given_value_is_returned_as_is() {
        let s = Secret::value("k");
        assert_eq!(s.get().await.unwrap().expose(), "k");
        s.invalidate().await;
        assert_eq!(s.get().await.unwrap().expose(), "k");
    }
}

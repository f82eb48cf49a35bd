//! Slack with a bot token: `chat.postMessage`, one thread per fingerprint.
//!
//! An incoming webhook can only post; a bot token can also reply in a thread,
//! so a fingerprint's repeats and its resolution land under its first card
//! instead of one line each in the channel. The messages are the ones
//! [`super::slack`] builds (same escaping, same limits); this module only adds
//! where they go:
//!
//! - a new finding posts its card at the top level of the channel, and the
//!   message's `ts` and channel id become the fingerprint's thread, stored on
//!   its `fp#<fingerprint>` record in the state table (the record the dedup
//!   stage keeps; see [`super::threads`]);
//! - a repeat or a resolution with a known thread posts the compact line as a
//!   reply, in the thread's channel; without one (no state table, the record
//!   expired, the store failed) it posts at the top level and starts a thread;
//! - the channel is the alert's routed one (`route.slack_channel`), else
//!   `VIGIL_SLACK_CHANNEL`, else the `channel` in the bot-token secret.
//!
//! The thread is a convenience, never a reason to lose an alert: a state
//! store that cannot be read or written is logged, counted (metric `Errors`,
//! `error_kind` `slack_thread_store`) and the alert is posted anyway.
//!
//! Slack answers most failures with HTTP 200 and `{"ok": false, "error":
//! "..."}`: `ratelimited` is waited out like HTTP 429 (within the
//! [`super::HttpPolicy`] budget), a rejected token drops the cached secret so
//! the next attempt reads a rotated one, and a channel the bot cannot post to
//! is a permanent error that names the channel.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{http_429, HttpClient, HttpError, HttpResponse};
use super::secrets::{Secret, SecretError, SecretString};
use super::slack::{card, compact, http_error, routed_channel, secret_error};
use super::threads::{SlackThread, ThreadStore, ThreadStoreError};
use super::view::{AlertStatus, AlertView};
use super::{DeliverFuture, Destination, Outcome};
use crate::dedup::{fingerprint_key, STATE_RETENTION_SECONDS};
use crate::model::Severity;
use crate::sinks::SinkError;
use crate::text::one_line;

/// The Slack Web API (`VIGIL_SLACK_API_URL` overrides it, for tests).
pub(super) const DEFAULT_API_URL: &str = "https://slack.com/api";
/// Names the bot token may sit under when the secret is JSON.
pub(super) const BOT_TOKEN_SECRET_KEYS: &[&str] = &["bot_token", "token"];
/// Where a JSON bot-token secret may name the default channel.
const SECRET_CHANNEL_KEY: &str = "channel";
/// Metric `error_kind` for a state-store failure around a thread.
const THREAD_STORE_ERROR_KIND: &str = "slack_thread_store";

const SINK: &str = "slack";
/// Longest state key threaded: DynamoDB takes 2048 bytes of partition key,
/// and Vigil's own fingerprints are short hashes, so anything near that is
/// not one of them.
const MAX_THREAD_KEY_BYTES: usize = 1024;
/// Slack channel names are at most 80 characters, plus the `#`.
const CHANNEL_MAX_CHARS: usize = 81;

/// A channel as `chat.postMessage` takes it: `#name`, a bare name, or an id
/// (`C0123ABCD`). Only shape is checked here; whether it exists is Slack's
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackChannel(String);

/// Why a string is not a channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Slack channel (a #name or an id, at most 80 characters, no spaces): {0:?}")]
pub struct ChannelError(String);

impl SlackChannel {
    pub fn parse(s: &str) -> Result<SlackChannel, ChannelError> {
        let c = s.trim();
        let ok = !c.is_empty()
            && c != "#"
            && c.chars().count() <= CHANNEL_MAX_CHARS
            && !c.chars().any(|ch| ch.is_whitespace() || ch.is_control());
        if ok {
            Ok(SlackChannel(c.to_string()))
        } else {
            Err(ChannelError(one_line(c, 100)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SlackChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SlackChannel {
    type Err = ChannelError;
    fn from_str(s: &str) -> Result<SlackChannel, ChannelError> {
        SlackChannel::parse(s)
    }
}

/// Why `chat.postMessage` did not post.
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The secret holds something that cannot be sent as a header.
    #[error("the bot token in the secret is not a valid header value")]
    BadToken,
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A status other than 2xx and 429 (a wrong API URL, Slack down).
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The token was refused: revoked, expired, the app uninstalled.
    #[error("Slack refused the bot token ({code}): rotate the secret or reinstall the app")]
    Auth { code: String },
    /// The channel does not exist or the bot may not post there.
    #[error("Slack channel {channel}: {code} (invite the bot to the channel, or give the app chat:write.public for public channels)")]
    Channel { channel: String, code: String },
    /// The thread's first message is gone (deleted): post at the top level.
    #[error("Slack thread {ts}: {code}")]
    ThreadGone { ts: String, code: String },
    /// Any other `{"ok": false}`.
    #[error("Slack error {code}")]
    Api { code: String, transient: bool },
    /// HTTP 2xx, but not the JSON Slack answers with.
    #[error("unreadable Slack answer: {0}")]
    Unreadable(String),
}

impl PostError {
    /// Whether the invocation's retry may succeed.
    fn is_transient(&self) -> bool {
        match self {
            PostError::Secret(e) => e.is_transient(),
            PostError::Http(e) => e.is_transient(),
            PostError::Status { status, .. } => *status >= 500,
            PostError::Api { transient, .. } => *transient,
            PostError::BadToken
            | PostError::Auth { .. }
            | PostError::Channel { .. }
            | PostError::ThreadGone { .. }
            | PostError::Unreadable(_) => false,
        }
    }

    fn into_sink(self) -> SinkError {
        match self {
            PostError::Secret(e) => secret_error(SINK, e),
            PostError::Http(e) => http_error(SINK, e),
            other if other.is_transient() => SinkError::Transient {
                sink: SINK,
                message: other.to_string(),
            },
            other => SinkError::Permanent {
                sink: SINK,
                message: other.to_string(),
            },
        }
    }
}

/// What Slack answers (the fields Vigil reads; the echoed message is ignored).
#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    ts: Option<String>,
}

/// A posted message: where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Posted {
    channel: String,
    ts: String,
}

/// Rate limited: HTTP 429, or HTTP 200 `{"ok": false, "error": "ratelimited"}`.
fn slack_rate_limited(resp: &HttpResponse) -> Option<&'static str> {
    if let Some(r) = http_429(resp) {
        return Some(r);
    }
    if !resp.status.is_success() {
        return None;
    }
    let answer: Answer = serde_json::from_str(&resp.body).ok()?;
    match answer.error.as_deref() {
        Some("ratelimited" | "rate_limited") if !answer.ok => Some("Slack error ratelimited"),
        _ => None,
    }
}

/// Reads Slack's answer to a post to `channel` (replying to `thread_ts`).
fn read_answer(
    resp: &HttpResponse,
    channel: &SlackChannel,
    thread_ts: Option<&str>,
) -> Result<Posted, PostError> {
    if !resp.status.is_success() {
        return Err(PostError::Status {
            status: resp.status.as_u16(),
            body: resp.body_excerpt(),
        });
    }
    let answer: Answer = serde_json::from_str(&resp.body)
        .map_err(|e| PostError::Unreadable(format!("{e}: {}", resp.body_excerpt())))?;
    if answer.ok {
        let ts = answer
            .ts
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PostError::Unreadable("ok without ts".into()))?;
        return Ok(Posted {
            channel: answer
                .channel
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| channel.to_string()),
            ts,
        });
    }
    let code = one_line(answer.error.as_deref().unwrap_or("unknown_error"), 100);
    Err(match code.as_str() {
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            PostError::Auth { code }
        }
        "channel_not_found" | "not_in_channel" | "is_archived" => PostError::Channel {
            channel: one_line(channel.as_str(), 100),
            code,
        },
        "thread_not_found" if thread_ts.is_some() => PostError::ThreadGone {
            ts: one_line(thread_ts.unwrap_or_default(), 40),
            code,
        },
        "ratelimited"
        | "rate_limited"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "team_added_to_org" => PostError::Api {
            code,
            transient: true,
        },
        _ => PostError::Api {
            code,
            transient: false,
        },
    })
}

/// The `chat.postMessage` body: a [`super::slack`] message, its channel, the
/// thread it replies to, and no unfurling (a link in an alert is not a
/// preview's business). `link_names` is never set.
fn post_body(message: Value, channel: &SlackChannel, thread_ts: Option<&str>) -> Value {
    let mut body = match message {
        Value::Object(m) => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("text".into(), other);
            m
        }
    };
    body.insert("channel".into(), json!(channel.as_str()));
    body.insert("unfurl_links".into(), json!(false));
    body.insert("unfurl_media".into(), json!(false));
    if let Some(ts) = thread_ts {
        body.insert("thread_ts".into(), json!(ts));
    }
    Value::Object(body)
}

/// What to post at the top level for `a` when it has no thread: the card for
/// a new finding and for a repeat that starts a thread; the compact line for
/// a resolution (a card would read as a live finding) and for a repeat when
/// there are no threads at all (as the webhook does).
fn top_level_message(a: &AlertView, threading: bool) -> Value {
    match a.status {
        AlertStatus::New => card(a),
        AlertStatus::Repeat if threading => card(a),
        AlertStatus::Repeat | AlertStatus::Resolved => compact(a),
    }
}

/// Slack through a bot token. Build it with [`SlackBot::new`] and the
/// builder methods.
pub struct SlackBot {
    token: Secret,
    /// `{api}/chat.postMessage`.
    post_url: String,
    /// `VIGIL_SLACK_CHANNEL`.
    default_channel: Option<SlackChannel>,
    /// Where threads are kept; None: every alert posts at the top level.
    threads: Option<Arc<dyn ThreadStore>>,
    http: HttpClient,
    min_severity: Severity,
    thread_store_errors: AtomicU64,
}

impl fmt::Debug for SlackBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackBot")
            .field("token", &self.token)
            .field("post_url", &self.post_url)
            .field("default_channel", &self.default_channel)
            .field("threads", &self.threads.as_ref().map(|s| s.name()))
            .field("min_severity", &self.min_severity)
            .finish()
    }
}

impl SlackBot {
    /// Posts through the Web API at `api_url` (e.g. `https://slack.com/api`).
    pub fn new(token: Secret, api_url: &str, http: HttpClient) -> SlackBot {
        SlackBot {
            token,
            post_url: format!("{}/chat.postMessage", api_url.trim().trim_end_matches('/')),
            default_channel: None,
            threads: None,
            http,
            min_severity: Severity::Informational,
            thread_store_errors: AtomicU64::new(0),
        }
    }

    /// The channel for alerts the routing table sends nowhere in particular.
    pub fn default_channel(mut self, channel: Option<SlackChannel>) -> SlackBot {
        self.default_channel = channel;
        self
    }

    /// Keeps each fingerprint's thread in `store`.
    pub fn threads(mut self, store: Option<Arc<dyn ThreadStore>>) -> SlackBot {
        self.threads = store;
        self
    }

    pub fn min_severity(mut self, min: Severity) -> SlackBot {
        self.min_severity = min;
        self
    }

    /// State-store failures around threads since start (each also logged and
    /// counted in the `Errors` metric).
    pub fn thread_store_errors(&self) -> u64 {
        self.thread_store_errors.load(Ordering::Relaxed)
    }

    /// The channel for a top-level post of `a`: routed, configured, or the
    /// secret's. A routed channel that is not a channel name is logged and
    /// skipped, never a reason to drop the alert.
    async fn channel_for(&self, a: &AlertView) -> Result<SlackChannel, SinkError> {
        if let Some(routed) = routed_channel(a) {
            match SlackChannel::parse(routed) {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(
                    error = %e,
                    vigil.finding_id = %a.finding_id,
                    "routed Slack channel unusable: posting to the default channel"
                ),
            }
        }
        if let Some(c) = &self.default_channel {
            return Ok(c.clone());
        }
        let from_secret = self
            .token
            .get_field(SECRET_CHANNEL_KEY)
            .await
            .map_err(|e| secret_error(SINK, e))?;
        match from_secret {
            Some(c) => SlackChannel::parse(c.expose()).map_err(|e| SinkError::Permanent {
                sink: SINK,
                message: format!("the bot-token secret's \"channel\": {e}"),
            }),
            None => Err(SinkError::Permanent {
                sink: SINK,
                message: "no Slack channel for this alert: set VIGIL_SLACK_CHANNEL or \"channel\" in the bot-token secret".into(),
            }),
        }
    }

    /// `Authorization: Bearer <token>`, marked sensitive. The token itself
    /// never appears in an error.
    fn authorization(token: &SecretString) -> Result<(HeaderName, HeaderValue), PostError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| PostError::BadToken)?;
        value.set_sensitive(true);
        Ok((AUTHORIZATION, value))
    }

    /// One `chat.postMessage`; see the module docs for what each answer means.
    async fn post(
        &self,
        message: Value,
        channel: &SlackChannel,
        thread_ts: Option<&str>,
    ) -> Result<Posted, PostError> {
        let token = self.token.get().await?;
        let result = match SlackBot::authorization(&token) {
            Ok(auth) => {
                let body = post_body(message, channel, thread_ts);
                match self
                    .http
                    .post_json_with(&self.post_url, &body, &[auth], slack_rate_limited)
                    .await
                {
                    Ok(resp) => read_answer(&resp, channel, thread_ts),
                    Err(e) => Err(PostError::Http(e)),
                }
            }
            Err(e) => Err(e),
        };
        if let Err(PostError::Auth { .. } | PostError::BadToken) = &result {
            // Read the secret again next time: it may have been rotated.
            self.token.invalidate().await;
        }
        result
    }

    fn store_failed(&self, operation: &'static str, a: &AlertView, e: &ThreadStoreError) {
        self.thread_store_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            operation,
            error = %e,
            vigil.finding_id = %a.finding_id,
            "Slack thread state unavailable: the alert is posted without it"
        );
        if let Some(t) = crate::telemetry::installed() {
            t.record_error(THREAD_STORE_ERROR_KIND);
        }
    }

    /// The state key of `a`'s thread, when threads are kept and the
    /// fingerprint can be a key.
    fn thread_key(&self, a: &AlertView) -> Option<(&Arc<dyn ThreadStore>, String)> {
        let store = self.threads.as_ref()?;
        let key = fingerprint_key(&a.fingerprint);
        (key.len() <= MAX_THREAD_KEY_BYTES).then_some((store, key))
    }

    async fn deliver_alert(&self, a: &AlertView) -> Result<Outcome, SinkError> {
        if a.severity < self.min_severity {
            return Ok(Outcome::Skipped("below the Slack minimum severity"));
        }
        // Fail before any state-store call when the token cannot be read.
        self.token.get().await.map_err(|e| secret_error(SINK, e))?;
        let key = self.thread_key(a);
        let now = chrono::Utc::now().timestamp();

        let stored = match &key {
            Some((store, key)) => match store.load(key, now).await {
                Ok(t) => t,
                Err(e) => {
                    self.store_failed("load_thread", a, &e);
                    None
                }
            },
            None => None,
        };
        let origin = alert_origin(a);
        if stored
            .as_ref()
            .is_some_and(|t| t.origin.as_deref() == Some(origin.as_str()))
        {
            // SNS retries the whole invocation when another destination
            // failed: this alert's card is already in the channel.
            tracing::info!(
                vigil.finding_id = %a.finding_id,
                "this alert already started the fingerprint's thread: not posting it again"
            );
            return Ok(Outcome::Skipped("already posted (a retried delivery)"));
        }
        // A new alert starts a new thread; repeats and resolutions reply.
        let thread = stored.filter(|_| a.status != AlertStatus::New);

        if let Some(thread) = thread {
            let channel = match thread.channel.as_deref().map(SlackChannel::parse) {
                Some(Ok(c)) => c,
                _ => self.channel_for(a).await?,
            };
            match self.post(compact(a), &channel, Some(&thread.ts)).await {
                Ok(posted) => {
                    tracing::info!(slack.channel = %posted.channel, slack.thread_ts = %thread.ts, "replied in the fingerprint's thread");
                    return Ok(Outcome::Sent);
                }
                Err(PostError::ThreadGone { .. }) => {
                    tracing::warn!(slack.thread_ts = %thread.ts, "the thread's first message is gone: starting a new thread");
                }
                Err(e) => return Err(e.into_sink()),
            }
        }

        let channel = self.channel_for(a).await?;
        let posted = self
            .post(top_level_message(a, key.is_some()), &channel, None)
            .await
            .map_err(PostError::into_sink)?;
        tracing::info!(slack.channel = %posted.channel, slack.ts = %posted.ts, "posted at the top level");
        if let Some((store, key)) = &key {
            let thread = SlackThread {
                ts: posted.ts,
                channel: Some(posted.channel),
                origin: Some(origin),
            };
            if let Err(e) = store
                .save(key, &thread, now.saturating_add(STATE_RETENTION_SECONDS))
                .await
            {
                self.store_failed("save_thread", a, &e);
            }
        }
        Ok(Outcome::Sent)
    }
}

/// What identifies one alert across deliveries of the same SNS message: the
/// finding, its time, how often the source had seen it, and its status. A
/// later alert of the same fingerprint differs in at least one of them.
fn alert_origin(a: &AlertView) -> String {
    format!(
        "{}|{}|{}|{:?}",
        a.finding_id,
        a.time.map_or(0, |t| t.timestamp_millis()),
        a.count,
        a.status
    )
}

impl Destination for SlackBot {
    fn name(&self) -> &'static str {
        SINK
    }

    fn deliver<'a>(&'a self, alert: &'a AlertView) -> DeliverFuture<'a> {
        Box::pin(self.deliver_alert(alert))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::threads::MemoryThreads;
    use crate::notify::view::tests_support::{hostile, sample_view};
    use crate::notify::HttpPolicy;
    use http::StatusCode;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: body.to_string(),
        }
    }

    fn chan(s: &str) -> SlackChannel {
        SlackChannel::parse(s).unwrap()
    }

    #[test]
    fn channels_are_names_or_ids() {
        assert_eq!(chan(" #security ").as_str(), "#security");
        assert_eq!(chan("C0123ABCD").as_str(), "C0123ABCD");
        for bad in [
            "",
            " ",
            "#",
            "#two words",
            "#a\u{0}b",
            &format!("#{}", "x".repeat(81)),
        ] {
            assert!(SlackChannel::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_body_carries_channel_thread_and_no_unfurling() {
        let v = sample_view();
        let b = post_body(card(&v), &chan("#sec"), None);
        assert_eq!(b["channel"], "#sec");
        assert_eq!(b["unfurl_links"], false);
        assert_eq!(b["unfurl_media"], false);
        assert!(b.get("thread_ts").is_none());
        assert!(b.get("link_names").is_none());
        assert_eq!(b["blocks"], card(&v)["blocks"]);
        assert_eq!(b["text"], card(&v)["text"]);
        let r = post_body(compact(&v), &chan("C1"), Some("1700000000.000100"));
        assert_eq!(r["thread_ts"], "1700000000.000100");
        assert!(r.get("link_names").is_none());
    }

    #[test]
    fn answers_are_read_and_classified() {
        let c = chan("#payments-sec");
        assert_eq!(
            read_answer(
                &resp(200, r#"{"ok":true,"channel":"C9","ts":"1.2"}"#),
                &c,
                None
            )
            .unwrap(),
            Posted {
                channel: "C9".into(),
                ts: "1.2".into()
            }
        );
        let err = |status, body: &str, thread: Option<&str>| {
            read_answer(&resp(status, body), &c, thread).unwrap_err()
        };
        for code in ["invalid_auth", "token_revoked", "account_inactive"] {
            let e = err(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#), None);
            assert!(matches!(e, PostError::Auth { .. }), "{e}");
            assert!(!e.is_transient());
        }
        for code in ["channel_not_found", "not_in_channel"] {
            let e = err(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#), None);
            assert!(matches!(e, PostError::Channel { .. }), "{e}");
            assert!(e.to_string().contains("#payments-sec"), "{e}");
            assert!(!e.is_transient());
        }
        let e = err(200, r#"{"ok":false,"error":"ratelimited"}"#, None);
        assert!(e.is_transient());
        let e = err(200, r#"{"ok":false,"error":"internal_error"}"#, None);
        assert!(e.is_transient());
        let e = err(200, r#"{"ok":false,"error":"invalid_blocks"}"#, None);
        assert!(!e.is_transient() && e.to_string().contains("invalid_blocks"));
        let e = err(
            200,
            r#"{"ok":false,"error":"thread_not_found"}"#,
            Some("1.2"),
        );
        assert!(matches!(e, PostError::ThreadGone { .. }));
        assert!(err(503, "down", None).is_transient());
        assert!(!err(404, "no", None).is_transient());
        assert!(matches!(err(200, "ok", None), PostError::Unreadable(_)));
        assert!(matches!(
            err(200, r#"{"ok":true}"#, None),
            PostError::Unreadable(_)
        ));
        // Hostile error codes are flattened before they reach a log line.
        let e = err(200, "{\"ok\":false,\"error\":\"x\\u001b[31m\\ny\"}", None);
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
    }

    #[test]
    fn rate_limits_are_http_429_or_slacks_own_word() {
        assert_eq!(slack_rate_limited(&resp(429, "")), Some("HTTP 429"));
        assert!(slack_rate_limited(&resp(200, r#"{"ok":false,"error":"ratelimited"}"#)).is_some());
        assert!(slack_rate_limited(&resp(200, r#"{"ok":false,"error":"invalid_auth"}"#)).is_none());
        assert!(slack_rate_limited(&resp(200, r#"{"ok":true,"ts":"1"}"#)).is_none());
        assert!(slack_rate_limited(&resp(500, r#"{"ok":false,"error":"ratelimited"}"#)).is_none());
    }

    #[test]
    fn top_level_messages_depend_on_status_and_threading() {
        let mut v = sample_view();
        assert_eq!(top_level_message(&v, true), card(&v));
        v.status = AlertStatus::Repeat;
        assert_eq!(top_level_message(&v, true), card(&v));
        assert_eq!(top_level_message(&v, false), compact(&v));
        v.status = AlertStatus::Resolved;
        assert_eq!(top_level_message(&v, true), compact(&v));
    }

    fn bot(store: &MemoryThreads) -> SlackBot {
        SlackBot::new(
            Secret::value("xoxb-1"),
            "http://127.0.0.1:9/api/",
            HttpClient::new(HttpPolicy::default()).unwrap(),
        )
        .threads(Some(Arc::new(store.clone())))
    }

    #[test]
    fn the_post_url_is_the_api_base_plus_the_method() {
        assert_eq!(
            bot(&MemoryThreads::new()).post_url,
            "http://127.0.0.1:9/api/chat.postMessage"
        );
    }

    #[test]
    fn overlong_fingerprints_are_not_threaded() {
        let store = MemoryThreads::new();
        let b = bot(&store);
        assert!(b.thread_key(&sample_view()).is_some());
        assert!(b.thread_key(&hostile()).is_none());
        assert!(SlackBot::new(
            Secret::value("xoxb-1"),
            DEFAULT_API_URL,
            HttpClient::new(HttpPolicy::default()).unwrap()
        )
        .thread_key(&sample_view())
        .is_none());
    }

    #[tokio::test]
    async fn the_channel_is_routed_then_configured_then_the_secrets() {
        let http = HttpClient::new(HttpPolicy::default()).unwrap();
        let secret = || {
            Secret::value(r##"{"bot_token": "xoxb-1", "channel": "#from-secret"}"##)
                .with_keys(BOT_TOKEN_SECRET_KEYS)
        };
        let routed = |channel: &str| {
            let mut v = sample_view();
            v.route = Some(crate::route::Route {
                name: "r".into(),
                slack_channel: Some(channel.into()),
                ..Default::default()
            });
            v
        };
        let b = SlackBot::new(secret(), DEFAULT_API_URL, http.clone());
        assert_eq!(
            b.channel_for(&sample_view()).await.unwrap(),
            chan("#from-secret")
        );
        let b = b.default_channel(Some(chan("#configured")));
        assert_eq!(
            b.channel_for(&sample_view()).await.unwrap(),
            chan("#configured")
        );
        assert_eq!(
            b.channel_for(&routed("#payments")).await.unwrap(),
            chan("#payments")
        );
        assert_eq!(
            b.channel_for(&routed("not a channel")).await.unwrap(),
            chan("#configured"),
            "an unusable route falls back"
        );
        let none = SlackBot::new(Secret::value("xoxb-bare"), DEFAULT_API_URL, http);
        let e = none.channel_for(&sample_view()).await.unwrap_err();
        assert!(e.to_string().contains("VIGIL_SLACK_CHANNEL"), "{e}");
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_without_echoing_it() {
        let e = SlackBot::authorization(&SecretString::new("xoxb-\nSECRET")).unwrap_err();
        assert!(!e.to_string().contains("SECRET"));
        let (_, v) = SlackBot::authorization(&SecretString::new("xoxb-1")).unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v.to_str().unwrap(), "Bearer xoxb-1");
    }

    #[tokio::test]
    async fn a_failing_store_never_stops_a_post_attempt() {
        // Nothing listens on port 9: the post fails, but only after the store
        // failure was counted and skipped.
        let store = MemoryThreads::new();
        store.set_unavailable(true);
        let b = bot(&store).default_channel(Some(chan("#sec")));
        let mut v = sample_view();
        v.status = AlertStatus::Repeat;
        let e = b.deliver(&v).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert_eq!(b.thread_store_errors(), 1);
    }
}

//! Slack: the alert as a Block Kit message, posted to an incoming webhook
//! ([`SlackWebhook`]) or with a bot token ([`super::slack_bot::SlackBot`],
//! which reuses the messages built here).
//!
//! An incoming webhook is tied to one channel, so channel routing in webhook
//! mode is a map in the webhook secret: `{"webhook_url": "<default>",
//! "channels": {"#payments-sec": "<that channel's webhook>"}}`. The alert's
//! routed channel (`route.slack_channel`) picks the entry; a channel without
//! one gets the default webhook and a warning, never a dropped alert.
//!
//! Safety rules, because every string in an alert may be attacker-chosen (user
//! agents, bucket names, tags, descriptions):
//! - every piece of event text is cleaned of control characters and escaped
//!   (`&`, `<`, `>`), so it can neither ping `<!channel>`/`<@U123>` nor plant a
//!   link `<https://evil|click>`; `link_names` is never set;
//! - in `mrkdwn` text, event text only ever appears inside an inline code span
//!   whose backticks it cannot close, so `*bold*` or `_x_` stay literal; longer
//!   text (header, description) goes in `plain_text`, where Slack applies no
//!   formatting at all;
//! - links (console, trace) are button URLs, never markup, and only when they
//!   are plain `http(s)` URLs; the console button only for an AWS console
//!   page ([`is_console_url`]); any other URL in text is defanged
//!   (`hxxps://evil[.]example`);
//! - Slack's limits hold whatever the input (header 150, section text 3000,
//!   field 2000, 50 blocks, 40,000 characters), counted after escaping in
//!   UTF-16 units, the stricter reading; cuts are marked with `…`.

use serde_json::{json, Value};

use super::http::{HttpClient, HttpError};
use super::secrets::{Secret, SecretError, SecretString};
use super::view::{AlertStatus, AlertView};
use super::{DeliverFuture, Destination, Outcome};
use crate::model::Severity;
use crate::render::severity_emoji;
use crate::sinks::SinkError;
use crate::text::link::{defang, is_console_url};
use crate::text::strip_controls;

/// Slack's documented limits.
pub(crate) const HEADER_MAX: usize = 150;
pub(crate) const SECTION_TEXT_MAX: usize = 3000;
#[cfg(test)]
pub(crate) const FIELD_TEXT_MAX: usize = 2000;
#[cfg(test)]
pub(crate) const MAX_BLOCKS: usize = 50;
#[cfg(test)]
pub(crate) const MESSAGE_MAX: usize = 40_000;
/// Button label and URL limits.
const BUTTON_TEXT_MAX: usize = 75;
const URL_MAX: usize = 3000;
/// What one field value may take (after escaping): enough for an ARN, small
/// enough that eight fields stay far below the message limit.
const FIELD_VALUE_MAX: usize = 400;

/// Length as Slack may count it: UTF-16 code units (an emoji counts 2).
pub(crate) fn slack_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Event text made safe for any Slack text object: control characters removed
/// (newlines kept only when `multiline`), `&<>` escaped, and at most `max`
/// UTF-16 units *after* escaping, with `…` marking a cut. A cut never splits
/// an entity such as `&amp;`.
pub(crate) fn escape_text(s: &str, max: usize, multiline: bool) -> String {
    let cleaned = if multiline {
        strip_controls(&s.replace("\r\n", "\n").replace('\r', "\n"), true)
    } else {
        strip_controls(&s.replace(['\n', '\r', '\t'], " "), false)
    };
    // A URL in text is shown defanged: Slack makes plain URLs links.
    // `[x](y)` is broken apart too, for any client that reads markdown links.
    let cleaned = defang(crate::text::truncate(cleaned.trim(), max.saturating_add(1)).as_str())
        .replace("](", "] (");
    let cleaned = cleaned.as_str();
    let piece = |c: char| -> Option<&'static str> {
        match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            _ => None,
        }
    };
    let full: usize = cleaned
        .chars()
        .map(|c| piece(c).map_or(c.len_utf16(), str::len))
        .sum();
    let budget = if full <= max {
        max
    } else {
        max.saturating_sub(1)
    };
    let mut out = String::with_capacity(cleaned.len().min(max * 4));
    let mut used = 0;
    for c in cleaned.chars() {
        let (text, len) = match piece(c) {
            Some(e) => (e, e.len()),
            None => ("", c.len_utf16()),
        };
        if used + len > budget {
            break;
        }
        used += len;
        if text.is_empty() {
            out.push(c);
        } else {
            out.push_str(text);
        }
    }
    if full > max && max > 0 {
        out.push('…');
    }
    out
}

/// Event text as an inline code span for `mrkdwn`: nothing inside is a
/// mention, link or emphasis, and the text cannot close the span (its
/// backticks become `'`). At most `max` units including the backticks.
pub fn code(s: &str, max: usize) -> String {
    format!(
        "`{}`",
        escape_text(&s.replace('`', "'"), max.saturating_sub(2), false)
    )
}

/// A URL usable as a button target: `http(s)`, printable ASCII, no spaces or
/// characters that need quoting, within Slack's length limit. Anything else is
/// dropped rather than risk Slack rejecting the whole message.
pub(crate) fn button_url(url: &str) -> Option<&str> {
    let u = url.trim();
    let lower = u.get(..8).unwrap_or(u).to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    let chars_ok = u
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\' | b'`'));
    (scheme_ok && chars_ok && u.len() <= URL_MAX && u.len() > "https://".len()).then_some(u)
}

fn plain(text: String) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

fn field(label: &str, value: String) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")})
}

/// The header: emoji, severity and title, in `plain_text` of at most 150.
fn header_text(a: &AlertView) -> String {
    let prefix = format!("{} {}: ", severity_emoji(a.severity), a.severity.as_str());
    let room = HEADER_MAX.saturating_sub(slack_len(&prefix));
    format!("{prefix}{}", escape_text(&a.title, room, false))
}

/// The plain-text fallback Slack shows in notifications and where blocks
/// cannot render.
pub(crate) fn fallback_text(a: &AlertView) -> String {
    let mut s = format!("[{}] {}", a.severity.as_str(), a.title);
    if let Some(acct) = a.account_label() {
        s.push_str(&format!(" | {acct}"));
    }
    if let Some(region) = &a.region {
        s.push_str(&format!(" {region}"));
    }
    escape_text(&s, 300, false)
}

fn actor_text(a: &AlertView) -> Option<String> {
    let actor = a.actor.as_ref()?;
    let name = actor.display_name()?;
    let mut s = name.to_string();
    if let Some(kind) = &actor.kind {
        s.push_str(&format!(" ({kind})"));
    }
    match actor.mfa {
        Some(true) => s.push_str(", MFA used"),
        Some(false) => s.push_str(", no MFA"),
        None => {}
    }
    if let Some(key) = &actor.access_key_id {
        s.push_str(&format!(", key {key}"));
    }
    Some(s)
}

fn source_ip_text(a: &AlertView) -> Option<String> {
    let e = a.src_endpoint.as_ref()?;
    let mut s = e.ip.clone().or_else(|| e.domain.clone())?;
    if let Some(port) = e.port {
        s.push_str(&format!(":{port}"));
    }
    let place: Vec<&str> = [&e.city, &e.country, &e.org]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !place.is_empty() {
        s.push_str(&format!(" ({})", place.join(", ")));
    }
    if let Some(asn) = &e.asn {
        s.push_str(&format!(" AS{asn}"));
    }
    Some(s)
}

fn resource_text(a: &AlertView) -> Option<String> {
    let r = a.primary_resource()?;
    let mut s = match &r.kind {
        Some(k) => format!("{k} {}", r.uid),
        None => r.uid.clone(),
    };
    if a.resources.len() > 1 {
        s.push_str(&format!(" (+{} more)", a.resources.len() - 1));
    }
    Some(s)
}

fn tactics_text(a: &AlertView) -> Option<String> {
    if a.tactics.is_empty() {
        return None;
    }
    Some(
        a.tactics
            .iter()
            .take(8)
            .map(|t| match &t.name {
                Some(n) => format!("{n} ({})", t.uid),
                None => t.uid.clone(),
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The other rules the event matched: the first five, then a count.
fn also_matched_text(a: &AlertView) -> Option<String> {
    if a.also_matched.is_empty() {
        return None;
    }
    let mut s = a
        .also_matched
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if a.also_matched.len() > 5 {
        s.push_str(&format!(" (+{} more)", a.also_matched.len() - 5));
    }
    Some(s)
}

fn seen_text(a: &AlertView) -> Option<String> {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    match (a.first_seen, a.last_seen, a.time) {
        (Some(first), Some(last), _) if first != last => Some(format!(
            "{} to {}{}",
            fmt(first),
            fmt(last),
            if a.count > 1 {
                format!(" ({} times)", a.count)
            } else {
                String::new()
            }
        )),
        (_, _, Some(t)) => Some(fmt(t)),
        _ => None,
    }
}

/// Buttons to the finding in the console and to the trace, when the alert
/// carries usable URLs.
fn actions(a: &AlertView) -> Option<Value> {
    let mut elements = Vec::new();
    let console = a.console_url.as_deref().filter(|u| is_console_url(u));
    if let Some(url) = console.and_then(button_url) {
        elements.push(json!({
            "type": "button", "action_id": "vigil_console", "url": url,
            "text": plain(escape_text("Open in AWS console", BUTTON_TEXT_MAX, false)),
        }));
    }
    if let Some(url) = a.trace_url.as_deref().and_then(button_url) {
        elements.push(json!({
            "type": "button", "action_id": "vigil_trace", "url": url,
            "text": plain(escape_text("View trace", BUTTON_TEXT_MAX, false)),
        }));
    }
    (!elements.is_empty()).then(|| json!({"type": "actions", "elements": elements}))
}

/// The ids that lead from the message to Vigil's logs and spans.
fn context(a: &AlertView) -> Value {
    let mut parts = vec!["Vigil".to_string()];
    if let Some(src) = &a.source {
        parts.push(code(src, 60));
    }
    if let Some(t) = &a.finding_type {
        parts.push(format!("type {}", code(t, 200)));
    }
    parts.push(format!("finding {}", code(&a.finding_id, 200)));
    parts.push(format!("fingerprint {}", code(&a.fingerprint, 100)));
    if let Some(t) = &a.trace_id {
        parts.push(format!("trace {}", code(t, 64)));
    }
    let mut elements = vec![json!({"type": "mrkdwn", "text": parts.join(" · ")})];
    if a.sample {
        elements.push(json!({"type": "mrkdwn",
            "text": ":test_tube: *Sample* finding generated by the source, not real activity"}));
    }
    json!({"type": "context", "elements": elements})
}

/// The full card for a new finding.
pub fn card(a: &AlertView) -> Value {
    let mut blocks = vec![json!({"type": "header", "text": plain(header_text(a))})];

    let mut fields = Vec::new();
    let mut add = |label: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            fields.push(field(label, code(&v, FIELD_VALUE_MAX)));
        }
    };
    add("Account", a.account_label());
    add("Region", a.region.clone());
    add("Actor", actor_text(a));
    add("Resource", resource_text(a));
    add("Source IP", source_ip_text(a));
    add("ATT&amp;CK", tactics_text(a));
    add(
        "Severity",
        Some(match &a.source_severity {
            Some(s) => format!("{} (source score {s})", a.severity.label()),
            None => a.severity.label().to_string(),
        }),
    );
    add("Seen", seen_text(a));
    add("Also matched", also_matched_text(a));
    // Slack takes at most 10 fields per section.
    fields.truncate(10);
    blocks.push(json!({"type": "section", "fields": fields}));

    if !a.description.trim().is_empty() {
        blocks.push(json!({"type": "section",
            "text": plain(escape_text(&a.description, SECTION_TEXT_MAX, true))}));
    }
    if let Some(actions) = actions(a) {
        blocks.push(actions);
    }
    blocks.push(context(a));
    json!({"text": fallback_text(a), "blocks": blocks})
}

/// The one-section message for a finding seen again or resolved: enough to
/// place it, without repeating the whole card.
pub fn compact(a: &AlertView) -> Value {
    let (emoji, what) = match a.status {
        AlertStatus::Resolved => (":white_check_mark:", "Resolved".to_string()),
        _ if a.suppressed_repeats.unwrap_or(0) > 0 => (
            ":repeat:",
            format!("Seen again ({} times since the last alert)", a.times_seen()),
        ),
        _ => (":repeat:", format!("Seen again ({} times)", a.times_seen())),
    };
    let mut line = format!(
        "{emoji} *{what}* · {} {}",
        a.severity.as_str(),
        code(&a.title, 300)
    );
    if let Some(acct) = a.account_label() {
        line.push_str(&format!(" · {}", code(&acct, 120)));
    }
    if let Some(region) = &a.region {
        line.push_str(&format!(" · {}", code(region, 40)));
    }
    if let Some(r) = resource_text(a) {
        line.push_str(&format!(" · {}", code(&r, 300)));
    }
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": line}})];
    if let Some(actions) = actions(a) {
        blocks.push(actions);
    }
    blocks.push(context(a));
    let text = escape_text(
        &format!("{what}: [{}] {}", a.severity.as_str(), a.title),
        300,
        false,
    );
    json!({"text": text, "blocks": blocks})
}

/// The message for `a`: the full card for a new finding, the compact form for
/// repeats and resolutions.
pub fn message(a: &AlertView) -> Value {
    match a.status {
        AlertStatus::New => card(a),
        AlertStatus::Repeat | AlertStatus::Resolved => compact(a),
    }
}

/// The channel the routing table chose for `a` (`route.slack_channel`), if any.
pub(crate) fn routed_channel(a: &AlertView) -> Option<&str> {
    a.route
        .as_ref()?
        .slack_channel
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// The names a channel may be listed under: as given, then with or without
/// its leading `#` (the routing table and the secret may disagree on it).
fn channel_names(channel: &str) -> [String; 2] {
    let other = match channel.strip_prefix('#') {
        Some(bare) => bare.to_string(),
        None => format!("#{channel}"),
    };
    [channel.to_string(), other]
}

/// The named group of the webhook secret that maps channels to webhooks.
pub(crate) const CHANNELS_GROUP: &str = "channels";

/// An incoming webhook. The URL is the credential, so it lives in a
/// [`Secret`] and never appears in logs or errors.
#[derive(Debug)]
pub struct SlackWebhook {
    url: Secret,
    http: HttpClient,
    /// Alerts below this are not posted (default: all).
    min_severity: Severity,
}

impl SlackWebhook {
    pub fn new(url: Secret, http: HttpClient) -> SlackWebhook {
        SlackWebhook {
            url,
            http,
            min_severity: Severity::Informational,
        }
    }

    pub fn min_severity(mut self, min: Severity) -> SlackWebhook {
        self.min_severity = min;
        self
    }

    /// The webhook for `alert`: its routed channel's from the secret's
    /// `channels`, else the default one (with a warning when a routed channel
    /// has none: the alert still goes out).
    pub(crate) async fn url_for(&self, alert: &AlertView) -> Result<SecretString, SecretError> {
        if let Some(channel) = routed_channel(alert) {
            for name in channel_names(channel) {
                if let Some(url) = self.url.get_named(CHANNELS_GROUP, &name).await? {
                    return Ok(url);
                }
            }
            tracing::warn!(
                slack.channel = %crate::text::one_line(channel, 100),
                vigil.finding_id = %alert.finding_id,
                "no webhook for the routed Slack channel in the secret's \"channels\": posting to the default webhook"
            );
        }
        self.url.get().await
    }

    /// Posts one message to the default webhook.
    pub async fn post(&self, message: &Value) -> Result<(), SinkError> {
        let url = self.url.get().await.map_err(|e| secret_error("slack", e))?;
        self.post_to(&url, message).await
    }

    /// Posts one message to `url`; see the module docs for what each answer means.
    async fn post_to(&self, url: &SecretString, message: &Value) -> Result<(), SinkError> {
        let resp = match self.http.post_json(url.expose(), message).await {
            Ok(resp) => resp,
            Err(e) => {
                if matches!(e, HttpError::InvalidUrl(_)) {
                    // A malformed secret: read it again once someone fixes it.
                    self.url.invalidate().await;
                }
                return Err(http_error("slack", e));
            }
        };
        let status = resp.status.as_u16();
        if resp.status.is_success() {
            return Ok(());
        }
        // 403/404/410: the webhook was revoked, its channel archived or the
        // app removed. Read the secret again next time: it may have been rotated.
        if matches!(status, 403 | 404 | 410) {
            self.url.invalidate().await;
        }
        let message = format!("HTTP {status}: {}", resp.body_excerpt());
        Err(if resp.status.is_server_error() {
            SinkError::Transient {
                sink: "slack",
                message,
            }
        } else {
            SinkError::Permanent {
                sink: "slack",
                message,
            }
        })
    }
}

impl Destination for SlackWebhook {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn deliver<'a>(&'a self, alert: &'a AlertView) -> DeliverFuture<'a> {
        Box::pin(async move {
            if alert.severity < self.min_severity {
                return Ok(Outcome::Skipped("below the Slack minimum severity"));
            }
            let url = self
                .url_for(alert)
                .await
                .map_err(|e| secret_error("slack", e))?;
            self.post_to(&url, &message(alert))
                .await
                .map(|()| Outcome::Sent)
        })
    }
}

pub(crate) fn secret_error(sink: &'static str, e: super::secrets::SecretError) -> SinkError {
    if e.is_transient() {
        SinkError::Transient {
            sink,
            message: e.to_string(),
        }
    } else {
        SinkError::Permanent {
            sink,
            message: e.to_string(),
        }
    }
}

pub(crate) fn http_error(sink: &'static str, e: HttpError) -> SinkError {
    if e.is_transient() {
        SinkError::Transient {
            sink,
            message: e.to_string(),
        }
    } else {
        SinkError::Permanent {
            sink,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::view::tests_support::{hostile, sample_view};

    /// Every text object in a message, with its type.
    fn texts(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                if let (Some(Value::String(t)), Some(Value::String(text))) =
                    (m.get("type"), m.get("text"))
                {
                    out.push((t.clone(), text.clone()));
                }
                m.values().for_each(|v| texts(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| texts(v, out)),
            _ => {}
        }
    }

    fn check_limits(msg: &Value) {
        let blocks = msg["blocks"].as_array().unwrap();
        assert!(!blocks.is_empty() && blocks.len() <= MAX_BLOCKS);
        for b in blocks {
            match b["type"].as_str().unwrap() {
                "header" => assert!(slack_len(b["text"]["text"].as_str().unwrap()) <= HEADER_MAX),
                "section" => {
                    if let Some(t) = b["text"]["text"].as_str() {
                        assert!(slack_len(t) <= SECTION_TEXT_MAX);
                    }
                    if let Some(fields) = b["fields"].as_array() {
                        assert!(fields.len() <= 10);
                        for f in fields {
                            assert!(slack_len(f["text"].as_str().unwrap()) <= FIELD_TEXT_MAX);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut all = Vec::new();
        texts(msg, &mut all);
        let total: usize = all.iter().map(|(_, t)| slack_len(t)).sum::<usize>()
            + slack_len(msg["text"].as_str().unwrap());
        assert!(total <= MESSAGE_MAX, "{total}");
        assert!(msg.to_string().chars().count() <= MESSAGE_MAX);
        assert!(msg.get("link_names").is_none());
    }

    #[tokio::test]
    async fn a_routed_channel_picks_its_webhook_or_falls_back_to_the_default() {
        let secret = Secret::value(
            r##"{"webhook_url": "https://hooks.slack.com/default",
                "channels": {"#payments-sec": "https://hooks.slack.com/payments", "ops": "https://hooks.slack.com/ops"}}"##,
        )
        .with_keys(crate::notify::SLACK_SECRET_KEYS);
        let hook = SlackWebhook::new(secret, HttpClient::new(Default::default()).unwrap());
        let url_for = |channel: Option<&str>| {
            let mut v = sample_view();
            v.route = Some(crate::route::Route {
                name: "r".into(),
                slack_channel: channel.map(str::to_string),
                ..Default::default()
            });
            let hook = &hook;
            async move { hook.url_for(&v).await.unwrap().expose().to_string() }
        };
        assert_eq!(
            url_for(Some("#payments-sec")).await,
            "https://hooks.slack.com/payments"
        );
        assert_eq!(
            url_for(Some("payments-sec")).await,
            "https://hooks.slack.com/payments"
        );
        assert_eq!(url_for(Some("#ops")).await, "https://hooks.slack.com/ops");
        assert_eq!(
            url_for(Some("#unknown")).await,
            "https://hooks.slack.com/default"
        );
        assert_eq!(url_for(Some("  ")).await, "https://hooks.slack.com/default");
        assert_eq!(url_for(None).await, "https://hooks.slack.com/default");
    }

    #[test]
    fn escape_text_escapes_cuts_and_marks() {
        assert_eq!(
            escape_text("<!here> & <@U1>", 100, false),
            "&lt;!here&gt; &amp; &lt;@U1&gt;"
        );
        assert_eq!(escape_text("abcdef", 4, false), "abc…");
        // Never half an entity: "&amp;" does not fit in 3 units, so it is left out.
        assert_eq!(escape_text("a&bc", 4, false), "a…");
        assert_eq!(
            escape_text("a\u{1b}[31mb\u{202e}c\0", 100, false),
            "a[31mbc"
        );
        assert_eq!(escape_text("l1\r\nl2", 100, true), "l1\nl2");
        assert_eq!(escape_text("l1\nl2", 100, false), "l1 l2");
        // Emoji count two units.
        assert_eq!(slack_len(&escape_text(&"😀".repeat(200), 150, false)), 149);
        assert_eq!(escape_text("abc", 0, false), "");
    }

    #[test]
    fn code_spans_cannot_be_closed() {
        let c = code("x` *bold* `<!channel>", 100);
        assert_eq!(c.matches('`').count(), 2);
        assert!(c.starts_with('`') && c.ends_with('`'));
        assert!(!c.contains('<'));
    }

    #[test]
    fn only_plain_urls_become_buttons() {
        assert!(button_url("https://console.aws.amazon.com/x?a=1&b=2").is_some());
        assert!(button_url("HTTPS://EXAMPLE.COM/").is_some());
        assert!(button_url("javascript:alert(1)").is_none());
        assert!(
            button_url("https://evil|click").is_some(),
            "a bar is harmless in a JSON url field"
        );
        assert!(button_url("https://a b").is_none());
        assert!(button_url("https://a/<x>").is_none());
        assert!(button_url(&format!("https://a/{}", "x".repeat(4000))).is_none());
        assert!(button_url("https://").is_none());
    }

    #[test]
    fn card_has_the_expected_shape() {
        let v = sample_view();
        let msg = card(&v);
        check_limits(&msg);
        let blocks = msg["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(
            header.contains("HIGH") && header.contains("Tor exit node"),
            "{header}"
        );
        let fields: Vec<&str> = blocks[1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with("*Account*\n`prod (111122223333)`")),
            "{fields:?}"
        );
        assert!(fields
            .iter()
            .any(|f| f.starts_with("*Region*\n`us-east-1`")));
        assert!(fields.iter().any(|f| f.contains("alice (IAMUser), no MFA")));
        assert!(fields
            .iter()
            .any(|f| f.contains("AwsIamAccessKey AKIAEXAMPLE")));
        assert!(fields.iter().any(|f| f.contains("198.51.100.7:443")));
        assert!(fields.iter().any(|f| f.contains("Initial Access (TA0001)")));
        assert_eq!(blocks[2]["text"]["type"], "plain_text");
        let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
        let urls: Vec<&str> = actions["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["url"].as_str().unwrap())
            .collect();
        assert_eq!(
            urls,
            [
                v.console_url.as_deref().unwrap(),
                v.trace_url.as_deref().unwrap()
            ]
        );
        let ctx = blocks.last().unwrap();
        assert_eq!(ctx["type"], "context");
        assert!(ctx["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("`fp-1`"));
        assert!(msg["text"].as_str().unwrap().starts_with("[HIGH] "));
    }

    #[test]
    fn repeats_and_resolutions_are_compact() {
        let mut v = sample_view();
        v.status = AlertStatus::Repeat;
        v.count = 7;
        let msg = message(&v);
        check_limits(&msg);
        let first = msg["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(first.contains("Seen again (7 times)"), "{first}");
        assert!(msg["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["type"] != "header"));
        v.status = AlertStatus::Resolved;
        let msg = message(&v);
        assert!(msg["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("*Resolved*"));
    }

    #[test]
    fn hostile_text_in_every_field_cannot_inject() {
        for status in [AlertStatus::New, AlertStatus::Repeat, AlertStatus::Resolved] {
            let mut v = hostile();
            v.status = status;
            let msg = message(&v);
            check_limits(&msg);
            let mut all = Vec::new();
            texts(&msg, &mut all);
            all.push(("mrkdwn".into(), msg["text"].as_str().unwrap().to_string()));
            for (kind, text) in &all {
                assert!(!text.contains('<') && !text.contains('>'), "{kind}: {text}");
                assert!(
                    !text.chars().any(|c| c.is_control() && c != '\n'),
                    "{kind}: {text:?}"
                );
                assert!(!text.contains('\u{202e}') && !text.contains('\u{1b}'));
                if kind == "mrkdwn" && text != msg["text"].as_str().unwrap() {
                    // Outside code spans only Vigil's own words remain.
                    let outside: String = text.split('`').step_by(2).collect();
                    assert!(!outside.contains("bold"), "{text}");
                    assert!(!outside.contains("channel"), "{text}");
                }
            }
            for b in msg["blocks"].as_array().unwrap() {
                for e in b["elements"].as_array().into_iter().flatten() {
                    if let Some(url) = e["url"].as_str() {
                        assert!(!url.contains("evil"), "{url}");
                    }
                }
            }
        }
    }
}

//! PagerDuty Events API v2: a page for serious findings, resolved when the
//! source resolves the finding.
//!
//! The dedup key is the finding's fingerprint, so repeats of one finding (and
//! the invocation's own retries) update one incident instead of opening new
//! ones: PagerDuty is idempotent where Slack is not, which is why the
//! notifier pages before it posts to Slack.

use serde_json::{json, Map, Value};

use super::http::HttpClient;
use super::secrets::{Secret, SecretError, SecretString};
use super::slack::{http_error, secret_error};
use super::view::{AlertStatus, AlertView};
use super::{DeliverFuture, Destination, Outcome};
use crate::model::Severity;
use crate::sinks::SinkError;
use crate::text::link::is_console_url;
use crate::text::Untrusted;

/// Event text on one line, URLs defanged (PagerDuty makes plain URLs links).
fn one_line(s: &str, max: usize) -> String {
    Untrusted::new(s).line(max).into_string()
}

/// The public Events API v2 endpoint.
pub(crate) const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty's limits: summary 1024 characters, dedup key 255.
pub(crate) const SUMMARY_MAX: usize = 1024;
pub(crate) const DEDUP_KEY_MAX: usize = 255;

/// Events v2 `event_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    Trigger,
    Resolve,
}

impl EventAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Trigger => "trigger",
            EventAction::Resolve => "resolve",
        }
    }
}

/// Vigil severity → PagerDuty `payload.severity`.
pub(crate) fn pd_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Informational => "info",
    }
}

/// The dedup key: the fingerprint, cut to PagerDuty's 255 bytes on a
/// character boundary (no `…`: it is a key, not text).
pub fn dedup_key(a: &AlertView) -> String {
    let key = one_line(&a.fingerprint, DEDUP_KEY_MAX);
    let key = key.trim_end_matches('…');
    let mut end = key.len().min(DEDUP_KEY_MAX);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    key[..end].to_string()
}

/// Resolved findings resolve the incident; everything else triggers it
/// (a repeat with the same dedup key updates the open incident).
pub fn action(a: &AlertView) -> EventAction {
    match a.status {
        AlertStatus::Resolved => EventAction::Resolve,
        AlertStatus::New | AlertStatus::Repeat => EventAction::Trigger,
    }
}

/// `[HIGH] title | prod (111122223333) us-east-1`, at most 1024 characters.
pub fn summary(a: &AlertView) -> String {
    let mut s = format!("[{}] ", a.severity.as_str());
    if a.sample {
        s.push_str("[SAMPLE] ");
    }
    s.push_str(&a.title);
    if let Some(acct) = a.account_label() {
        s.push_str(&format!(" | {acct}"));
    }
    if let Some(region) = &a.region {
        s.push_str(&format!(" {region}"));
    }
    one_line(&s, SUMMARY_MAX)
}

fn links(a: &AlertView) -> Vec<Value> {
    let mut out = Vec::new();
    let ok = |u: &str| {
        let lower = u.get(..8).unwrap_or(u).to_ascii_lowercase();
        (lower.starts_with("https://") || lower.starts_with("http://"))
            && u.len() <= 2048
            && u.bytes().all(|b| b.is_ascii_graphic())
    };
    if let Some(u) = a
        .console_url
        .as_deref()
        .filter(|u| ok(u) && is_console_url(u))
    {
        out.push(json!({"href": u, "text": "Finding in the AWS console"}));
    }
    if let Some(u) = a.trace_url.as_deref().filter(|u| ok(u)) {
        out.push(json!({"href": u, "text": "Vigil trace"}));
    }
    out
}

/// The first `take` of `items`, each on one line of at most `max`
/// characters, comma-separated; `None` when there are none.
fn joined<'a>(items: impl Iterator<Item = &'a str>, take: usize, max: usize) -> Option<String> {
    let parts: Vec<String> = items.take(take).map(|s| one_line(s, max)).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn custom_details(a: &AlertView) -> Value {
    let mut d = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            d.insert(k.to_string(), Value::String(v));
        }
    };
    put("finding_id", Some(one_line(&a.finding_id, 300)));
    put("fingerprint", Some(one_line(&a.fingerprint, 300)));
    put("source", a.source.as_deref().map(|s| one_line(s, 100)));
    put("product", a.product.as_deref().map(|s| one_line(s, 200)));
    put("type", a.finding_type.as_deref().map(|s| one_line(s, 300)));
    put("severity", Some(a.severity.label().to_string()));
    put(
        "source_severity",
        a.source_severity.as_deref().map(|s| one_line(s, 50)),
    );
    put("account", a.account_label().map(|s| one_line(&s, 200)));
    put("region", a.region.as_deref().map(|s| one_line(s, 50)));
    put(
        "actor",
        a.actor
            .as_ref()
            .and_then(|x| x.display_name())
            .map(|s| one_line(s, 400)),
    );
    put(
        "actor_type",
        a.actor
            .as_ref()
            .and_then(|x| x.kind.as_deref())
            .map(|s| one_line(s, 50)),
    );
    put("source_ip", a.source_ip().map(|s| one_line(s, 100)));
    put(
        "user_agent",
        a.user_agent.as_deref().map(|s| one_line(s, 300)),
    );
    put(
        "resources",
        joined(a.resources.iter().map(|r| r.uid.as_str()), 10, 300),
    );
    put(
        "attack_tactics",
        joined(a.tactics.iter().map(|t| t.uid.as_str()), 14, 20),
    );
    put(
        "attack_techniques",
        joined(a.techniques.iter().map(String::as_str), 20, 20),
    );
    put("count", Some(a.times_seen().to_string()));
    put("trace_id", a.trace_id.as_deref().map(|s| one_line(s, 64)));
    put(
        "xray_trace_id",
        a.xray_trace_id.as_deref().map(|s| one_line(s, 64)),
    );
    put(
        "description",
        (!a.description.is_empty())
            .then(|| Untrusted::new(&a.description).lines(2000, "").into_string()),
    );
    Value::Object(d)
}

/// The Events v2 body for `a` with `routing_key`.
pub fn event(a: &AlertView, routing_key: &str) -> Value {
    let action = action(a);
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action.as_str(),
        "dedup_key": dedup_key(a),
    });
    if action == EventAction::Resolve {
        return body;
    }
    let source = a
        .primary_resource()
        .map(|r| r.uid.as_str())
        .or(a.account_id.as_deref())
        .unwrap_or("aws");
    let mut payload = json!({
        "summary": summary(a),
        "source": one_line(source, 255),
        "severity": pd_severity(a.severity),
        "custom_details": custom_details(a),
    });
    if let Some(t) = a.time {
        payload["timestamp"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    if let Some(kind) = a.primary_resource().and_then(|r| r.kind.as_deref()) {
        payload["component"] = json!(one_line(kind, 255));
    }
    if let Some(acct) = a.account_label() {
        payload["group"] = json!(one_line(&acct, 255));
    }
    if let Some(t) = &a.finding_type {
        payload["class"] = json!(one_line(t, 255));
    }
    body["payload"] = payload;
    body["client"] = json!("Vigil");
    let links = links(a);
    if !links.is_empty() {
        body["links"] = Value::Array(links);
    }
    body
}

/// One PagerDuty service integration (Events API v2).
#[derive(Debug)]
pub struct PagerDuty {
    routing_key: Secret,
    url: String,
    min_severity: Severity,
    http: HttpClient,
}

impl PagerDuty {
    /// Pages for alerts at or above `min_severity`; `url` is the Events v2
    /// enqueue endpoint (`DEFAULT_URL` unless testing or in the EU region).
    pub fn new(
        routing_key: Secret,
        url: impl Into<String>,
        min_severity: Severity,
        http: HttpClient,
    ) -> PagerDuty {
        PagerDuty {
            routing_key,
            url: url.into(),
            min_severity,
            http,
        }
    }

    async fn send(&self, alert: &AlertView) -> Result<Outcome, SinkError> {
        if alert.severity < self.min_severity {
            return Ok(Outcome::Skipped("below the PagerDuty minimum severity"));
        }
        let key = self
            .key_for(alert)
            .await
            .map_err(|e| secret_error("pagerduty", e))?;
        let body = event(alert, key.expose());
        let resp = self
            .http
            .post_json(&self.url, &body)
            .await
            .map_err(|e| http_error("pagerduty", e))?;
        if resp.status.is_success() {
            return Ok(Outcome::Sent);
        }
        let status = resp.status.as_u16();
        // PagerDuty echoes nothing secret; the body says what was wrong.
        let message = format!("HTTP {status}: {}", resp.body_excerpt());
        Err(if resp.status.is_server_error() {
            SinkError::Transient {
                sink: "pagerduty",
                message,
            }
        } else {
            if matches!(status, 400 | 401 | 403 | 404) {
                // Perhaps a rotated or deleted integration key: read it again next time.
                self.routing_key.invalidate().await;
            }
            SinkError::Permanent {
                sink: "pagerduty",
                message,
            }
        })
    }
}

impl PagerDuty {
    /// The routing key of the service the alert's route names (the secret's
    /// `services` object), else the default key. A service the secret does
    /// not know pages the default service, with a warning: a typo in the
    /// routing table must not lose a page.
    async fn key_for(&self, alert: &AlertView) -> Result<SecretString, SecretError> {
        let service = alert
            .route
            .as_ref()
            .and_then(|r| r.pagerduty_service.as_deref());
        if let Some(service) = service {
            if let Some(key) = self.routing_key.get_named(SERVICES, service).await? {
                tracing::debug!(
                    vigil.pagerduty_service = service,
                    "paging the routed service"
                );
                return Ok(key);
            }
            tracing::warn!(
                vigil.pagerduty_service = service,
                vigil.finding_id = %alert.finding_id,
                "the PagerDuty secret has no routing key for this service under \"services\": paging the default service"
            );
        }
        self.routing_key.get().await
    }
}

/// The PagerDuty secret's object of service name → routing key.
pub(crate) const SERVICES: &str = "services";

impl Destination for PagerDuty {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn deliver<'a>(&'a self, alert: &'a AlertView) -> DeliverFuture<'a> {
        Box::pin(self.send(alert))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::view::tests_support::{hostile, sample_view};

    #[test]
    fn trigger_carries_every_documented_field() {
        let v = sample_view();
        let e = event(&v, "R0UTINGKEY");
        assert_eq!(e["routing_key"], "R0UTINGKEY");
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], "fp-1");
        let p = &e["payload"];
        assert_eq!(
            p["summary"],
            "[HIGH] API called from a Tor exit node | prod (111122223333) us-east-1"
        );
        assert_eq!(p["source"], "AKIAEXAMPLE");
        assert_eq!(p["severity"], "error");
        assert_eq!(p["component"], "AwsIamAccessKey");
        assert_eq!(p["group"], "prod (111122223333)");
        assert_eq!(p["class"], "UnauthorizedAccess:IAMUser/TorIPCaller");
        assert_eq!(p["custom_details"]["source_ip"], "198.51.100.7");
        assert_eq!(
            p["custom_details"]["trace_id"],
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(e["links"][0]["href"], v.console_url.as_deref().unwrap());
        assert_eq!(e["links"][1]["href"], v.trace_url.as_deref().unwrap());
    }

    #[tokio::test]
    async fn the_route_picks_the_service_key_and_an_unknown_service_pages_the_default() {
        let pd = PagerDuty::new(
            Secret::value(r#"{"routing_key": "DEFAULT", "services": {"payments": "PAYKEY"}}"#)
                .with_keys(crate::notify::PAGERDUTY_SECRET_KEYS),
            DEFAULT_URL,
            Severity::High,
            HttpClient::new(crate::notify::HttpPolicy::default()).unwrap(),
        );
        let mut v = sample_view();
        assert_eq!(pd.key_for(&v).await.unwrap().expose(), "DEFAULT");
        let route = |service: &str| crate::route::Route {
            name: "r".into(),
            slack_channel: None,
            pagerduty_service: Some(service.into()),
        };
        v.route = Some(route("payments"));
        assert_eq!(pd.key_for(&v).await.unwrap().expose(), "PAYKEY");
        v.route = Some(route("paymnets"));
        assert_eq!(pd.key_for(&v).await.unwrap().expose(), "DEFAULT");
    }

    #[test]
    fn resolve_sends_only_the_key() {
        let mut v = sample_view();
        v.status = AlertStatus::Resolved;
        let e = event(&v, "k");
        assert_eq!(
            e,
            json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "fp-1"})
        );
    }

    #[test]
    fn severities_map_to_pagerduty_levels() {
        assert_eq!(pd_severity(Severity::Critical), "critical");
        assert_eq!(pd_severity(Severity::High), "error");
        assert_eq!(pd_severity(Severity::Medium), "warning");
        assert_eq!(pd_severity(Severity::Low), "info");
        assert_eq!(pd_severity(Severity::Informational), "info");
    }

    #[test]
    fn hostile_values_stay_within_limits() {
        let v = hostile();
        let e = event(&v, "k");
        let summary = e["payload"]["summary"].as_str().unwrap();
        assert!(summary.chars().count() <= SUMMARY_MAX);
        assert!(!summary.chars().any(char::is_control));
        assert!(e["dedup_key"].as_str().unwrap().len() <= DEDUP_KEY_MAX);
        assert!(!e["dedup_key"].as_str().unwrap().is_empty());
        assert!(e.to_string().len() < 512 * 1024);
        for l in e["links"].as_array().into_iter().flatten() {
            assert!(l["href"].as_str().unwrap().starts_with("http"));
        }
    }
}

//! A small HTTPS client for webhooks (Slack, PagerDuty).
//!
//! Built on the hyper 1 + rustls (aws-lc-rs) stack the AWS SDK already
//! compiles, so the notifier adds no HTTP crates of its own. Policy lives here
//! so every destination behaves the same:
//! - every request has a deadline (connect, send and reading the answer);
//! - HTTP 429 is waited out as `Retry-After` says, within a bounded total wait,
//!   then it is an error (an API that says "rate limited" in a 200 body, like
//!   Slack's Web API, passes its own test to `HttpClient::post_json_with`);
//! - anything else is returned to the caller, which decides what a status means.
//!
//! URLs are credentials here (a Slack webhook URL *is* the token), so no error
//! message ever contains one.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::text::one_line;

/// Why a request failed before a usable answer arrived.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse, or is not `https` (plain `http` is allowed only
    /// to loopback, for local receivers in tests).
    #[error("invalid URL: {0}")]
    InvalidUrl(&'static str),
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    #[error("network error: {0}")]
    Network(String),
    /// Rate limited (HTTP 429, or the API's own word for it) for longer than
    /// the wait budget allows.
    #[error("rate limited ({reason}) after {attempts} attempts; Retry-After {retry_after:?}")]
    RateLimited {
        attempts: u32,
        retry_after: Option<Duration>,
        /// What said so: "HTTP 429", or the API's error code.
        reason: &'static str,
    },
}

impl HttpError {
    /// Worth trying again later (the invocation's retry), as opposed to a
    /// configuration mistake.
    pub fn is_transient(&self) -> bool {
        !matches!(self, HttpError::InvalidUrl(_) | HttpError::Tls(_))
    }
}

/// An answer: status, `Retry-After`, and the start of the body (for error
/// messages; webhooks answer with a word or a small JSON object).
#[derive(Debug, Clone)]
pub(crate) struct HttpResponse {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: String,
}

impl HttpResponse {
    /// The body as one short line, safe to log.
    pub(crate) fn body_excerpt(&self) -> String {
        one_line(&self.body, 300)
    }
}

/// Timeouts and the 429 policy.
#[derive(Debug, Clone, Copy)]
pub struct HttpPolicy {
    /// Deadline for one request, from connect to the last byte of the answer.
    pub timeout: Duration,
    /// Longest total time spent waiting out 429s for one delivery. Slack asks
    /// for about one message a second per webhook; a longer wait means the
    /// invocation fails and SNS/Lambda retries it later.
    pub max_rate_limit_wait: Duration,
    /// Wait after a 429 without a usable `Retry-After`.
    pub default_retry_after: Duration,
    /// Attempts in all, so `Retry-After: 0` cannot loop forever.
    pub max_attempts: u32,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            timeout: Duration::from_secs(5),
            max_rate_limit_wait: Duration::from_secs(10),
            default_retry_after: Duration::from_secs(1),
            max_attempts: 4,
        }
    }
}

/// Largest answer body read; a longer one reads as empty. Slack's
/// `chat.postMessage` echoes the whole message (up to 40,000 characters of
/// blocks, escaped) beside the `ts` the notifier needs, so this is generous.
const MAX_BODY: usize = 256 * 1024;

/// The client, built once per cold start and shared by the destinations.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    policy: HttpPolicy,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .finish()
    }
}

impl HttpClient {
    /// A client trusting the system's root certificates (Lambda's
    /// `provided.al2023` ships them).
    pub fn new(policy: HttpPolicy) -> Result<HttpClient, HttpError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(policy.timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| HttpError::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            // No pooled connections: Lambda freezes the process between
            // invocations, and a connection the server closed meanwhile would
            // fail the next alert. Alerts are rare; a fresh handshake is cheap.
            .pool_max_idle_per_host(0)
            .build(https);
        Ok(HttpClient { client, policy })
    }

    pub fn policy(&self) -> HttpPolicy {
        self.policy
    }

    /// Checks that `url` is one this client will post to, without sending.
    pub(crate) fn check_url(url: &str) -> Result<Uri, HttpError> {
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|_| HttpError::InvalidUrl("does not parse"))?;
        let host = uri.host().ok_or(HttpError::InvalidUrl("no host"))?;
        match uri.scheme_str() {
            Some("https") => Ok(uri),
            Some("http") if is_loopback(host) => Ok(uri),
            Some("http") => Err(HttpError::InvalidUrl(
                "plain http is allowed only to loopback",
            )),
            _ => Err(HttpError::InvalidUrl("scheme must be https")),
        }
    }

    /// One POST of `body` as JSON with extra `headers` (a bearer token: mark
    /// its value sensitive), with the deadline.
    pub(crate) async fn post_json_once_with(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<HttpResponse, HttpError> {
        let uri = HttpClient::check_url(url)?;
        let payload = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header(USER_AGENT, concat!("vigil/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let req = builder
            .body(Full::new(payload))
            .map_err(|_| HttpError::InvalidUrl("request does not build"))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| HttpError::Network(error_chain(&e)))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                // A body we cannot read does not change what the status says.
                .unwrap_or_default();
            Ok(HttpResponse {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(self.policy.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.policy.timeout))?
    }

    /// POSTs `body`, waiting out HTTP 429 as `Retry-After` says while the
    /// total wait stays within [`HttpPolicy::max_rate_limit_wait`]. Any other
    /// answer, 2xx or not, is returned for the caller to judge.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<HttpResponse, HttpError> {
        self.post_json_with(url, body, &[], http_429).await
    }

    /// [`HttpClient::post_json`] with extra `headers`, and `rate_limited`
    /// deciding which answers mean "slow down" (returning what said so):
    /// Slack's Web API may answer HTTP 200 `{"ok": false, "error":
    /// "ratelimited"}`, which must be waited out like a 429, within the same
    /// budget.
    pub(crate) async fn post_json_with(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(HeaderName, HeaderValue)],
        rate_limited: fn(&HttpResponse) -> Option<&'static str>,
    ) -> Result<HttpResponse, HttpError> {
        let mut waited = Duration::ZERO;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let resp = self.post_json_once_with(url, body, headers).await?;
            let Some(reason) = rate_limited(&resp) else {
                return Ok(resp);
            };
            let wait = resp.retry_after.unwrap_or(self.policy.default_retry_after);
            if attempts >= self.policy.max_attempts
                || waited + wait > self.policy.max_rate_limit_wait
            {
                return Err(HttpError::RateLimited {
                    attempts,
                    retry_after: resp.retry_after,
                    reason,
                });
            }
            tracing::warn!(
                wait_ms = wait.as_millis() as u64,
                attempts,
                reason,
                "rate limited: waiting as Retry-After says"
            );
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }
}

/// The plain HTTP reading of "rate limited": status 429.
pub(crate) fn http_429(resp: &HttpResponse) -> Option<&'static str> {
    (resp.status == StatusCode::TOO_MANY_REQUESTS).then_some("HTTP 429")
}

/// `Retry-After` in delay-seconds form. The HTTP-date form is not used by
/// Slack or PagerDuty and reads as absent (the default wait applies).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The error and its causes on one line ("client error (Connect): tcp connect
/// error: Connection refused"); hyper's top-level message alone says little.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    one_line(&out, 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        assert!(HttpClient::check_url("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(HttpClient::check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(HttpClient::check_url("http://localhost/hook").is_ok());
        assert!(HttpClient::check_url("http://[::1]:9/x").is_ok());
        assert!(HttpClient::check_url("http://hooks.slack.com/services/x").is_err());
        assert!(HttpClient::check_url("ftp://example.com/x").is_err());
        assert!(HttpClient::check_url("not a url").is_err());
        assert!(HttpClient::check_url("").is_err());
    }

    #[test]
    fn url_errors_never_echo_the_url() {
        let secret = "http://hooks.example.com/services/T000/B000/SECRETTOKEN";
        let e = HttpClient::check_url(secret).unwrap_err().to_string();
        assert!(!e.contains("SECRETTOKEN"), "{e}");
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[tokio::test]
    async fn the_client_builds_with_the_system_roots() {
        assert!(HttpClient::new(HttpPolicy::default()).is_ok());
    }
}

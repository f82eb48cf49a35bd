//! The notifier: Vigil's alerts from the SNS topic to Slack and PagerDuty.
//!
//! The notifier Lambda is subscribed to the alert topic with protocol `lambda`,
//! so each SNS record carries the `lambda` key of the alert: the finding as
//! OCSF JSON ([`crate::ocsf`]). For each record it reads an [`AlertView`],
//! then hands it to every [`Destination`]:
//! - [`PagerDuty`] first: Events v2 is idempotent on the dedup key, so a retry
//!   after a later failure cannot page twice;
//! - then Slack, one of two ways: [`SlackBot`] (a bot token,
//!   `chat.postMessage`, the card for a new finding and its repeats and
//!   resolution as replies in that card's thread) or [`SlackWebhook`] (an
//!   incoming webhook: a Block Kit card for a new finding, one compact line
//!   for a repeat or a resolution). Either posts to the alert's routed
//!   channel when it has one.
//!
//! Every destination is tried even when an earlier one failed (one channel
//! down must not silence the others); then any failure fails the invocation,
//! so Lambda retries the event and, in the end, keeps it in the dead-letter
//! queue. Delivery is therefore at least once: after a partial failure, the
//! retry may post to Slack a second time.

pub mod http;
pub mod pagerduty;
pub mod secrets;
pub mod slack;
pub mod slack_bot;
pub mod threads;
pub mod trace;
pub mod view;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::sns::{SnsEvent, SnsRecord};
use serde_json::{json, Value};
use tracing::{info_span, Instrument};

use crate::env::{ConfigError, Env};
use crate::model::Severity;
use crate::sinks::SinkError;
use crate::telemetry::{xray, InvocationInfo, TelemetryOptions, Trigger};

pub use http::{HttpClient, HttpError, HttpPolicy};
pub use pagerduty::PagerDuty;
pub use secrets::{Secret, SecretError, SecretString};
pub use slack::SlackWebhook;
pub use slack_bot::{SlackBot, SlackChannel};
pub use threads::{DynamoThreads, MemoryThreads, SlackThread, ThreadStore, ThreadStoreError};
pub use trace::{aws_trace_header, trace_parent};
pub use view::{AlertStatus, AlertView, ViewError};

/// What a destination did with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Not for this destination (below its minimum severity, say).
    Skipped(&'static str),
}

/// A boxed future, so destinations can be held as `Box<dyn Destination>`.
pub(crate) type DeliverFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Outcome, SinkError>> + Send + 'a>>;

/// Somewhere the notifier sends alerts: Slack, PagerDuty. Takes the alert as
/// the notifier reads it from SNS, not a [`crate::Finding`]: the notifier
/// never has the finding itself, only its OCSF rendering.
pub trait Destination: Send + Sync {
    /// Short name for logs and metrics (`slack`, `pagerduty`).
    fn name(&self) -> &'static str;
    /// Delivers one alert. Must not panic on any alert content.
    fn deliver<'a>(&'a self, alert: &'a AlertView) -> DeliverFuture<'a>;
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The SNS message is not a Vigil alert. Retrying will not help; failing
    /// still keeps it in the dead-letter queue for a person to look at.
    #[error("SNS message {message_id}: {source}")]
    BadMessage {
        message_id: String,
        #[source]
        source: ViewError,
    },
    /// Some destination did not take the alert.
    #[error("{} of {attempted} deliveries failed: {}", failures.len(), failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Delivery {
        attempted: usize,
        failures: Vec<SinkError>,
    },
}

impl NotifyError {
    /// The metric `error_kind`: as the pipeline functions name theirs.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifyError::BadMessage { .. } => "bad_input",
            NotifyError::Delivery { .. } => "delivery",
        }
    }

    /// Whether a retry of the invocation may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            NotifyError::BadMessage { .. } => false,
            NotifyError::Delivery { failures, .. } => failures.iter().any(SinkError::is_transient),
        }
    }
}

/// Why the notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyStartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// What happened to one SNS record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport {
    pub message_id: String,
    pub finding_id: String,
    pub status: AlertStatus,
    /// Each destination's name and outcome, in delivery order.
    pub outcomes: Vec<(&'static str, Outcome)>,
}

/// Notifier settings from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierConfig {
    /// Secret holding the Slack incoming-webhook URL
    /// (`VIGIL_SLACK_WEBHOOK_SECRET_ARN`). None: no Slack.
    pub slack_webhook_secret_arn: Option<String>,
    /// Lowest severity posted to Slack (`VIGIL_SLACK_MIN_SEVERITY`, default
    /// INFORMATIONAL: whatever the topic subscription lets through).
    pub slack_min_severity: Severity,
    /// Secret holding a Slack bot token (`VIGIL_SLACK_BOT_TOKEN_SECRET_ARN`):
    /// bare `xoxb-...` or `{"bot_token": "...", "channel": "#security"}`.
    /// Wins over the webhook when both are set (threads need the token).
    pub slack_bot_token_secret_arn: Option<String>,
    /// Bot mode's channel for alerts without a routed one
    /// (`VIGIL_SLACK_CHANNEL`; else the secret's `channel`).
    pub slack_channel: Option<SlackChannel>,
    /// Slack Web API base (`VIGIL_SLACK_API_URL`, default
    /// `https://slack.com/api`; https, or http to loopback for tests).
    pub slack_api_url: String,
    /// Table holding each fingerprint's Slack thread (`VIGIL_STATE_TABLE`, the
    /// dedup state table). None: bot mode posts every alert at the top level.
    pub state_table: Option<String>,
    /// Secret holding the PagerDuty integration's routing key
    /// (`VIGIL_PAGERDUTY_SECRET_ARN`). None: no PagerDuty.
    pub pagerduty_secret_arn: Option<String>,
    /// Lowest severity that pages (`VIGIL_PAGERDUTY_MIN_SEVERITY`, default HIGH).
    pub pagerduty_min_severity: Severity,
    /// Events v2 endpoint (`VIGIL_PAGERDUTY_URL`, default the public one).
    pub pagerduty_url: String,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            slack_webhook_secret_arn: None,
            slack_min_severity: Severity::Informational,
            slack_bot_token_secret_arn: None,
            slack_channel: None,
            slack_api_url: slack_bot::DEFAULT_API_URL.to_string(),
            state_table: None,
            pagerduty_secret_arn: None,
            pagerduty_min_severity: Severity::High,
            pagerduty_url: pagerduty::DEFAULT_URL.to_string(),
        }
    }
}

impl NotifierConfig {
    /// Reads the `VIGIL_*` notifier variables of the process.
    pub fn from_env() -> Result<NotifierConfig, ConfigError> {
        NotifierConfig::from_settings(&Env::process())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<NotifierConfig, ConfigError> {
        NotifierConfig::from_settings(&Env::new(lookup))
    }

    /// A notifier with no destination is an error: it would swallow every
    /// alert without a trace.
    pub fn from_settings(env: &Env) -> Result<NotifierConfig, ConfigError> {
        let c = NotifierConfig {
            slack_webhook_secret_arn: env.get("VIGIL_SLACK_WEBHOOK_SECRET_ARN"),
            slack_min_severity: env.parsed("VIGIL_SLACK_MIN_SEVERITY", Severity::Informational)?,
            slack_bot_token_secret_arn: env.get("VIGIL_SLACK_BOT_TOKEN_SECRET_ARN"),
            slack_channel: env
                .get("VIGIL_SLACK_CHANNEL")
                .map(|c| SlackChannel::parse(&c))
                .transpose()
                .map_err(|e| ConfigError::invalid("VIGIL_SLACK_CHANNEL", e.to_string()))?,
            slack_api_url: env
                .get("VIGIL_SLACK_API_URL")
                .unwrap_or_else(|| slack_bot::DEFAULT_API_URL.to_string()),
            state_table: env.get("VIGIL_STATE_TABLE"),
            pagerduty_secret_arn: env.get("VIGIL_PAGERDUTY_SECRET_ARN"),
            pagerduty_min_severity: env.parsed("VIGIL_PAGERDUTY_MIN_SEVERITY", Severity::High)?,
            pagerduty_url: env
                .get("VIGIL_PAGERDUTY_URL")
                .unwrap_or_else(|| pagerduty::DEFAULT_URL.to_string()),
        };
        HttpClient::check_url(&c.pagerduty_url).map_err(|e| ConfigError::Invalid {
            name: "VIGIL_PAGERDUTY_URL",
            message: e.to_string(),
        })?;
        HttpClient::check_url(&c.slack_api_url).map_err(|e| ConfigError::Invalid {
            name: "VIGIL_SLACK_API_URL",
            message: e.to_string(),
        })?;
        if c.slack_mode().is_none() && c.pagerduty_secret_arn.is_none() {
            return Err(ConfigError::Invalid {
                name: "VIGIL_SLACK_WEBHOOK_SECRET_ARN",
                message: "the notifier has nowhere to send: set it, VIGIL_SLACK_BOT_TOKEN_SECRET_ARN or VIGIL_PAGERDUTY_SECRET_ARN"
                    .into(),
            });
        }
        Ok(c)
    }

    /// How the notifier posts to Slack: with the bot token when one is set
    /// (even if a webhook is set too: [`Notifier::from_config`] logs that the
    /// webhook is ignored), else with the webhook. None: no Slack.
    pub(crate) fn slack_mode(&self) -> Option<SlackMode> {
        match (
            &self.slack_bot_token_secret_arn,
            &self.slack_webhook_secret_arn,
        ) {
            (Some(_), _) => Some(SlackMode::Bot),
            (None, Some(_)) => Some(SlackMode::Webhook),
            (None, None) => None,
        }
    }
}

/// The two ways to post to Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlackMode {
    /// `chat.postMessage` with a bot token: threads, any channel.
    Bot,
    /// An incoming webhook per channel: no threads.
    Webhook,
}

/// Names a Slack secret may hold the webhook URL under when it is JSON.
pub const SLACK_SECRET_KEYS: &[&str] = &["webhook_url", "url", "webhook"];
/// Names a Slack bot-token secret may hold the token under when it is JSON.
pub(crate) const SLACK_BOT_SECRET_KEYS: &[&str] = slack_bot::BOT_TOKEN_SECRET_KEYS;
/// Names a PagerDuty secret may hold the routing key under when it is JSON.
pub(crate) const PAGERDUTY_SECRET_KEYS: &[&str] = &["routing_key", "integration_key", "key"];

/// The configured destinations; built once per cold start.
pub struct Notifier {
    destinations: Vec<Box<dyn Destination>>,
}

impl Notifier {
    /// A notifier for `destinations`, tried in the order given.
    pub fn new(destinations: Vec<Box<dyn Destination>>) -> Notifier {
        Notifier { destinations }
    }

    /// PagerDuty (if configured) then Slack (if configured), with secrets read
    /// from Secrets Manager through `sdk` on first use.
    pub fn from_config(
        config: &NotifierConfig,
        sdk: &SdkConfig,
    ) -> Result<Notifier, NotifyStartError> {
        let http = HttpClient::new(HttpPolicy::default())?;
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let mut destinations: Vec<Box<dyn Destination>> = Vec::new();
        if let Some(arn) = &config.pagerduty_secret_arn {
            destinations.push(Box::new(PagerDuty::new(
                Secret::secrets_manager(secrets.clone(), arn, PAGERDUTY_SECRET_KEYS),
                config.pagerduty_url.clone(),
                config.pagerduty_min_severity,
                http.clone(),
            )));
        }
        if let Some(d) = slack_destination(config, sdk, secrets, http) {
            destinations.push(d);
        }
        Ok(Notifier::new(destinations))
    }

    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        self.destinations.iter().map(|d| d.name())
    }

    /// Handles one Lambda invocation. SNS sends one record per invocation;
    /// should there be more, each is delivered and any failure fails all.
    pub async fn handle(&self, event: &SnsEvent) -> Result<Vec<RecordReport>, NotifyError> {
        let mut reports = Vec::with_capacity(event.records.len());
        let mut first_error = None;
        for record in &event.records {
            match self.notify_record(record).await {
                Ok(r) => reports.push(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }

    /// Reads one SNS record's alert and delivers it everywhere, in its own
    /// span. The trace it belongs to is the invocation's, which
    /// [`run_function`] parents on the alert's trace ([`trace_parent`]).
    pub(crate) async fn notify_record(
        &self,
        record: &SnsRecord,
    ) -> Result<RecordReport, NotifyError> {
        let span = info_span!(
            "vigil.notify",
            otel.kind = "consumer",
            messaging.system = "aws_sns",
            messaging.message.id = %record.sns.message_id,
            vigil.alert_traceparent = trace_parent(record).unwrap_or_default(),
            vigil.finding_id = tracing::field::Empty,
            vigil.fingerprint = tracing::field::Empty,
            vigil.severity = tracing::field::Empty,
            vigil.alert_status = tracing::field::Empty,
        );
        self.deliver_record(record).instrument(span).await
    }

    async fn deliver_record(&self, record: &SnsRecord) -> Result<RecordReport, NotifyError> {
        let message_id = record.sns.message_id.clone();
        let mut alert = AlertView::parse(&record.sns.message).map_err(|source| {
            tracing::error!(error = %source, messaging.message.id = %message_id, "not a Vigil alert");
            NotifyError::BadMessage {
                message_id: message_id.clone(),
                source,
            }
        })?;
        if let Some(n) = record
            .sns
            .message_attributes
            .get("suppressed_repeats")
            .and_then(|a| a.value.trim().parse::<u64>().ok())
        {
            alert.note_suppressed_repeats(n);
        }
        let span = tracing::Span::current();
        span.record("vigil.finding_id", alert.finding_id.as_str());
        span.record("vigil.fingerprint", alert.fingerprint.as_str());
        span.record("vigil.severity", alert.severity.as_str());
        span.record("vigil.alert_status", status_name(alert.status));

        let mut outcomes = Vec::with_capacity(self.destinations.len());
        let mut failures = Vec::new();
        for d in &self.destinations {
            let result = d
                .deliver(&alert)
                .instrument(info_span!("notify.deliver", vigil.destination = d.name()))
                .await;
            match result {
                Ok(outcome) => {
                    tracing::info!(
                        vigil.destination = d.name(),
                        vigil.finding_id = %alert.finding_id,
                        outcome = outcome_name(outcome),
                        "alert {}",
                        outcome_name(outcome)
                    );
                    outcomes.push((d.name(), outcome));
                }
                Err(e) => {
                    tracing::error!(
                        vigil.destination = d.name(),
                        vigil.finding_id = %alert.finding_id,
                        error = %e,
                        transient = e.is_transient(),
                        "alert delivery failed"
                    );
                    failures.push(e);
                }
            }
        }
        if !failures.is_empty() {
            return Err(NotifyError::Delivery {
                attempted: self.destinations.len(),
                failures,
            });
        }
        Ok(RecordReport {
            message_id,
            finding_id: alert.finding_id,
            status: alert.status,
            outcomes,
        })
    }
}

/// The Slack destination the configuration asks for, saying in the log what
/// it chose and what it does without (threads, a default channel).
fn slack_destination(
    config: &NotifierConfig,
    sdk: &SdkConfig,
    secrets: aws_sdk_secretsmanager::Client,
    http: HttpClient,
) -> Option<Box<dyn Destination>> {
    match config.slack_mode()? {
        SlackMode::Bot => {
            let arn = config.slack_bot_token_secret_arn.as_deref()?;
            if config.slack_webhook_secret_arn.is_some() {
                tracing::warn!(
                    "both VIGIL_SLACK_BOT_TOKEN_SECRET_ARN and VIGIL_SLACK_WEBHOOK_SECRET_ARN are set: posting with the bot token, the webhook is not used"
                );
            }
            let threads = config.state_table.as_ref().map(|table| {
                Arc::new(DynamoThreads::new(
                    crate::dedup::table::client(sdk),
                    table.clone(),
                )) as Arc<dyn ThreadStore>
            });
            if threads.is_none() {
                tracing::warn!(
                    "VIGIL_STATE_TABLE not set: Slack threads are not kept, every alert posts at the top level"
                );
            }
            if config.slack_channel.is_none() {
                tracing::info!(
                    "VIGIL_SLACK_CHANNEL not set: alerts without a routed channel go to the bot-token secret's \"channel\""
                );
            }
            Some(Box::new(
                SlackBot::new(
                    Secret::secrets_manager(secrets, arn, SLACK_BOT_SECRET_KEYS),
                    &config.slack_api_url,
                    http,
                )
                .default_channel(config.slack_channel.clone())
                .threads(threads)
                .min_severity(config.slack_min_severity),
            ))
        }
        SlackMode::Webhook => {
            let arn = config.slack_webhook_secret_arn.as_deref()?;
            Some(Box::new(
                SlackWebhook::new(
                    Secret::secrets_manager(secrets, arn, SLACK_SECRET_KEYS),
                    http,
                )
                .min_severity(config.slack_min_severity),
            ))
        }
    }
}

fn status_name(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::New => "new",
        AlertStatus::Repeat => "repeat",
        AlertStatus::Resolved => "resolved",
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Sent => "sent",
        Outcome::Skipped(_) => "skipped",
    }
}

/// The invocation's result as JSON, for the Lambda's response.
fn report_json(reports: &[RecordReport]) -> Value {
    json!({
        "records": reports.len(),
        "deliveries": reports.iter().map(|r| json!({
            "message_id": r.message_id,
            "finding_id": r.finding_id,
            "status": status_name(r.status),
            "outcomes": r.outcomes.iter().map(|(d, o)| json!({
                "destination": d,
                "outcome": outcome_name(*o),
                "reason": match o { Outcome::Skipped(why) => Some(*why), Outcome::Sent => None },
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Runs the notifier Lambda: telemetry first, then configuration and the
/// clients once per cold start, then SNS invocations. Each invocation's span
/// continues the trace the alert carries (SNS sends one record per
/// invocation), so the deliveries show up in the trace behind the alert's
/// "View trace" button; without trace attributes it falls back to the
/// Lambda's X-Ray context.
pub async fn run_function() -> Result<(), lambda_runtime::Error> {
    let telemetry = crate::telemetry::init(TelemetryOptions::lambda("notifier"))?;
    let config = NotifierConfig::from_env()?;
    let sdk = crate::aws::sdk_config().await;
    let notifier = Notifier::from_config(&config, &sdk)?;
    tracing::info!(
        function = "notifier",
        destinations = ?notifier.destinations().collect::<Vec<_>>(),
        "ready"
    );
    let (notifier, telemetry) = (&notifier, &telemetry);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SnsEvent>| async move {
            let lambda_runtime::LambdaEvent { payload, context } = event;
            let mut invocation =
                telemetry.invocation(InvocationInfo::new(&context, Trigger::PubSub));
            if let Some(record) = payload.records.first() {
                invocation = invocation.correlation_id(&record.sns.message_id);
                let parent = trace_parent(record);
                if let Some(cx) = parent.as_deref().and_then(|tp| {
                    xray::parent_from_carrier(|k| (k == "traceparent").then_some(tp))
                }) {
                    invocation = invocation.continue_trace(cx);
                }
            }
            let handled = async {
                let result = notifier.handle(&payload).await;
                if let Err(e) = &result {
                    telemetry.record_error(e.kind());
                }
                result
            };
            invocation
                .run(handled)
                .await
                .map(|reports| report_json(&reports))
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    fn cfg(pairs: &[(&str, &str)]) -> Result<NotifierConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NotifierConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn config_defaults_and_errors() {
        let c = cfg(&[("VIGIL_SLACK_WEBHOOK_SECRET_ARN", "arn:slack")]).unwrap();
        assert_eq!(c.slack_webhook_secret_arn.as_deref(), Some("arn:slack"));
        assert_eq!(c.pagerduty_min_severity, Severity::High);
        assert_eq!(c.slack_min_severity, Severity::Informational);
        assert_eq!(c.pagerduty_url, pagerduty::DEFAULT_URL);
        let c = cfg(&[
            ("VIGIL_PAGERDUTY_SECRET_ARN", "arn:pd"),
            ("VIGIL_PAGERDUTY_MIN_SEVERITY", "critical"),
            (
                "VIGIL_PAGERDUTY_URL",
                "https://events.eu.pagerduty.com/v2/enqueue",
            ),
        ])
        .unwrap();
        assert_eq!(c.pagerduty_min_severity, Severity::Critical);
        assert!(cfg(&[]).is_err(), "no destination");
        assert!(cfg(&[("VIGIL_SLACK_WEBHOOK_SECRET_ARN", " ")]).is_err());
        assert!(cfg(&[
            ("VIGIL_PAGERDUTY_SECRET_ARN", "arn:pd"),
            ("VIGIL_PAGERDUTY_MIN_SEVERITY", "urgent")
        ])
        .is_err());
        assert!(cfg(&[
            ("VIGIL_PAGERDUTY_SECRET_ARN", "arn:pd"),
            (
                "VIGIL_PAGERDUTY_URL",
                "http://events.pagerduty.com/v2/enqueue"
            )
        ])
        .is_err());
    }

    #[test]
    fn slack_bot_settings() {
        let c = cfg(&[
            ("VIGIL_SLACK_BOT_TOKEN_SECRET_ARN", "arn:bot"),
            ("VIGIL_SLACK_CHANNEL", " #security "),
            ("VIGIL_STATE_TABLE", "vigil-state"),
        ])
        .unwrap();
        assert_eq!(c.slack_mode(), Some(SlackMode::Bot));
        assert_eq!(
            c.slack_channel.as_ref().map(SlackChannel::as_str),
            Some("#security")
        );
        assert_eq!(c.slack_api_url, "https://slack.com/api");
        assert_eq!(c.state_table.as_deref(), Some("vigil-state"));
        // The bot token alone is somewhere to send.
        assert!(cfg(&[("VIGIL_SLACK_BOT_TOKEN_SECRET_ARN", "arn:bot")]).is_ok());
        // Bot mode wins over the webhook.
        let both = cfg(&[
            ("VIGIL_SLACK_BOT_TOKEN_SECRET_ARN", "arn:bot"),
            ("VIGIL_SLACK_WEBHOOK_SECRET_ARN", "arn:hook"),
        ])
        .unwrap();
        assert_eq!(both.slack_mode(), Some(SlackMode::Bot));
        let hook = cfg(&[("VIGIL_SLACK_WEBHOOK_SECRET_ARN", "arn:hook")]).unwrap();
        assert_eq!(hook.slack_mode(), Some(SlackMode::Webhook));
        assert_eq!(
            cfg(&[("VIGIL_PAGERDUTY_SECRET_ARN", "arn:pd")])
                .unwrap()
                .slack_mode(),
            None
        );
        // The API URL is checked like every other URL.
        let api = |url: &str| {
            cfg(&[
                ("VIGIL_SLACK_BOT_TOKEN_SECRET_ARN", "arn:bot"),
                ("VIGIL_SLACK_API_URL", url),
            ])
        };
        assert!(api("http://127.0.0.1:8080/api").is_ok());
        assert!(api("https://slack.example.com/api").is_ok());
        let e = api("http://slack.com/api").unwrap_err().to_string();
        assert!(e.contains("VIGIL_SLACK_API_URL"), "{e}");
        let e = cfg(&[
            ("VIGIL_SLACK_BOT_TOKEN_SECRET_ARN", "arn:bot"),
            ("VIGIL_SLACK_CHANNEL", "#two words"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("VIGIL_SLACK_CHANNEL"), "{e}");
    }

    /// Records what it was given; fails when told to.
    struct Probe {
        name: &'static str,
        fail: bool,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Destination for Probe {
        fn name(&self) -> &'static str {
            self.name
        }
        fn deliver<'a>(&'a self, alert: &'a AlertView) -> DeliverFuture<'a> {
            Box::pin(async move {
                self.seen
                    .lock()
                    .unwrap()
                    .push(format!("{}:{}", self.name, alert.finding_id));
                if self.fail {
                    Err(SinkError::Transient {
                        sink: "probe",
                        message: "down".into(),
                    })
                } else {
                    Ok(Outcome::Sent)
                }
            })
        }
    }

    fn event(message: &str, attrs: Value) -> SnsEvent {
        serde_json::from_value(json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:1:t:s",
            "Sns": {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                    "Subject": "[HIGH] x", "Message": message, "Timestamp": "2026-01-01T00:00:00.000Z",
                    "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                    "MessageAttributes": attrs}
        }]}))
        .unwrap()
    }

    fn alert_message() -> String {
        crate::ocsf::to_ocsf(&view::tests_support::finding()).to_string()
    }

    #[tokio::test]
    async fn every_destination_is_tried_and_any_failure_fails_the_invocation() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let n = Notifier::new(vec![
            Box::new(Probe {
                name: "a",
                fail: true,
                seen: seen.clone(),
            }),
            Box::new(Probe {
                name: "b",
                fail: false,
                seen: seen.clone(),
            }),
        ]);
        let err = n
            .handle(&event(&alert_message(), json!({})))
            .await
            .unwrap_err();
        assert!(err.is_transient());
        assert!(
            matches!(err, NotifyError::Delivery { attempted: 2, ref failures } if failures.len() == 1)
        );
        assert_eq!(*seen.lock().unwrap(), ["a:f-1", "b:f-1"]);
    }

    #[tokio::test]
    async fn a_message_that_is_not_an_alert_fails_without_delivering() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let n = Notifier::new(vec![Box::new(Probe {
            name: "a",
            fail: false,
            seen: seen.clone(),
        })]);
        let err = n
            .handle(&event("{\"default\": \"x\"}", json!({})))
            .await
            .unwrap_err();
        assert!(matches!(err, NotifyError::BadMessage { .. }));
        assert!(!err.is_transient());
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_delivered_alert_is_reported_per_destination() {
        let n = Notifier::new(vec![Box::new(Probe {
            name: "a",
            fail: false,
            seen: Arc::new(Mutex::new(Vec::new())),
        })]);
        let reports = n.handle(&event(&alert_message(), json!({}))).await.unwrap();
        assert_eq!(reports[0].outcomes, [("a", Outcome::Sent)]);
        assert_eq!(reports[0].finding_id, "f-1");
        let out = report_json(&reports);
        assert_eq!(out["records"], 1);
        assert_eq!(out["deliveries"][0]["outcomes"][0]["outcome"], "sent");
    }
}

//! Vigil's CloudWatch metrics, namespace `Vigil` (overridable for tests and
//! staging with `VIGIL_METRICS_NAMESPACE`).
//!
//! The pipeline's `metrics` stage turns each event's [`EventReport`] (or its
//! error) into [`MetricRecord`]s and hands them to a [`MetricsSink`]:
//! [`EmfSink`] writes Embedded Metric Format lines to stdout (the default:
//! CloudWatch extracts the metrics from the log stream, no API call on the hot
//! path); [`CloudWatchSink`] batches them into one `PutMetricData` call per
//! invocation (`VIGIL_METRICS=cloudwatch`).
//!
//! | metric | unit | dimensions |
//! |---|---|---|
//! | `Findings` | Count | Severity, Source |
//! | `FindingsByType` | Count | Type (rule id or finding type) |
//! | `FindingsByAccount` | Count | Account (12-digit ids only) |
//! | `RuleMatches` | Count | Rule (every rule that matched an event: the alerted one and those listed as also matched) |
//! | `AlertsSent` / `AlertsSuppressed` / `AlertsFailed` | Count | Service |
//! | `ProcessingLatency` | Milliseconds | Service |
//! | `Errors` | Count | Service |
//! | `EventsRefused` | Count | Service (events refused as forged: a source that is not the detail-type's AWS service) |
//! | `InvalidFindings` | Count | Service (findings of an event that could not be read and were skipped) |
//! | `StormSummariesFailed` | Count | Service (storm summaries not delivered, or a sweep that failed) |
//! | `CorrelationStateErrors` | Count | Service (correlation state calls that failed open: correlation alerts may be missed) |
//! | `ColdStart` | Count | function_name, service (as Powertools emits it) |
//! | `LogRecordsSkipped` / `LogFilesRejected` | Count | Service |

pub mod cloudwatch;
pub mod emf;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::model::{Finding, TraceContext};
use crate::pipeline::{Decision, EventReport, PipelineError};
use crate::sources::SourceError;

pub use cloudwatch::CloudWatchSink;
pub use emf::EmfSink;

/// The default namespace.
pub(crate) const NAMESPACE: &str = "Vigil";

pub(crate) const FINDINGS: &str = "Findings";
pub(crate) const FINDINGS_BY_TYPE: &str = "FindingsByType";
pub(crate) const FINDINGS_BY_ACCOUNT: &str = "FindingsByAccount";
/// One event alerts once, as its best rule; every rule it matched is
/// counted here, so a rule's hit rate does not depend on which rule won.
pub(crate) const RULE_MATCHES: &str = "RuleMatches";
pub(crate) const ALERTS_SENT: &str = "AlertsSent";
pub(crate) const ALERTS_SUPPRESSED: &str = "AlertsSuppressed";
pub(crate) const ALERTS_FAILED: &str = "AlertsFailed";
pub(crate) const PROCESSING_LATENCY: &str = "ProcessingLatency";
pub(crate) const COLD_START: &str = "ColdStart";
pub(crate) const ERRORS: &str = "Errors";
/// CloudTrail log files: records that could not be read and were skipped,
/// and files refused for their size (`crate::logfiles`).
pub(crate) const LOG_RECORDS_SKIPPED: &str = "LogRecordsSkipped";
pub(crate) const LOG_FILES_REJECTED: &str = "LogFilesRejected";
pub(crate) const EVENTS_REFUSED: &str = "EventsRefused";
pub(crate) const INVALID_FINDINGS: &str = "InvalidFindings";
pub(crate) const STORM_SUMMARIES_FAILED: &str = "StormSummariesFailed";
/// Correlation state calls that failed (`crate::correlate`): failed open.
pub(crate) const CORRELATION_STATE_ERRORS: &str = "CorrelationStateErrors";

/// Dimension sets. Each set makes a separate CloudWatch metric, so every
/// dimension here has a bounded set of values.
pub(crate) const BY_SEVERITY_SOURCE: &[&str] = &["Severity", "Source"];
pub(crate) const BY_TYPE: &[&str] = &["Type"];
pub(crate) const BY_ACCOUNT: &[&str] = &["Account"];
pub(crate) const BY_RULE: &[&str] = &["Rule"];
pub(crate) const BY_SERVICE: &[&str] = &["Service"];
/// The `ColdStart` metric's dimensions, named as Powertools for AWS Lambda
/// names them (`add_cold_start_metric`: `function_name`, then `service`), so
/// dashboards built for Powertools functions read Vigil's too.
pub(crate) const BY_FUNCTION_SERVICE: &[&str] = &["function_name", "service"];

/// The longest dimension value Vigil sends (CloudWatch allows 1024 in EMF;
/// 255 is safe for every API and keeps consoles readable).
pub(crate) const MAX_DIMENSION_VALUE: usize = 255;

/// CloudWatch units Vigil uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric value with the dimension keys it is reported under.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
    pub dimensions: &'static [&'static str],
}

/// Metrics recorded together (one EMF line): the dimension values they share,
/// and properties that travel with them in EMF (trace ids, finding id) but are
/// not dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRecord {
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    pub dimensions: Vec<(&'static str, String)>,
    pub metrics: Vec<Metric>,
    pub properties: Vec<(&'static str, Value)>,
}

impl MetricRecord {
    pub fn new(timestamp_ms: i64) -> MetricRecord {
        MetricRecord {
            timestamp_ms,
            dimensions: Vec::new(),
            metrics: Vec::new(),
            properties: Vec::new(),
        }
    }

    /// Adds a dimension value, cleaned to what CloudWatch accepts.
    pub fn dimension(mut self, name: &'static str, value: &str) -> MetricRecord {
        self.dimensions.push((name, dimension_value(value)));
        self
    }

    /// Adds a metric; non-finite values (CloudWatch rejects NaN and infinity)
    /// are dropped.
    pub fn metric(
        mut self,
        name: &'static str,
        unit: Unit,
        value: f64,
        dimensions: &'static [&'static str],
    ) -> MetricRecord {
        if value.is_finite() {
            self.metrics.push(Metric {
                name,
                unit,
                value,
                dimensions,
            });
        }
        self
    }

    pub fn property(mut self, name: &'static str, value: impl Into<Value>) -> MetricRecord {
        self.properties.push((name, value.into()));
        self
    }

    /// The value of a dimension key.
    pub(crate) fn dimension_value(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Printable ASCII only (PutMetricData refuses control characters and
/// non-ASCII), never empty, at most [`MAX_DIMENSION_VALUE`] characters.
pub(crate) fn dimension_value(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(MAX_DIMENSION_VALUE)
        .collect();
    match cleaned.trim() {
        "" => "unknown".into(),
        t if t.len() == cleaned.len() => cleaned,
        t => t.to_string(),
    }
}

/// Why metrics could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("PutMetricData failed: {0}")]
    CloudWatch(String),
    #[error("metrics flush timed out after {0:?}")]
    Timeout(Duration),
}

/// A boxed flush future, so sinks can be held as `Arc<dyn MetricsSink>`.
pub(crate) type FlushFuture<'a> =
    Pin<Box<dyn Future<Output = Result<usize, MetricsError>> + Send + 'a>>;

/// A destination for metrics.
pub trait MetricsSink: Send + Sync {
    /// Short name for logs (`emf`, `cloudwatch`, `off`).
    fn name(&self) -> &'static str;
    /// Takes one record. Runs on the hot path: must not block on I/O beyond
    /// writing a line.
    fn record(&self, record: MetricRecord);
    /// Delivers what `record` buffered; returns how many metric values were
    /// sent. Called once per invocation, after the alert went out.
    fn flush(&self) -> FlushFuture<'_> {
        Box::pin(async { Ok(0) })
    }
    /// False when records are thrown away: callers may then skip building
    /// them.
    fn keeps_records(&self) -> bool {
        true
    }
}

/// Metrics off (`VIGIL_METRICS=off`).
#[derive(Debug, Default)]
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn name(&self) -> &'static str {
        "off"
    }
    fn record(&self, _record: MetricRecord) {}
    fn keeps_records(&self) -> bool {
        false
    }
}

/// Which sink a function uses (`VIGIL_METRICS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsMode {
    Emf,
    CloudWatch,
    Off,
}

impl std::str::FromStr for MetricsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<MetricsMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "emf" => Ok(MetricsMode::Emf),
            "cloudwatch" | "putmetricdata" => Ok(MetricsMode::CloudWatch),
            "off" | "none" | "false" => Ok(MetricsMode::Off),
            other => Err(format!("expected emf, cloudwatch or off, got {other:?}")),
        }
    }
}

/// Turns pipeline outcomes into records. Pure: the caller hands the records
/// to a sink.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub service: String,
    /// Count findings per account (`VIGIL_METRICS_BY_ACCOUNT`, default on).
    /// Only 12-digit account ids become dimension values, so the metric count
    /// is bounded by the organization's accounts whatever an event says.
    pub by_account: bool,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Recorder {
    /// The records for one event: one per finding, one for the event.
    pub fn event(
        &self,
        outcome: Result<&EventReport, &PipelineError>,
        elapsed: Duration,
        trace: Option<&TraceContext>,
    ) -> Vec<MetricRecord> {
        let now = now_ms();
        let report = match outcome {
            Ok(r) => Some(r),
            Err(PipelineError::Delivery { report, .. }) => Some(report.as_ref()),
            Err(_) => None,
        };
        let mut out = Vec::with_capacity(report.map_or(0, |r| r.findings.len()) + 1);
        if let Some(report) = report {
            for p in &report.findings {
                out.push(self.finding(now, &p.finding, &p.decision, report, trace));
                let also = p.finding.also_matched.iter();
                out.extend(also.map(|rule| self.rule_match(now, &rule.id, trace)));
            }
            for p in &report.summaries {
                if let Some(r) = self.summary(now, p) {
                    out.push(with_trace(r, trace));
                }
            }
        }
        let mut event = MetricRecord::new(now)
            .dimension("Service", &self.service)
            .metric(
                PROCESSING_LATENCY,
                Unit::Milliseconds,
                elapsed.as_secs_f64() * 1000.0,
                BY_SERVICE,
            )
            .metric(ERRORS, Unit::Count, failed(outcome), BY_SERVICE);
        if let Err(PipelineError::Source(SourceError::ForgedSource { account, .. })) = outcome {
            event = event
                .metric(EVENTS_REFUSED, Unit::Count, 1.0, BY_SERVICE)
                .property("sender_account", crate::text::one_line(account, 64));
        }
        if let Some(n) = report.map(|r| r.invalid_findings).filter(|n| *n > 0) {
            event = event.metric(INVALID_FINDINGS, Unit::Count, n as f64, BY_SERVICE);
        }
        if let Some(n) = report
            .map(|r| r.correlation_state_errors)
            .filter(|n| *n > 0)
        {
            event = event.metric(
                CORRELATION_STATE_ERRORS,
                Unit::Count,
                f64::from(n),
                BY_SERVICE,
            );
        }
        if let Some(r) = report {
            event = event.property("source", r.source.as_str());
            if let Some(id) = &r.event_id {
                event = event.property("correlation_id", id.as_str());
            }
        }
        if let Err(e) = outcome {
            event = event
                .property("error_kind", e.kind())
                .property("error", e.to_string());
        }
        out.push(with_trace(event, trace));
        out
    }

    /// A storm summary is an alert, not a finding: only its delivery counts,
    /// and one not delivered is also a `StormSummariesFailed`.
    fn summary(&self, now: i64, p: &crate::pipeline::Processed) -> Option<MetricRecord> {
        let mut r = MetricRecord::new(now).dimension("Service", &self.service);
        r = match p.decision {
            Decision::Alerted(_) => r.metric(ALERTS_SENT, Unit::Count, 1.0, BY_SERVICE),
            Decision::Failed(_) => r
                .metric(ALERTS_FAILED, Unit::Count, 1.0, BY_SERVICE)
                .metric(STORM_SUMMARIES_FAILED, Unit::Count, 1.0, BY_SERVICE),
            _ => return None,
        };
        Some(
            r.property("finding_id", p.finding.id.as_str())
                .property("decision", crate::pipeline::decision_name(&p.decision))
                .property("summary", true),
        )
    }

    /// The record of a storm sweep (see [`crate::dedup::SweepReport`]):
    /// summaries sent, and `StormSummariesFailed` for those not delivered
    /// (plus one when the sweep itself failed), so an alarm on it sees both.
    pub fn storm_sweep(&self, sent: u64, failed: u64, sweep_failed: bool) -> MetricRecord {
        let failures = failed + u64::from(sweep_failed);
        MetricRecord::new(now_ms())
            .dimension("Service", &self.service)
            .metric(ALERTS_SENT, Unit::Count, sent as f64, BY_SERVICE)
            .metric(
                STORM_SUMMARIES_FAILED,
                Unit::Count,
                failures as f64,
                BY_SERVICE,
            )
            .property("storm_sweep", true)
    }

    fn finding(
        &self,
        now: i64,
        f: &Finding,
        decision: &Decision,
        report: &EventReport,
        trace: Option<&TraceContext>,
    ) -> MetricRecord {
        let mut r = MetricRecord::new(now)
            .dimension("Service", &self.service)
            .dimension("Severity", f.severity.as_str())
            .dimension("Source", f.source.as_str())
            .dimension("Type", f.type_or_rule())
            .metric(FINDINGS, Unit::Count, 1.0, BY_SEVERITY_SOURCE)
            .metric(FINDINGS_BY_TYPE, Unit::Count, 1.0, BY_TYPE);
        if let Some(rule) = &f.rule {
            r = r
                .dimension("Rule", &rule.id)
                .metric(RULE_MATCHES, Unit::Count, 1.0, BY_RULE);
        }
        if self.by_account && is_account_id(&f.account_id) {
            r = r.dimension("Account", &f.account_id).metric(
                FINDINGS_BY_ACCOUNT,
                Unit::Count,
                1.0,
                BY_ACCOUNT,
            );
        }
        let alert_metric = match decision {
            Decision::Alerted(_) => ALERTS_SENT,
            Decision::Failed(_) => ALERTS_FAILED,
            Decision::BelowThreshold
            | Decision::Sample
            | Decision::Inactive
            | Decision::FromOtherSource(_)
            | Decision::Suppressed { .. }
            | Decision::SuppressedByRule { .. }
            | Decision::Aggregated { .. } => ALERTS_SUPPRESSED,
        };
        r = r
            .metric(alert_metric, Unit::Count, 1.0, BY_SERVICE)
            .property("finding_id", f.id.as_str())
            .property("decision", crate::pipeline::decision_name(decision));
        if let Some(id) = &report.event_id {
            r = r.property("correlation_id", id.as_str());
        }
        with_trace(r, trace)
    }

    /// A rule an event matched that is not its finding's rule (listed in
    /// `also_matched`): counted in `RuleMatches` like the winning rule.
    fn rule_match(&self, now: i64, rule_id: &str, trace: Option<&TraceContext>) -> MetricRecord {
        let r = MetricRecord::new(now)
            .dimension("Service", &self.service)
            .dimension("Rule", rule_id)
            .metric(RULE_MATCHES, Unit::Count, 1.0, BY_RULE)
            .property("also_matched", true);
        with_trace(r, trace)
    }

    /// The record for a cold start (once per process): a line of its own, as
    /// Powertools' single metric, under `function_name` and `service`.
    pub fn cold_start(
        &self,
        function_name: &str,
        request_id: Option<&str>,
        trace: Option<&TraceContext>,
    ) -> MetricRecord {
        let mut r = MetricRecord::new(now_ms())
            .dimension("function_name", function_name)
            .dimension("service", &self.service)
            .metric(COLD_START, Unit::Count, 1.0, BY_FUNCTION_SERVICE);
        if let Some(id) = request_id {
            r = r.property("function_request_id", id);
        }
        with_trace(r, trace)
    }

    /// The record for an error outside the pipeline (a function's own
    /// failure, e.g. the notifier's), counted in `Errors`.
    pub fn error(&self, kind: &str, trace: Option<&TraceContext>) -> MetricRecord {
        let r = MetricRecord::new(now_ms())
            .dimension("Service", &self.service)
            .metric(ERRORS, Unit::Count, 1.0, BY_SERVICE)
            .property("error_kind", kind);
        with_trace(r, trace)
    }
}

fn with_trace(r: MetricRecord, trace: Option<&TraceContext>) -> MetricRecord {
    match trace {
        Some(t) => r
            .property("trace_id", t.ids.trace_id.as_str())
            .property("xray_trace_id", t.ids.xray_trace_id.as_str()),
        None => r,
    }
}

/// `Errors` for an event: 1 when it failed. A refused (forged) event is not
/// Vigil failing: it counts in `EventsRefused` instead.
fn failed(outcome: Result<&EventReport, &PipelineError>) -> f64 {
    match outcome {
        Err(e) if !e.is_refusal() => 1.0,
        _ => 0.0,
    }
}

/// The kind of a pipeline error, as logs and metrics name it.
fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(outcome: Result<&EventReport, &PipelineError>) -> Vec<(&'static str, f64)> {
        let recorder = Recorder {
            service: "test".into(),
            by_account: false,
        };
        recorder
            .event(outcome, Duration::from_millis(1), None)
            .into_iter()
            .flat_map(|r| r.metrics.into_iter().map(|m| (m.name, m.value)))
            .collect()
    }

    #[tokio::test]
    async fn a_security_hub_finding_without_id_is_counted_in_invalid_findings() {
        let pipeline = crate::Pipeline::builder(&crate::Config::default()).build();
        let event: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/events/securityhub/control-s3-public-access-failed.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let mut event = event;
        let good = event["detail"]["findings"][0].clone();
        let mut no_id = good.clone();
        no_id.as_object_mut().unwrap().remove("Id");
        if let Some(pf) = no_id["ProductFields"].as_object_mut() {
            pf.remove("aws/securityhub/FindingId");
        }
        event["detail"]["findings"] = serde_json::json!([no_id, good]);
        let report = pipeline.process_event(&event).await.unwrap();
        assert_eq!((report.findings.len(), report.invalid_findings), (1, 1));
        let metrics = recorded(Ok(&report));
        assert!(metrics.contains(&(INVALID_FINDINGS, 1.0)), "{metrics:?}");
        assert!(metrics.contains(&(ERRORS, 0.0)), "{metrics:?}");
    }

    #[tokio::test]
    async fn one_alert_per_event_yet_every_matched_rule_is_counted() {
        let config = crate::Config::default();
        let rules = crate::detect::RuleSet::bundled().unwrap();
        let pipeline = crate::Pipeline::builder(&config)
            .detector(std::sync::Arc::new(rules))
            .build();
        let event: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/events/cloudtrail/cloudtrail-stop-logging.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let report = pipeline.process_event(&event).await.unwrap();
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        let f = &report.findings[0].finding;
        assert!(
            !f.also_matched.is_empty(),
            "StopLogging matches CIS 4.5 too"
        );
        let recorder = Recorder {
            service: "test".into(),
            by_account: false,
        };
        let rules: Vec<String> = recorder
            .event(Ok(&report), Duration::from_millis(1), None)
            .into_iter()
            .filter(|r| r.metrics.iter().any(|m| m.name == RULE_MATCHES))
            .filter_map(|r| {
                let rule = r.dimensions.iter().find(|(k, _)| *k == "Rule");
                rule.map(|(_, v)| v.clone())
            })
            .collect();
        assert_eq!(rules.len(), 1 + f.also_matched.len(), "{rules:?}");
        assert!(rules.contains(&f.rule.as_ref().unwrap().id), "{rules:?}");
        for also in &f.also_matched {
            assert!(rules.contains(&also.id), "{rules:?}");
        }
    }

    #[tokio::test]
    async fn a_forged_event_counts_as_refused_not_as_an_error() {
        let pipeline = crate::Pipeline::builder(&crate::Config::default()).build();
        let forged = serde_json::json!({"detail-type": "GuardDuty Finding", "source": "attacker.custom",
            "account": "999988887777", "id": "e1", "detail": {}});
        let err = pipeline.process_event(&forged).await.unwrap_err();
        let metrics = recorded(Err(&err));
        assert!(metrics.contains(&(EVENTS_REFUSED, 1.0)), "{metrics:?}");
        assert!(metrics.contains(&(ERRORS, 0.0)), "{metrics:?}");
        let bad = serde_json::json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {}});
        let err = pipeline.process_event(&bad).await.unwrap_err();
        let metrics = recorded(Err(&err));
        assert!(metrics.contains(&(ERRORS, 1.0)), "{metrics:?}");
        assert!(
            !metrics.iter().any(|(n, _)| *n == EVENTS_REFUSED),
            "{metrics:?}"
        );
    }

    #[test]
    fn dimension_values_are_clean_ascii_and_bounded() {
        assert_eq!(dimension_value("HIGH"), "HIGH");
        assert_eq!(dimension_value(""), "unknown");
        assert_eq!(dimension_value("  "), "unknown");
        assert_eq!(dimension_value("a\nb\u{e9}"), "a?b?");
        assert_eq!(
            dimension_value(&"x".repeat(2000)).len(),
            MAX_DIMENSION_VALUE
        );
    }

    #[test]
    fn non_finite_values_are_dropped() {
        let r = MetricRecord::new(0)
            .metric("A", Unit::Count, f64::NAN, BY_SERVICE)
            .metric("B", Unit::Count, f64::INFINITY, BY_SERVICE)
            .metric("C", Unit::Count, 1.0, BY_SERVICE);
        assert_eq!(r.metrics.len(), 1);
        assert_eq!(r.metrics[0].name, "C");
    }

    #[test]
    fn only_real_account_ids_become_dimensions() {
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("11112222333"));
        assert!(!is_account_id("11112222333x"));
    }

    #[test]
    fn metrics_mode_parses_and_refuses_unknown_values() {
        assert_eq!("EMF".parse::<MetricsMode>(), Ok(MetricsMode::Emf));
        assert_eq!(
            "cloudwatch".parse::<MetricsMode>(),
            Ok(MetricsMode::CloudWatch)
        );
        assert_eq!("off".parse::<MetricsMode>(), Ok(MetricsMode::Off));
        assert!("statsd".parse::<MetricsMode>().is_err());
    }
}

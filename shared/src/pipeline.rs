//! The pipeline every function and `vigil replay` run:
//! source (parse) → detect → enrich → gate → alert.
//!
//! Build it once per cold start ([`Pipeline::builder`]), then call
//! [`Pipeline::process_event`] per event. Each stage runs in its own tracing
//! span under one `vigil.event` span, so telemetry sees every step.

use std::sync::Arc;

use serde_json::Value;
use tracing::{info_span, Instrument};

use crate::config::Config;
use crate::detect::{Detector, RuleMeta};
use crate::enrich::Enricher;
use crate::model::{Finding, FindingStatus, Severity, Source, TraceIds};
use crate::render::Alert;
use crate::sinks::{AlertSink, Delivery, SinkError};
use crate::sources::{self, SourceError, SourceEvent};

/// The trace context of the span processing an event, as Vigil passes it on.
#[derive(Debug, Clone, Default)]
pub struct TraceContext {
    pub ids: TraceIds,
    /// W3C `traceparent` header value.
    pub traceparent: String,
    /// X-Ray `AWSTraceHeader` value.
    pub aws_trace_header: String,
}

/// Gives the current trace context; set by the telemetry module.
pub type TraceContextFn = Arc<dyn Fn() -> Option<TraceContext> + Send + Sync>;

/// Why a finding did or did not alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Alerted(Vec<Delivery>),
    /// Below the configured minimum severity.
    BelowThreshold,
    /// A sample the source generated for testing.
    Sample,
    /// Archived, suppressed or resolved at the source.
    Inactive,
    /// At least one sink failed; the event must be retried.
    Failed(String),
}

impl Decision {
    pub fn alerted(&self) -> bool {
        matches!(self, Decision::Alerted(_))
    }
}

/// One finding and what happened to it.
#[derive(Debug, Clone)]
pub struct Processed {
    pub finding: Finding,
    pub decision: Decision,
}

/// What one event produced.
#[derive(Debug, Clone)]
pub struct EventReport {
    pub source: Source,
    /// The EventBridge event id, when the event had an envelope.
    pub event_id: Option<String>,
    pub findings: Vec<Processed>,
}

impl EventReport {
    pub fn alerts(&self) -> usize {
        self.findings
            .iter()
            .filter(|p| p.decision.alerted())
            .count()
    }
}

/// Why an event failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("this function takes {accepted} events, not {got}")]
    NotAccepted { accepted: String, got: Source },
    /// Some alert could not be delivered: the caller must fail the invocation so
    /// the event is retried (and lands in the DLQ in the end).
    #[error("{failed} of {total} alerts not delivered: {first}")]
    Delivery {
        failed: usize,
        total: usize,
        first: SinkError,
        report: Box<EventReport>,
    },
}

/// The configured pipeline.
pub struct Pipeline {
    min_severity: Severity,
    alert_samples: bool,
    alert_inactive: bool,
    trace_url_template: Option<String>,
    accepted: Option<Vec<Source>>,
    enricher: Enricher,
    detector: Option<Arc<dyn Detector>>,
    sinks: Vec<Box<dyn AlertSink>>,
    trace_context: Option<TraceContextFn>,
}

/// Builds a [`Pipeline`].
pub struct PipelineBuilder {
    inner: Pipeline,
}

impl PipelineBuilder {
    /// Only these sources; anything else is [`PipelineError::NotAccepted`].
    pub fn accept(mut self, sources: &[Source]) -> Self {
        self.inner.accepted = Some(sources.to_vec());
        self
    }

    pub fn detector(mut self, detector: Arc<dyn Detector>) -> Self {
        self.inner.detector = Some(detector);
        self
    }

    pub fn sink(mut self, sink: Box<dyn AlertSink>) -> Self {
        self.inner.sinks.push(sink);
        self
    }

    pub fn trace_context(mut self, f: TraceContextFn) -> Self {
        self.inner.trace_context = Some(f);
        self
    }

    pub fn build(self) -> Pipeline {
        self.inner
    }
}

impl Pipeline {
    pub fn builder(config: &Config) -> PipelineBuilder {
        PipelineBuilder {
            inner: Pipeline {
                min_severity: config.min_severity,
                alert_samples: config.alert_samples,
                alert_inactive: config.alert_inactive,
                trace_url_template: config.trace_url_template.clone(),
                accepted: None,
                enricher: Enricher::new(config.account_names.clone()),
                detector: None,
                sinks: Vec::new(),
                trace_context: None,
            },
        }
    }

    pub fn detector(&self) -> Option<&Arc<dyn Detector>> {
        self.detector.as_ref()
    }

    /// Runs one event through every stage.
    pub async fn process_event(&self, event: &Value) -> Result<EventReport, PipelineError> {
        let span = info_span!(
            "vigil.event",
            vigil.source = tracing::field::Empty,
            vigil.event_id = tracing::field::Empty,
            vigil.findings = tracing::field::Empty,
            vigil.alerts = tracing::field::Empty,
        );
        self.process_in_span(event).instrument(span).await
    }

    async fn process_in_span(&self, event: &Value) -> Result<EventReport, PipelineError> {
        let current = tracing::Span::current();
        let (source, event_id, findings) = {
            let _parse = info_span!("parse").entered();
            let parsed = sources::classify(event)?;
            current.record("vigil.source", parsed.source().as_str());
            if let Some(id) = parsed.event_id() {
                current.record("vigil.event_id", id);
            }
            if let Some(accepted) = &self.accepted {
                if !accepted.contains(&parsed.source()) {
                    return Err(PipelineError::NotAccepted {
                        accepted: accepted
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        got: parsed.source(),
                    });
                }
            }
            let source = parsed.source();
            let event_id = parsed.event_id().map(str::to_string);
            (source, event_id, self.findings(parsed)?)
        };

        let mut report = EventReport {
            source,
            event_id,
            findings: Vec::with_capacity(findings.len()),
        };
        let trace = self.trace_context.as_ref().and_then(|f| f());
        for mut finding in findings {
            {
                let _enrich = info_span!("enrich").entered();
                self.enricher.enrich(&mut finding);
                if let Some(t) = &trace {
                    finding.trace = Some(t.ids.clone());
                    finding.links.trace = self.trace_link(&t.ids, &finding.region);
                }
            }
            let decision = match self.gate(&finding) {
                Some(skip) => skip,
                None => self.alert(&finding, trace.as_ref()).await,
            };
            tracing::info!(
                vigil.finding_id = %finding.id,
                vigil.finding_type = %finding.type_or_rule(),
                vigil.severity = finding.severity.as_str(),
                vigil.account = %finding.account_id,
                vigil.region = %finding.region,
                vigil.fingerprint = %finding.fingerprint,
                vigil.decision = decision_name(&decision),
                "finding {}",
                decision_name(&decision)
            );
            report.findings.push(Processed { finding, decision });
        }
        current.record("vigil.findings", report.findings.len());
        current.record("vigil.alerts", report.alerts());

        let failed: Vec<&Processed> = report
            .findings
            .iter()
            .filter(|p| matches!(p.decision, Decision::Failed(_)))
            .collect();
        if let Some(first) = failed.first() {
            let Decision::Failed(message) = &first.decision else {
                unreachable!("filtered on Failed")
            };
            return Err(PipelineError::Delivery {
                failed: failed.len(),
                total: report.findings.len(),
                first: SinkError::Transient {
                    sink: "alert",
                    message: message.clone(),
                },
                report: Box::new(report),
            });
        }
        Ok(report)
    }

    /// Parse (and for CloudTrail, detect) into findings.
    fn findings(&self, parsed: SourceEvent<'_>) -> Result<Vec<Finding>, PipelineError> {
        Ok(match parsed {
            SourceEvent::GuardDuty { finding, envelope } => {
                vec![sources::guardduty::parse(finding, envelope.as_ref())?]
            }
            SourceEvent::CloudTrail { record, envelope } => {
                let _detect = info_span!("detect").entered();
                let Some(detector) = &self.detector else {
                    return Ok(Vec::new());
                };
                let mut hits: Vec<&RuleMeta> = Vec::new();
                detector.detect(record, &mut hits);
                hits.into_iter()
                    .map(|rule| sources::cloudtrail::finding(record, envelope.as_ref(), rule))
                    .collect()
            }
            SourceEvent::SecurityHub { envelope, .. } | SourceEvent::Macie { envelope, .. } => {
                return Err(SourceError::Unsupported {
                    event_source: envelope.source,
                    detail_type: envelope.detail_type,
                }
                .into())
            }
        })
    }

    /// Findings that must not alert, and why. `None`: alert.
    fn gate(&self, f: &Finding) -> Option<Decision> {
        if f.sample && !self.alert_samples {
            return Some(Decision::Sample);
        }
        if f.status != FindingStatus::Active && !self.alert_inactive {
            return Some(Decision::Inactive);
        }
        if f.severity < self.min_severity {
            return Some(Decision::BelowThreshold);
        }
        None
    }

    async fn alert(&self, f: &Finding, trace: Option<&TraceContext>) -> Decision {
        let span = info_span!("alert", vigil.sinks = self.sinks.len());
        async {
            let mut alert = Alert::new(f);
            if let Some(t) = trace {
                alert.traceparent = Some(t.traceparent.clone());
                alert.aws_trace_header = Some(t.aws_trace_header.clone());
            }
            let mut deliveries = Vec::with_capacity(self.sinks.len());
            for sink in &self.sinks {
                match sink.send(&alert).await {
                    Ok(d) => deliveries.push(d),
                    Err(e) => {
                        tracing::error!(sink = sink.name(), error = %e, vigil.finding_id = %f.id, "alert delivery failed");
                        return Decision::Failed(e.to_string());
                    }
                }
            }
            Decision::Alerted(deliveries)
        }
        .instrument(span)
        .await
    }

    fn trace_link(&self, ids: &TraceIds, region: &str) -> Option<String> {
        let t = self.trace_url_template.as_ref()?;
        Some(
            t.replace("{trace_id}", &ids.trace_id)
                .replace("{xray_trace_id}", &ids.xray_trace_id)
                .replace("{region}", region),
        )
    }
}

pub fn decision_name(d: &Decision) -> &'static str {
    match d {
        Decision::Alerted(_) => "alerted",
        Decision::BelowThreshold => "below_threshold",
        Decision::Sample => "sample",
        Decision::Inactive => "inactive",
        Decision::Failed(_) => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::MemorySink;
    use serde_json::json;

    fn gd_event(severity: f64, sample: bool) -> Value {
        json!({
            "version": "0", "id": "evt-1", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
            "account": "111122223333", "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "resources": [],
            "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
                "id": "f1", "type": "UnauthorizedAccess:EC2/TorClient", "severity": severity,
                "title": "Tor client", "description": "d",
                "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1"}},
                "service": {"serviceName": "guardduty", "count": 1, "additionalInfo": {"sample": sample}}}
        })
    }

    fn pipeline(sink: MemorySink, cfg: Config) -> Pipeline {
        Pipeline::builder(&cfg).sink(Box::new(sink)).build()
    }

    #[tokio::test]
    async fn alerts_at_or_above_the_threshold_only() {
        let sink = MemorySink::new();
        let p = pipeline(sink.clone(), Config::default());
        let r = p.process_event(&gd_event(8.0, false)).await.unwrap();
        assert_eq!(r.alerts(), 1);
        let r = p.process_event(&gd_event(2.0, false)).await.unwrap();
        assert_eq!(r.findings[0].decision, Decision::BelowThreshold);
        assert_eq!(sink.sent().len(), 1);
        assert!(sink.sent()[0].subject.starts_with("[HIGH]"));
    }

    #[tokio::test]
    async fn samples_do_not_alert_unless_configured() {
        let sink = MemorySink::new();
        let p = pipeline(sink.clone(), Config::default());
        let r = p.process_event(&gd_event(8.0, true)).await.unwrap();
        assert_eq!(r.findings[0].decision, Decision::Sample);
        let cfg = Config {
            alert_samples: true,
            ..Config::default()
        };
        let p = pipeline(sink.clone(), cfg);
        assert_eq!(
            p.process_event(&gd_event(8.0, true))
                .await
                .unwrap()
                .alerts(),
            1
        );
    }

    #[tokio::test]
    async fn a_failing_sink_fails_the_event_with_its_report() {
        let p = pipeline(MemorySink::failing(), Config::default());
        match p.process_event(&gd_event(8.0, false)).await {
            Err(PipelineError::Delivery {
                failed: 1, report, ..
            }) => assert_eq!(report.findings.len(), 1),
            other => panic!("expected a delivery error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn other_sources_are_refused_when_restricted() {
        let p = Pipeline::builder(&Config::default())
            .accept(&[Source::CloudTrail])
            .build();
        assert!(matches!(
            p.process_event(&gd_event(8.0, false)).await,
            Err(PipelineError::NotAccepted { .. })
        ));
    }
}

//! The pipeline every function and `vigil replay` run:
//! source (parse) → detect → enrich → gate → alert.
//!
//! Build it once per cold start ([`Pipeline::builder`]), then call
//! [`Pipeline::process_event`] per event. Each stage runs in its own tracing
//! span under one `vigil.event` span, so telemetry sees every step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::{info_span, Instrument};

use crate::accounts::{AccountDirectory, AccountInfo};
use crate::config::Config;
use crate::correlate::{self, CorrelationStore, Observation};
use crate::dedup::{Admission, Dedup, EventSession, RepeatKind, SweepReport};
use crate::detect::{Detector, LogSource};
use crate::enrich::Enricher;
use crate::model::{Finding, FindingStatus, Severity, Source, TraceContext, TraceIds};
use crate::render::Alert;
use crate::route::{Route, RoutingTable};
use crate::sinks::{AlertSink, Delivery, SinkError};
use crate::sources::{self, SourceError, SourceEvent};

/// Gives the current trace context; set by the telemetry module.
pub(crate) type TraceContextFn = Arc<dyn Fn() -> Option<TraceContext> + Send + Sync>;

/// Sees each event's outcome and processing time, inside the event's span
/// (so it can record an error on it); set by the telemetry module to record
/// the exception and the metrics.
pub(crate) type EventObserverFn =
    Arc<dyn Fn(Result<&EventReport, &PipelineError>, Duration) + Send + Sync>;

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
    /// A Security Hub copy of a finding that Vigil also receives directly from
    /// this source, which alerts on it (`VIGIL_SECURITYHUB_SKIP_GUARDDUTY`,
    /// `VIGIL_SECURITYHUB_SKIP_MACIE`): kept and reported, not alerted twice.
    FromOtherSource(Source),
    /// A repeat of a fingerprint already alerted in its suppression window,
    /// or the source re-sending a finding already alerted: counted, and the
    /// next alert carries the count (see [`crate::dedup`]).
    Suppressed {
        kind: RepeatKind,
        /// Suppressed since the last alert, this one included.
        repeats: u64,
        /// End of the suppression window (epoch seconds).
        until: i64,
    },
    /// Matched a configured suppression rule.
    SuppressedByRule {
        rule: String,
        reason: String,
    },
    /// Past the storm threshold: counted into the storm summary alert.
    Aggregated {
        /// Start of the storm window (epoch seconds).
        window: i64,
        /// The finding's place among the window's alerts.
        position: u64,
    },
    /// At least one sink failed; the event must be retried.
    Failed(String),
}

impl Decision {
    pub fn alerted(&self) -> bool {
        matches!(self, Decision::Alerted(_))
    }
}

/// The dedup stage's reasons not to alert, as the pipeline reports them.
impl From<crate::dedup::Skip> for Decision {
    fn from(skip: crate::dedup::Skip) -> Decision {
        use crate::dedup::Skip;
        match skip {
            Skip::Suppressed {
                kind,
                repeats,
                until,
            } => Decision::Suppressed {
                kind,
                repeats,
                until,
            },
            Skip::SuppressedByRule { rule, reason } => Decision::SuppressedByRule { rule, reason },
            Skip::Aggregated { window, position } => Decision::Aggregated { window, position },
        }
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
    /// Storm summary alerts this event sent (see [`crate::dedup::storm`]).
    pub summaries: Vec<Processed>,
    /// Dedup state operations that failed; each failed open (alerted).
    pub state_store_errors: u32,
    /// Findings of the event that could not be read and were skipped (each
    /// logged with its place in the event; metric `InvalidFindings`).
    pub invalid_findings: usize,
    /// Correlation state calls that failed (metric `CorrelationStateErrors`);
    /// each failed open: the single-event alerts went out.
    pub correlation_state_errors: u32,
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

impl PipelineError {
    /// The kind of failure, for logs and metrics (`error_kind`): bad input
    /// goes to the dead-letter queue as it is; a delivery failure is retried;
    /// a forged event is refused (counted, logged, never retried).
    pub fn kind(&self) -> &'static str {
        match self {
            PipelineError::Source(e) if e.is_forged() => "forged_event",
            PipelineError::Source(_) | PipelineError::NotAccepted { .. } => "bad_input",
            PipelineError::Delivery { .. } => "delivery",
        }
    }

    /// Whether the event was refused as forged ([`SourceError::ForgedSource`]):
    /// no retry can make it acceptable.
    pub fn is_refusal(&self) -> bool {
        matches!(self, PipelineError::Source(e) if e.is_forged())
    }
}

/// The configured pipeline.
pub struct Pipeline {
    min_severity: Severity,
    alert_samples: bool,
    alert_inactive: bool,
    /// Sources whose Security Hub copies do not alert (see [`Decision::FromOtherSource`]).
    skip_forwarded: Vec<Source>,
    trace_url_template: Option<String>,
    accepted: Option<Vec<Source>>,
    enricher: Enricher,
    /// Account names and OUs from AWS Organizations, when configured.
    accounts: Option<Arc<dyn AccountDirectory>>,
    /// None: every alert goes to the destinations' defaults, with no `route`.
    routes: Option<RoutingTable>,
    detector: Option<Arc<dyn Detector>>,
    sinks: Vec<Box<dyn AlertSink>>,
    trace_context: Option<TraceContextFn>,
    observer: Option<EventObserverFn>,
    dedup: Dedup,
    /// Correlation windows' state; None: correlations do not run.
    correlations: Option<Arc<dyn CorrelationStore>>,
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

    /// Where correlation windows live (see [`crate::correlate`]); without
    /// it, correlation rules do not run.
    pub fn correlations(mut self, store: Arc<dyn CorrelationStore>) -> Self {
        self.inner.correlations = Some(store);
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

    pub(crate) fn observer(mut self, f: EventObserverFn) -> Self {
        self.inner.observer = Some(f);
        self
    }

    /// Where account names and OUs come from (default: configuration only).
    pub fn accounts(mut self, directory: Arc<dyn AccountDirectory>) -> Self {
        self.inner.accounts = Some(directory);
        self
    }

    /// The routing table (default: none, so alerts carry no route).
    pub fn routes(mut self, table: RoutingTable) -> Self {
        self.inner.routes = (!table.is_empty()).then_some(table);
        self
    }

    /// Idempotency, suppression and storm aggregation (default: off).
    pub fn dedup(mut self, dedup: Dedup) -> Self {
        self.inner.dedup = dedup;
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
                skip_forwarded: config.securityhub_skip_sources(),
                trace_url_template: config.trace_url_template.clone(),
                accepted: None,
                enricher: Enricher::new(config.account_names.clone()),
                accounts: None,
                routes: None,
                detector: None,
                sinks: Vec::new(),
                trace_context: None,
                observer: None,
                dedup: Dedup::disabled(),
                correlations: None,
            },
        }
    }

    pub fn detector(&self) -> Option<&Arc<dyn Detector>> {
        self.detector.as_ref()
    }

    pub fn dedup(&self) -> &Dedup {
        &self.dedup
    }

    /// Sends every storm summary still due, open windows included: for the
    /// end of `vigil replay` (the functions send them from the next event
    /// after a window closes, and from the scheduled sweep).
    pub async fn flush_storms(&self) -> Vec<Processed> {
        let mut dedup = self.dedup.session();
        let due = dedup.finish_all().await;
        self.send_summaries(&mut dedup, due, None).await
    }

    /// The scheduled sweep: sends the final summary of every closed storm of
    /// the last day that still owes one, whichever process counted it (found
    /// through the storm index, claimed so only one sweep sends it). A
    /// summary not delivered is given back for the next sweep.
    pub async fn sweep_storms(&self) -> (SweepReport, Vec<Processed>) {
        let mut dedup = self.dedup.session();
        let due = dedup.sweep().await;
        let trace = self.trace_context.as_ref().and_then(|f| f());
        let sent = self.send_summaries(&mut dedup, due, trace.as_ref()).await;
        let count = |failed: bool| {
            sent.iter()
                .filter(|p| matches!(p.decision, Decision::Failed(_)) == failed)
                .count() as u64
        };
        let report = SweepReport {
            storms_checked: dedup.storms_checked(),
            sent: count(false),
            failed: count(true),
            error: (dedup.state_store_errors() > 0)
                .then(|| "the state store failed during the sweep (see the log)".to_string()),
        };
        (report, sent)
    }

    async fn send_summaries(
        &self,
        dedup: &mut EventSession<'_>,
        summaries: Vec<Finding>,
        trace: Option<&TraceContext>,
    ) -> Vec<Processed> {
        let mut out = Vec::with_capacity(summaries.len());
        for summary in summaries {
            // A storm summary spans findings: route it on its own fields.
            let route = self
                .routes
                .as_ref()
                .map(|t| t.route(&summary, &AccountInfo::default()));
            let decision = self.alert(&summary, trace, 0, route).await;
            dedup.summary_settled(&summary, decision.alerted()).await;
            tracing::info!(
                vigil.finding_id = %summary.id,
                vigil.replaced_alerts = summary.count,
                vigil.decision = decision_name(&decision),
                "storm summary {}",
                decision_name(&decision)
            );
            out.push(Processed {
                finding: summary,
                decision,
            });
        }
        out
    }

    /// Whether `event` is a CloudTrail record that no loaded rule matches,
    /// counts as an attempt at, or counts for a correlation: [`Pipeline::process_event`] would find
    /// nothing in it. Callers reading many records (`vigil replay`) skip it
    /// and save its span, dedup session and log line; storm summaries that
    /// fall due meanwhile go out with the next event that has a finding, or
    /// at [`Pipeline::flush_storms`]. False whenever it cannot be sure.
    pub fn finds_nothing(&self, event: &Value) -> bool {
        let Some(detector) = &self.detector else {
            return false;
        };
        if let Some(accepted) = &self.accepted {
            if !accepted.contains(&Source::CloudTrail) {
                return false;
            }
        }
        let Ok(SourceEvent::CloudTrail { record, .. }) = sources::classify(event) else {
            return false;
        };
        let mut hits = Vec::new();
        detector.detect(record, &mut hits);
        if !hits.is_empty() {
            return false;
        }
        let mut attempts = Vec::new();
        detector.attempts(record, &hits, &mut attempts);
        if !attempts.is_empty() {
            return false;
        }
        let mut observations = Vec::new();
        detector.correlate(record, &mut observations);
        observations.is_empty()
    }

    /// Runs one event through every stage. A CloudTrail record also feeds
    /// the correlations (one state call for the event, at its end).
    pub async fn process_event(&self, event: &Value) -> Result<EventReport, PipelineError> {
        self.process(event, true).await
    }

    /// [`Pipeline::process_event`] for callers that collect the record's
    /// correlation observations themselves ([`Pipeline::correlate`]) and
    /// send them in one batch ([`Pipeline::process_correlations`]): log files.
    pub async fn process_event_uncorrelated(
        &self,
        event: &Value,
    ) -> Result<EventReport, PipelineError> {
        self.process(event, false).await
    }

    /// Appends what a CloudTrail record contributes to correlations; nothing
    /// without a correlation store. Cheap for records no counted rule takes.
    pub fn correlate(&self, record: &Value, out: &mut Vec<Observation>) {
        if let (Some(_), Some(d)) = (&self.correlations, &self.detector) {
            d.correlate(record, out);
        }
    }

    /// Folds a batch of observations into the correlation state and runs the
    /// correlations that fire through enrich, dedup and the sinks, as one
    /// event of its own (its span `vigil.correlations`, its metrics).
    pub async fn process_correlations(
        &self,
        batch: &[Observation],
    ) -> Result<EventReport, PipelineError> {
        let mut report = empty_report(Source::CloudTrail, None, 0);
        if batch.is_empty() || self.correlations.is_none() {
            return Ok(report);
        }
        let span = info_span!("vigil.correlations", vigil.observations = batch.len());
        let started = Instant::now();
        async {
            let trace = self.trace_context.as_ref().and_then(|f| f());
            let mut dedup = self.dedup.session();
            self.run_correlations(batch, &mut dedup, trace.as_ref(), &mut report)
                .await;
            report.state_store_errors = dedup.state_store_errors();
            let result = fail_on_undelivered(report);
            if let Some(observe) = &self.observer {
                observe(result.as_ref(), started.elapsed());
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Observes `batch`, then each fired correlation's finding through the
    /// stages. A state failure fails open: logged, counted, and the windows
    /// claimed before it still alert.
    async fn run_correlations(
        &self,
        batch: &[Observation],
        dedup: &mut EventSession<'_>,
        trace: Option<&TraceContext>,
        report: &mut EventReport,
    ) {
        let Some(store) = &self.correlations else {
            return;
        };
        let fired = match store.observe(batch).await {
            Ok(fired) => fired,
            Err(e) => {
                tracing::error!(error = %e, vigil.observations = batch.len(), "correlation state failed: single-event alerts went out, correlations of this batch may be missed (fail open)");
                report.correlation_state_errors += 1;
                e.into_fired()
            }
        };
        for f in &fired {
            let finding = correlate::finding(f);
            report
                .findings
                .push(self.run_finding(dedup, finding, trace).await);
        }
    }

    /// One finding through enrich, the account lookup, the gate, dedup and
    /// the sinks.
    async fn run_finding(
        &self,
        dedup: &mut EventSession<'_>,
        mut finding: Finding,
        trace: Option<&TraceContext>,
    ) -> Processed {
        self.enrich(&mut finding, trace);
        let account = self.look_up_account(&mut finding).await;
        let decision = self.decide(dedup, &finding, &account, trace).await;
        log_decision(&finding, &decision);
        Processed { finding, decision }
    }

    async fn process(&self, event: &Value, correlate: bool) -> Result<EventReport, PipelineError> {
        let span = info_span!(
            "vigil.event",
            vigil.source = tracing::field::Empty,
            vigil.event_id = tracing::field::Empty,
            vigil.findings = tracing::field::Empty,
            vigil.alerts = tracing::field::Empty,
            // The most severe finding's, for queries on the event span.
            vigil.finding_id = tracing::field::Empty,
            vigil.finding_type = tracing::field::Empty,
            vigil.severity = tracing::field::Empty,
            vigil.account = tracing::field::Empty,
            vigil.rule = tracing::field::Empty,
        );
        let started = Instant::now();
        async {
            let result = self.process_in_span(event, correlate).await;
            if let Some(observe) = &self.observer {
                observe(result.as_ref(), started.elapsed());
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn process_in_span(
        &self,
        event: &Value,
        correlate: bool,
    ) -> Result<EventReport, PipelineError> {
        let current = tracing::Span::current();
        let mut observations = Vec::new();
        let observe = correlate.then_some(&mut observations);
        let (source, event_id, parsed) = self.parse(event, &current, observe)?;
        let findings = parsed.findings;
        let mut report = empty_report(source, event_id, parsed.invalid.len());
        let trace = self.trace_context.as_ref().and_then(|f| f());
        let mut dedup = self.dedup.session();
        for finding in findings {
            let processed = self.run_finding(&mut dedup, finding, trace.as_ref()).await;
            report.findings.push(processed);
        }
        if !observations.is_empty() {
            self.run_correlations(&observations, &mut dedup, trace.as_ref(), &mut report)
                .await;
        }
        let due = dedup.finish().await;
        report.summaries = self.send_summaries(&mut dedup, due, trace.as_ref()).await;
        report.state_store_errors = dedup.state_store_errors();
        current.record("vigil.findings", report.findings.len());
        current.record("vigil.alerts", report.alerts());
        if let Some(top) = report.findings.iter().max_by_key(|p| p.finding.severity) {
            record_finding(&current, &top.finding);
        }
        fail_on_undelivered(report)
    }

    /// Classifies the event (recording its source and id on the event span),
    /// refuses sources this pipeline does not take, and parses it; a
    /// CloudTrail record's or GuardDuty finding's correlation observations
    /// go to `observe`.
    fn parse(
        &self,
        event: &Value,
        current: &tracing::Span,
        observe: Option<&mut Vec<Observation>>,
    ) -> Result<(Source, Option<String>, sources::Parsed), PipelineError> {
        let _parse = info_span!("parse").entered();
        let parsed = sources::classify(event)?;
        let source = parsed.source();
        current.record("vigil.source", source.as_str());
        if let Some(id) = parsed.event_id() {
            current.record("vigil.event_id", id);
        }
        if let Some(accepted) = &self.accepted {
            if !accepted.contains(&source) {
                return Err(PipelineError::NotAccepted {
                    accepted: accepted
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    got: source,
                });
            }
        }
        let event_id = parsed.event_id().map(str::to_string);
        match (observe, &parsed) {
            (Some(out), SourceEvent::CloudTrail { record, .. }) => self.correlate(record, out),
            (Some(out), SourceEvent::GuardDuty { finding, .. }) => {
                if let (Some(_), Some(d)) = (&self.correlations, &self.detector) {
                    d.correlate_from(LogSource::GuardDuty, finding, out);
                }
            }
            _ => {}
        }
        Ok((source, event_id, self.findings(parsed)?))
    }

    /// Account names, then the trace the alert will link to.
    fn enrich(&self, finding: &mut Finding, trace: Option<&TraceContext>) {
        let enrich = info_span!(
            "enrich",
            vigil.finding_id = %finding.id,
            vigil.finding_type = tracing::field::Empty,
            vigil.severity = tracing::field::Empty,
            vigil.account = tracing::field::Empty,
            vigil.rule = tracing::field::Empty,
        );
        let _enrich = enrich.enter();
        self.enricher.enrich(finding);
        record_finding(&enrich, finding);
        if let Some(t) = trace {
            finding.trace = Some(t.ids.clone());
            finding.links.trace = self.trace_link(&t.ids, &finding.region);
        }
    }

    /// The gate, then dedup, then (when admitted) the alert on its route.
    async fn decide(
        &self,
        dedup: &mut EventSession<'_>,
        finding: &Finding,
        account: &AccountInfo,
        trace: Option<&TraceContext>,
    ) -> Decision {
        if let Some(skip) = self.gate(finding) {
            return skip;
        }
        if is_resolution(finding) {
            // A resolution closes the alert its fingerprint already has: it
            // must not be folded into that alert as a repeat.
            let route = self.routes.as_ref().map(|t| t.route(finding, account));
            return self.alert(finding, trace, 0, route).await;
        }
        match dedup.admit(finding).await {
            Admission::Alert { suppressed_repeats } => {
                let route = self.routes.as_ref().map(|t| t.route(finding, account));
                let d = self.alert(finding, trace, suppressed_repeats, route).await;
                dedup.settle(finding, d.alerted()).await;
                d
            }
            Admission::Skip(skip) => skip.into(),
        }
    }

    /// Parse (and for CloudTrail, detect) into findings.
    fn findings(&self, parsed: SourceEvent<'_>) -> Result<sources::Parsed, PipelineError> {
        Ok(sources::findings(parsed, self.detector.as_deref())?)
    }

    /// Findings that must not alert, and why. `None`: alert.
    fn gate(&self, f: &Finding) -> Option<Decision> {
        if f.sample && !self.alert_samples {
            return Some(Decision::Sample);
        }
        if f.status != FindingStatus::Active && !self.alert_inactive && !is_resolution(f) {
            return Some(Decision::Inactive);
        }
        if let Some(origin) = sources::forwarded_from(f) {
            if self.skip_forwarded.contains(&origin) {
                return Some(Decision::FromOtherSource(origin));
            }
        }
        if f.severity < self.min_severity {
            return Some(Decision::BelowThreshold);
        }
        None
    }

    /// The account's name and OUs from the directory, when there is one; the
    /// name fills in only where configuration gave none. A failed lookup is
    /// logged by the directory and leaves the finding as it was.
    async fn look_up_account(&self, f: &mut Finding) -> AccountInfo {
        let Some(directory) = &self.accounts else {
            return AccountInfo::default();
        };
        if f.account_id.is_empty() {
            return AccountInfo::default();
        }
        let info = directory
            .lookup(&f.account_id)
            .instrument(info_span!("enrich.account", vigil.account = %f.account_id))
            .await
            .unwrap_or_default();
        if f.account_name.is_none() {
            f.account_name = info.name.clone();
        }
        info
    }

    async fn alert(
        &self,
        f: &Finding,
        trace: Option<&TraceContext>,
        suppressed_repeats: u64,
        route: Option<&Route>,
    ) -> Decision {
        let span = info_span!(
            "alert",
            vigil.sinks = self.sinks.len(),
            vigil.finding_id = %f.id,
            vigil.route = route.map_or("", |r| r.name.as_str()),
        );
        async {
            let mut alert = Alert::new(f);
            alert.suppressed_repeats = suppressed_repeats;
            alert.route = route;
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
                // The region is event text: only a region label reaches the URL.
                .replace(
                    "{region}",
                    crate::text::link::Region::parse(region)
                        .as_ref()
                        .map_or("", |r| r.as_str()),
                ),
        )
    }
}

/// A resolved finding of a source that tells when its findings are over
/// (Config COMPLIANT again, Inspector CLOSED, Access Analyzer RESOLVED): it
/// goes out, as OCSF status Resolved, so the notifier resolves the Slack
/// thread and the PagerDuty incident of the alert it ends.
/// A report with nothing in it yet.
fn empty_report(source: Source, event_id: Option<String>, invalid: usize) -> EventReport {
    EventReport {
        source,
        event_id,
        findings: Vec::new(),
        summaries: Vec::new(),
        state_store_errors: 0,
        invalid_findings: invalid,
        correlation_state_errors: 0,
    }
}

fn is_resolution(f: &Finding) -> bool {
    f.status == FindingStatus::Resolved && f.source.sends_resolutions()
}

/// The finding's log line: what was decided, with the fields a responder
/// searches by.
fn log_decision(finding: &Finding, decision: &Decision) {
    tracing::info!(
        vigil.finding_id = %finding.id,
        vigil.finding_type = %finding.type_or_rule(),
        vigil.severity = finding.severity.as_str(),
        vigil.account = %finding.account_id,
        vigil.region = %finding.region,
        vigil.fingerprint = %finding.fingerprint,
        vigil.decision = decision_name(decision),
        "finding {}",
        decision_name(decision)
    );
}

/// The report, or a delivery error carrying it when any alert (finding or
/// storm summary) was not delivered, so the event is retried.
fn fail_on_undelivered(report: EventReport) -> Result<EventReport, PipelineError> {
    let failed: Vec<&Processed> = report
        .findings
        .iter()
        .chain(&report.summaries)
        .filter(|p| matches!(p.decision, Decision::Failed(_)))
        .collect();
    let Some(first) = failed.first() else {
        return Ok(report);
    };
    let Decision::Failed(message) = &first.decision else {
        unreachable!("filtered on Failed")
    };
    Err(PipelineError::Delivery {
        failed: failed.len(),
        total: report.findings.len(),
        first: SinkError::Transient {
            sink: "alert",
            message: message.clone(),
        },
        report: Box::new(report),
    })
}

/// Puts a finding's key fields on a span that declared them.
fn record_finding(span: &tracing::Span, f: &Finding) {
    span.record("vigil.finding_id", f.id.as_str());
    span.record("vigil.finding_type", f.type_or_rule());
    span.record("vigil.severity", f.severity.as_str());
    span.record("vigil.account", f.account_id.as_str());
    if let Some(rule) = &f.rule {
        span.record("vigil.rule", rule.id.as_str());
    }
}

pub fn decision_name(d: &Decision) -> &'static str {
    match d {
        Decision::Alerted(_) => "alerted",
        Decision::BelowThreshold => "below_threshold",
        Decision::Sample => "sample",
        Decision::Inactive => "inactive",
        Decision::FromOtherSource(_) => "from_other_source",
        Decision::Suppressed { .. } => "suppressed",
        Decision::SuppressedByRule { .. } => "suppressed_by_rule",
        Decision::Aggregated { .. } => "aggregated",
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
    async fn the_route_follows_the_account_unit_and_names_fill_in_from_the_directory() {
        use crate::accounts::{AccountInfo, OrgUnit, StaticDirectory};
        let table = RoutingTable::parse(
            "routes:\n  - {name: payments, ou: Payments, slack_channel: '#pay', pagerduty_service: pay}\ndefault: {slack_channel: '#sec'}\n",
            "test",
        )
        .unwrap();
        let mut directory = StaticDirectory::default();
        directory.insert(
            "111122223333",
            AccountInfo {
                name: Some("payments-prod".into()),
                units: vec![OrgUnit {
                    id: "ou-ab12-00000001".into(),
                    name: Some("Payments".into()),
                }],
            },
        );
        let sink = MemorySink::new();
        let p = Pipeline::builder(&Config::default())
            .sink(Box::new(sink.clone()))
            .routes(table.clone())
            .accounts(Arc::new(directory))
            .build();
        p.process_event(&gd_event(8.0, false)).await.unwrap();
        let sent = &sink.sent()[0];
        let route = sent
            .route
            .as_ref()
            .expect("a table gives every alert a route");
        assert_eq!(route.name, "payments");
        assert_eq!(route.pagerduty_service.as_deref(), Some("pay"));
        assert_eq!(sent.finding.account_name.as_deref(), Some("payments-prod"));

        // A configured name wins over the directory's; another OU takes the default.
        let mut cfg = Config::default();
        cfg.account_names.insert("111122223333", "pay");
        let sink = MemorySink::new();
        let p = Pipeline::builder(&cfg)
            .sink(Box::new(sink.clone()))
            .routes(table)
            .accounts(Arc::new(StaticDirectory::default()))
            .build();
        p.process_event(&gd_event(8.0, false)).await.unwrap();
        let sent = &sink.sent()[0];
        assert_eq!(sent.finding.account_name.as_deref(), Some("pay"));
        let route = sent.route.as_ref().unwrap();
        assert_eq!(route.name, crate::route::DEFAULT_ROUTE);
        assert_eq!(route.slack_channel.as_deref(), Some("#sec"));

        // No table: no route at all, so subscribers see no `route` attribute.
        let sink = MemorySink::new();
        pipeline(sink.clone(), Config::default())
            .process_event(&gd_event(8.0, false))
            .await
            .unwrap();
        assert_eq!(sink.sent()[0].route, None);
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

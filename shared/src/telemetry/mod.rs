//! Trace-linked telemetry: one trace id from the Lambda's X-Ray context to the
//! spans, the JSON log lines, the EMF metrics and the SNS alert of every event.
//!
//! Set up once per cold start with [`init`] (every function does it through
//! [`crate::app::run_eventbridge_function`]; other function kinds, such as an
//! SNS-triggered notifier, call [`init`] themselves and wrap each invocation
//! in [`Telemetry::invocation`]). Then:
//!
//! - **Traces** ([`traces`]): an OpenTelemetry tracer provider with the X-Ray
//!   id generator, fed by `tracing` spans that follow the semantic
//!   conventions (the invocation span: [`Telemetry::invocation`]; SQS
//!   messages: [`messaging`]). Exported over OTLP/HTTP protobuf only when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set; the
//!   SDK reads the endpoint, headers and sampler from the standard variables
//!   itself ([`TelemetryConfig`] says what Vigil reads). Flushed at the end of
//!   each invocation, after the alert, within a short timeout.
//! - **Logs** ([`logs`]): one JSON object a line with the Powertools keys plus
//!   `trace_id`, `span_id` and `trace_flags`.
//! - **Metrics** ([`metrics`]): EMF lines on stdout, or `PutMetricData` once per
//!   invocation, recorded in each event's `metrics` span; `ColdStart` as
//!   Powertools emits it.
//!
//! Telemetry never fails an invocation: a bad `OTEL_*`/`VIGIL_LOG_LEVEL`/
//! `VIGIL_METRICS` value is logged and replaced by its default, and export
//! failures are logged, not returned.

mod invocation;
mod jsonw;
pub mod logs;
pub mod messaging;
pub mod metrics;
mod settings;
pub mod traces;
pub mod xray;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use tracing::level_filters::LevelFilter;
use tracing::Dispatch;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

pub use invocation::{Invocation, InvocationInfo, Trigger};
pub use logs::{Capture, Output, LOG_KEYS};
pub use metrics::{
    CloudWatchSink, EmfSink, MetricRecord, MetricsError, MetricsMode, MetricsSink, NoMetrics,
    Recorder,
};
pub use settings::{TelemetryConfig, TelemetryOptions, DEFAULT_EXPORT_TIMEOUT};
pub use traces::{current_trace_context, record_exception, ExportSettings, Sampling};

use crate::pipeline::{EventObserverFn, PipelineBuilder};

/// The longest a `PutMetricData` flush may hold an invocation.
pub(crate) const METRICS_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// Metric `error_kind` of a failed span export.
pub const TRACE_EXPORT_ERROR_KIND: &str = "trace_export";

/// Why telemetry could not be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{name}: {message}")]
    Config { name: &'static str, message: String },
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    #[error("span export failed: {0}")]
    Export(String),
    #[error("another tracing subscriber is already installed")]
    AlreadyInstalled,
}

struct Inner {
    config: TelemetryConfig,
    recorder: Recorder,
    metrics: Arc<dyn MetricsSink>,
    tracing: traces::Tracing,
    /// Whether spans reach OpenTelemetry ([`records_spans`]).
    records_spans: bool,
    /// True until the first invocation starts.
    cold: Arc<AtomicBool>,
}

/// Telemetry for one process: built once per cold start, shared by every
/// invocation. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("service", &self.inner.config.service)
            .field("metrics", &self.inner.metrics.name())
            .field("exporting", &self.inner.tracing.flush.is_some())
            .finish()
    }
}

static GLOBAL: OnceLock<Telemetry> = OnceLock::new();

/// Sets up telemetry for this process from the environment and installs it
/// as the global `tracing` subscriber. Call once, first thing in `main`; a
/// second call returns the first one's telemetry.
pub fn init(options: TelemetryOptions) -> Result<Telemetry, TelemetryError> {
    if let Some(t) = GLOBAL.get() {
        return Ok(t.clone());
    }
    let (config, problems) = TelemetryConfig::from_env(&options.default_service);
    let (telemetry, dispatch) = Telemetry::build(config, options, None)?;
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    let telemetry = GLOBAL.get_or_init(|| telemetry).clone();
    for p in problems {
        tracing::error!(error = %p, "telemetry configuration ignored");
    }
    Ok(telemetry)
}

/// The telemetry [`init`] installed, if any.
pub fn installed() -> Option<&'static Telemetry> {
    GLOBAL.get()
}

impl Telemetry {
    /// Builds telemetry and the `tracing` dispatcher carrying it, without
    /// installing anything global: tests and benchmarks use the dispatcher
    /// with `tracing::dispatcher::set_default`. `metrics` replaces the sink
    /// `VIGIL_METRICS` would choose.
    pub fn build(
        config: TelemetryConfig,
        options: TelemetryOptions,
        metrics: Option<Arc<dyn MetricsSink>>,
    ) -> Result<(Telemetry, Dispatch), TelemetryError> {
        let (spans, problem) = traces::build(
            resource(&config, &options),
            config.export.as_ref(),
            config.sampling,
        );
        let metrics = metrics.unwrap_or_else(|| metrics_sink(&config, &options));
        let cold = Arc::new(AtomicBool::new(true));
        let records_spans = records_spans(&config, &options);
        let subscriber = subscriber(
            &config,
            &options,
            records_spans.then_some(&spans),
            cold.clone(),
        )?;
        if let Some(e) = problem {
            tracing::dispatcher::with_default(&subscriber, || {
                tracing::error!(error = %e, "spans are not exported");
            });
        }
        let recorder = Recorder {
            service: config.service.clone(),
            by_account: config.by_account,
        };
        let telemetry = Telemetry {
            inner: Arc::new(Inner {
                config,
                recorder,
                metrics,
                tracing: spans,
                records_spans,
                cold,
            }),
        };
        Ok((telemetry, subscriber))
    }

    pub fn config(&self) -> &TelemetryConfig {
        &self.inner.config
    }

    /// The metrics sink in use.
    pub fn metrics(&self) -> &Arc<dyn MetricsSink> {
        &self.inner.metrics
    }

    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.inner.tracing.flush.is_some()
    }

    /// Adds telemetry to a pipeline: trace context on findings and alerts,
    /// metrics in each event's `metrics` span. Without spans there is no
    /// trace to name, and without spans or metrics nothing to observe: the
    /// pipeline then skips both (a CLI replay with telemetry off).
    pub fn instrument(&self, mut builder: PipelineBuilder) -> PipelineBuilder {
        if self.inner.records_spans {
            builder = builder.trace_context(Arc::new(current_trace_context));
        }
        if self.inner.records_spans || self.inner.metrics.keeps_records() {
            builder = builder.observer(self.observer());
        }
        builder
    }

    /// Records each event's failure on its span, and its metrics (in a
    /// `metrics` span) from its report or error.
    pub(crate) fn observer(&self) -> EventObserverFn {
        let inner = self.inner.clone();
        Arc::new(move |outcome, elapsed| {
            if let Err(e) = outcome {
                record_exception(&tracing::Span::current(), e.kind(), &e.to_string());
            }
            let _metrics = tracing::info_span!("metrics").entered();
            let trace = current_trace_context();
            for r in inner.recorder.event(outcome, elapsed, trace.as_ref()) {
                inner.metrics.record(r);
            }
        })
    }

    /// Counts an error outside the pipeline (a function's own failure).
    pub(crate) fn record_error(&self, kind: &str) {
        let trace = current_trace_context();
        self.inner
            .metrics
            .record(self.inner.recorder.error(kind, trace.as_ref()));
    }

    /// Exports buffered spans and flushes the metrics sink, each bounded by
    /// its timeout. Failures are logged, never returned: the invocation's
    /// outcome does not depend on its telemetry.
    pub async fn flush(&self) -> FlushReport {
        let spans = async {
            match &self.inner.tracing.flush {
                Some(f) => f.flush().await,
                None => Ok(0),
            }
        };
        let metrics = async {
            tokio::time::timeout(METRICS_FLUSH_TIMEOUT, self.inner.metrics.flush())
                .await
                .unwrap_or(Err(MetricsError::Timeout(METRICS_FLUSH_TIMEOUT)))
        };
        let (spans, metrics) = tokio::join!(spans, metrics);
        let report = FlushReport {
            spans: spans.as_ref().map(|n| *n).unwrap_or(0),
            metric_values: metrics.as_ref().map(|n| *n).unwrap_or(0),
            span_error: spans.err().map(|e| e.to_string()),
            metrics_error: metrics.err().map(|e| e.to_string()),
        };
        if let Some(e) = &report.span_error {
            tracing::warn!(error = %e, "trace export failed");
            // Counted, so a collector that hangs or refuses shows on the
            // dashboard and not only in the logs.
            self.record_error(TRACE_EXPORT_ERROR_KIND);
        }
        if let Some(e) = &report.metrics_error {
            tracing::warn!(error = %e, "metrics flush failed");
        }
        report
    }
}

/// The OpenTelemetry resource: the service and, on Lambda, the function, as
/// the AWS Lambda resource detector of the semantic conventions sets it
/// (plus `faas.max_memory` and `faas.instance` from the FaaS resource
/// conventions). The SDK's builder adds `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(config: &TelemetryConfig, options: &TelemetryOptions) -> Resource {
    let mut resource = Resource::builder()
        .with_service_name(config.service.clone())
        .with_attribute(KeyValue::new("cloud.provider", "aws"));
    if options.lambda {
        resource = resource
            .with_attribute(KeyValue::new("cloud.platform", "aws_lambda"))
            .with_attribute(KeyValue::new("faas.name", config.function_name.clone()));
        if let Some(mb) = config.function_memory_mb {
            // Bytes: the variable's MB times 1,048,576.
            let bytes = i64::try_from(mb << 20).unwrap_or(i64::MAX);
            resource = resource.with_attribute(KeyValue::new("faas.max_memory", bytes));
        }
        if let Some(stream) = &config.log_stream {
            resource = resource.with_attribute(KeyValue::new("faas.instance", stream.clone()));
        }
    }
    if let Some(r) = &config.region {
        resource = resource.with_attribute(KeyValue::new("cloud.region", r.clone()));
    }
    if let Some(v) = &config.function_version {
        resource = resource.with_attribute(KeyValue::new("faas.version", v.clone()));
    }
    resource.build()
}

/// The sink `VIGIL_METRICS` (or the process kind's default) chooses.
fn metrics_sink(config: &TelemetryConfig, options: &TelemetryOptions) -> Arc<dyn MetricsSink> {
    match config.metrics.unwrap_or(options.default_metrics) {
        MetricsMode::Emf => Arc::new(EmfSink::new(config.namespace.clone(), options.emf.clone())),
        MetricsMode::CloudWatch => Arc::new(CloudWatchSink::lazy(config.namespace.clone())),
        MetricsMode::Off => Arc::new(NoMetrics),
    }
}

/// Whether spans go to OpenTelemetry: always in a Lambda function (their
/// X-Ray ids join logs, metrics and alerts even when nothing is exported);
/// elsewhere (the CLI) only when they are exported, so a replay of millions
/// of events pays for no span nobody will see.
fn records_spans(config: &TelemetryConfig, options: &TelemetryOptions) -> bool {
    options.lambda || config.export.is_some()
}

/// The `tracing` dispatcher: JSON log lines at the configured level, and
/// spans to OpenTelemetry through `tracing` (none: see [`records_spans`]).
fn subscriber(
    config: &TelemetryConfig,
    options: &TelemetryOptions,
    tracing: Option<&traces::Tracing>,
    cold: Arc<AtomicBool>,
) -> Result<Dispatch, TelemetryError> {
    let directives = config
        .log_level
        .clone()
        .unwrap_or_else(|| options.default_log_level.to_string());
    let log_filter =
        EnvFilter::builder()
            .parse(&directives)
            .map_err(|e| TelemetryError::Config {
                name: "VIGIL_LOG_LEVEL",
                message: e.to_string(),
            })?;
    let log_layer =
        logs::JsonLogLayer::new(options.logs.clone(), config, cold).with_filter(log_filter);
    // Spans Vigil and the SDK open at info; the runtime's own invocation
    // span is left out (Vigil's invocation span replaces it, with the
    // X-Ray parent the runtime's lacks).
    let otel_filter = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("lambda_runtime", LevelFilter::OFF)
        .with_target("lambda_runtime_api_client", LevelFilter::OFF);
    let otel_layer = tracing.map(|tracing| {
        tracing_opentelemetry::layer()
            .with_tracer(tracing.tracer())
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(otel_filter)
    });
    let subscriber = tracing_subscriber::registry()
        .with(otel_layer)
        .with(log_layer);
    Ok(Dispatch::new(subscriber))
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlushReport {
    pub spans: usize,
    pub metric_values: usize,
    pub span_error: Option<String>,
    pub metrics_error: Option<String>,
}

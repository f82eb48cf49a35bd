//! Trace-linked telemetry: one trace id from the Lambda's X-Ray context to the
//! spans, the JSON log lines, the EMF metrics and the SNS alert of every event.
//!
//! Set up once per cold start with [`init`] (every function does it through
//! [`crate::app::run_eventbridge_function`]; other function kinds, such as an
//! SNS-triggered notifier, call [`init`] themselves and wrap each invocation
//! in [`Telemetry::invocation`]). Then:
//!
//! - **Traces** ([`traces`]): an OpenTelemetry tracer provider with the X-Ray
//!   id generator, fed by `tracing` spans. Exported over OTLP/HTTP protobuf
//!   only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set,
//!   with `OTEL_EXPORTER_OTLP_HEADERS` (e.g. `x-honeycomb-team=<key>`) and a
//!   short timeout; flushed at the end of each invocation, after the alert.
//! - **Logs** ([`logs`]): one JSON object a line with the Powertools keys plus
//!   `trace_id` and `span_id`.
//! - **Metrics** ([`metrics`]): EMF lines on stdout, or `PutMetricData` once per
//!   invocation, recorded in each event's `metrics` span.
//!
//! Telemetry never fails an invocation: a bad `OTEL_*`/`VIGIL_LOG_LEVEL`/
//! `VIGIL_METRICS` value is logged and replaced by its default, and export
//! failures are logged, not returned.

mod jsonw;
pub mod logs;
pub mod metrics;
pub mod traces;
pub mod xray;

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use tracing::level_filters::LevelFilter;
use tracing::{Dispatch, Instrument};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

pub use logs::{Capture, Output, LOG_KEYS};
pub use metrics::{
    CloudWatchSink, EmfSink, MetricRecord, MetricsError, MetricsMode, MetricsSink, NoMetrics,
    Recorder,
};
pub use traces::{current_trace_context, record_exception, ExportSettings};

use crate::env::Env;
use crate::pipeline::{EventObserverFn, PipelineBuilder};

/// The export timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is not set. The
/// OpenTelemetry default (10 s) would hold a Lambda invocation far too long
/// when the backend is unreachable.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest a `PutMetricData` flush may hold an invocation.
pub const METRICS_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

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

/// Settings from the environment: the standard `OTEL_*` variables, the
/// Lambda's own, and Vigil's `VIGIL_LOG_LEVEL`, `VIGIL_METRICS`,
/// `VIGIL_METRICS_NAMESPACE`, `VIGIL_METRICS_BY_ACCOUNT`.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `OTEL_SERVICE_NAME`, else the Lambda function name, else the default.
    pub service: String,
    /// `AWS_LAMBDA_FUNCTION_NAME`, else the service.
    pub function_name: String,
    pub function_version: Option<String>,
    pub region: Option<String>,
    /// `VIGIL_LOG_LEVEL`, else `AWS_LAMBDA_LOG_LEVEL`: a level or
    /// `tracing` filter directives. None: the process kind's default.
    pub log_level: Option<String>,
    /// `VIGIL_METRICS`. None: the process kind's default.
    pub metrics: Option<MetricsMode>,
    pub namespace: String,
    pub by_account: bool,
    /// None: spans get ids but are not exported.
    pub export: Option<ExportSettings>,
}

impl TelemetryConfig {
    /// Reads the process environment.
    pub fn from_env(default_service: &str) -> (TelemetryConfig, Vec<TelemetryError>) {
        TelemetryConfig::from_settings(default_service, &Env::process())
    }

    /// Reads settings through `lookup`. Malformed values are returned as
    /// problems (to be logged) and replaced by their defaults: telemetry must
    /// not stop a function from alerting.
    pub fn from_lookup(
        default_service: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> (TelemetryConfig, Vec<TelemetryError>) {
        TelemetryConfig::from_settings(default_service, &Env::new(lookup))
    }

    pub fn from_settings(
        default_service: &str,
        env: &Env,
    ) -> (TelemetryConfig, Vec<TelemetryError>) {
        let get = |name: &str| env.get(name);
        let mut problems = Vec::new();
        let function = get("AWS_LAMBDA_FUNCTION_NAME");
        let service = get("OTEL_SERVICE_NAME")
            .or_else(|| function.clone())
            .unwrap_or_else(|| default_service.to_string());

        let log_level = match get("VIGIL_LOG_LEVEL").or_else(|| get("AWS_LAMBDA_LOG_LEVEL")) {
            Some(v) => match log_directives(&v) {
                Ok(d) => Some(d),
                Err(message) => {
                    problems.push(TelemetryError::Config {
                        name: "VIGIL_LOG_LEVEL",
                        message,
                    });
                    None
                }
            },
            None => None,
        };

        let metrics = match get("VIGIL_METRICS") {
            Some(v) => match v.parse() {
                Ok(m) => Some(m),
                Err(message) => {
                    problems.push(TelemetryError::Config {
                        name: "VIGIL_METRICS",
                        message,
                    });
                    None
                }
            },
            None => None,
        };

        let namespace = match get("VIGIL_METRICS_NAMESPACE") {
            Some(ns) if ns.len() <= 255 && ns.is_ascii() && !ns.starts_with("AWS/") => ns,
            Some(ns) => {
                problems.push(TelemetryError::Config {
                    name: "VIGIL_METRICS_NAMESPACE",
                    message: format!("{ns:?} is not a usable namespace"),
                });
                metrics::NAMESPACE.to_string()
            }
            None => metrics::NAMESPACE.to_string(),
        };

        let by_account = match get("VIGIL_METRICS_BY_ACCOUNT")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                problems.push(TelemetryError::Config {
                    name: "VIGIL_METRICS_BY_ACCOUNT",
                    message: format!("expected true or false, got {other:?}"),
                });
                true
            }
        };

        let export = export_settings(&get, &mut problems);

        (
            TelemetryConfig {
                function_name: function.unwrap_or_else(|| service.clone()),
                service,
                function_version: get("AWS_LAMBDA_FUNCTION_VERSION"),
                region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
                log_level,
                metrics,
                namespace,
                by_account,
                export,
            },
            problems,
        )
    }
}

/// A level name (`info`, AWS's `FATAL`, ...) as a filter directive, or
/// `tracing` directives as they are (`info,vigil=debug`).
fn log_directives(v: &str) -> Result<String, String> {
    let lower = v.to_ascii_lowercase();
    let directive = match lower.as_str() {
        "fatal" | "critical" => "error".to_string(),
        "warning" => "warn".to_string(),
        "trace" | "debug" | "info" | "warn" | "error" | "off" => lower,
        _ => v.to_string(),
    };
    EnvFilter::builder()
        .parse(&directive)
        .map(|_| directive)
        .map_err(|e| format!("{v:?}: {e}"))
}

/// The exporter settings, per the OpenTelemetry specification's variables.
fn export_settings(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<TelemetryError>,
) -> Option<ExportSettings> {
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return None;
    }
    let (name, endpoint) = if let Some(e) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        // The signal-specific URL is used as it is.
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", e)
    } else if let Some(e) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        // The base URL gets the signal's path.
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{}/v1/traces", e.trim_end_matches('/')),
        )
    } else {
        return None;
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        || endpoint.parse::<http::Uri>().is_err()
    {
        problems.push(TelemetryError::Config {
            name,
            message: format!("{endpoint:?} is not an http(s) URL; traces are not exported"),
        });
        return None;
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(p) = get(name) {
            if p != "http/protobuf" {
                problems.push(TelemetryError::Config {
                    name: if name.contains("TRACES") {
                        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
                    } else {
                        "OTEL_EXPORTER_OTLP_PROTOCOL"
                    },
                    message: format!("{p:?} is not supported; using http/protobuf"),
                });
            }
            break;
        }
    }
    let mut headers = HashMap::new();
    if let Some(h) =
        get("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| get("OTEL_EXPORTER_OTLP_HEADERS"))
    {
        for pair in h.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    headers.insert(k.trim().to_string(), percent_decode(v.trim()));
                }
                _ => problems.push(TelemetryError::Config {
                    name: "OTEL_EXPORTER_OTLP_HEADERS",
                    // Never echo the value: it is usually an API key.
                    message: "expected key=value pairs separated by commas".into(),
                }),
            }
        }
    }
    let timeout = match get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| get("OTEL_EXPORTER_OTLP_TIMEOUT"))
    {
        Some(ms) => match ms.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                problems.push(TelemetryError::Config {
                    name: "OTEL_EXPORTER_OTLP_TIMEOUT",
                    message: format!("{ms:?} is not a positive number of milliseconds"),
                });
                DEFAULT_EXPORT_TIMEOUT
            }
        },
        None => DEFAULT_EXPORT_TIMEOUT,
    };
    Some(ExportSettings {
        endpoint,
        headers,
        timeout,
    })
}

/// `%XX` decoding for header values, as the specification asks.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// How the process runs, which decides the defaults.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// The service name when neither `OTEL_SERVICE_NAME` nor
    /// `AWS_LAMBDA_FUNCTION_NAME` is set.
    pub default_service: String,
    /// Where log lines go.
    pub logs: Output,
    /// Where EMF lines go.
    pub emf: Output,
    /// The log level when none is configured.
    pub default_log_level: LevelFilter,
    /// The metrics sink when `VIGIL_METRICS` is not set.
    pub default_metrics: MetricsMode,
    /// Whether this is a Lambda function (the `cloud.platform` resource).
    pub lambda: bool,
}

impl TelemetryOptions {
    /// A Lambda function: logs and EMF on stdout, info, EMF metrics.
    pub fn lambda(function: &str) -> TelemetryOptions {
        TelemetryOptions {
            default_service: function.to_string(),
            logs: Output::Stdout,
            emf: Output::Stdout,
            default_log_level: LevelFilter::INFO,
            default_metrics: MetricsMode::Emf,
            lambda: true,
        }
    }

    /// The CLI: stdout is for its human output, so logs (and EMF, when asked
    /// for) go to stderr; warn; no metrics unless `VIGIL_METRICS` says so.
    pub fn cli() -> TelemetryOptions {
        TelemetryOptions {
            default_service: "vigil-cli".to_string(),
            logs: Output::Stderr,
            emf: Output::Stderr,
            default_log_level: LevelFilter::WARN,
            default_metrics: MetricsMode::Off,
            lambda: false,
        }
    }
}

struct Inner {
    config: TelemetryConfig,
    recorder: Recorder,
    metrics: Arc<dyn MetricsSink>,
    tracing: traces::Tracing,
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
        let mut resource = Resource::builder()
            .with_service_name(config.service.clone())
            .with_attribute(KeyValue::new("cloud.provider", "aws"));
        if options.lambda {
            resource = resource
                .with_attribute(KeyValue::new("cloud.platform", "aws_lambda"))
                .with_attribute(KeyValue::new("faas.name", config.function_name.clone()));
        }
        if let Some(r) = &config.region {
            resource = resource.with_attribute(KeyValue::new("cloud.region", r.clone()));
        }
        if let Some(v) = &config.function_version {
            resource = resource.with_attribute(KeyValue::new("faas.version", v.clone()));
        }
        let tracing = traces::build(resource.build(), config.export.as_ref())?;

        let mode = config.metrics.unwrap_or(options.default_metrics);
        let metrics: Arc<dyn MetricsSink> = match metrics {
            Some(m) => m,
            None => match mode {
                MetricsMode::Emf => {
                    Arc::new(EmfSink::new(config.namespace.clone(), options.emf.clone()))
                }
                MetricsMode::CloudWatch => Arc::new(CloudWatchSink::lazy(config.namespace.clone())),
                MetricsMode::Off => Arc::new(NoMetrics),
            },
        };

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
        let cold = Arc::new(AtomicBool::new(true));
        let log_layer = logs::JsonLogLayer::new(
            options.logs.clone(),
            &config.service,
            &config.function_name,
            cold.clone(),
        )
        .with_filter(log_filter);
        // Spans Vigil and the SDK open at info; the runtime's own invocation
        // span is left out (Vigil's invocation span replaces it, with the
        // X-Ray parent the runtime's lacks).
        let otel_filter = Targets::new()
            .with_default(LevelFilter::INFO)
            .with_target("lambda_runtime", LevelFilter::OFF)
            .with_target("lambda_runtime_api_client", LevelFilter::OFF);
        let otel_layer = tracing_opentelemetry::layer()
            .with_tracer(tracing.tracer())
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(otel_filter);
        let subscriber = tracing_subscriber::registry()
            .with(otel_layer)
            .with(log_layer);

        let recorder = Recorder {
            service: config.service.clone(),
            by_account: config.by_account,
        };
        let telemetry = Telemetry {
            inner: Arc::new(Inner {
                config,
                recorder,
                metrics,
                tracing,
                cold,
            }),
        };
        Ok((telemetry, Dispatch::new(subscriber)))
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
    /// metrics in each event's `metrics` span.
    pub fn instrument(&self, builder: PipelineBuilder) -> PipelineBuilder {
        builder
            .trace_context(Arc::new(current_trace_context))
            .observer(self.observer())
    }

    /// Records each event's failure on its span, and its metrics (in a
    /// `metrics` span) from its report or error.
    pub fn observer(&self) -> EventObserverFn {
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
    pub fn record_error(&self, kind: &str) {
        let trace = current_trace_context();
        self.inner
            .metrics
            .record(self.inner.recorder.error(kind, trace.as_ref()));
    }

    /// Starts an invocation: its span, with the FaaS and cloud attributes and
    /// the Lambda's X-Ray context as parent. Run the handler with
    /// [`Invocation::run`].
    pub fn invocation(&self, info: InvocationInfo) -> Invocation {
        let cold = self.inner.cold.swap(false, Ordering::Relaxed);
        let config = &self.inner.config;
        let function_name = info
            .function_name
            .clone()
            .unwrap_or_else(|| config.function_name.clone());
        let account = info
            .function_arn
            .split(':')
            .nth(4)
            .filter(|a| !a.is_empty());
        let span = tracing::info_span!(
            "vigil.invocation",
            otel.name = %function_name,
            otel.kind = info.trigger.span_kind(),
            otel.status_code = tracing::field::Empty,
            faas.invocation_id = %info.request_id,
            faas.name = %function_name,
            faas.coldstart = cold,
            faas.trigger = info.trigger.as_str(),
            cloud.provider = "aws",
            cloud.region = tracing::field::Empty,
            cloud.account.id = tracing::field::Empty,
            cloud.resource_id = tracing::field::Empty,
            vigil.correlation_id = tracing::field::Empty,
        );
        if let Some(r) = &config.region {
            span.record("cloud.region", r.as_str());
        }
        if let Some(a) = account {
            span.record("cloud.account.id", a);
        }
        if !info.function_arn.is_empty() {
            span.record("cloud.resource_id", info.function_arn.as_str());
        }
        if let Some(parent) = info
            .xray_trace_id
            .as_deref()
            .and_then(xray::parent_from_xray_header)
        {
            // Ignored when the span is filtered out: then there is no trace.
            let _ = span.set_parent(parent);
        }
        Invocation {
            telemetry: self.clone(),
            span,
            cold,
            request_id: info.request_id,
        }
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
        }
        if let Some(e) = &report.metrics_error {
            tracing::warn!(error = %e, "metrics flush failed");
        }
        report
    }
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlushReport {
    pub spans: usize,
    pub metric_values: usize,
    pub span_error: Option<String>,
    pub metrics_error: Option<String>,
}

/// What triggered a function (`faas.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// EventBridge, SNS, SQS.
    #[default]
    PubSub,
    Datasource,
    Http,
    Timer,
    Other,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::PubSub => "pubsub",
            Trigger::Datasource => "datasource",
            Trigger::Http => "http",
            Trigger::Timer => "timer",
            Trigger::Other => "other",
        }
    }

    fn span_kind(self) -> &'static str {
        match self {
            Trigger::PubSub => "consumer",
            Trigger::Http => "server",
            _ => "internal",
        }
    }
}

/// What the Lambda runtime tells about an invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationInfo {
    pub request_id: String,
    pub function_arn: String,
    /// None: the configured function name.
    pub function_name: Option<String>,
    /// The X-Ray trace header (`Root=...;Parent=...;Sampled=...`).
    pub xray_trace_id: Option<String>,
    pub trigger: Trigger,
}

impl InvocationInfo {
    pub fn new(context: &lambda_runtime::Context, trigger: Trigger) -> InvocationInfo {
        InvocationInfo {
            request_id: context.request_id.clone(),
            function_arn: context.invoked_function_arn.clone(),
            function_name: Some(context.env_config.function_name.clone()).filter(|n| !n.is_empty()),
            xray_trace_id: context.xray_trace_id.clone(),
            trigger,
        }
    }
}

/// One invocation's span; see [`Telemetry::invocation`].
#[derive(Debug)]
pub struct Invocation {
    telemetry: Telemetry,
    span: tracing::Span,
    cold: bool,
    request_id: String,
}

impl Invocation {
    /// The correlation id its log lines carry (an EventBridge event's `id`).
    pub fn correlation_id(self, id: &str) -> Invocation {
        self.span.record("vigil.correlation_id", id);
        self
    }

    /// Continues a trace carried by the event (the SNS message attributes
    /// `traceparent` / `AWSTraceHeader` on an alert) instead of the Lambda's
    /// X-Ray context: a notifier's spans join the alert's trace.
    pub fn continue_trace(self, parent: opentelemetry::Context) -> Invocation {
        let _ = self.span.set_parent(parent);
        self
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Runs the handler inside the invocation span, marks the span failed on
    /// error, ends it, then flushes spans and metrics before returning (the
    /// process is frozen right after). The handler's result is returned
    /// untouched.
    pub async fn run<R, E, Fut>(self, handler: Fut) -> Result<R, E>
    where
        Fut: Future<Output = Result<R, E>>,
        E: Display,
    {
        let Invocation {
            telemetry,
            span,
            cold,
            request_id,
        } = self;
        if cold {
            let _entered = span.enter();
            let trace = current_trace_context();
            telemetry.inner.metrics.record(
                telemetry
                    .inner
                    .recorder
                    .cold_start(Some(&request_id), trace.as_ref()),
            );
        }
        let result = handler.instrument(span.clone()).await;
        if let Err(e) = &result {
            span.record("otel.status_code", "ERROR");
            record_exception(&span, "invocation_error", &e.to_string());
        }
        // Ends the span, so the flush below exports it.
        drop(span);
        telemetry.flush().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> (TelemetryConfig, Vec<TelemetryError>) {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup("vigil-test", |k| map.get(k).cloned())
    }

    #[test]
    fn nothing_configured_exports_nothing_and_fails_nothing() {
        let (c, problems) = cfg(&[]);
        assert!(problems.is_empty());
        assert_eq!(c.service, "vigil-test");
        assert_eq!(c.function_name, "vigil-test");
        assert!(c.export.is_none());
        assert_eq!(c.namespace, "Vigil");
        assert!(c.by_account);
        assert_eq!(c.metrics, None);
    }

    #[test]
    fn the_standard_variables_configure_the_exporter() {
        let (c, problems) = cfg(&[
            ("OTEL_SERVICE_NAME", "vigil-guardduty"),
            ("AWS_LAMBDA_FUNCTION_NAME", "vigil-GuardDuty-abc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io/"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-honeycomb-team=abc%3D%3D, x-other = 1",
            ),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.service, "vigil-guardduty");
        assert_eq!(c.function_name, "vigil-GuardDuty-abc");
        let e = c.export.unwrap();
        assert_eq!(e.endpoint, "https://api.honeycomb.io/v1/traces");
        assert_eq!(e.headers["x-honeycomb-team"], "abc==");
        assert_eq!(e.headers["x-other"], "1");
        assert_eq!(e.timeout, DEFAULT_EXPORT_TIMEOUT);

        let (c, _) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://wrong"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318/custom",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "250"),
        ]);
        let e = c.export.unwrap();
        assert_eq!(e.endpoint, "http://127.0.0.1:4318/custom");
        assert_eq!(e.timeout, Duration::from_millis(250));

        let (c, _) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert!(c.export.is_none());
    }

    #[test]
    fn malformed_values_are_reported_and_replaced_by_defaults() {
        let (c, problems) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "api.honeycomb.io"),
            ("VIGIL_LOG_LEVEL", "loud=="),
            ("VIGIL_METRICS", "statsd"),
            ("VIGIL_METRICS_BY_ACCOUNT", "maybe"),
        ]);
        assert!(c.export.is_none());
        assert_eq!(c.log_level, None);
        assert_eq!(c.metrics, None);
        assert!(c.by_account);
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn log_levels_accept_aws_names_and_directives() {
        assert_eq!(
            cfg(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")])
                .0
                .log_level
                .as_deref(),
            Some("error")
        );
        assert_eq!(
            cfg(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")])
                .0
                .log_level
                .as_deref(),
            Some("warn")
        );
        assert_eq!(
            cfg(&[
                ("VIGIL_LOG_LEVEL", "debug"),
                ("AWS_LAMBDA_LOG_LEVEL", "ERROR")
            ])
            .0
            .log_level
            .as_deref(),
            Some("debug")
        );
        assert_eq!(
            cfg(&[("VIGIL_LOG_LEVEL", "info,vigil=debug")])
                .0
                .log_level
                .as_deref(),
            Some("info,vigil=debug")
        );
    }

    #[test]
    fn percent_decoding_leaves_malformed_escapes_alone() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

//! The OpenTelemetry side: a tracer provider with the X-Ray id generator, an
//! OTLP/HTTP protobuf exporter configured by the standard `OTEL_*` variables,
//! and a span buffer flushed at the end of every invocation.
//!
//! The SDK reads the variables it knows itself: the sampler
//! (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`) when the tracer
//! provider is built, the endpoint, headers, protocol and compression when
//! the exporter is. Vigil adds the HTTP client (rustls, or none for a local
//! collector), the timeout and the buffer.
//!
//! Why not the SDK's batch processor: Lambda freezes the process as soon as an
//! invocation returns, so spans must be exported *before* that, on the
//! invocation's own task, with a deadline. The buffer below keeps ended spans
//! in memory and `SpanFlush::flush` exports them in one request, bounded by
//! the export timeout; a failure is reported to the caller (which logs it),
//! never propagated into the invocation's result.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{Status, TraceContextExt, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{xray, TelemetryError};
use crate::model::TraceContext;

/// At most this many ended spans wait for a flush; more are dropped (and
/// counted) rather than growing memory when the exporter is down.
pub(crate) const MAX_BUFFERED_SPANS: usize = 8192;

/// What Vigil decides about exporting, beside what the exporter reads from
/// the standard variables itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// A full traces URL given in code: it wins over the variables, as the
    /// exporter's own `with_endpoint` does (tests and benchmarks point it at
    /// a receiver of theirs). None: the exporter resolves
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
    pub endpoint: Option<String>,
    /// Whether the endpoint is https (a TLS connector is built only then).
    pub tls: bool,
    pub timeout: Duration,
}

impl ExportSettings {
    /// Export to `traces_url` (used as is), with the default timeout.
    pub fn to(traces_url: &str) -> ExportSettings {
        ExportSettings {
            endpoint: Some(traces_url.to_string()),
            tls: traces_url.starts_with("https://"),
            timeout: super::DEFAULT_EXPORT_TIMEOUT,
        }
    }
}

/// Which sampler decides what is recorded and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// `OTEL_TRACES_SAMPLER` unset: every span, whatever the parent's
    /// sampled flag (security events are few and each matters). The
    /// OpenTelemetry default, `parentbased_always_on`, would drop every
    /// invocation Lambda's X-Ray sampling passed over.
    All,
    /// `OTEL_TRACES_SAMPLER` set: the SDK's sampler, which reads it and
    /// `OTEL_TRACES_SAMPLER_ARG` itself (`always_on`, `always_off`,
    /// `traceidratio`, `parentbased_*`).
    FromEnvironment,
}

/// Exports what the buffer holds.
pub(crate) trait SpanFlush: Send + Sync {
    /// Exports the buffered spans; returns how many were sent.
    fn flush(&self) -> Pin<Box<dyn Future<Output = Result<usize, TelemetryError>> + Send + '_>>;
}

/// Ended spans waiting for the next flush.
#[derive(Debug, Default, Clone)]
struct SharedSpans {
    spans: Arc<Mutex<Vec<SpanData>>>,
    dropped: Arc<AtomicU64>,
}

/// The span processor: keeps sampled spans for [`BufferedExporter`].
#[derive(Debug)]
struct SpanBuffer {
    shared: SharedSpans,
}

impl SpanProcessor for SpanBuffer {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let mut spans = self
            .shared
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if spans.len() < MAX_BUFFERED_SPANS {
            spans.push(span);
        } else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Flushing is asynchronous and driven by the invocation wrapper.
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The OTLP exporter behind the buffer.
struct BufferedExporter {
    shared: SharedSpans,
    /// The exporter must not be called concurrently.
    exporter: tokio::sync::Mutex<opentelemetry_otlp::SpanExporter>,
    timeout: Duration,
}

impl SpanFlush for BufferedExporter {
    fn flush(&self) -> Pin<Box<dyn Future<Output = Result<usize, TelemetryError>> + Send + '_>> {
        Box::pin(async move {
            let batch = std::mem::take(
                &mut *self
                    .shared
                    .spans
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            if batch.is_empty() {
                return Ok(0);
            }
            let n = batch.len();
            // The client has the same timeout; this one also bounds waiting
            // for the exporter lock and connection set-up.
            let limit = self.timeout + Duration::from_millis(100);
            let exported = tokio::time::timeout(limit, async {
                let exporter = self.exporter.lock().await;
                exporter.export(batch).await
            })
            .await;
            match exported {
                Ok(Ok(())) => Ok(n),
                Ok(Err(e)) => Err(TelemetryError::Export(e.to_string())),
                Err(_) => Err(TelemetryError::Export(format!(
                    "timed out after {limit:?}, {n} spans lost"
                ))),
            }
        })
    }
}

/// The tracer provider and, when exporting, its flush handle.
pub(crate) struct Tracing {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) flush: Option<Arc<dyn SpanFlush>>,
}

/// Builds the provider. Without `export` spans are still created (their ids
/// go into logs, metrics and alerts) but nothing is buffered or sent. An
/// exporter that cannot be built (a malformed endpoint) is returned as a
/// problem beside a provider that does not export: telemetry never stops a
/// function.
pub(crate) fn build(
    resource: Resource,
    export: Option<&ExportSettings>,
    sampling: Sampling,
) -> (Tracing, Option<TelemetryError>) {
    let mut problem = None;
    let exporter = export.and_then(|settings| match exporter(settings) {
        Ok(mut e) => {
            e.set_resource(&resource);
            Some((e, settings.timeout))
        }
        Err(e) => {
            problem = Some(e);
            None
        }
    });
    // `builder()` starts from the SDK's configuration, which has read
    // `OTEL_TRACES_SAMPLER` / `_ARG` (and the span limits) already.
    let mut builder = SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_resource(resource);
    match (&exporter, sampling) {
        // Not exporting, spans still get their ids (for logs, metrics and
        // alerts) but are not recorded, which halves what they cost; their
        // propagated headers then say `Sampled=0`, truthfully.
        (None, _) => builder = builder.with_sampler(Sampler::AlwaysOff),
        (Some(_), Sampling::All) => builder = builder.with_sampler(Sampler::AlwaysOn),
        (Some(_), Sampling::FromEnvironment) => {}
    }
    let mut flush: Option<Arc<dyn SpanFlush>> = None;
    if let Some((exporter, timeout)) = exporter {
        let shared = SharedSpans::default();
        builder = builder.with_span_processor(SpanBuffer {
            shared: shared.clone(),
        });
        flush = Some(Arc::new(BufferedExporter {
            shared,
            exporter: tokio::sync::Mutex::new(exporter),
            timeout,
        }));
    }
    let tracing = Tracing {
        provider: builder.build(),
        flush,
    };
    (tracing, problem)
}

impl Tracing {
    pub(crate) fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("vigil")
    }
}

/// The OTLP/HTTP exporter. Endpoint, headers, protocol and compression are
/// left to the builder, which reads the standard variables; only the HTTP
/// client, its timeout and the retry policy are Vigil's.
fn exporter(settings: &ExportSettings) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_timeout(settings.timeout)
        // One attempt: the invocation is waiting, and the next one exports again.
        .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled());
    if let Some(url) = &settings.endpoint {
        builder = builder.with_endpoint(url.clone());
    }
    let builder = if settings.tls {
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| TelemetryError::Exporter(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        builder.with_http_client(opentelemetry_http::hyper::HyperClient::new(
            tls,
            settings.timeout,
            None,
        ))
    } else {
        // A collector beside the function (the ADOT layer on localhost:4318)
        // needs no TLS, and skipping it saves loading the root certificates.
        builder.with_http_client(
            opentelemetry_http::hyper::HyperClient::with_default_connector(settings.timeout, None),
        )
    };
    builder
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))
}

/// The trace context of the current span, as the pipeline passes it on
/// (finding ids, trace link, SNS message attributes). Starts the span's
/// OpenTelemetry context if needed; `None` without the OpenTelemetry layer.
pub fn current_trace_context() -> Option<TraceContext> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    xray::trace_context(span.span_context())
}

/// Marks `span` failed: error status, plus an `exception` event with the
/// semantic-convention attributes, so a backend shows why.
pub fn record_exception(span: &tracing::Span, kind: &str, message: &str) {
    span.set_status(Status::error(message.to_string()));
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", kind.to_string()),
            KeyValue::new("exception.message", message.to_string()),
        ],
    );
}

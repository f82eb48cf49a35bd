//! The OpenTelemetry side: a tracer provider with the X-Ray id generator, an
//! OTLP/HTTP protobuf exporter configured by the standard `OTEL_*` variables,
//! and a span buffer flushed at the end of every invocation.
//!
//! Why not the SDK's batch processor: Lambda freezes the process as soon as an
//! invocation returns, so spans must be exported *before* that, on the
//! invocation's own task, with a deadline. The buffer below keeps ended spans
//! in memory and `SpanFlush::flush` exports them in one request, bounded by
//! the export timeout; a failure is reported to the caller (which logs it),
//! never propagated into the invocation's result.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{Status, TraceContextExt, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
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

/// Where and how spans are exported, from the standard variables.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// The full traces URL (`.../v1/traces`).
    pub endpoint: String,
    pub headers: HashMap<String, String>,
    pub timeout: Duration,
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
/// go into logs, metrics and alerts) but nothing is buffered or sent.
pub(crate) fn build(
    resource: Resource,
    export: Option<&ExportSettings>,
) -> Result<Tracing, TelemetryError> {
    // Exporting, every event is recorded: security events are few and each
    // matters; the X-Ray parent's sampling decision does not drop Vigil's
    // spans. Not exporting, spans still get their ids (for logs, metrics and
    // alerts) but are not recorded, which halves what they cost; their
    // propagated headers then say `Sampled=0`, truthfully.
    let sampler = if export.is_some() {
        Sampler::AlwaysOn
    } else {
        Sampler::AlwaysOff
    };
    let mut builder = SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_sampler(sampler)
        .with_resource(resource.clone());
    let mut flush: Option<Arc<dyn SpanFlush>> = None;
    if let Some(settings) = export {
        let mut exporter = exporter(settings)?;
        exporter.set_resource(&resource);
        let shared = SharedSpans::default();
        builder = builder.with_span_processor(SpanBuffer {
            shared: shared.clone(),
        });
        flush = Some(Arc::new(BufferedExporter {
            shared,
            exporter: tokio::sync::Mutex::new(exporter),
            timeout: settings.timeout,
        }));
    }
    Ok(Tracing {
        provider: builder.build(),
        flush,
    })
}

impl Tracing {
    pub(crate) fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("vigil")
    }
}

fn exporter(settings: &ExportSettings) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(settings.timeout)
        .with_headers(settings.headers.clone())
        // One attempt: the invocation is waiting, and the next one exports again.
        .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled());
    let builder = if settings.endpoint.starts_with("https://") {
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

//! JSON log lines with the keys Powertools for AWS Lambda made standard
//! (its Logger's standard keys and those `inject_lambda_context` adds), plus
//! the OpenTelemetry ids, so one CloudWatch Logs Insights query by `trace_id`
//! finds everything Vigil logged about an event.
//!
//! A small custom layer rather than `tracing-subscriber`'s JSON formatter: the
//! formatter can neither rename its keys (`fields`, `target`, `span`) nor add
//! the trace ids and the invocation's context to every line.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::TraceContextExt;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, Scope};
use tracing_subscriber::Layer;

use super::{jsonw, TelemetryConfig};

/// The keys every line carries, in this order (null when unknown):
/// Powertools' `level`, `message`, `timestamp`, `service`, `xray_trace_id`
/// (the invocation's own X-Ray root from `_X_AMZN_TRACE_ID`), `cold_start`,
/// `function_name`, `function_arn` (the invoked ARN), `function_memory_size`
/// (MB, a number), `function_request_id`, `correlation_id`; and the current
/// span's OpenTelemetry `trace_id`, `span_id` and `trace_flags` (W3C hex:
/// `01` sampled, `00` not), named as the OpenTelemetry log data model names
/// them.
pub const LOG_KEYS: [&str; 14] = [
    "level",
    "message",
    "timestamp",
    "service",
    "trace_id",
    "span_id",
    "trace_flags",
    "xray_trace_id",
    "cold_start",
    "function_name",
    "function_arn",
    "function_memory_size",
    "function_request_id",
    "correlation_id",
];

/// Where log lines (and EMF lines) go.
#[derive(Clone, Debug, Default)]
pub enum Output {
    /// Lambda's log stream (and CloudWatch's EMF parser) read stdout.
    #[default]
    Stdout,
    /// The CLI keeps stdout for its human output.
    Stderr,
    /// Lines kept in memory, for tests and benchmarks.
    Capture(Capture),
    /// Lines dropped.
    Discard,
}

impl Output {
    /// Writes one line, atomically with respect to other lines of this process
    /// (one `write_all` under the stream's lock), so log and EMF lines never
    /// interleave. Write errors are ignored: logging must not fail an event.
    pub(crate) fn write_line(&self, line: &str) {
        match self {
            Output::Stdout | Output::Stderr => {
                let mut buf = String::with_capacity(line.len() + 1);
                buf.push_str(line);
                buf.push('\n');
                let _ = match self {
                    Output::Stdout => std::io::stdout().lock().write_all(buf.as_bytes()),
                    _ => std::io::stderr().lock().write_all(buf.as_bytes()),
                };
            }
            Output::Capture(c) => c.push(line.to_string()),
            Output::Discard => {}
        }
    }
}

/// Captured lines, shared between the writer and the test reading them.
#[derive(Clone, Debug, Default)]
pub struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    pub fn new() -> Capture {
        Capture::default()
    }

    fn push(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every line so far, parsed; lines that are not JSON are skipped.
    pub fn json(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Removes and returns the lines so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Span fields the log layer lifts onto every line logged inside the span.
/// The invocation span sets all but the event id, which `vigil.event` sets
/// (and an SQS message's span, the correlation id).
#[derive(Debug, Default, Clone)]
struct Lifted {
    request_id: Option<String>,
    cold_start: Option<bool>,
    correlation_id: Option<String>,
    event_id: Option<String>,
    function_arn: Option<String>,
    xray_trace_id: Option<String>,
}

impl Visit for Lifted {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "faas.invocation_id" | "requestId" => &mut self.request_id,
            "vigil.correlation_id" => &mut self.correlation_id,
            "vigil.event_id" => &mut self.event_id,
            "aws.lambda.invoked_arn" => &mut self.function_arn,
            "vigil.xray_trace_id" => &mut self.xray_trace_id,
            _ => return,
        };
        *slot = Some(value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "faas.coldstart" {
            self.cold_start = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here: keep strings without Debug quotes.
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.record_str(field, &s);
    }
}

/// Whether a span field is one the layer lifts (a cheap check before
/// allocating an extension for every span).
fn is_lifted(name: &str) -> bool {
    matches!(
        name,
        "faas.invocation_id"
            | "requestId"
            | "vigil.correlation_id"
            | "vigil.event_id"
            | "faas.coldstart"
            | "aws.lambda.invoked_arn"
            | "vigil.xray_trace_id"
    )
}

/// The JSON log layer.
pub(crate) struct JsonLogLayer {
    output: Output,
    service: Arc<str>,
    function_name: Arc<str>,
    /// `function_memory_size`: the same for every invocation of a process.
    memory_mb: Option<u64>,
    /// True until the first invocation starts: lines logged outside any
    /// invocation during start-up belong to the cold start.
    cold: Arc<AtomicBool>,
}

impl JsonLogLayer {
    pub(crate) fn new(
        output: Output,
        config: &TelemetryConfig,
        cold: Arc<AtomicBool>,
    ) -> JsonLogLayer {
        JsonLogLayer {
            output,
            service: config.service.as_str().into(),
            function_name: config.function_name.as_str().into(),
            memory_mb: config.function_memory_mb,
            cold,
        }
    }
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !attrs.fields().iter().any(|f| is_lifted(f.name())) {
            return;
        }
        let mut lifted = Lifted::default();
        attrs.record(&mut lifted);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(lifted);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(lifted) = ext.get_mut::<Lifted>() {
            values.record(lifted);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let lifted = Lifted::from_scope(ctx.event_scope(event));
        let ids = SpanIds::current();
        let line = self.render(
            level_name(*event.metadata().level()),
            &fields,
            &lifted,
            &ids,
        );
        self.output.write_line(&line);
    }
}

impl Lifted {
    /// The lifted fields of the spans around an event, innermost first: each
    /// from the nearest span that has it (the event id stands in for a
    /// missing correlation id).
    fn from_scope<'a, S: LookupSpan<'a>>(scope: Option<Scope<'a, S>>) -> Lifted {
        let mut ctx_fields = Lifted::default();
        for span in scope.into_iter().flatten() {
            let ext = span.extensions();
            let Some(l) = ext.get::<Lifted>() else {
                continue;
            };
            if ctx_fields.request_id.is_none() {
                ctx_fields.request_id.clone_from(&l.request_id);
            }
            if ctx_fields.cold_start.is_none() {
                ctx_fields.cold_start = l.cold_start;
            }
            if ctx_fields.function_arn.is_none() {
                ctx_fields.function_arn.clone_from(&l.function_arn);
            }
            if ctx_fields.xray_trace_id.is_none() {
                ctx_fields.xray_trace_id.clone_from(&l.xray_trace_id);
            }
            if ctx_fields.correlation_id.is_none() {
                ctx_fields.correlation_id = l.correlation_id.clone().or(l.event_id.clone());
            }
        }
        ctx_fields
    }
}

/// The OpenTelemetry ids a line carries, when a span is current.
#[derive(Default)]
struct SpanIds {
    trace_id: Option<String>,
    span_id: Option<String>,
    trace_flags: Option<String>,
}

impl SpanIds {
    /// The ids of the innermost entered span: the OpenTelemetry layer
    /// activates each span's context on entry.
    fn current() -> SpanIds {
        let otel = opentelemetry::Context::current();
        let span = otel.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return SpanIds::default();
        }
        SpanIds {
            trace_id: Some(format!("{:032x}", sc.trace_id())),
            span_id: Some(format!("{:016x}", sc.span_id())),
            trace_flags: Some(format!("{:02x}", sc.trace_flags().to_u8())),
        }
    }
}

fn level_name(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::ERROR => "ERROR",
        tracing::Level::WARN => "WARN",
        tracing::Level::INFO => "INFO",
        tracing::Level::DEBUG => "DEBUG",
        tracing::Level::TRACE => "TRACE",
    }
}

impl JsonLogLayer {
    /// One log line: the [`LOG_KEYS`] in order, then the event's other fields
    /// (a field named like one of the keys gets a `field_` prefix).
    fn render(&self, level: &str, fields: &EventFields, lifted: &Lifted, ids: &SpanIds) -> String {
        let cold_start = lifted
            .cold_start
            .unwrap_or_else(|| self.cold.load(Ordering::Relaxed));
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

        let mut line = String::with_capacity(512);
        line.push('{');
        let str_or_null = |line: &mut String, v: Option<&str>| match v {
            Some(v) => jsonw::push_str(line, v),
            None => line.push_str("null"),
        };
        jsonw::push_key(&mut line, "level");
        jsonw::push_str(&mut line, level);
        jsonw::push_key(&mut line, "message");
        jsonw::push_str(&mut line, fields.message.as_deref().unwrap_or_default());
        jsonw::push_key(&mut line, "timestamp");
        jsonw::push_str(&mut line, &timestamp);
        jsonw::push_key(&mut line, "service");
        jsonw::push_str(&mut line, &self.service);
        jsonw::push_key(&mut line, "trace_id");
        str_or_null(&mut line, ids.trace_id.as_deref());
        jsonw::push_key(&mut line, "span_id");
        str_or_null(&mut line, ids.span_id.as_deref());
        jsonw::push_key(&mut line, "trace_flags");
        str_or_null(&mut line, ids.trace_flags.as_deref());
        jsonw::push_key(&mut line, "xray_trace_id");
        str_or_null(&mut line, lifted.xray_trace_id.as_deref());
        jsonw::push_key(&mut line, "cold_start");
        line.push_str(if cold_start { "true" } else { "false" });
        jsonw::push_key(&mut line, "function_name");
        jsonw::push_str(&mut line, &self.function_name);
        jsonw::push_key(&mut line, "function_arn");
        str_or_null(&mut line, lifted.function_arn.as_deref());
        jsonw::push_key(&mut line, "function_memory_size");
        match self.memory_mb {
            Some(mb) => line.push_str(&mb.to_string()),
            None => line.push_str("null"),
        }
        jsonw::push_key(&mut line, "function_request_id");
        str_or_null(&mut line, lifted.request_id.as_deref());
        jsonw::push_key(&mut line, "correlation_id");
        str_or_null(&mut line, lifted.correlation_id.as_deref());
        for (key, value) in &fields.extra {
            if LOG_KEYS.contains(&key.as_str()) {
                jsonw::push_key(&mut line, &format!("field_{key}"));
            } else {
                jsonw::push_key(&mut line, key);
            }
            jsonw::push_value(&mut line, value);
        }
        line.push('}');
        line
    }
}

/// An event's fields: the message, and the rest with `vigil.` stripped so the
/// finding summary line reads `finding_id`, `severity`, `decision`, ...
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    extra: Vec<(String, Value)>,
}

impl EventFields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
            return;
        }
        // `log` crate records bridged through tracing-log.
        if name.starts_with("log.") {
            return;
        }
        let key = name.strip_prefix("vigil.").unwrap_or(name);
        self.extra.push((key.to_string(), value));
    }
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        let v = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, v);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, Value::from(s));
    }
}

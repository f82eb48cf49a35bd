//! X-Ray and W3C trace ids: the small conversions Vigil needs to put one trace
//! id on a span, a log line, an EMF line and an SNS alert.
//!
//! The X-Ray id generator and propagator themselves come from
//! `opentelemetry-aws` (it pins the same `opentelemetry` 0.33 as the rest of
//! the stack); this module only formats and parses the strings around them.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::model::{TraceContext, TraceIds};

/// The X-Ray form of an OpenTelemetry trace id: `1-` + the first 8 hex digits
/// (epoch seconds when the X-Ray id generator made it) + `-` + the other 24.
pub fn xray_trace_id(trace_id: TraceId) -> String {
    let hex = format!("{trace_id:032x}");
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

/// The OpenTelemetry trace id of an X-Ray trace id (`1-5759e988-bd86...`).
pub(crate) fn trace_id_from_xray(xray: &str) -> Option<TraceId> {
    let mut parts = xray.split('-');
    let (Some("1"), Some(time), Some(rest), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if time.len() != 8 || rest.len() != 24 {
        return None;
    }
    let id = TraceId::from_hex(&format!("{time}{rest}")).ok()?;
    (id != TraceId::INVALID).then_some(id)
}

/// The epoch seconds an X-Ray compatible trace id starts with.
#[cfg(test)]
pub(crate) fn trace_id_epoch_seconds(trace_id: TraceId) -> u64 {
    let hex = format!("{trace_id:032x}");
    u64::from_str_radix(&hex[..8], 16).unwrap_or(0)
}

/// The `Root` of an X-Ray trace header (`Root=1-...;Parent=...;Sampled=1`),
/// as Powertools logs it under `xray_trace_id`.
pub(crate) fn root_of_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(k, _)| *k == "Root")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The invocation's own X-Ray trace id, as Powertools logs it under
/// `xray_trace_id`: the `Root` of `_X_AMZN_TRACE_ID`. Only a well-formed id
/// is returned (the header's content reaches Lambda from its caller).
pub fn lambda_root(header: &str) -> Option<&str> {
    root_of_header(header).filter(|root| trace_id_from_xray(root).is_some())
}

/// The parent a Lambda invocation's spans continue: the X-Ray context in
/// `_X_AMZN_TRACE_ID` / `Context::xray_trace_id`, with the header's own
/// sampling decision (`Sampled=1`), so a `parentbased_*` sampler follows
/// X-Ray's. A header with a `Root` but no `Parent` still keeps the trace id,
/// with a synthetic parent span id, so logs, alerts and X-Ray agree on the
/// trace.
pub(crate) fn parent_from_xray_header(header: &str) -> Option<opentelemetry::Context> {
    let trace_id = trace_id_from_xray(root_of_header(header)?)?;
    let field = |name: &str| {
        header
            .split(';')
            .filter_map(|part| part.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let parent = field("Parent")
        .and_then(|v| SpanId::from_hex(v).ok())
        .filter(|id| *id != SpanId::INVALID)
        .unwrap_or_else(|| {
            SpanId::from_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or([1; 8]))
        });
    let flags = if field("Sampled") == Some("1") {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let sc = SpanContext::new(trace_id, parent, flags, true, TraceState::default());
    Some(opentelemetry::Context::new().with_remote_span_context(sc))
}

/// The producer's span context in an X-Ray trace header (an SQS message's
/// `AWSTraceHeader` system attribute), read by the X-Ray propagator, for a
/// span link. None when the header is malformed.
pub fn span_context_from_header(header: &str) -> Option<SpanContext> {
    let carrier = One {
        key: "x-amzn-trace-id",
        value: header.to_string(),
    };
    let cx = XrayPropagator::default().extract(&carrier);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// A one-header carrier for the propagators.
struct One {
    key: &'static str,
    value: String,
}

impl Extractor for One {
    fn get(&self, key: &str) -> Option<&str> {
        (key == self.key).then_some(self.value.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        vec![self.key]
    }
}

/// The parent carried by message attributes (or any key/value carrier): W3C
/// `traceparent` first, then X-Ray `AWSTraceHeader`. This is how a function
/// fed by Vigil's SNS topic (the notifier) continues the trace of the alert.
pub fn parent_from_carrier<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Option<opentelemetry::Context> {
    if let Some(tp) = get("traceparent").or_else(|| get("Traceparent")) {
        let carrier = One {
            key: "traceparent",
            value: tp.to_string(),
        };
        let cx = TraceContextPropagator::new().extract(&carrier);
        if cx.span().span_context().is_valid() {
            return Some(cx);
        }
    }
    let header = get("AWSTraceHeader")
        .or_else(|| get("X-Amzn-Trace-Id"))
        .or_else(|| get("x-amzn-trace-id"))?;
    let carrier = One {
        key: "x-amzn-trace-id",
        value: header.to_string(),
    };
    let cx = XrayPropagator::default().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// The W3C `traceparent` header for a span context.
pub fn traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{:032x}-{:016x}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8() & 0x01
    )
}

/// The X-Ray `AWSTraceHeader` for a span context:
/// `Root=1-xxxxxxxx-yyyy...;Parent=<span id>;Sampled=0|1`.
pub fn aws_trace_header(sc: &SpanContext) -> String {
    format!(
        "Root={};Parent={:016x};Sampled={}",
        xray_trace_id(sc.trace_id()),
        sc.span_id(),
        u8::from(sc.is_sampled())
    )
}

/// Everything Vigil passes on about a span: the ids for the finding and the
/// two headers for the SNS message attributes. `None` for an invalid context
/// (no OpenTelemetry layer, or a span that is filtered out).
pub fn trace_context(sc: &SpanContext) -> Option<TraceContext> {
    if !sc.is_valid() {
        return None;
    }
    Some(TraceContext {
        ids: TraceIds {
            trace_id: format!("{:032x}", sc.trace_id()),
            xray_trace_id: xray_trace_id(sc.trace_id()),
        },
        traceparent: traceparent(sc),
        aws_trace_header: aws_trace_header(sc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn converts_between_w3c_and_xray_forms() {
        let id = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap();
        assert_eq!(xray_trace_id(id), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(
            trace_id_from_xray("1-5759e988-bd862e3fe1be46a994272793"),
            Some(id)
        );
        assert_eq!(trace_id_epoch_seconds(id), 0x5759e988);
        assert_eq!(
            trace_id_from_xray("2-5759e988-bd862e3fe1be46a994272793"),
            None
        );
        assert_eq!(trace_id_from_xray("1-5759e988-bd86"), None);
        assert_eq!(
            trace_id_from_xray("1-zzzzzzzz-bd862e3fe1be46a994272793"),
            None
        );
    }

    #[test]
    fn reads_the_lambda_header_and_its_sampling_decision() {
        let h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=0;Lineage=a87bd80c:1|68fd508a:5";
        assert_eq!(
            root_of_header(h),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(lambda_root(h), Some("1-5759e988-bd862e3fe1be46a994272793"));
        assert_eq!(lambda_root("Root=1-zz;Parent=557abcec3ee5a047"), None);
        assert_eq!(lambda_root("Root=\"><script>"), None);
        let cx = parent_from_xray_header(h).unwrap();
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_remote() && !sc.is_sampled());
        let sampled = parent_from_xray_header(&h.replace("Sampled=0", "Sampled=1")).unwrap();
        assert!(sampled.span().span_context().is_sampled());
        assert_eq!(format!("{:016x}", sc.span_id()), "557abcec3ee5a047");
        assert_eq!(
            xray_trace_id(sc.trace_id()),
            "1-5759e988-bd862e3fe1be46a994272793"
        );
        // No Parent: the trace id is kept.
        let cx = parent_from_xray_header("Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert!(cx.span().span_context().is_valid());
        assert!(parent_from_xray_header("Parent=557abcec3ee5a047").is_none());
        assert!(parent_from_xray_header("garbage").is_none());
    }

    #[test]
    fn producer_contexts_come_from_aws_trace_headers() {
        let sc = span_context_from_header(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=1",
        )
        .unwrap();
        assert_eq!(
            format!("{:032x}", sc.trace_id()),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(format!("{:016x}", sc.span_id()), "557abcec3ee5a047");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "Root=1-5759e988-bd86",
            "Parent=557abcec3ee5a047",
            "\u{0}",
        ] {
            assert!(span_context_from_header(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn headers_round_trip_through_a_carrier() {
        let id = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap();
        let sc = SpanContext::new(
            id,
            SpanId::from_hex("557abcec3ee5a047").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let tc = trace_context(&sc).unwrap();
        assert_eq!(
            tc.traceparent,
            "00-5759e988bd862e3fe1be46a994272793-557abcec3ee5a047-01"
        );
        assert_eq!(
            tc.aws_trace_header,
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=1"
        );
        for key in ["traceparent", "AWSTraceHeader"] {
            let value = if key == "traceparent" {
                tc.traceparent.clone()
            } else {
                tc.aws_trace_header.clone()
            };
            let carrier: HashMap<&str, String> = HashMap::from([(key, value)]);
            let cx = parent_from_carrier(|k| carrier.get(k).map(String::as_str)).unwrap();
            let span = cx.span();
            assert_eq!(span.span_context().trace_id(), id, "{key}");
            assert_eq!(span.span_context().span_id(), sc.span_id(), "{key}");
        }
        assert!(parent_from_carrier(|_| None).is_none());
        assert!(parent_from_carrier(|k| (k == "traceparent").then_some("00-bad")).is_none());
    }
}

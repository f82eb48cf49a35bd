//! The trace an alert carries, so the notifier's span continues the trace of
//! the function that raised the alert.
//!
//! The SNS sink puts the sending span's context on the message as two
//! attributes: `traceparent` (W3C) and `AWSTraceHeader` (X-Ray form). Lambda
//! hands them to the notifier in the SNS record's `MessageAttributes`.

use aws_lambda_events::sns::SnsRecord;

/// The W3C `traceparent` the alert was sent under, for telemetry to use as the
/// parent of the notifier's span.
///
/// Taken from the `traceparent` attribute when it is well formed, else built
/// from `AWSTraceHeader` (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=1`
/// → `00-5759e988bd862e3fe1be46a994272793-557abcec3ee5a047-01`). `None` when
/// neither is present or valid: a malformed header must not become a parent.
pub fn trace_parent(record: &SnsRecord) -> Option<String> {
    let attr = |name: &str| {
        record
            .sns
            .message_attributes
            .get(name)
            .map(|a| a.value.trim())
            .filter(|v| !v.is_empty())
    };
    attr("traceparent")
        .and_then(parse_traceparent)
        .or_else(|| attr("AWSTraceHeader").and_then(traceparent_from_xray))
}

/// The raw `AWSTraceHeader` attribute, for an X-Ray propagator.
pub fn aws_trace_header(record: &SnsRecord) -> Option<String> {
    record
        .sns
        .message_attributes
        .get("AWSTraceHeader")
        .map(|a| a.value.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// A valid version-00 `traceparent`, normalized to lower case.
pub(crate) fn parse_traceparent(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [version, trace_id, span_id, flags] = parts.as_slice() else {
        return None;
    };
    let ok = *version == "00"
        && is_hex(trace_id, 32)
        && !all_zero(trace_id)
        && is_hex(span_id, 16)
        && !all_zero(span_id)
        && is_hex(flags, 2);
    ok.then(|| s.trim().to_ascii_lowercase())
}

/// `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>` as a `traceparent`.
/// Without `Parent` there is no span to continue from, so `None`.
pub(crate) fn traceparent_from_xray(header: &str) -> Option<String> {
    let mut root = None;
    let mut parent = None;
    let mut sampled = false;
    for part in header.split(';') {
        let (k, v) = part.split_once('=')?;
        match k.trim() {
            "Root" => root = Some(v.trim()),
            "Parent" => parent = Some(v.trim()),
            "Sampled" => sampled = v.trim() == "1",
            _ => {}
        }
    }
    let root = root?;
    let mut pieces = root.split('-');
    let (Some("1"), Some(epoch), Some(unique), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return None;
    };
    let trace_id = format!("{epoch}{unique}").to_ascii_lowercase();
    let span_id = parent?.to_ascii_lowercase();
    parse_traceparent(&format!(
        "00-{trace_id}-{span_id}-{}",
        if sampled { "01" } else { "00" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(attrs: serde_json::Value) -> SnsRecord {
        serde_json::from_value(json!({
            "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:1:t:s",
            "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                    "Subject": null, "Message": "{}", "Timestamp": "2026-01-01T00:00:00.000Z",
                    "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                    "MessageAttributes": attrs}
        }))
        .unwrap()
    }

    #[test]
    fn traceparent_wins_when_valid() {
        let r = record(json!({
            "traceparent": {"Type": "String", "Value": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},
            "AWSTraceHeader": {"Type": "String", "Value": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=1"},
        }));
        assert_eq!(
            trace_parent(&r).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
    }

    #[test]
    fn xray_header_is_the_fallback() {
        let r = record(json!({
            "traceparent": {"Type": "String", "Value": "garbage"},
            "AWSTraceHeader": {"Type": "String", "Value": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=1"},
        }));
        assert_eq!(
            trace_parent(&r).as_deref(),
            Some("00-5759e988bd862e3fe1be46a994272793-557abcec3ee5a047-01")
        );
        assert_eq!(
            aws_trace_header(&r).as_deref(),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=1")
        );
    }

    #[test]
    fn nothing_or_nonsense_gives_none() {
        assert_eq!(trace_parent(&record(json!({}))), None);
        assert_eq!(trace_parent(&record(json!(null))), None);
        for bad in [
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd86;Parent=557abcec3ee5a047",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
            "nonsense",
        ] {
            assert_eq!(traceparent_from_xray(bad), None, "{bad}");
        }
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }
}

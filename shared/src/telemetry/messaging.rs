//! Spans of an SQS-triggered invocation, as the semantic conventions'
//! "Instrumenting AWS Lambda" (section SQS) and messaging spans describe
//! them: the invocation is the `CONSUMER` span of the whole SQS event
//! (`process <queue>`, linked to every message's producer), and each message
//! gets a `CONSUMER` span of its own under it (`process <queue>`, linked to
//! its producer), with `messaging.system = aws_sqs` and
//! `messaging.operation.type = process`.
//!
//! The producers' contexts come from each message's `AWSTraceHeader` system
//! attribute only (never from message attributes, which any sender writes as
//! it likes), read with the X-Ray propagator. They are links, not parents: a
//! batch mixes messages of many traces.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use opentelemetry::trace::SpanContext;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::xray;

/// `messaging.system` for SQS.
pub const SQS: &str = "aws_sqs";

/// The longest message id recorded (SQS's are 36-character UUIDs).
const MAX_MESSAGE_ID: usize = 100;

/// The SQS event one invocation processes: what its span is named after and
/// links to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageBatch {
    /// The queue, when every message comes from the same one.
    pub destination: Option<String>,
    /// How many messages the event holds.
    pub count: usize,
    /// The producers' span contexts, one per message that carries an
    /// `AWSTraceHeader` (the SDK keeps at most its link limit, 128 by
    /// default, `OTEL_SPAN_LINK_COUNT_LIMIT`).
    pub links: Vec<SpanContext>,
}

impl MessageBatch {
    /// The batch of a Lambda SQS event.
    pub fn sqs(event: &SqsEvent) -> MessageBatch {
        let mut queues = event
            .records
            .iter()
            .map(|m| m.event_source_arn.as_deref().and_then(queue_name));
        let first = queues.next().flatten();
        let same = queues.all(|q| q == first);
        MessageBatch {
            destination: first.filter(|_| same).map(str::to_string),
            count: event.records.len(),
            links: event.records.iter().filter_map(producer).collect(),
        }
    }

    /// The span name: `process <queue>`, or `process` alone when the
    /// messages come from several queues.
    pub fn span_name(&self) -> String {
        process_name(self.destination.as_deref())
    }
}

fn process_name(queue: Option<&str>) -> String {
    match queue {
        Some(q) => format!("process {q}"),
        None => "process".to_string(),
    }
}

/// The queue name of an SQS ARN (`arn:aws:sqs:<region>:<account>:<name>`),
/// if it is one SQS would accept: 1 to 80 letters, digits, `-` and `_`,
/// with an optional `.fifo` suffix.
pub fn queue_name(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ["arn", _, "sqs", _, _, name] = parts.as_slice() else {
        return None;
    };
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let valid = !base.is_empty()
        && name.len() <= 80
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(*name)
}

/// The producer's context in a message's `AWSTraceHeader` system attribute.
pub fn producer(message: &SqsMessage) -> Option<SpanContext> {
    xray::span_context_from_header(message.attributes.get("AWSTraceHeader")?)
}

/// One message's `process` span, to run its handling in. Its parent is the
/// current span (the invocation's); its link, the message's producer. The
/// message id is also the correlation id of the lines logged inside.
pub fn sqs_message_span(message: &SqsMessage) -> tracing::Span {
    let queue = message.event_source_arn.as_deref().and_then(queue_name);
    let span = tracing::info_span!(
        "vigil.sqs.message",
        otel.name = %process_name(queue),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        faas.trigger = "pubsub",
        messaging.system = SQS,
        messaging.operation.name = "process",
        messaging.operation.type = "process",
        messaging.destination.name = tracing::field::Empty,
        messaging.message.id = tracing::field::Empty,
        vigil.correlation_id = tracing::field::Empty,
    );
    if let Some(q) = queue {
        span.record("messaging.destination.name", q);
    }
    if let Some(id) = message.message_id.as_deref().filter(|id| !id.is_empty()) {
        let id = crate::text::one_line(id, MAX_MESSAGE_ID);
        span.record("messaging.message.id", id.as_str());
        span.record("vigil.correlation_id", id.as_str());
    }
    if let Some(sc) = producer(message) {
        // Before the span starts, so the sampler sees the link too.
        span.add_link(sc);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(queue_arn: &str, trace_header: Option<&str>) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some("059f36b4-87a3-44ab-83d2-661975830a7d".into());
        m.event_source_arn = Some(queue_arn.into());
        if let Some(h) = trace_header {
            m.attributes.insert("AWSTraceHeader".into(), h.into());
        }
        m
    }

    #[test]
    fn queue_names_come_only_from_well_formed_sqs_arns() {
        assert_eq!(
            queue_name("arn:aws:sqs:us-east-1:111122223333:vigil-logfiles"),
            Some("vigil-logfiles")
        );
        assert_eq!(
            queue_name("arn:aws-cn:sqs:cn-north-1:111122223333:q_1.fifo"),
            Some("q_1.fifo")
        );
        for bad in [
            "",
            "vigil-logfiles",
            "arn:aws:sns:us-east-1:111122223333:topic",
            "arn:aws:sqs:us-east-1:111122223333:",
            "arn:aws:sqs:us-east-1:111122223333:a:b",
            "arn:aws:sqs:us-east-1:111122223333:bad name",
            "arn:aws:sqs:us-east-1:111122223333:.fifo",
        ] {
            assert_eq!(queue_name(bad), None, "{bad:?}");
        }
        let long = format!("arn:aws:sqs:us-east-1:111122223333:{}", "q".repeat(81));
        assert_eq!(queue_name(&long), None);
    }

    #[test]
    fn a_batch_links_every_producer_and_names_its_one_queue() {
        let q = "arn:aws:sqs:us-east-1:111122223333:files";
        let h1 = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=1";
        let h2 = "Root=1-6759e988-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=1111111111111111;Sampled=0";
        let mut event = SqsEvent::default();
        event.records = vec![
            message(q, Some(h1)),
            message(q, None),
            message(q, Some(h2)),
            message(q, Some("Root=garbage")),
        ];
        let batch = MessageBatch::sqs(&event);
        assert_eq!(batch.destination.as_deref(), Some("files"));
        assert_eq!(batch.span_name(), "process files");
        assert_eq!(batch.count, 4);
        let parents: Vec<String> = batch
            .links
            .iter()
            .map(|sc| format!("{:016x}", sc.span_id()))
            .collect();
        assert_eq!(parents, ["557abcec3ee5a047", "1111111111111111"]);

        event
            .records
            .push(message("arn:aws:sqs:us-east-1:111122223333:other", None));
        let mixed = MessageBatch::sqs(&event);
        assert_eq!(mixed.destination, None);
        assert_eq!(mixed.span_name(), "process");
    }

    #[test]
    fn only_the_system_attribute_carries_the_producer() {
        let mut m = message("arn:aws:sqs:us-east-1:111122223333:files", None);
        let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
        attribute.string_value = Some(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=557abcec3ee5a047;Sampled=1".into(),
        );
        attribute.data_type = Some("String".into());
        m.message_attributes
            .insert("AWSTraceHeader".into(), attribute);
        assert!(producer(&m).is_none());
    }
}

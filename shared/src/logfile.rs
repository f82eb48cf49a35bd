//! CloudTrail log files, streamed: what an organization trail writes to S3
//! (`{"Records":[...]}`, gzip), read one record at a time so memory stays
//! flat whatever the file size.
//!
//! The bytes are read and decoded on a blocking thread ([`stream_events`]:
//! gzip detected from the magic bytes, then a serde visitor that walks the
//! `Records` array and hands over each record as soon as it is parsed),
//! through a bounded channel to the async side ([`EventStream`]), which runs
//! them through the [`Pipeline`] ([`process_file`]). Parsing and the pipeline
//! (whose alerts wait on the network) overlap, and at most
//! [`CHANNEL_CAPACITY`] records are in flight.
//!
//! The Lambda side ([`handle_batch`]) reads an SQS batch of S3 notifications
//! ([`crate::sources::s3_notifications`]), streams each file from S3
//! ([`S3LogFiles`]) and reports the messages whose files failed in
//! `batchItemFailures`, so one bad file does not send the others round again.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use flate2::read::MultiGzDecoder;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tracing::{info_span, Instrument};

use crate::detect::RuleMeta;
use crate::pipeline::{Pipeline, PipelineError};
use crate::sources::s3_notifications::{self, ObjectRef};
use crate::telemetry::{InvocationInfo, Telemetry, Trigger};

/// Records parsed ahead of the pipeline, at most. A record is a few KB as a
/// `Value`, so this bounds the reader's memory to well under a megabyte.
pub const CHANNEL_CAPACITY: usize = 64;

/// Read buffer for the raw and the decompressed bytes.
const BUFFER: usize = 64 * 1024;

/// Why a log file could not be read or processed. Any of these fails the
/// file (and the SQS message that named it), so it is retried and, in the
/// end, kept in the dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    /// Reading or decompressing failed: a network error, or a corrupt or
    /// truncated gzip stream.
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not JSON, or not events.
    #[error("not a CloudTrail log file: {0}")]
    Format(String),
    /// The object could not be fetched.
    #[error("fetching {object}: {message}")]
    Fetch { object: String, message: String },
    /// An alert could not be delivered; the records before it were processed.
    #[error("alert not delivered: {0}")]
    Delivery(String),
    /// The reader thread ended without a result (it panicked or was cancelled).
    #[error("log file reader failed: {0}")]
    Reader(String),
}

/// What reading a stream produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Events handed over.
    pub events: u64,
    /// Bytes read from the source (compressed, when it was gzip).
    pub bytes: u64,
    /// The consumer stopped taking events before the end.
    pub stopped: bool,
}

/// Streams the events in `reader` to `emit`, one at a time, and stops early
/// when `emit` returns false.
///
/// Reads gzip (one or more members, as CloudTrail and `gzip` write them) or
/// plain bytes, told apart by the gzip magic bytes. Understands what
/// [`crate::input::parse_events`] does, without holding the whole file: a
/// CloudTrail log file (each element of `Records` is an event), a single
/// event, an array of events, and JSON lines (or any whitespace-separated
/// sequence of these).
pub fn stream_events<R: Read>(
    reader: R,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<StreamStats, LogFileError> {
    stream_counted(reader, &AtomicU64::new(0), emit)
}

/// [`stream_events`], adding the bytes read to `bytes` as it goes (for
/// progress shown from another thread).
pub fn stream_counted<R: Read>(
    reader: R,
    bytes: &AtomicU64,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<StreamStats, LogFileError> {
    let start = bytes.load(Ordering::Relaxed);
    let mut raw = BufReader::with_capacity(
        BUFFER,
        Counting {
            inner: reader,
            bytes,
        },
    );
    let gzip = raw.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut sink = Sink {
        emit,
        events: 0,
        stopped: false,
    };
    let parsed = if gzip {
        parse(
            BufReader::with_capacity(BUFFER, MultiGzDecoder::new(raw)),
            &mut sink,
        )
    } else {
        parse(raw, &mut sink)
    };
    match parsed {
        Err(_) if sink.stopped => {}
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    Ok(StreamStats {
        events: sink.events,
        bytes: bytes.load(Ordering::Relaxed) - start,
        stopped: sink.stopped,
    })
}

/// Counts the bytes read through it.
struct Counting<'a, R> {
    inner: R,
    bytes: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Top-level values until the end of the input.
fn parse<R: Read>(reader: R, sink: &mut Sink<'_>) -> Result<(), LogFileError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    loop {
        // `end` only peeks: Ok at the end of the input, an error (and nothing
        // consumed) when another value follows.
        match de.end() {
            Ok(()) => return Ok(()),
            Err(e) if e.is_io() => return Err(LogFileError::Io(e.into())),
            Err(_) => {}
        }
        TopLevel(sink).deserialize(&mut de).map_err(|e| {
            if e.is_io() {
                LogFileError::Io(e.into())
            } else {
                LogFileError::Format(e.to_string())
            }
        })?;
    }
}

/// Where parsed events go.
struct Sink<'a> {
    emit: &'a mut dyn FnMut(Value) -> bool,
    events: u64,
    stopped: bool,
}

impl Sink<'_> {
    fn emit<E: de::Error>(&mut self, v: Value) -> Result<(), E> {
        self.events += 1;
        if (self.emit)(v) {
            Ok(())
        } else {
            // Unwind the parser; `stream_counted` sees `stopped` and reports
            // a clean early stop rather than this error.
            self.events -= 1;
            self.stopped = true;
            Err(E::custom("consumer stopped"))
        }
    }
}

/// One top-level JSON value: a log file, an event or an array of events.
struct TopLevel<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for TopLevel<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a CloudTrail log file, an event or an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            self.0.emit(v)?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A log file streams its `Records`; any other object is one event,
        // kept whole (its other keys are collected as they come).
        let mut event = serde_json::Map::new();
        let mut streamed = false;
        while let Some(key) = map.next_key::<String>()? {
            if streamed {
                map.next_value::<IgnoredAny>()?;
            } else if key == "Records" {
                match map.next_value_seed(Records(&mut *self.0))? {
                    None => streamed = true,
                    Some(other) => {
                        event.insert(key, other);
                    }
                }
            } else {
                let v = map.next_value::<Value>()?;
                event.insert(key, v);
            }
        }
        if !streamed {
            self.0.emit(Value::Object(event))?;
        }
        Ok(())
    }
}

/// The value of a `Records` key: streamed when it is an array (`None`),
/// returned whole otherwise.
struct Records<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for Records<'_, '_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Records<'_, '_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            self.0.emit(v)?;
        }
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Value>, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<Value>, E> {
        Ok(Some(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Option<Value>, E> {
        Ok(Some(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Value>, E> {
        Ok(Some(Value::Null))
    }
}

/// Events parsed on a blocking thread, handed over one at a time.
///
/// Dropping the stream (or calling [`EventStream::finish`] early) stops the
/// reader at its next record.
pub struct EventStream {
    rx: mpsc::Receiver<Value>,
    reader: tokio::task::JoinHandle<Result<StreamStats, LogFileError>>,
    bytes: Arc<AtomicU64>,
}

impl EventStream {
    /// Reads `reader` (see [`stream_events`]) on a blocking thread. Call
    /// from within a Tokio runtime.
    pub fn spawn<R: Read + Send + 'static>(reader: R) -> EventStream {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let bytes = Arc::new(AtomicU64::new(0));
        let counter = bytes.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let mut emit = |v: Value| tx.blocking_send(v).is_ok();
            stream_counted(reader, &counter, &mut emit)
        });
        EventStream { rx, reader, bytes }
    }

    /// Reads an async source (an S3 object body) through
    /// [`tokio_util::io::SyncIoBridge`] on the blocking thread.
    pub fn from_async<R: AsyncRead + Send + 'static>(reader: R) -> EventStream {
        EventStream::spawn(tokio_util::io::SyncIoBridge::new(Box::pin(reader)))
    }

    /// The next event, or `None` at the end (or when reading failed:
    /// [`EventStream::finish`] says which).
    pub async fn next(&mut self) -> Option<Value> {
        self.rx.recv().await
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Stops taking events and waits for the reader: its counts, or why it
    /// failed.
    pub async fn finish(self) -> Result<StreamStats, LogFileError> {
        let EventStream { rx, reader, .. } = self;
        drop(rx);
        reader
            .await
            .map_err(|e| LogFileError::Reader(e.to_string()))?
    }
}

/// What one log file produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Records read.
    pub records: u64,
    /// Records some rule matched: these, and only these, went through the
    /// whole pipeline.
    pub matched: u64,
    pub findings: u64,
    pub alerts: u64,
    /// Records the pipeline refused (not CloudTrail records): counted and
    /// logged, not retried, because reading them again cannot help.
    pub refused: u64,
    /// Bytes read (compressed).
    pub bytes: u64,
}

/// Runs every record of `events` through `pipeline`.
///
/// Detection runs first on each record, outside the pipeline: a record no
/// rule matches (nearly all of them) produces no finding, so it skips the
/// pipeline's per-event spans, metrics and logs, which would otherwise cost
/// more than the detection itself and flood the logs at organization scale.
/// The records that match go through [`Pipeline::process_event`] like any
/// event: enrichment, dedup, gating, alerts, telemetry.
///
/// The first alert that cannot be delivered stops the file: it must be
/// retried, and going on would only fail more.
pub async fn process_file(
    pipeline: &Pipeline,
    mut events: EventStream,
) -> Result<FileReport, LogFileError> {
    let mut report = FileReport::default();
    let mut hits: Vec<&RuleMeta> = Vec::new();
    let mut failure = None;
    while let Some(record) = events.next().await {
        report.records += 1;
        let Some(detector) = pipeline.detector() else {
            continue;
        };
        hits.clear();
        detector.detect(&record, &mut hits);
        if hits.is_empty() {
            continue;
        }
        report.matched += 1;
        match pipeline.process_event(&record).await {
            Ok(r) => {
                report.findings += r.findings.len() as u64;
                report.alerts += r.alerts() as u64;
            }
            Err(PipelineError::Delivery {
                report: r, first, ..
            }) => {
                report.findings += r.findings.len() as u64;
                report.alerts += r.alerts() as u64;
                failure = Some(LogFileError::Delivery(first.to_string()));
                break;
            }
            Err(e) => {
                report.refused += 1;
                if report.refused == 1 {
                    tracing::warn!(error = %e, "log file record refused");
                }
            }
        }
    }
    let stats = events.finish().await;
    if let Some(e) = failure {
        return Err(e);
    }
    report.bytes = stats?.bytes;
    Ok(report)
}

/// Opens log files. The Lambda reads S3 ([`S3LogFiles`]); tests use memory.
pub trait LogFiles: Send + Sync {
    /// Starts streaming the events of `object`.
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<EventStream, LogFileError>> + Send;
}

/// Log files in S3, streamed as they download.
#[derive(Debug, Clone)]
pub struct S3LogFiles {
    client: aws_sdk_s3::Client,
}

impl S3LogFiles {
    pub fn new(client: aws_sdk_s3::Client) -> S3LogFiles {
        S3LogFiles { client }
    }
}

impl LogFiles for S3LogFiles {
    async fn open(&self, object: &ObjectRef) -> Result<EventStream, LogFileError> {
        let out = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .send()
            .await
            .map_err(|e| LogFileError::Fetch {
                object: object.to_string(),
                message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(EventStream::from_async(out.body.into_async_read()))
    }
}

/// Why a whole batch failed (Lambda then retries every message in it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

/// Handles one SQS batch of S3 notifications: every log file named by
/// every message, in order. A message fails, alone, when its body is not a
/// notification or one of its files fails; its id is then in
/// `batchItemFailures` and SQS delivers it again (and, after the queue's
/// `maxReceiveCount`, moves it to the dead-letter queue). Messages are
/// handled one after the other so memory stays that of one file.
pub async fn handle_batch<F: LogFiles>(
    pipeline: &Pipeline,
    files: &F,
    event: SqsEvent,
) -> Result<SqsBatchResponse, BatchError> {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        if let Err(e) = handle_message(pipeline, files, &message).await {
            let Some(id) = message.message_id.as_deref().filter(|id| !id.is_empty()) else {
                // Without an id the failure cannot be reported alone: fail
                // the batch rather than lose the file.
                return Err(BatchError(format!("message without an id failed: {e}")));
            };
            tracing::error!(error = %e, vigil.message_id = id, "message failed");
            response.add_failure(id);
        }
    }
    Ok(response)
}

/// Handles one Lambda invocation with telemetry: the invocation span (X-Ray
/// parent, `faas.*` attributes, the message id as correlation id when the
/// batch has one message), [`handle_batch`] inside it, then spans and
/// metrics flushed before returning.
pub async fn handle_invocation<F: LogFiles>(
    telemetry: &Telemetry,
    pipeline: &Pipeline,
    files: &F,
    event: lambda_runtime::LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    let lambda_runtime::LambdaEvent { payload, context } = event;
    let mut invocation = telemetry.invocation(InvocationInfo::new(&context, Trigger::PubSub));
    if let [only] = payload.records.as_slice() {
        if let Some(id) = &only.message_id {
            invocation = invocation.correlation_id(id);
        }
    }
    invocation.run(handle_batch(pipeline, files, payload)).await
}

/// Why one message failed.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error(transparent)]
    Notification(#[from] s3_notifications::NotificationError),
    #[error("{object}: {source}")]
    File {
        object: String,
        #[source]
        source: LogFileError,
    },
}

async fn handle_message<F: LogFiles>(
    pipeline: &Pipeline,
    files: &F,
    message: &SqsMessage,
) -> Result<(), MessageError> {
    let objects = s3_notifications::objects(message.body.as_deref().unwrap_or_default())?;
    if objects.files.is_empty() {
        tracing::info!(
            vigil.message_id = message.message_id.as_deref().unwrap_or_default(),
            vigil.skipped = objects.skipped,
            "no log file in message"
        );
    }
    for object in &objects.files {
        let span = info_span!(
            "vigil.logfile",
            vigil.bucket = %object.bucket,
            vigil.key = %object.key,
            vigil.records = tracing::field::Empty,
            vigil.findings = tracing::field::Empty,
            vigil.alerts = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = async {
            let events = files.open(object).await?;
            process_file(pipeline, events).await
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        match result {
            Ok(r) => {
                span.record("vigil.records", r.records);
                span.record("vigil.findings", r.findings);
                span.record("vigil.alerts", r.alerts);
                tracing::info!(
                    vigil.bucket = %object.bucket,
                    vigil.key = %object.key,
                    vigil.records = r.records,
                    vigil.matched = r.matched,
                    vigil.findings = r.findings,
                    vigil.alerts = r.alerts,
                    vigil.refused = r.refused,
                    vigil.bytes = r.bytes,
                    vigil.duration_ms = started.elapsed().as_millis() as u64,
                    "log file processed: {} records, {} findings, {} alerts",
                    r.records,
                    r.findings,
                    r.alerts
                );
            }
            Err(source) => {
                tracing::error!(
                    vigil.bucket = %object.bucket,
                    vigil.key = %object.key,
                    error = %source,
                    "log file failed"
                );
                return Err(MessageError::File {
                    object: object.to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::detect::Detector;
    use crate::model::Source;
    use crate::sinks::MemorySink;
    use flate2::write::GzEncoder;
    use serde_json::json;
    use std::collections::HashMap;
    use std::io::Write;

    fn collect(bytes: &[u8]) -> Result<(Vec<Value>, StreamStats), LogFileError> {
        let mut out = Vec::new();
        let stats = stream_events(bytes, &mut |v| {
            out.push(v);
            true
        })?;
        Ok((out, stats))
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn log_file(names: &[&str]) -> Vec<u8> {
        let records: Vec<Value> = names
            .iter()
            .map(|n| {
                json!({"eventVersion": "1.08", "eventName": n, "eventSource": "iam.amazonaws.com",
                "awsRegion": "us-east-1", "recipientAccountId": "111122223333"})
            })
            .collect();
        json!({"Records": records}).to_string().into_bytes()
    }

    #[test]
    fn streams_the_forms_replay_reads() {
        let (v, stats) = collect(&log_file(&["A", "B", "C"])).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2]["eventName"], "C");
        assert_eq!(stats.events, 3);
        assert!(!stats.stopped);
        // Records after other keys, and other keys after Records.
        let (v, _) = collect(br#"{"x":{"y":[1]},"Records":[{"a":1}],"z":2}"#).unwrap();
        assert_eq!(v, vec![json!({"a":1})]);
        // A single event, an array, JSON lines, whitespace only.
        assert_eq!(collect(br#"{"a":1}"#).unwrap().0, vec![json!({"a":1})]);
        assert_eq!(collect(br#" [{"a":1},{"a":2}] "#).unwrap().0.len(), 2);
        assert_eq!(collect(b"{\"a\":1}\n\n{\"a\":2}\n").unwrap().0.len(), 2);
        assert_eq!(collect(b" \n").unwrap().0.len(), 0);
        // An event whose `Records` is not an array is kept whole.
        assert_eq!(
            collect(br#"{"Records":{"n":1},"k":"v"}"#).unwrap().0,
            vec![json!({"Records":{"n":1},"k":"v"})]
        );
        assert_eq!(
            collect(br#"{"Records":null}"#).unwrap().0,
            vec![json!({"Records":null})]
        );
    }

    #[test]
    fn agrees_with_the_whole_file_reader() {
        let inputs: [&[u8]; 5] = [
            br#"{"Records":[{"eventName":"X"},{"eventName":"Y"}]}"#,
            br#"[{"a":1},{"a":2}]"#,
            b"{\"a\":1}\n{\"a\":2}\n",
            br#"{"a":{"b":[1,2,{"c":null}]}}"#,
            br#"{"Records":"x"}"#,
        ];
        for input in inputs {
            assert_eq!(
                collect(input).unwrap().0,
                crate::input::parse_events(input).unwrap(),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn reads_gzip_including_several_members() {
        let plain = log_file(&["A", "B"]);
        let (v, stats) = collect(&gzip(&plain)).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(stats.bytes, gzip(&plain).len() as u64);
        // `cat a.gz b.gz` is one valid gzip file with two members.
        let mut two = gzip(b"{\"a\":1}\n");
        two.extend(gzip(b"{\"a\":2}\n"));
        assert_eq!(collect(&two).unwrap().0.len(), 2);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let whole = gzip(&log_file(&["A"; 200]));
        let truncated = &whole[..whole.len() / 2];
        assert!(matches!(collect(truncated), Err(LogFileError::Io(_))));
        let mut flipped = whole.clone();
        flipped[20] ^= 0xff;
        flipped[40] ^= 0xff;
        assert!(collect(&flipped).is_err());
        assert!(matches!(collect(b"not json"), Err(LogFileError::Format(_))));
        assert!(matches!(collect(b"42"), Err(LogFileError::Format(_))));
        assert!(matches!(
            collect(br#"{"Records":[{"a":1},"#),
            Err(LogFileError::Format(_))
        ));
        assert!(matches!(
            collect(&gzip(b"{\"Records\":[")),
            Err(LogFileError::Format(_))
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            collect(deep.as_bytes()),
            Err(LogFileError::Format(_))
        ));
    }

    #[test]
    fn a_consumer_can_stop_early() {
        let mut n = 0;
        let stats = stream_events(&log_file(&["A"; 50])[..], &mut |_| {
            n += 1;
            n < 3
        })
        .unwrap();
        assert!(stats.stopped);
        assert_eq!(stats.events, 2);
    }

    /// Matches records whose `eventName` is in the map, with that rule.
    struct ByName(HashMap<&'static str, RuleMeta>);

    impl ByName {
        fn new(names: &[(&'static str, crate::model::Severity)]) -> Arc<ByName> {
            Arc::new(ByName(
                names
                    .iter()
                    .map(|(n, sev)| {
                        (
                            *n,
                            RuleMeta {
                                id: format!("rule-{n}"),
                                title: format!("{n} seen"),
                                description: "test rule".into(),
                                severity: *sev,
                                tactics: vec![],
                                techniques: vec![],
                                false_positives: vec![],
                                references: vec![],
                            },
                        )
                    })
                    .collect(),
            ))
        }
    }

    impl Detector for ByName {
        fn detect<'a>(&'a self, record: &Value, hits: &mut Vec<&'a RuleMeta>) {
            if let Some(rule) = record["eventName"].as_str().and_then(|n| self.0.get(n)) {
                hits.push(rule);
            }
        }

        fn rule_count(&self) -> usize {
            self.0.len()
        }
    }

    fn pipeline(sink: MemorySink) -> Pipeline {
        use crate::model::Severity::*;
        Pipeline::builder(&Config::default())
            .accept(&[Source::CloudTrail])
            .detector(ByName::new(&[("StopLogging", High), ("ListBuckets", Low)]))
            .sink(Box::new(sink))
            .build()
    }

    #[tokio::test]
    async fn processes_a_file_through_the_pipeline() {
        let sink = MemorySink::new();
        let p = pipeline(sink.clone());
        let bytes = gzip(&log_file(&[
            "GetObject",
            "StopLogging",
            "ListBuckets",
            "AssumeRole",
        ]));
        let report = process_file(&p, EventStream::spawn(std::io::Cursor::new(bytes.clone())))
            .await
            .unwrap();
        assert_eq!(
            report,
            FileReport {
                records: 4,
                matched: 2,
                findings: 2,
                alerts: 1,
                refused: 0,
                bytes: bytes.len() as u64,
            }
        );
        assert_eq!(sink.sent().len(), 1);
        assert!(
            sink.sent()[0].subject.starts_with("[HIGH]"),
            "{}",
            sink.sent()[0].subject
        );
    }

    #[tokio::test]
    async fn a_failed_delivery_fails_the_file_and_a_bad_record_does_not() {
        let p = pipeline(MemorySink::failing());
        let bytes = log_file(&["StopLogging", "GetObject"]);
        let err = process_file(&p, EventStream::spawn(std::io::Cursor::new(bytes)))
            .await
            .unwrap_err();
        assert!(matches!(err, LogFileError::Delivery(_)), "{err}");

        // A matched record the pipeline cannot read (no eventSource) is
        // counted and skipped.
        let sink = MemorySink::new();
        let p = pipeline(sink.clone());
        let bytes = br#"{"Records":[{"eventName":"StopLogging"},{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com"}]}"#;
        let report = process_file(&p, EventStream::spawn(&bytes[..]))
            .await
            .unwrap();
        assert_eq!((report.records, report.refused, report.alerts), (2, 1, 1));
    }

    /// Log files from memory, by key.
    struct MemoryFiles(HashMap<String, Vec<u8>>);

    impl LogFiles for MemoryFiles {
        async fn open(&self, object: &ObjectRef) -> Result<EventStream, LogFileError> {
            let bytes = self
                .0
                .get(&object.key)
                .cloned()
                .ok_or_else(|| LogFileError::Fetch {
                    object: object.to_string(),
                    message: "NoSuchKey".into(),
                })?;
            Ok(EventStream::from_async(std::io::Cursor::new(bytes)))
        }
    }

    fn message(id: &str, body: Value) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_string());
        m.body = Some(body.to_string());
        m
    }

    fn notification(key: &str) -> Value {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "trail"}, "object": {"key": key}}}]})
    }

    #[tokio::test]
    async fn only_failed_messages_are_reported() {
        let sink = MemorySink::new();
        let p = pipeline(sink.clone());
        let good = gzip(&log_file(&["StopLogging", "GetObject"]));
        let corrupt = gzip(&log_file(&["ListBuckets", "GetObject"]));
        let files = MemoryFiles(HashMap::from([
            ("good 1.json.gz".to_string(), good.clone()),
            ("good2.json.gz".to_string(), good.clone()),
            // Truncated: the records before the damage may be processed,
            // so it holds only a record below the alerting threshold.
            (
                "corrupt.json.gz".to_string(),
                corrupt[..corrupt.len() - 10].to_vec(),
            ),
            ("notjson.json.gz".to_string(), gzip(b"<html>")),
        ]));
        let mut event = SqsEvent::default();
        event.records = vec![
            message("m1", notification("good+1.json.gz")),
            message("m2", notification("corrupt.json.gz")),
            message(
                "m3",
                json!({"Type": "Notification", "TopicArn": "t",
                "Message": notification("good2.json.gz").to_string()}),
            ),
            message("m4", notification("notjson.json.gz")),
            message("m5", notification("missing.json.gz")),
            message(
                "m6",
                json!({"Event": "s3:TestEvent", "Service": "Amazon S3"}),
            ),
            message("m7", notification("AWSLogs/1/CloudTrail-Digest/x.json.gz")),
            message("m8", json!("garbage")),
        ];
        let response = handle_batch(&p, &files, event).await.unwrap();
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m2", "m4", "m5", "m8"]);
        // The two good files alerted.
        assert_eq!(sink.sent().len(), 2);
    }

    #[tokio::test]
    async fn a_failure_without_a_message_id_fails_the_batch() {
        let p = pipeline(MemorySink::new());
        let mut m = message("", json!("garbage"));
        m.message_id = None;
        let mut event = SqsEvent::default();
        event.records = vec![m];
        assert!(handle_batch(&p, &MemoryFiles(HashMap::new()), event)
            .await
            .is_err());
    }
}

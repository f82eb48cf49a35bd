//! CloudTrail log files, streamed: what an organization trail writes to S3
//! (`{"Records":[...]}`, gzip), read one record at a time so memory stays
//! flat whatever the file size.
//!
//! The bytes are read and decoded on a blocking thread ([`stream_events`]:
//! gzip detected from the magic bytes, then a serde visitor that walks the
//! `Records` array and hands over each record as soon as it is parsed),
//! through a bounded channel to the async side ([`EventStream`]). Its
//! consumer (the pipeline, in [`crate::logfiles`] and `vigil replay`) works
//! while the next records are parsed, and at most `CHANNEL_CAPACITY`
//! records are in flight.
//!
//! [`input`] reads the same forms whole, from files and folders.

pub mod input;

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

/// Records parsed ahead of the pipeline, at most. A record is a few KB as a
/// `Value`, so this bounds the reader's memory to well under a megabyte.
const CHANNEL_CAPACITY: usize = 64;

/// Read buffer for the raw and the decompressed bytes.
const BUFFER: usize = 64 * 1024;

/// Why a stream of events could not be read. Reading a log file fails
/// with it (see [`crate::logfiles`]), so the file is retried.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Reading or decompressing failed: a network error, or a corrupt or
    /// truncated gzip stream.
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not JSON, or not events.
    #[error("not a CloudTrail log file: {0}")]
    Format(String),
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
/// [`input::parse_events`] does, without holding the whole file: a
/// CloudTrail log file (each element of `Records` is an event), a single
/// event, an array of events, and JSON lines (or any whitespace-separated
/// sequence of these).
pub fn stream_events<R: Read>(
    reader: R,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<StreamStats, DecodeError> {
    stream_counted(reader, &AtomicU64::new(0), emit)
}

/// [`stream_events`], adding the bytes read to `bytes` as it goes (for
/// progress shown from another thread).
fn stream_counted<R: Read>(
    reader: R,
    bytes: &AtomicU64,
    emit: &mut dyn FnMut(Value) -> bool,
) -> Result<StreamStats, DecodeError> {
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
fn parse<R: Read>(reader: R, sink: &mut Sink<'_>) -> Result<(), DecodeError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    loop {
        // `end` only peeks: Ok at the end of the input, an error (and nothing
        // consumed) when another value follows.
        match de.end() {
            Ok(()) => return Ok(()),
            Err(e) if e.is_io() => return Err(DecodeError::Io(e.into())),
            Err(_) => {}
        }
        TopLevel(sink).deserialize(&mut de).map_err(|e| {
            if e.is_io() {
                DecodeError::Io(e.into())
            } else {
                DecodeError::Format(e.to_string())
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
    reader: tokio::task::JoinHandle<Result<StreamStats, DecodeError>>,
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
    pub async fn finish(self) -> Result<StreamStats, DecodeError> {
        let EventStream { rx, reader, .. } = self;
        drop(rx);
        reader
            .await
            .map_err(|e| DecodeError::Reader(e.to_string()))?
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use serde_json::json;
    use std::io::Write;

    fn collect(bytes: &[u8]) -> Result<(Vec<Value>, StreamStats), DecodeError> {
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
                input::parse_events(input).unwrap(),
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
        assert!(matches!(collect(truncated), Err(DecodeError::Io(_))));
        let mut flipped = whole.clone();
        flipped[20] ^= 0xff;
        flipped[40] ^= 0xff;
        assert!(collect(&flipped).is_err());
        assert!(matches!(collect(b"not json"), Err(DecodeError::Format(_))));
        assert!(matches!(collect(b"42"), Err(DecodeError::Format(_))));
        assert!(matches!(
            collect(br#"{"Records":[{"a":1},"#),
            Err(DecodeError::Format(_))
        ));
        assert!(matches!(
            collect(&gzip(b"{\"Records\":[")),
            Err(DecodeError::Format(_))
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            collect(deep.as_bytes()),
            Err(DecodeError::Format(_))
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
}

//! CloudTrail log files, streamed: what an organization trail writes to S3
//! (`{"Records":[...]}`, gzip), read one record at a time so memory stays
//! flat whatever the file size, and one bad record costs only itself.
//!
//! The bytes are read and decoded on a blocking thread ([`stream_events`]:
//! gzip detected from the magic bytes, decompressed through a bounded
//! reader ([`ReadLimits`]), then a serde visitor that walks the `Records`
//! array and captures each record as raw text before parsing it alone), and
//! handed over through a bounded channel to the async side ([`EventStream`]).
//! A record that cannot be parsed (nested deeper than serde_json's limit of
//! 128, say) is handed over as a [`BadRecord`] with its number, and the
//! records after it are read. A file that is not JSON from some point on,
//! or that goes over a limit, fails ([`DecodeError`]) after the records
//! before that point were handed over.
//!
//! Its consumer (the pipeline, in [`crate::logfiles`] and `vigil replay`)
//! works while the next records are read. Records cross in batches
//! ([`EventStream`]: one wake-up of the consumer a batch, not a record, and
//! a bounded number of bytes in flight); a log file's records cross as text
//! and are parsed on the consumer's side, so the reader thread only
//! decompresses, splits and screens them.
//!
//! [`input`] reads the same forms whole, from files and folders.

pub mod input;
mod limits;
mod split;
mod stream;
mod visit;

use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use serde::de::DeserializeSeed;
use serde_json::Value;

use crate::detect::Prefilter;
use limits::{Capped, Progress};
pub use limits::{LimitExceeded, ReadLimits, DEFAULT_FILE_BYTES, DEFAULT_RECORD_BYTES};
pub use stream::EventStream;
use visit::{Item, Sink, TopLevel};

/// Read buffer for the raw and the decompressed bytes.
const BUFFER: usize = 64 * 1024;

/// Why a stream of events could not be read to its end. Reading a log file
/// fails with it (see [`crate::logfiles`]), so the file is retried; the
/// events before the failure were handed over.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Reading or decompressing failed: a network error, or a corrupt or
    /// truncated gzip stream.
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
    /// The file or one of its records is larger than its limit.
    #[error("refused: {0}")]
    TooLarge(LimitExceeded),
    /// The bytes are not JSON from some point on, or not events.
    #[error("not a CloudTrail log file after record {records}: {message}")]
    Format { records: u64, message: String },
    /// The reader thread ended without a result (it panicked or was cancelled).
    #[error("log file reader failed: {0}")]
    Reader(String),
}

/// A record that could not be read as JSON on its own (nested too deeply,
/// say): skipped, and the records after it are read.
#[derive(Debug, thiserror::Error)]
#[error("record {record}: {error}")]
pub struct BadRecord {
    /// Its place in the file, from 1.
    pub record: u64,
    pub error: serde_json::Error,
}

/// One record of a stream: the event, or why it could not be read.
pub type Record = Result<Value, BadRecord>;

/// What reading a stream produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Events handed over.
    pub events: u64,
    /// Records handed over as [`BadRecord`]s.
    pub skipped: u64,
    /// Records the prefilter left out, unparsed: no loaded rule can match
    /// them. The file's records are `events + skipped + filtered`.
    pub filtered: u64,
    /// Bytes read from the source (compressed, when it was gzip).
    pub bytes: u64,
    /// Bytes after decompression.
    pub decompressed: u64,
    /// The consumer stopped taking events before the end.
    pub stopped: bool,
}

/// Streams the events in `reader` to `emit`, one at a time, within the
/// default [`ReadLimits`], and stops early when `emit` returns false.
/// Records that cannot be read are counted in [`StreamStats::skipped`].
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
    let mut records = |r: Record, _: usize| match r {
        Ok(v) => emit(v),
        Err(_) => true,
    };
    stream_records(reader, ReadLimits::default(), &mut records)
}

/// [`stream_events`] with every record, the bad ones too, and `limits`.
pub fn stream_records<R: Read>(
    reader: R,
    limits: ReadLimits,
    emit: &mut dyn FnMut(Record, usize) -> bool,
) -> Result<StreamStats, DecodeError> {
    stream_parsed(reader, limits, None, emit)
}

/// [`stream_records`] handing over only the records `filter` admits (the
/// others are counted in [`StreamStats::filtered`], never parsed).
pub fn stream_filtered<R: Read>(
    reader: R,
    limits: ReadLimits,
    filter: &Prefilter,
    emit: &mut dyn FnMut(Record, usize) -> bool,
) -> Result<StreamStats, DecodeError> {
    stream_parsed(reader, limits, Some(filter), emit)
}

/// Reads on this thread, every record parsed where it is read (a sink that
/// does not defer hands over no text; if one did, it is parsed here).
fn stream_parsed<R: Read>(
    reader: R,
    limits: ReadLimits,
    filter: Option<&Prefilter>,
    emit: &mut dyn FnMut(Record, usize) -> bool,
) -> Result<StreamStats, DecodeError> {
    let mut items = |item: Item<'_>, len: usize| match item {
        Item::Parsed(record) => emit(record, len),
        Item::Text { bytes, record } => emit(visit::parse_record(bytes, record), len),
    };
    let counters = Counters::default();
    stream_counted(reader, limits, &counters, filter, false, &mut items)
}

/// What a reader thread counts for the consumer to read as it goes.
#[derive(Debug, Default)]
struct Counters {
    /// Bytes read from the source.
    bytes: AtomicU64,
    /// Records the prefilter left out.
    filtered: AtomicU64,
    /// The consumer has gone.
    closed: std::sync::atomic::AtomicBool,
}

/// [`stream_records`], adding the bytes read and the records filtered out
/// to `counters` as it goes (for progress shown from another thread).
/// `emit` gets each record and the length of its text; with `defer`, the
/// records of a log file as text (see [`visit::Item`]).
fn stream_counted<R: Read>(
    reader: R,
    limits: ReadLimits,
    counters: &Counters,
    filter: Option<&Prefilter>,
    defer: bool,
    emit: &mut dyn FnMut(Item<'_>, usize) -> bool,
) -> Result<StreamStats, DecodeError> {
    let bytes = &counters.bytes;
    let start = bytes.load(Ordering::Relaxed);
    let mut raw = BufReader::with_capacity(
        BUFFER,
        Counting {
            inner: reader,
            bytes,
        },
    );
    let gzip = raw.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let progress = Rc::new(Progress::default());
    let mut sink = Sink {
        emit,
        defer,
        events: 0,
        skipped: 0,
        stopped: false,
        progress: progress.clone(),
        record_bytes: limits.record_bytes,
        filter,
        filtered: 0,
        filtered_total: &counters.filtered,
        cancelled: &|| counters.closed.load(Ordering::Relaxed),
    };
    let capped = |inner| Capped {
        inner,
        limits,
        read_ahead: BUFFER as u64,
        progress: progress.clone(),
    };
    let parsed = match gzip {
        true => split::parse_log(
            capped(Decompressed::Gzip(Box::new(MultiGzDecoder::new(raw)))),
            &mut sink,
        ),
        false => split::parse_log(capped(Decompressed::Plain(raw)), &mut sink),
    };
    match (parsed, progress.exceeded.get()) {
        (Err(_), Some(limit)) => return Err(DecodeError::TooLarge(limit)),
        (Err(_), None) if sink.stopped => {}
        (Err(e), None) => return Err(e),
        (Ok(()), _) => {}
    }
    Ok(StreamStats {
        events: sink.events,
        skipped: sink.skipped,
        filtered: sink.filtered,
        bytes: bytes.load(Ordering::Relaxed) - start,
        decompressed: progress.read.get(),
        stopped: sink.stopped,
    })
}

/// The bytes of a file: decompressed, or as they were.
enum Decompressed<R> {
    // Boxed: zlib-rs keeps its inflate state inline.
    Gzip(Box<MultiGzDecoder<R>>),
    Plain(R),
}

impl<R: BufRead> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decompressed::Gzip(r) => r.read(buf),
            Decompressed::Plain(r) => r.read(buf),
        }
    }
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
        sink.start_record();
        TopLevel(sink).deserialize(&mut de).map_err(|e| {
            if e.is_io() {
                DecodeError::Io(e.into())
            } else {
                DecodeError::Format {
                    records: sink.events + sink.skipped,
                    message: e.to_string(),
                }
            }
        })?;
        sink.progress.end_record();
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
        assert!(matches!(
            collect(b"not json"),
            Err(DecodeError::Format { .. })
        ));
        assert!(matches!(collect(b"42"), Err(DecodeError::Format { .. })));
        assert!(matches!(
            collect(br#"{"Records":[{"a":1},"#),
            Err(DecodeError::Format { .. })
        ));
        assert!(matches!(
            collect(&gzip(b"{\"Records\":[")),
            Err(DecodeError::Format { .. })
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            collect(deep.as_bytes()),
            Err(DecodeError::Format { .. })
        ));
    }

    /// Every record, the bad ones too, within `limits`.
    fn records(
        bytes: &[u8],
        limits: ReadLimits,
    ) -> (Vec<Record>, Result<StreamStats, DecodeError>) {
        let mut out = Vec::new();
        let result = stream_records(bytes, limits, &mut |r, _| {
            out.push(r);
            true
        });
        (out, result)
    }

    /// A record nested `depth` levels deep.
    fn deep(depth: usize) -> String {
        format!(
            r#"{{"eventName":"Deep","x":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    }

    /// The stream's records cross as text and are parsed on the consumer's
    /// side: a bad one has its number there, and the counts agree with
    /// reading on one thread.
    #[tokio::test]
    async fn the_stream_parses_on_the_consumers_side_with_the_same_counts() {
        let file = format!(
            r#"{{"Records":[{{"eventName":"A"}},{},{{"eventName":"C"}}]}}"#,
            deep(200)
        );
        let mut stream = EventStream::spawn(std::io::Cursor::new(gzip(file.as_bytes())));
        let mut got = Vec::new();
        while let Some(record) = stream.next().await {
            got.push(record);
        }
        assert_a_deep_c(&got, &stream.finish().await.unwrap());
    }

    /// Records A, a record nested too deeply, C: A and C read, the second
    /// a bad record numbered 2.
    fn assert_a_deep_c(got: &[Record], stats: &StreamStats) {
        assert_eq!((stats.events, stats.skipped), (2, 1));
        assert_eq!(got[0].as_ref().unwrap()["eventName"], "A");
        let bad = got[1].as_ref().unwrap_err();
        assert_eq!(bad.record, 2);
        assert!(bad.to_string().contains("recursion limit"), "{bad}");
        assert_eq!(got[2].as_ref().unwrap()["eventName"], "C");
    }

    #[test]
    fn a_record_nested_too_deeply_is_skipped_and_the_rest_is_read() {
        for depth in [200, 100_000] {
            let file = format!(
                r#"{{"Records":[{{"eventName":"A"}},{},{{"eventName":"C"}}]}}"#,
                deep(depth)
            );
            let (got, stats) = records(file.as_bytes(), ReadLimits::default());
            assert_a_deep_c(&got, &stats.unwrap());
        }
        // Just under serde_json's limit is a good record.
        let (got, _) = records(
            format!(r#"{{"Records":[{}]}}"#, deep(120)).as_bytes(),
            ReadLimits::default(),
        );
        assert!(got[0].is_ok());
        // The same in JSON lines and arrays, and inside a single event.
        let lines = format!("{{\"a\":1}}\n{}\n{{\"a\":3}}\n", deep(1000));
        let (got, stats) = records(lines.as_bytes(), ReadLimits::default());
        assert_eq!(stats.unwrap().skipped, 1);
        assert!(got[0].is_ok() && got[1].is_err() && got[2].is_ok());
        let array = format!("[{},{{\"a\":2}}]", deep(1000));
        let (got, _) = records(array.as_bytes(), ReadLimits::default());
        assert_eq!(got[0].as_ref().unwrap_err().record, 1);
        assert!(got[1].is_ok());
        let records_object = format!(r#"{{"Records":{{"x":{}}}}}"#, deep(1000));
        let (got, stats) = records(records_object.as_bytes(), ReadLimits::default());
        assert_eq!((got.len(), stats.unwrap().skipped), (1, 1));
    }

    #[test]
    fn invalid_json_inside_a_record_is_one_bad_record() {
        // Split from a log file: the record's brackets balance, so only it is bad.
        let file = br#"{"Records":[{"eventName":"A"},{"eventName": nope},{"eventName":"C"}]}"#;
        let (got, result) = records(file, ReadLimits::default());
        let stats = result.unwrap();
        assert_eq!((stats.events, stats.skipped), (2, 1));
        assert_eq!(got[1].as_ref().unwrap_err().record, 2);
        assert_eq!(got[2].as_ref().unwrap()["eventName"], "C");
    }

    #[test]
    fn broken_structure_after_a_record_keeps_the_records_before() {
        for file in [
            &br#"{"Records":[{"eventName":"A"},{"eventName":"B"} {"eventName":"C"}]}"#[..],
            br#"[{"eventName":"A"},{"eventName":"B"},{"eventName": nope}]"#,
        ] {
            let (got, result) = records(file, ReadLimits::default());
            assert_eq!(got.len(), 2, "{}", String::from_utf8_lossy(file));
            match result {
                Err(DecodeError::Format { records, message }) => {
                    assert_eq!(records, 2);
                    assert!(!message.is_empty());
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// A gzip of `members` copies of one member: `prefix`, then `len` bytes
    /// of `a` (the bomb: a few KB that decompress to `members * len`).
    fn bomb(prefix: &str, len: usize, members: usize) -> Vec<u8> {
        let mut first = prefix.as_bytes().to_vec();
        first.extend(std::iter::repeat_n(b'a', len));
        let mut out = gzip(&first);
        let rest = gzip(&vec![b'a'; len]);
        for _ in 1..members {
            out.extend_from_slice(&rest);
        }
        out
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_limits() {
        let limits = ReadLimits {
            file_bytes: 8 << 20,
            record_bytes: 64 << 10,
        };
        // One string record of 64 MB: refused at the record's limit.
        let file = bomb(r#"{"Records":[{"eventName":"A"},{"x":""#, 1 << 20, 64);
        assert!(file.len() * 100 < 64 << 20, "{}", file.len());
        let (got, result) = records(&file, limits);
        assert_eq!(got.len(), 1);
        match result {
            Err(DecodeError::TooLarge(LimitExceeded::Record { record, limit })) => {
                assert_eq!((record, limit), (2, 64 << 10));
            }
            other => panic!("{other:?}"),
        }
        // Many small records: refused at the file's limit, having read no more.
        let mut big = br#"{"Records":["#.to_vec();
        let one = br#"{"eventName":"A","p":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"#;
        let mut n = 0;
        while big.len() < 9 << 20 {
            big.extend_from_slice(one);
            n += 1;
        }
        big.extend_from_slice(br#"{"eventName":"Z"}]}"#);
        let (got, result) = records(&gzip(&big), limits);
        assert!(matches!(
            result,
            Err(DecodeError::TooLarge(LimitExceeded::File { limit })) if limit == 8 << 20
        ));
        assert!(got.len() as u64 * one.len() as u64 <= 8 << 20);
        // Within the default limits the same file reads to its end.
        let (got, result) = records(&gzip(&big), ReadLimits::default());
        assert_eq!(result.unwrap().events, n + 1);
        assert_eq!(got.len() as u64, n + 1);
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

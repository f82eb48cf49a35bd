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
//! works while the next records are parsed. Records cross in batches of up
//! to `BATCH_RECORDS` (one wake-up of the consumer a batch, not a record);
//! at most `CHANNEL_CAPACITY` batches, and about `IN_FLIGHT_BYTES` of
//! records, are in flight.
//!
//! [`input`] reads the same forms whole, from files and folders.

pub mod input;
mod limits;
mod split;
mod visit;

use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use serde::de::DeserializeSeed;
use serde_json::Value;
use tokio::io::AsyncRead;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::detect::Prefilter;
use limits::{Capped, Progress};
pub use limits::{LimitExceeded, ReadLimits, DEFAULT_FILE_BYTES, DEFAULT_RECORD_BYTES};
use visit::{Sink, TopLevel};

/// Batches parsed ahead of the pipeline, at most.
const CHANNEL_CAPACITY: usize = 4;

/// Records a batch holds at most: enough that handing over costs little
/// beside parsing (a wake-up and a permit per record cost about as much as
/// the prefilter's scan), few enough that the consumer starts early.
const BATCH_RECORDS: usize = 32;

/// A batch is handed over once its records' raw bytes reach this, so a few
/// large records do not wait for more.
const BATCH_BYTES: usize = 256 << 10;

/// Raw bytes of the records parsed ahead of the pipeline, about, at most: a
/// parsed record takes a few times its text, so this keeps the records in
/// flight to tens of MB whatever their size.
const IN_FLIGHT_BYTES: usize = 4 << 20;

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
    stream_counted(reader, limits, &Counters::default(), None, emit)
}

/// [`stream_records`] handing over only the records `filter` admits (the
/// others are counted in [`StreamStats::filtered`], never parsed).
pub fn stream_filtered<R: Read>(
    reader: R,
    limits: ReadLimits,
    filter: &Prefilter,
    emit: &mut dyn FnMut(Record, usize) -> bool,
) -> Result<StreamStats, DecodeError> {
    stream_counted(reader, limits, &Counters::default(), Some(filter), emit)
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
/// `emit` gets each record and the length of its text.
fn stream_counted<R: Read>(
    reader: R,
    limits: ReadLimits,
    counters: &Counters,
    filter: Option<&Prefilter>,
    emit: &mut dyn FnMut(Record, usize) -> bool,
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
            capped(Decompressed::Gzip(MultiGzDecoder::new(raw))),
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
    Gzip(MultiGzDecoder<R>),
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

/// Records on their way, holding their share of [`IN_FLIGHT_BYTES`].
type InFlight = (Vec<Record>, OwnedSemaphorePermit);

/// Events parsed on a blocking thread, handed over in batches.
///
/// Dropping the stream (or calling [`EventStream::finish`] early) stops the
/// reader at its next record.
pub struct EventStream {
    rx: mpsc::Receiver<InFlight>,
    /// The batch being taken, and its permit (released when it is used up).
    current: std::vec::IntoIter<Record>,
    share: Option<OwnedSemaphorePermit>,
    reader: tokio::task::JoinHandle<Result<StreamStats, DecodeError>>,
    counters: Arc<Counters>,
    /// Tells the reader the consumer has gone, however the stream ends.
    _closer: Closer,
}

/// Sets [`Counters::closed`] when dropped: the reader then stops at its next
/// record, even one the consumer would never have seen.
struct Closer(Arc<Counters>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Relaxed);
    }
}

/// The reader's side of the channel: gathers records into a batch and sends
/// it, within the byte budget, when it is full.
struct Batcher {
    tx: mpsc::Sender<InFlight>,
    budget: Arc<Semaphore>,
    runtime: tokio::runtime::Handle,
    records: Vec<Record>,
    bytes: usize,
}

impl Batcher {
    /// Adds a record of `len` raw bytes; false once the consumer has gone.
    fn push(&mut self, record: Record, len: usize) -> bool {
        self.records.push(record);
        self.bytes += len.max(1);
        if self.records.len() < BATCH_RECORDS && self.bytes < BATCH_BYTES {
            return true;
        }
        self.send()
    }

    /// Sends what is gathered (nothing to send is a success).
    fn send(&mut self) -> bool {
        if self.records.is_empty() {
            return true;
        }
        let share = u32::try_from(self.bytes.min(IN_FLIGHT_BYTES)).unwrap_or(u32::MAX);
        self.bytes = 0;
        let records = std::mem::replace(&mut self.records, Vec::with_capacity(BATCH_RECORDS));
        match self
            .runtime
            .block_on(self.budget.clone().acquire_many_owned(share))
        {
            Ok(permit) => self.tx.blocking_send((records, permit)).is_ok(),
            Err(_) => false,
        }
    }
}

impl EventStream {
    /// Reads `reader` (see [`stream_events`]) on a blocking thread, within
    /// the default limits. Call from within a Tokio runtime.
    pub fn spawn<R: Read + Send + 'static>(reader: R) -> EventStream {
        EventStream::spawn_limited(reader, ReadLimits::default())
    }

    /// [`EventStream::spawn`] within `limits`.
    pub fn spawn_limited<R: Read + Send + 'static>(reader: R, limits: ReadLimits) -> EventStream {
        EventStream::spawn_filtered(reader, limits, None)
    }

    /// [`EventStream::spawn_limited`], handing over only the records
    /// `filter` admits (see [`stream_filtered`]).
    pub fn spawn_filtered<R: Read + Send + 'static>(
        reader: R,
        limits: ReadLimits,
        filter: Option<Arc<Prefilter>>,
    ) -> EventStream {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let counters = Arc::new(Counters::default());
        let counter = counters.clone();
        let mut batcher = Batcher {
            tx,
            budget: Arc::new(Semaphore::new(IN_FLIGHT_BYTES)),
            runtime: tokio::runtime::Handle::current(),
            records: Vec::with_capacity(BATCH_RECORDS),
            bytes: 0,
        };
        let reader = tokio::task::spawn_blocking(move || {
            let mut emit = |record: Record, len: usize| batcher.push(record, len);
            let stats = stream_counted(reader, limits, &counter, filter.as_deref(), &mut emit);
            // The records read before an error are handed over too.
            batcher.send();
            stats
        });
        EventStream {
            rx,
            current: Vec::new().into_iter(),
            share: None,
            reader,
            _closer: Closer(counters.clone()),
            counters,
        }
    }

    /// Reads an async source (an S3 object body) through
    /// [`tokio_util::io::SyncIoBridge`] on the blocking thread.
    pub fn from_async<R: AsyncRead + Send + 'static>(reader: R) -> EventStream {
        EventStream::from_async_limited(reader, ReadLimits::default())
    }

    /// [`EventStream::from_async`] within `limits`.
    pub fn from_async_limited<R: AsyncRead + Send + 'static>(
        reader: R,
        limits: ReadLimits,
    ) -> EventStream {
        EventStream::from_async_filtered(reader, limits, None)
    }

    /// [`EventStream::from_async_limited`] with a prefilter.
    pub fn from_async_filtered<R: AsyncRead + Send + 'static>(
        reader: R,
        limits: ReadLimits,
        filter: Option<Arc<Prefilter>>,
    ) -> EventStream {
        let bridge = tokio_util::io::SyncIoBridge::new(Box::pin(reader));
        EventStream::spawn_filtered(bridge, limits, filter)
    }

    /// The next record, or `None` at the end (or when reading failed:
    /// [`EventStream::finish`] says which).
    pub async fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(record) = self.current.next() {
                return Some(record);
            }
            self.share = None;
            let (batch, share) = self.rx.recv().await?;
            self.current = batch.into_iter();
            self.share = Some(share);
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.counters.bytes.load(Ordering::Relaxed)
    }

    /// Records the prefilter left out so far.
    pub fn filtered(&self) -> u64 {
        self.counters.filtered.load(Ordering::Relaxed)
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

    #[test]
    fn a_record_nested_too_deeply_is_skipped_and_the_rest_is_read() {
        for depth in [200, 100_000] {
            let file = format!(
                r#"{{"Records":[{{"eventName":"A"}},{},{{"eventName":"C"}}]}}"#,
                deep(depth)
            );
            let (got, stats) = records(file.as_bytes(), ReadLimits::default());
            let stats = stats.unwrap();
            assert_eq!((stats.events, stats.skipped), (2, 1));
            assert_eq!(got[0].as_ref().unwrap()["eventName"], "A");
            let bad = got[1].as_ref().unwrap_err();
            assert_eq!(bad.record, 2);
            assert!(bad.to_string().contains("recursion limit"), "{bad}");
            assert_eq!(got[2].as_ref().unwrap()["eventName"], "C");
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

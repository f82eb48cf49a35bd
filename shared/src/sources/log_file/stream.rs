//! [`EventStream`]: the records of a stream read on a blocking thread and
//! handed to the async side in batches, within a byte budget.
//!
//! Records split from a log file cross as text and are parsed by
//! [`EventStream::next`], on the consumer's thread: the reader thread only
//! decompresses, splits and screens, and a parsed record is allocated and
//! freed on one thread (freeing on another thread contends for the
//! allocator's lock). Records read any other way cross parsed.

use std::io::Read;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::AsyncRead;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::visit::{parse_record, Item};
use super::{stream_counted, Counters, DecodeError, ReadLimits, Record, StreamStats};
use crate::detect::Prefilter;

/// Batches read ahead of the pipeline, at most.
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

/// Records on their way, holding their share of [`IN_FLIGHT_BYTES`].
type InFlight = (Batch, OwnedSemaphorePermit);

/// Records crossing together: parsed, or ranges of `text`.
struct Batch {
    text: Vec<u8>,
    items: Vec<Pending>,
}

/// One record of a [`Batch`].
enum Pending {
    Parsed(Record),
    /// A record's bytes in the batch's text, and its number in the file.
    Text {
        range: Range<usize>,
        record: u64,
    },
}

impl Batch {
    fn empty() -> Batch {
        Batch {
            text: Vec::new(),
            items: Vec::with_capacity(BATCH_RECORDS),
        }
    }

    fn push(&mut self, item: Item<'_>) {
        let pending = match item {
            Item::Parsed(record) => Pending::Parsed(record),
            Item::Text { bytes, record } => {
                let start = self.text.len();
                self.text.extend_from_slice(bytes);
                Pending::Text {
                    range: start..self.text.len(),
                    record,
                }
            }
        };
        self.items.push(pending);
    }
}

/// Events read on a blocking thread and handed over in batches; a log
/// file's records cross as text and are parsed by [`EventStream::next`].
///
/// Dropping the stream (or calling [`EventStream::finish`] early) stops the
/// reader at its next record.
pub struct EventStream {
    rx: mpsc::Receiver<InFlight>,
    /// The batch being taken (its text, and what is left of its records),
    /// and its permit (released when it is used up).
    text: Vec<u8>,
    current: std::vec::IntoIter<Pending>,
    share: Option<OwnedSemaphorePermit>,
    /// Records that crossed as text and failed to parse here: the reader
    /// counted them as events.
    unparsable: u64,
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
    batch: Batch,
    bytes: usize,
}

impl Batcher {
    /// Adds a record of `len` raw bytes; false once the consumer has gone.
    fn push(&mut self, item: Item<'_>, len: usize) -> bool {
        self.batch.push(item);
        self.bytes += len.max(1);
        if self.batch.items.len() < BATCH_RECORDS && self.bytes < BATCH_BYTES {
            return true;
        }
        self.send()
    }

    /// Sends what is gathered (nothing to send is a success).
    fn send(&mut self) -> bool {
        if self.batch.items.is_empty() {
            return true;
        }
        let share = u32::try_from(self.bytes.min(IN_FLIGHT_BYTES)).unwrap_or(u32::MAX);
        self.bytes = 0;
        let batch = std::mem::replace(&mut self.batch, Batch::empty());
        match self
            .runtime
            .block_on(self.budget.clone().acquire_many_owned(share))
        {
            Ok(permit) => self.tx.blocking_send((batch, permit)).is_ok(),
            Err(_) => false,
        }
    }
}

impl EventStream {
    /// Reads `reader` (see [`super::stream_events`]) on a blocking thread, within
    /// the default limits. Call from within a Tokio runtime.
    pub fn spawn<R: Read + Send + 'static>(reader: R) -> EventStream {
        EventStream::spawn_limited(reader, ReadLimits::default())
    }

    /// [`EventStream::spawn`] within `limits`.
    pub fn spawn_limited<R: Read + Send + 'static>(reader: R, limits: ReadLimits) -> EventStream {
        EventStream::spawn_filtered(reader, limits, None)
    }

    /// [`EventStream::spawn_limited`], handing over only the records
    /// `filter` admits (see [`super::stream_filtered`]).
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
            batch: Batch::empty(),
            bytes: 0,
        };
        let reader = tokio::task::spawn_blocking(move || {
            let mut emit = |item: Item<'_>, len: usize| batcher.push(item, len);
            let filter = filter.as_deref();
            let stats = stream_counted(reader, limits, &counter, filter, true, &mut emit);
            // The records read before an error are handed over too.
            batcher.send();
            stats
        });
        EventStream {
            rx,
            text: Vec::new(),
            current: Vec::new().into_iter(),
            share: None,
            unparsable: 0,
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
            if let Some(pending) = self.current.next() {
                return Some(self.parse(pending));
            }
            self.share = None;
            let (batch, share) = self.rx.recv().await?;
            self.text = batch.text;
            self.current = batch.items.into_iter();
            self.share = Some(share);
        }
    }

    /// A record of the batch, parsed here if it crossed as text.
    fn parse(&mut self, pending: Pending) -> Record {
        match pending {
            Pending::Parsed(record) => record,
            Pending::Text { range, record } => {
                let parsed = parse_record(&self.text[range], record);
                self.unparsable += u64::from(parsed.is_err());
                parsed
            }
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
        let EventStream {
            rx,
            reader,
            unparsable,
            ..
        } = self;
        drop(rx);
        let mut stats = reader
            .await
            .map_err(|e| DecodeError::Reader(e.to_string()))??;
        stats.events -= unparsable;
        stats.skipped += unparsable;
        Ok(stats)
    }
}

//! How far a log file may decompress: per file and per record, counted on
//! the decompressed bytes as they are read, so a gzip bomb is refused after
//! reading at most the limit and never held in memory.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use crate::env::{ConfigError, Env};

/// The default cap on one file's decompressed size. Files are streamed, so
/// this bounds time, not memory: CloudTrail's files are a few to tens of MB.
pub const DEFAULT_FILE_BYTES: u64 = 512 << 20;
/// The default cap on one record: twice the largest event CloudTrail writes
/// (1 MB with `MaxEventSize` Large; 256 KB otherwise).
pub const DEFAULT_RECORD_BYTES: u64 = 2 << 20;
/// The smallest value either setting accepts.
const MIN_BYTES: u64 = 1024;

/// How much one file may decompress to (`VIGIL_LOG_FILE_MAX_BYTES`) and one
/// record may take (`VIGIL_LOG_RECORD_MAX_BYTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    pub file_bytes: u64,
    pub record_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits {
            file_bytes: DEFAULT_FILE_BYTES,
            record_bytes: DEFAULT_RECORD_BYTES,
        }
    }
}

impl ReadLimits {
    /// From `VIGIL_LOG_FILE_MAX_BYTES` and `VIGIL_LOG_RECORD_MAX_BYTES`.
    pub(crate) fn from_env(env: &Env) -> Result<ReadLimits, ConfigError> {
        Ok(ReadLimits {
            file_bytes: env.number("VIGIL_LOG_FILE_MAX_BYTES", DEFAULT_FILE_BYTES, MIN_BYTES)?,
            record_bytes: env.number(
                "VIGIL_LOG_RECORD_MAX_BYTES",
                DEFAULT_RECORD_BYTES,
                MIN_BYTES,
            )?,
        })
    }
}

/// The limit a file went over: the file is refused, because what follows
/// the excess cannot be read without holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("decompresses to more than {limit} bytes (VIGIL_LOG_FILE_MAX_BYTES)")]
    File { limit: u64 },
    #[error("record {record} is larger than {limit} bytes (VIGIL_LOG_RECORD_MAX_BYTES)")]
    Record { record: u64, limit: u64 },
}

/// Where the reader is, shared by the decompressed reader ([`Capped`]) and
/// the parser that tells it where each record starts (one thread).
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Decompressed bytes read.
    pub(super) read: Cell<u64>,
    /// Where the record being read started (in `read`), while one is read.
    pub(super) record_start: Cell<Option<u64>>,
    /// The number of the record being read (1-based).
    pub(super) record: Cell<u64>,
    /// The limit a read went over, once it did.
    pub(super) exceeded: Cell<Option<LimitExceeded>>,
}

impl Progress {
    /// The next bytes read belong to record `record`.
    pub(super) fn start_record(&self, record: u64) {
        self.record.set(record);
        self.record_start.set(Some(self.read.get()));
    }

    /// The bytes that follow belong to no record (they are skipped).
    pub(super) fn end_record(&self) {
        self.record_start.set(None);
    }

    /// Records that `limit` was exceeded; the error the parser unwinds with.
    pub(super) fn exceed(&self, limit: LimitExceeded) -> std::io::Error {
        self.exceeded.set(Some(limit));
        std::io::Error::other(limit)
    }
}

/// Decompressed bytes through a bound: a read past the file's limit, or
/// further than a record's limit (plus one buffer of read-ahead) past the
/// start of the record being read, fails. Like `Read::take`, but failing
/// loudly where `take` would end the input quietly.
pub(super) struct Capped<R> {
    pub(super) inner: R,
    pub(super) limits: ReadLimits,
    /// Bytes the layer above may have read ahead of the parser.
    pub(super) read_ahead: u64,
    pub(super) progress: Rc<Progress>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let before = self.progress.read.get();
        // Never ask for more than one byte past the file's limit.
        let room = (self.limits.file_bytes + 1).saturating_sub(before);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let read = before + n as u64;
        self.progress.read.set(read);
        if read > self.limits.file_bytes {
            return Err(self.progress.exceed(LimitExceeded::File {
                limit: self.limits.file_bytes,
            }));
        }
        if let Some(start) = self.progress.record_start.get() {
            if read - start > self.limits.record_bytes + self.read_ahead {
                return Err(self.progress.exceed(LimitExceeded::Record {
                    record: self.progress.record.get(),
                    limit: self.limits.record_bytes,
                }));
            }
        }
        Ok(n)
    }
}

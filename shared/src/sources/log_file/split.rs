//! The fast way through a CloudTrail log file: its `Records` array split
//! into one byte slice per record as the bytes arrive, each slice parsed
//! from memory (`serde_json::from_slice`, several times faster than its
//! byte-at-a-time `Read` path) or, when the prefilter says no rule can
//! match it, not parsed at all.
//!
//! The splitter only follows the structure (strings, escapes, brackets), so
//! a record whose JSON is wrong inside balanced brackets is one bad record
//! ([`super::BadRecord`]) and the records after it are read; a file whose
//! structure breaks (a missing comma, a truncated end) fails. Memory stays
//! flat: the buffer holds the record being split plus one read
//! ([`CHUNK`]), and a record longer than `ReadLimits::record_bytes` is
//! refused before it is held.
//!
//! Only files that start as CloudTrail writes them (`{"Records":[`) take
//! this path; anything else (arrays, JSON lines, single events, `Records`
//! after other keys) goes to the serde reader in the parent module, which
//! also reads whatever follows the log file's object.

use std::io::{BufReader, Cursor, Read};

use serde::de::IgnoredAny;

use super::visit::Sink;
use super::{DecodeError, BUFFER};

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;

/// The decompressed bytes, with the unconsumed part in `buf[pos..]`.
struct Bytes<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Bytes<R> {
    /// Reads one more chunk after dropping the consumed bytes; false at
    /// the end of the input.
    fn more(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(len + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The next byte that is not JSON whitespace, not consumed.
    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }

    /// Consumes `token` (after whitespace) if it comes next.
    fn eat(&mut self, token: &[u8]) -> std::io::Result<bool> {
        if self.peek()?.is_none() {
            return Ok(false);
        }
        while self.buf.len() - self.pos < token.len() {
            if !self.more()? {
                return Ok(false);
            }
        }
        let here = self.buf[self.pos..].starts_with(token);
        if here {
            self.pos += token.len();
        }
        Ok(here)
    }

    /// The end (an index into `buf`) of the value starting at `pos`, reading
    /// as needed; `Ok(None)` when the input ends first. A value longer than
    /// `limit` fails with `Err(None)`.
    fn value_end(&mut self, limit: u64) -> Result<Option<usize>, Option<std::io::Error>> {
        let mut scan = Scan::default();
        loop {
            if let Some(end) = scan.step(&self.buf[self.pos..]) {
                return Ok(Some(self.pos + end));
            }
            if scan.at as u64 > limit {
                return Err(None);
            }
            if !self.more().map_err(Some)? {
                // A number or literal may end with the input.
                let scalar = scan.depth == 0 && !scan.in_string && scan.at > 0;
                return Ok(scalar.then_some(self.buf.len()));
            }
        }
    }

    /// What is left, bytes already read first, for the serde reader.
    fn rest(mut self) -> impl Read {
        let tail = self.buf.split_off(self.pos);
        Cursor::new(tail).chain(self.inner)
    }
}

/// Where a value's scan is: resumable after more bytes arrive.
#[derive(Debug, Default)]
struct Scan {
    /// Bytes of the value scanned so far.
    at: usize,
    depth: u64,
    in_string: bool,
}

impl Scan {
    /// Scans `b` (the value's bytes so far) from where it stopped; the
    /// value's length once its end is in `b`.
    fn step(&mut self, b: &[u8]) -> Option<usize> {
        let mut i = self.at;
        while i < b.len() {
            if self.in_string {
                let Some(j) = memchr::memchr2(b'"', b'\\', &b[i..]) else {
                    i = b.len();
                    break;
                };
                i += j;
                if b[i] == b'\\' {
                    if i + 1 >= b.len() {
                        break; // The escaped byte is in the next read.
                    }
                    i += 2;
                    continue;
                }
                self.in_string = false;
                i += 1;
                if self.depth == 0 {
                    return Some(i);
                }
                continue;
            }
            match b[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth == 0 => return Some(i),
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                b',' | b' ' | b'\n' | b'\r' | b'\t' if self.depth == 0 => return Some(i),
                _ => {}
            }
            i += 1;
        }
        self.at = i;
        None
    }
}

/// How far into the file its `{"Records":[` is looked for.
const PREFIX_WINDOW: usize = 256;

/// Where the first record may start when `b` begins as a log file
/// (`{"Records":[`, with any whitespace between the tokens).
fn log_file_start(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    for token in [&b"{"[..], b"\"Records\"", b":", b"["] {
        while b
            .get(i)
            .is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
        {
            i += 1;
        }
        if !b.get(i..)?.starts_with(token) {
            return None;
        }
        i += token.len();
    }
    Some(i)
}

/// Reads `input` (decompressed, within its limits) into `sink`: a log file
/// by slices, anything else through the serde reader.
pub(super) fn parse_log<R: Read>(input: R, sink: &mut Sink<'_>) -> Result<(), DecodeError> {
    let mut b = Bytes {
        inner: input,
        buf: Vec::with_capacity(CHUNK),
        pos: 0,
        eof: false,
    };
    while b.buf.len() < PREFIX_WINDOW && b.more()? {}
    let Some(start) = log_file_start(&b.buf) else {
        let whole = Cursor::new(std::mem::take(&mut b.buf)).chain(b.inner);
        return super::parse(BufReader::with_capacity(BUFFER, whole), sink);
    };
    b.pos = start;
    // The log file's own object is not a record: its records are.
    sink.progress.end_record();
    records(&mut b, sink)?;
    sink.progress.end_record();
    other_members(&mut b, sink)?;
    // Whatever follows (more values, or nothing).
    super::parse(BufReader::with_capacity(BUFFER, b.rest()), sink)
}

fn format(sink: &Sink<'_>, message: &str) -> DecodeError {
    DecodeError::Format {
        records: sink.next_record() - 1,
        message: message.to_string(),
    }
}

/// A value's end, or why there is none.
fn value_end<R: Read>(b: &mut Bytes<R>, sink: &Sink<'_>, what: &str) -> Result<usize, DecodeError> {
    match b.value_end(sink.record_bytes) {
        Ok(Some(end)) if end > b.pos => Ok(end),
        Ok(_) => Err(format(sink, &format!("expected {what}"))),
        Err(Some(io)) => Err(DecodeError::Io(io)),
        Err(None) => Err(sink.too_large()),
    }
}

/// The elements of `Records`, each a record, through the closing `]`.
fn records<R: Read>(b: &mut Bytes<R>, sink: &mut Sink<'_>) -> Result<(), DecodeError> {
    if b.peek()? == Some(b']') {
        b.pos += 1;
        return Ok(());
    }
    loop {
        if b.peek()?.is_none() {
            return Err(format(sink, "the Records array is not closed"));
        }
        sink.start_record();
        let end = value_end(b, sink, "a record")?;
        sink.slice(&b.buf[b.pos..end])
            .map_err(|e: serde_json::Error| format(sink, &e.to_string()))?;
        b.pos = end;
        match b.peek()? {
            Some(b',') => b.pos += 1,
            Some(b']') => {
                b.pos += 1;
                return Ok(());
            }
            _ => return Err(format(sink, "expected `,` or `]` after a record")),
        }
    }
}

/// Members of the log file's object after `Records`: checked as JSON and
/// dropped, as the serde reader does; through the closing `}`.
fn other_members<R: Read>(b: &mut Bytes<R>, sink: &mut Sink<'_>) -> Result<(), DecodeError> {
    loop {
        match b.peek()? {
            Some(b'}') => {
                b.pos += 1;
                return Ok(());
            }
            Some(b',') => b.pos += 1,
            _ => return Err(format(sink, "expected `,` or `}` after Records")),
        }
        for part in ["a key", "a value"] {
            if part == "a value" && !b.eat(b":")? {
                return Err(format(sink, "expected `:`"));
            }
            if b.peek()?.is_none() {
                return Err(format(sink, &format!("expected {part}")));
            }
            let end = value_end(b, sink, part)?;
            serde_json::from_slice::<IgnoredAny>(&b.buf[b.pos..end])
                .map_err(|e| format(sink, &e.to_string()))?;
            b.pos = end;
        }
    }
}

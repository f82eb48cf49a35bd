//! The serde visitors that walk a stream of JSON values and hand over each
//! event on its own.
//!
//! Every event is captured as raw text first (`Box<RawValue>`: serde_json
//! skips a value iteratively, with no recursion limit and no stack growth)
//! and then parsed alone, with serde_json's recursion limit (128). A record
//! nested too deeply, or otherwise unreadable as a value, is then one bad
//! record ([`BadRecord`]), not the end of the file.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::limits::{LimitExceeded, Progress};
use super::{BadRecord, DecodeError, Record};
use crate::detect::{Prefilter, Screen};

/// A record handed over: parsed, or (when the sink defers) the bytes of a
/// record split from a log file, for the consumer to parse.
pub(super) enum Item<'b> {
    Parsed(Record),
    Text { bytes: &'b [u8], record: u64 },
}

/// Parses one record's bytes; `record` is its number in the file.
pub(super) fn parse_record(bytes: &[u8], record: u64) -> Record {
    serde_json::from_slice::<Value>(bytes).map_err(|error| BadRecord { record, error })
}

/// Where events go, and what went there.
pub(super) struct Sink<'a> {
    pub(super) emit: &'a mut dyn FnMut(Item<'_>, usize) -> bool,
    /// Hand records split from a log file over as bytes, unparsed: the
    /// consumer parses them on its own thread (so a record is allocated and
    /// freed on one thread, and the reader only splits and screens). Such a
    /// record counts as an event here even if it later fails to parse.
    pub(super) defer: bool,
    /// Events handed over.
    pub(super) events: u64,
    /// Records that could not be read, handed over as [`BadRecord`]s.
    pub(super) skipped: u64,
    pub(super) stopped: bool,
    pub(super) progress: Rc<Progress>,
    pub(super) record_bytes: u64,
    /// Records no loaded rule can match are counted here, not parsed.
    pub(super) filter: Option<&'a Prefilter>,
    /// Records the filter left out (also added to `filtered_total`, which
    /// another thread may read while the file is read).
    pub(super) filtered: u64,
    pub(super) filtered_total: &'a AtomicU64,
    /// Whether the consumer has gone (checked on records it never sees).
    pub(super) cancelled: &'a dyn Fn() -> bool,
}

impl Sink<'_> {
    /// The number (1-based) of the next record in the file.
    pub(super) fn next_record(&self) -> u64 {
        self.events + self.skipped + self.filtered + 1
    }

    /// The bytes that follow are the next record.
    pub(super) fn start_record(&self) {
        self.progress.start_record(self.next_record());
    }

    /// One record's bytes, split from a log file (see `split`).
    pub(super) fn slice<E: de::Error>(&mut self, bytes: &[u8]) -> Result<(), E> {
        self.check_size(bytes.len())?;
        if self.skip(bytes)? {
            return Ok(());
        }
        let record = self.next_record();
        if self.defer {
            return self.hand_over(Item::Text { bytes, record }, true, bytes.len());
        }
        self.emit(parse_record(bytes, record), bytes.len())
    }

    /// Whether the prefilter leaves the record out (counted); fails when
    /// the consumer has gone.
    fn skip<E: de::Error>(&mut self, bytes: &[u8]) -> Result<bool, E> {
        let Some(filter) = self.filter else {
            return Ok(false);
        };
        if filter.screen(bytes) == Screen::Parse {
            return Ok(false);
        }
        if (self.cancelled)() {
            self.stopped = true;
            return Err(E::custom("consumer stopped"));
        }
        self.filtered += 1;
        self.filtered_total.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// The record being read is over its limit.
    pub(super) fn too_large(&self) -> DecodeError {
        DecodeError::Io(self.progress.exceed(LimitExceeded::Record {
            record: self.next_record(),
            limit: self.record_bytes,
        }))
    }

    /// One event, captured whole.
    fn raw<E: de::Error>(&mut self, raw: Box<RawValue>) -> Result<(), E> {
        let len = raw.get().len();
        self.check_size(len)?;
        if self.skip(raw.get().as_bytes())? {
            return Ok(());
        }
        let record = self.next_record();
        let parsed =
            serde_json::from_str::<Value>(raw.get()).map_err(|error| BadRecord { record, error });
        drop(raw);
        self.emit(parsed, len)
    }

    /// One event whose members were captured one by one.
    fn members<E: de::Error>(&mut self, members: Vec<(String, Box<RawValue>)>) -> Result<(), E> {
        let len = members.iter().map(|(k, v)| k.len() + v.get().len()).sum();
        self.check_size(len)?;
        let record = self.next_record();
        let mut event = serde_json::Map::new();
        for (key, raw) in members {
            match serde_json::from_str::<Value>(raw.get()) {
                Ok(v) => {
                    event.insert(key, v);
                }
                Err(error) => return self.emit(Err(BadRecord { record, error }), len),
            }
        }
        self.emit(Ok(Value::Object(event)), len)
    }

    fn check_size<E: de::Error>(&self, len: usize) -> Result<(), E> {
        if len as u64 <= self.record_bytes {
            return Ok(());
        }
        Err(E::custom(self.progress.exceed(LimitExceeded::Record {
            record: self.next_record(),
            limit: self.record_bytes,
        })))
    }

    fn emit<E: de::Error>(&mut self, record: Record, len: usize) -> Result<(), E> {
        let good = record.is_ok();
        self.hand_over(Item::Parsed(record), good, len)
    }

    /// Counts `item` (an event when `good`, else a skipped record) and
    /// hands it over.
    fn hand_over<E: de::Error>(&mut self, item: Item<'_>, good: bool, len: usize) -> Result<(), E> {
        match good {
            true => self.events += 1,
            false => self.skipped += 1,
        }
        if (self.emit)(item, len) {
            return Ok(());
        }
        // Unwind the parser; the caller sees `stopped` and reports a clean
        // early stop rather than this error.
        match good {
            true => self.events -= 1,
            false => self.skipped -= 1,
        }
        self.stopped = true;
        Err(E::custom("consumer stopped"))
    }

    /// Every element of an array, each an event.
    fn elements<'de, A: SeqAccess<'de>>(&mut self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.start_record();
            match seq.next_element::<Box<RawValue>>()? {
                Some(raw) => self.raw(raw)?,
                None => break,
            }
        }
        self.progress.end_record();
        Ok(())
    }
}

/// One top-level JSON value: a log file, an event or an array of events.
pub(super) struct TopLevel<'s, 'a>(pub(super) &'s mut Sink<'a>);

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

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.elements(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A log file streams its `Records` (the other keys are dropped); any
        // other object is one event, its members captured as they come.
        let mut members = Vec::new();
        let mut streamed = false;
        while let Some(key) = map.next_key::<String>()? {
            if streamed {
                map.next_value::<IgnoredAny>()?;
            } else if key == "Records" {
                match map.next_value_seed(Records(&mut *self.0))? {
                    None => {
                        streamed = true;
                        members = Vec::new();
                    }
                    Some(other) => members.push((key, other)),
                }
            } else {
                members.push((key, map.next_value::<Box<RawValue>>()?));
            }
        }
        match streamed {
            true => Ok(()),
            false => self.0.members(members),
        }
    }
}

/// The value of a `Records` key: streamed when it is an array (`None`),
/// returned as text otherwise.
struct Records<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for Records<'_, '_> {
    type Value = Option<Box<RawValue>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Records<'_, '_> {
    fn text<E: de::Error>(v: impl serde::Serialize) -> Result<Option<Box<RawValue>>, E> {
        serde_json::value::to_raw_value(&v)
            .map(Some)
            .map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for Records<'_, '_> {
    type Value = Option<Box<RawValue>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let sink = self.0;
        // The log file's own object is not a record: its records are.
        sink.progress.end_record();
        sink.elements(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Not a log file: an object member of one event, kept as text (and
        // parsed, with the recursion limit, with the rest of the event).
        let mut text = String::from("{");
        while let Some(key) = map.next_key::<String>()? {
            let raw = map.next_value::<Box<RawValue>>()?;
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(&key).map_err(de::Error::custom)?);
            text.push(':');
            text.push_str(raw.get());
        }
        text.push('}');
        RawValue::from_string(text)
            .map(Some)
            .map_err(de::Error::custom)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Self::text(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::text(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::text(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Self::text(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Self::text(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Self::text(Value::Null)
    }
}

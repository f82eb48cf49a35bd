//! Where dedup state lives: one narrow trait per kind of record, each
//! implemented on DynamoDB ([`super::DynamoStore`]) and in memory
//! ([`super::MemoryStore`]). Keys are prefixed by kind (`fp#`, `storm#`,
//! `idem#`), so one table can hold everything.
//!
//! Every method must treat a record past its `expiration` as absent: TTL
//! deletion lags by up to 48 hours.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::storm::{ResourceSlot, StormCounters, StormEntry};

/// Why a state operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The record changed since it was read (optimistic concurrency), or a
    /// condition did not hold: read again and retry.
    #[error("state record {key} changed concurrently")]
    Conflict { key: String },
    /// The store could not be reached or refused the request.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// A record that cannot be read back (written by something else).
    #[error("state record {key} unreadable: {message}")]
    Corrupt { key: String, message: String },
}

/// Boxed future, so stores can be held as trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A versioned state record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The state as JSON (fingerprint records: `FingerprintState`).
    pub state: String,
    pub version: u64,
}

/// Fingerprint records (`fp#`), read and written with optimistic concurrency.
pub trait FingerprintStore: Send + Sync + std::fmt::Debug {
    /// Reads a versioned record.
    fn load<'a>(&'a self, key: &'a str, now: i64) -> StoreFuture<'a, Option<Versioned>>;

    /// Writes `state` if the stored version is still `expected` (None: no
    /// live record). Fails with [`StoreError::Conflict`] otherwise.
    fn save<'a>(
        &'a self,
        key: &'a str,
        state: &'a str,
        expected: Option<u64>,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'a, ()>;
}

/// A storm record after one alert was counted into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StormCount {
    /// Non-critical alerts counted so far, this one included.
    pub position: u64,
    /// Whether the storm is listed in its index record (see [`StormStore::index`]).
    pub indexed: bool,
}

/// Storm records (`storm#<window>#<kind>`): atomic counters only, so
/// concurrent invocations never conflict; and their index records
/// (`stormidx#<hour>`: the storms started in that hour that may still owe a
/// final summary), which the sweep reads by key.
pub trait StormStore: Send + Sync + std::fmt::Debug {
    /// Counts one alert into a storm; returns the storm's count of
    /// non-critical alerts after it (critical ones are counted apart and
    /// leave it unchanged) and whether it is indexed.
    fn count<'a>(
        &'a self,
        key: &'a str,
        critical: bool,
        expires_at: i64,
    ) -> StoreFuture<'a, StormCount>;

    /// Lists the storm `key` in the index record `index` (a set: adding
    /// twice is harmless), then marks the storm indexed.
    fn index<'a>(&'a self, index: &'a str, key: &'a str, expires_at: i64) -> StoreFuture<'a, ()>;

    /// The storm keys an index record lists (none when it is absent or expired).
    fn indexed<'a>(&'a self, index: &'a str, now: i64) -> StoreFuture<'a, Vec<String>>;

    /// Takes a storm that owes no summary any more off its index record.
    fn unindex<'a>(&'a self, index: &'a str, key: &'a str) -> StoreFuture<'a, ()>;

    /// Adds an aggregated finding to a storm window's breakdowns. With
    /// [`ResourceSlot::TrackIfKnown`], fails with [`StoreError::Conflict`]
    /// when the resource is not tracked yet (the caller then counts it as
    /// [`ResourceSlot::Other`]), which bounds the record's size.
    fn add<'a>(
        &'a self,
        key: &'a str,
        entry: &'a StormEntry,
        slot: ResourceSlot<'a>,
    ) -> StoreFuture<'a, ()>;

    /// Reads a storm window's counters (strongly consistent).
    fn read<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StormCounters>>;

    /// Claims the right to summarize a storm window up to `replaced` alerts.
    /// Returns the previously summarized count, or None when someone else
    /// already summarized as much.
    fn claim<'a>(&'a self, key: &'a str, replaced: u64) -> StoreFuture<'a, Option<u64>>;

    /// Gives a claim back after the summary could not be sent.
    fn unclaim<'a>(&'a self, key: &'a str, claimed: u64, previous: u64) -> StoreFuture<'a, ()>;
}

/// What the store found for an event id.
#[derive(Debug, Clone, PartialEq)]
pub enum BeginOutcome {
    /// Recorded as in progress: process it.
    Started,
    /// Already processed; the stored result (JSON).
    Complete(String),
    /// Another invocation is processing it now.
    InProgress,
}

/// Idempotency records (`idem#`), one per EventBridge event id.
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Records an event as in progress unless a live record exists.
    fn begin<'a>(
        &'a self,
        key: &'a str,
        now_ms: i64,
        expires_at: i64,
        in_progress_until_ms: i64,
    ) -> StoreFuture<'a, BeginOutcome>;

    /// Marks an event complete with its result.
    fn complete<'a>(
        &'a self,
        key: &'a str,
        result: &'a str,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;

    /// Deletes the record so a retry can run.
    fn forget<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
}

/// The stores the dedup stage tracks fingerprints and storms in.
#[derive(Debug, Clone)]
pub struct StateStores {
    pub(super) fingerprints: Arc<dyn FingerprintStore>,
    pub(super) storms: Arc<dyn StormStore>,
}

impl StateStores {
    /// Both kinds of record in one store (one table, or one memory store).
    pub fn new<S: FingerprintStore + StormStore + 'static>(store: S) -> StateStores {
        let store = Arc::new(store);
        StateStores {
            fingerprints: store.clone(),
            storms: store,
        }
    }
}

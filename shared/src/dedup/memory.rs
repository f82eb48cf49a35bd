//! State in process memory: for `vigil replay` (suppression and storms as
//! deployed, within one run) and for tests, which can also make it fail.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::store::{
    BeginOutcome, FingerprintStore, IdempotencyStore, StoreError, StoreFuture, StormCount,
    StormStore, Versioned,
};
use super::storm::{ResourceSlot, StormCounters, StormEntry};

#[derive(Debug, Clone)]
struct Record {
    state: String,
    version: u64,
    expires_at: i64,
}

#[derive(Debug, Clone)]
struct IdemRecord {
    complete: bool,
    result: Option<String>,
    expires_at: i64,
    in_progress_until_ms: i64,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, Record>,
    storms: HashMap<String, StormCounters>,
    /// Index records: expiry and the storm keys listed.
    index: HashMap<String, (i64, BTreeSet<String>)>,
    /// Storms marked indexed.
    indexed: HashSet<String>,
    idem: HashMap<String, IdemRecord>,
}

/// Fingerprint, storm and idempotency records in memory. Clones share the
/// same state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    /// When set, every operation fails as an unreachable store would.
    down: Arc<AtomicBool>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Makes every operation fail (or work again), to test failing open.
    pub fn set_unavailable(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The raw state of a record, for tests.
    #[cfg(test)]
    pub(super) fn state_of(&self, key: &str) -> Option<String> {
        self.lock().records.get(key).map(|r| r.state.clone())
    }

    /// Whether an idempotency record exists (complete or not), for tests.
    #[cfg(test)]
    pub(super) fn has_idempotency_record(&self, key: &str) -> bool {
        self.lock().idem.contains_key(key)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(
                "memory store set unavailable".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn ready<'a, T: Send + 'a>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> StoreFuture<'a, T> {
        let result = self.check().and_then(|()| f(&mut self.lock()));
        Box::pin(async move { result })
    }
}

impl FingerprintStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a str, now: i64) -> StoreFuture<'a, Option<Versioned>> {
        self.ready(|inner| {
            Ok(inner
                .records
                .get(key)
                .filter(|r| r.expires_at >= now)
                .map(|r| Versioned {
                    state: r.state.clone(),
                    version: r.version,
                }))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        state: &'a str,
        expected: Option<u64>,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        self.ready(|inner| {
            let live = inner.records.get(key).filter(|r| r.expires_at >= now);
            let ok = match (expected, live) {
                (None, None) => true,
                (Some(v), Some(r)) => r.version == v,
                _ => false,
            };
            if !ok {
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                });
            }
            let version = live.map(|r| r.version + 1).unwrap_or(1);
            inner.records.insert(
                key.to_string(),
                Record {
                    state: state.to_string(),
                    version,
                    expires_at,
                },
            );
            Ok(())
        })
    }
}

impl StormStore for MemoryStore {
    fn count<'a>(
        &'a self,
        key: &'a str,
        critical: bool,
        _expires_at: i64,
    ) -> StoreFuture<'a, StormCount> {
        self.ready(|inner| {
            let c = inner.storms.entry(key.to_string()).or_default();
            if critical {
                c.critical += 1;
            } else {
                c.position += 1;
            }
            let position = c.position;
            Ok(StormCount {
                position,
                indexed: inner.indexed.contains(key),
            })
        })
    }

    fn index<'a>(&'a self, index: &'a str, key: &'a str, expires_at: i64) -> StoreFuture<'a, ()> {
        self.ready(|inner| {
            let (_, keys) = inner
                .index
                .entry(index.to_string())
                .or_insert_with(|| (expires_at, BTreeSet::new()));
            keys.insert(key.to_string());
            inner.indexed.insert(key.to_string());
            Ok(())
        })
    }

    fn indexed<'a>(&'a self, index: &'a str, now: i64) -> StoreFuture<'a, Vec<String>> {
        self.ready(|inner| {
            Ok(inner
                .index
                .get(index)
                .filter(|(expires_at, _)| *expires_at >= now)
                .map(|(_, keys)| keys.iter().cloned().collect())
                .unwrap_or_default())
        })
    }

    fn unindex<'a>(&'a self, index: &'a str, key: &'a str) -> StoreFuture<'a, ()> {
        self.ready(|inner| {
            if let Some((_, keys)) = inner.index.get_mut(index) {
                keys.remove(key);
            }
            Ok(())
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        entry: &'a StormEntry,
        slot: ResourceSlot<'a>,
    ) -> StoreFuture<'a, ()> {
        self.ready(|inner| {
            let c = inner.storms.entry(key.to_string()).or_default();
            if c.add(entry, slot) {
                Ok(())
            } else {
                Err(StoreError::Conflict {
                    key: key.to_string(),
                })
            }
        })
    }

    fn read<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StormCounters>> {
        self.ready(|inner| Ok(inner.storms.get(key).cloned()))
    }

    fn claim<'a>(&'a self, key: &'a str, replaced: u64) -> StoreFuture<'a, Option<u64>> {
        self.ready(|inner| {
            let Some(c) = inner.storms.get_mut(key) else {
                return Ok(None);
            };
            if c.summarized >= replaced {
                return Ok(None);
            }
            let previous = c.summarized;
            c.summarized = replaced;
            c.summaries += 1;
            Ok(Some(previous))
        })
    }

    fn unclaim<'a>(&'a self, key: &'a str, claimed: u64, previous: u64) -> StoreFuture<'a, ()> {
        self.ready(|inner| {
            if let Some(c) = inner.storms.get_mut(key) {
                if c.summarized == claimed {
                    c.summarized = previous;
                    c.summaries = c.summaries.saturating_sub(1);
                }
            }
            Ok(())
        })
    }
}

impl IdempotencyStore for MemoryStore {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        now_ms: i64,
        expires_at: i64,
        in_progress_until_ms: i64,
    ) -> StoreFuture<'a, BeginOutcome> {
        self.ready(|inner| {
            let now = now_ms.div_euclid(1000);
            // The same condition as the DynamoDB conditional put.
            let outcome = match inner.idem.get(key) {
                None => None,
                Some(r) if r.expires_at < now => None,
                Some(r) if !r.complete && r.in_progress_until_ms < now_ms => None,
                Some(r) if r.complete => Some(BeginOutcome::Complete(
                    r.result.clone().unwrap_or_else(|| "null".into()),
                )),
                Some(_) => Some(BeginOutcome::InProgress),
            };
            if let Some(o) = outcome {
                return Ok(o);
            }
            inner.idem.insert(
                key.to_string(),
                IdemRecord {
                    complete: false,
                    result: None,
                    expires_at,
                    in_progress_until_ms,
                },
            );
            Ok(BeginOutcome::Started)
        })
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        result: &'a str,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        self.ready(|inner| {
            inner.idem.insert(
                key.to_string(),
                IdemRecord {
                    complete: true,
                    result: Some(result.to_string()),
                    expires_at,
                    in_progress_until_ms: 0,
                },
            );
            Ok(())
        })
    }

    fn forget<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.ready(|inner| {
            inner.idem.remove(key);
            Ok(())
        })
    }
}

//! State in process memory: for `vigil replay` (suppression and storms as
//! deployed, within one run) and for tests, which can also make it fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::idempotency::BeginOutcome;
use super::storm::{ResourceSlot, StormCounters, StormEntry};
use super::{SlackThread, StateStore, StoreError, StoreFuture, Versioned};

#[derive(Debug, Clone)]
struct Record {
    state: String,
    /// 0: no dedup state yet, only the notifier's thread (as a DynamoDB item
    /// without `version`).
    version: u64,
    expires_at: i64,
    thread_ts: Option<String>,
    thread_channel: Option<String>,
    thread_origin: Option<String>,
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
    idem: HashMap<String, IdemRecord>,
}

/// A [`StateStore`] in memory. Clones share the same state.
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

    /// Stores a Slack thread id as the notifier would.
    pub fn set_thread_ts(&self, key: &str, thread_ts: &str) {
        if let Some(r) = self.lock().records.get_mut(key) {
            r.thread_ts = Some(thread_ts.to_string());
        }
    }

    /// The raw state of a record, for tests.
    pub fn state_of(&self, key: &str) -> Option<String> {
        self.lock()
            .records
            .get(key)
            .filter(|r| r.version > 0)
            .map(|r| r.state.clone())
    }

    /// Whether an idempotency record exists (complete or not), for tests.
    pub fn has_idempotency_record(&self, key: &str) -> bool {
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

impl StateStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn load<'a>(&'a self, key: &'a str, now: i64) -> StoreFuture<'a, Option<Versioned>> {
        self.ready(|inner| {
            Ok(inner
                .records
                .get(key)
                .filter(|r| r.expires_at >= now && r.version > 0)
                .map(|r| Versioned {
                    state: r.state.clone(),
                    version: r.version,
                    thread_ts: r.thread_ts.clone(),
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
            let current = inner.records.get(key);
            let live = current.filter(|r| r.expires_at >= now && r.version > 0);
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
            let thread_ts = current.and_then(|r| r.thread_ts.clone());
            let thread_channel = current.and_then(|r| r.thread_channel.clone());
            let thread_origin = current.and_then(|r| r.thread_origin.clone());
            inner.records.insert(
                key.to_string(),
                Record {
                    state: state.to_string(),
                    version,
                    expires_at,
                    thread_ts,
                    thread_channel,
                    thread_origin,
                },
            );
            Ok(())
        })
    }

    fn storm_count<'a>(
        &'a self,
        key: &'a str,
        critical: bool,
        _expires_at: i64,
    ) -> StoreFuture<'a, u64> {
        self.ready(|inner| {
            let c = inner.storms.entry(key.to_string()).or_default();
            if critical {
                c.critical += 1;
            } else {
                c.position += 1;
            }
            Ok(c.position)
        })
    }

    fn storm_add<'a>(
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

    fn storm_read<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StormCounters>> {
        self.ready(|inner| Ok(inner.storms.get(key).cloned()))
    }

    fn storm_claim<'a>(&'a self, key: &'a str, replaced: u64) -> StoreFuture<'a, Option<u64>> {
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

    fn storm_unclaim<'a>(
        &'a self,
        key: &'a str,
        claimed: u64,
        previous: u64,
    ) -> StoreFuture<'a, ()> {
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

    fn load_thread<'a>(&'a self, key: &'a str, now: i64) -> StoreFuture<'a, Option<SlackThread>> {
        self.ready(|inner| {
            Ok(inner
                .records
                .get(key)
                .filter(|r| r.expires_at >= now)
                .and_then(|r| {
                    Some(SlackThread {
                        ts: r.thread_ts.clone()?,
                        channel: r.thread_channel.clone(),
                        origin: r.thread_origin.clone(),
                    })
                }))
        })
    }

    fn save_thread<'a>(
        &'a self,
        key: &'a str,
        thread: &'a SlackThread,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        self.ready(|inner| {
            // The same as the DynamoDB UpdateItem: the thread's attributes,
            // and an expiry only for a new record.
            let r = inner.records.entry(key.to_string()).or_insert(Record {
                state: String::new(),
                version: 0,
                expires_at,
                thread_ts: None,
                thread_channel: None,
                thread_origin: None,
            });
            r.thread_ts = Some(thread.ts.clone());
            r.thread_channel = thread.channel.clone();
            r.thread_origin = thread.origin.clone();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(ts: &str, channel: Option<&str>) -> SlackThread {
        SlackThread {
            ts: ts.into(),
            channel: channel.map(str::to_string),
            origin: None,
        }
    }

    #[tokio::test]
    async fn a_thread_and_the_dedup_state_share_a_record_without_touching_each_other() {
        let store = MemoryStore::new();
        let key = "fp#abc";
        // The notifier first (no dedup state yet): the dedup stage still sees no record.
        store
            .save_thread(key, &thread("1.1", Some("C1")), 500)
            .await
            .unwrap();
        assert_eq!(store.load(key, 100).await.unwrap(), None);
        assert_eq!(store.state_of(key), None);
        store.save(key, "{}", None, 1000, 100).await.unwrap();
        let v = store.load(key, 100).await.unwrap().unwrap();
        assert_eq!((v.version, v.thread_ts.as_deref()), (1, Some("1.1")));
        // A newer thread replaces the old one; state, version and expiry stay.
        store
            .save_thread(key, &thread("2.2", Some("C2")), 9999)
            .await
            .unwrap();
        let v = store.load(key, 100).await.unwrap().unwrap();
        assert_eq!((v.state.as_str(), v.version), ("{}", 1));
        assert_eq!(
            store.load_thread(key, 100).await.unwrap(),
            Some(thread("2.2", Some("C2")))
        );
        // The dedup stage's next write keeps the thread.
        store
            .save(key, "{\"n\":2}", Some(1), 2000, 100)
            .await
            .unwrap();
        assert_eq!(
            store.load_thread(key, 100).await.unwrap(),
            Some(thread("2.2", Some("C2")))
        );
        // Past the record's expiry the thread is gone with it.
        assert_eq!(store.load_thread(key, 2001).await.unwrap(), None);
        assert_eq!(store.load_thread("fp#other", 100).await.unwrap(), None);
        store.set_unavailable(true);
        assert!(store.load_thread(key, 100).await.is_err());
        assert!(store.save_thread(key, &thread("3", None), 1).await.is_err());
    }
}

//! Where the Slack bot keeps each fingerprint's thread: on the fingerprint's
//! `fp#<fingerprint>` record in the state table, beside the dedup stage's
//! state, as the attributes `thread_ts`, `thread_channel` and
//! `thread_origin`. The notifier owns these attributes and the dedup stage
//! never writes them; neither touches the other's (see
//! [`crate::dedup::DynamoStore`] for the record's layout).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_dynamodb::Client;

use crate::dedup::table::{describe, expired, get_item, n, s, string};

/// The Slack message a fingerprint's later alerts reply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackThread {
    /// The top-level message's `ts`: replies pass it as `thread_ts`.
    pub ts: String,
    /// The channel id Slack answered with; replies must go to that channel.
    /// None for a thread stored without one.
    pub channel: Option<String>,
    /// The alert that started the thread (`thread_origin`), so a retried
    /// delivery of that same alert is recognised instead of posting its card
    /// a second time.
    pub origin: Option<String>,
}

/// Why a thread could not be read or stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ThreadStoreError {
    /// The store could not be reached or refused the request.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

/// Boxed future, so stores can be held as `Arc<dyn ThreadStore>`.
pub(crate) type ThreadFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ThreadStoreError>> + Send + 'a>>;

/// Where threads live, by fingerprint record key.
pub trait ThreadStore: Send + Sync {
    /// Short name for debugging output (`dynamodb`, `memory`).
    fn name(&self) -> &'static str;

    /// The Slack thread stored on a fingerprint record, if the record is live
    /// and has one (with or without dedup state).
    fn load<'a>(&'a self, key: &'a str, now: i64) -> ThreadFuture<'a, Option<SlackThread>>;

    /// Stores `thread` on a fingerprint record, creating the record if needed.
    /// Writes only the thread's attributes, never the dedup state or its
    /// version (so it cannot conflict with the dedup stage); a new record gets
    /// `expires_at`, an existing one keeps its expiry.
    fn save<'a>(
        &'a self,
        key: &'a str,
        thread: &'a SlackThread,
        expires_at: i64,
    ) -> ThreadFuture<'a, ()>;
}

/// Threads on the DynamoDB state table.
#[derive(Debug, Clone)]
pub struct DynamoThreads {
    client: Client,
    table: String,
}

impl DynamoThreads {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoThreads {
        DynamoThreads {
            client,
            table: table.into(),
        }
    }
}

impl ThreadStore for DynamoThreads {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    fn load<'a>(&'a self, key: &'a str, now: i64) -> ThreadFuture<'a, Option<SlackThread>> {
        Box::pin(async move {
            let item = get_item(&self.client, &self.table, key)
                .await
                .map_err(|e| ThreadStoreError::Unavailable(describe(&e)))?;
            let Some(item) = item.filter(|item| !expired(item, now)) else {
                return Ok(None);
            };
            Ok(string(&item, "thread_ts").map(|ts| SlackThread {
                ts,
                channel: string(&item, "thread_channel"),
                origin: string(&item, "thread_origin"),
            }))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        thread: &'a SlackThread,
        expires_at: i64,
    ) -> ThreadFuture<'a, ()> {
        Box::pin(async move {
            let mut req = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(key))
                .expression_attribute_names("#ts", "thread_ts")
                .expression_attribute_names("#channel", "thread_channel")
                .expression_attribute_names("#origin", "thread_origin")
                .expression_attribute_names("#exp", "expiration")
                .expression_attribute_values(":ts", s(&thread.ts))
                .expression_attribute_values(":exp", n(expires_at));
            // A new thread replaces every part of the old one: a missing channel
            // or origin must not pair with a stale one.
            let mut set = vec!["#ts = :ts", "#exp = if_not_exists(#exp, :exp)"];
            let mut remove = Vec::new();
            for (name, value, assignment, slot) in [
                (
                    "#channel",
                    ":channel",
                    "#channel = :channel",
                    &thread.channel,
                ),
                ("#origin", ":origin", "#origin = :origin", &thread.origin),
            ] {
                match slot {
                    Some(v) => {
                        req = req.expression_attribute_values(value, s(v));
                        set.push(assignment);
                    }
                    None => remove.push(name),
                }
            }
            let mut expression = format!("SET {}", set.join(", "));
            if !remove.is_empty() {
                expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
            }
            req.update_expression(expression)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ThreadStoreError::Unavailable(describe(&e)))
        })
    }
}

#[derive(Debug, Clone)]
struct Record {
    thread: SlackThread,
    expires_at: i64,
}

/// Threads in process memory, for tests, which can also make it fail.
/// Clones share the same threads.
#[derive(Debug, Clone, Default)]
pub struct MemoryThreads {
    records: Arc<Mutex<HashMap<String, Record>>>,
    /// When set, every operation fails as an unreachable store would.
    down: Arc<AtomicBool>,
}

impl MemoryThreads {
    pub fn new() -> MemoryThreads {
        MemoryThreads::default()
    }

    /// Makes every operation fail (or work again), to test failing open.
    pub fn set_unavailable(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ready<'a, T: Send + 'a>(
        &self,
        f: impl FnOnce(&mut HashMap<String, Record>) -> T,
    ) -> ThreadFuture<'a, T> {
        let result = if self.down.load(Ordering::SeqCst) {
            Err(ThreadStoreError::Unavailable(
                "memory store set unavailable".into(),
            ))
        } else {
            Ok(f(&mut self.lock()))
        };
        Box::pin(async move { result })
    }
}

impl ThreadStore for MemoryThreads {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn load<'a>(&'a self, key: &'a str, now: i64) -> ThreadFuture<'a, Option<SlackThread>> {
        self.ready(|records| {
            records
                .get(key)
                .filter(|r| r.expires_at >= now)
                .map(|r| r.thread.clone())
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        thread: &'a SlackThread,
        expires_at: i64,
    ) -> ThreadFuture<'a, ()> {
        self.ready(|records| {
            // The same as the DynamoDB UpdateItem: the thread's attributes,
            // and an expiry only for a new record.
            let expires_at = records.get(key).map_or(expires_at, |r| r.expires_at);
            records.insert(
                key.to_string(),
                Record {
                    thread: thread.clone(),
                    expires_at,
                },
            );
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
    async fn a_newer_thread_replaces_the_old_one_and_the_record_keeps_its_expiry() {
        let store = MemoryThreads::new();
        let key = "fp#abc";
        store
            .save(key, &thread("1.1", Some("C1")), 500)
            .await
            .unwrap();
        assert_eq!(
            store.load(key, 100).await.unwrap(),
            Some(thread("1.1", Some("C1")))
        );
        store.save(key, &thread("2.2", None), 9999).await.unwrap();
        assert_eq!(
            store.load(key, 100).await.unwrap(),
            Some(thread("2.2", None))
        );
        // Past the record's expiry the thread is gone with it.
        assert_eq!(store.load(key, 501).await.unwrap(), None);
        assert_eq!(store.load("fp#other", 100).await.unwrap(), None);
        store.set_unavailable(true);
        assert!(store.load(key, 100).await.is_err());
        assert!(store.save(key, &thread("3", None), 1).await.is_err());
    }
}

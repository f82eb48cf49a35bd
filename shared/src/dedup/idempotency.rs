//! The same EventBridge event id is processed once: the Powertools for AWS
//! Lambda DynamoDB design.
//!
//! Before processing, a conditional put records the event as `INPROGRESS`
//! (`id`, `expiration` in epoch seconds for the table's TTL, `status`,
//! `in_progress_expiration` in epoch milliseconds), succeeding only when
//! `attribute_not_exists(id) OR expiration < :now OR (status = INPROGRESS AND
//! in_progress_expiration < :now_ms)`. After success the record becomes
//! `COMPLETE` with the invocation's result, which a duplicate delivery gets
//! back without anything being alerted again. On failure the record is
//! deleted so the retry runs. TTL deletion lags by up to 48 hours, so expiry
//! is checked in code as well.
//!
//! A store failure fails open: the event is processed (a duplicate may then
//! alert twice, which the fingerprint window usually absorbs).

use std::sync::Arc;

use serde_json::Value;

use super::clock::Clock;
use super::store::{BeginOutcome, IdempotencyStore, StoreError};

/// How long an event stays "in progress" when the caller does not know the
/// invocation's deadline: past it, a crashed invocation's event can run again.
/// Longer than the template's function timeout (30 s), shorter than Lambda's
/// first async retry (about a minute).
const DEFAULT_IN_PROGRESS_MS: i64 = 45_000;

/// What to do with an event.
#[derive(Debug)]
pub enum Begin {
    /// Process it, then report through the guard.
    Proceed(IdempotencyGuard),
    /// Processed before: return this result, alert nothing.
    Duplicate(Value),
    /// Being processed by another invocation: fail this one so it is retried later.
    InProgress,
}

/// Idempotency over one store.
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    ttl_seconds: i64,
    clock: Clock,
}

/// The record of an event in progress; complete or release it.
#[derive(Debug)]
pub struct IdempotencyGuard {
    store: Arc<dyn IdempotencyStore>,
    key: String,
    expires_at: i64,
}

/// The state key of an event id.
fn key(event_id: &str) -> String {
    format!("idem#{event_id}")
}

impl Idempotency {
    pub(super) fn new(
        store: Arc<dyn IdempotencyStore>,
        ttl_seconds: i64,
        clock: Clock,
    ) -> Idempotency {
        Idempotency {
            store,
            ttl_seconds,
            clock,
        }
    }

    pub(super) fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Records `event_id` as in progress until `deadline_ms` (the Lambda
    /// invocation's deadline, epoch ms; `DEFAULT_IN_PROGRESS_MS` from now
    /// when unknown), or says why not to process it.
    pub(crate) async fn begin(
        &self,
        event_id: &str,
        deadline_ms: Option<i64>,
    ) -> Result<Begin, StoreError> {
        let now_ms = self.clock.now_ms();
        let now = now_ms.div_euclid(1000);
        let expires_at = now.saturating_add(self.ttl_seconds);
        let until = deadline_ms
            .filter(|d| *d > now_ms)
            .unwrap_or(now_ms + DEFAULT_IN_PROGRESS_MS);
        let key = key(event_id);
        match self.store.begin(&key, now_ms, expires_at, until).await? {
            BeginOutcome::Started => Ok(Begin::Proceed(IdempotencyGuard {
                store: self.store.clone(),
                key,
                expires_at,
            })),
            BeginOutcome::Complete(result) => Ok(Begin::Duplicate(
                serde_json::from_str(&result).unwrap_or(Value::Null),
            )),
            BeginOutcome::InProgress => Ok(Begin::InProgress),
        }
    }
}

impl IdempotencyGuard {
    /// Marks the event complete with `result`, returned to duplicates.
    pub async fn complete(self, result: &Value) -> Result<(), StoreError> {
        self.store
            .complete(&self.key, &result.to_string(), self.expires_at)
            .await
    }

    /// Deletes the record so a retry of the event runs.
    pub async fn release(self) -> Result<(), StoreError> {
        self.store.forget(&self.key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::MemoryStore;
    use serde_json::json;

    #[tokio::test]
    async fn an_event_runs_once_and_duplicates_get_the_stored_result() {
        let store = MemoryStore::new();
        let clock = Clock::manual(1_000_000);
        let idem = Idempotency::new(Arc::new(store.clone()), 60, clock.clone());
        let Begin::Proceed(guard) = idem.begin("e1", None).await.unwrap() else {
            panic!("first delivery must run");
        };
        // A concurrent duplicate while the first is running.
        assert!(matches!(
            idem.begin("e1", None).await.unwrap(),
            Begin::InProgress
        ));
        guard.complete(&json!({"alerts": 1})).await.unwrap();
        match idem.begin("e1", None).await.unwrap() {
            Begin::Duplicate(v) => assert_eq!(v, json!({"alerts": 1})),
            other => panic!("expected a duplicate, got {other:?}"),
        }
        // Past the TTL (even if the table has not deleted it yet) it runs again.
        clock.advance(std::time::Duration::from_secs(61));
        assert!(matches!(
            idem.begin("e1", None).await.unwrap(),
            Begin::Proceed(_)
        ));
    }

    #[tokio::test]
    async fn a_failed_event_is_released_and_a_crashed_one_expires() {
        let store = MemoryStore::new();
        let clock = Clock::manual(1_000_000);
        let idem = Idempotency::new(Arc::new(store.clone()), 3600, clock.clone());
        let Begin::Proceed(guard) = idem.begin("e1", None).await.unwrap() else {
            panic!()
        };
        guard.release().await.unwrap();
        assert!(!store.has_idempotency_record(&key("e1")));
        let Begin::Proceed(_crashed) = idem.begin("e1", Some(1_000_000 + 5_000)).await.unwrap()
        else {
            panic!()
        };
        assert!(matches!(
            idem.begin("e1", None).await.unwrap(),
            Begin::InProgress
        ));
        clock.advance(std::time::Duration::from_millis(5_001));
        assert!(matches!(
            idem.begin("e1", None).await.unwrap(),
            Begin::Proceed(_)
        ));
    }
}

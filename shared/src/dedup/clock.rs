//! The stage's time source.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Wall-clock time, or a hand-driven clock for tests (windows of an hour
/// cannot be waited for).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub(super) fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stays at `start_ms` (epoch milliseconds) until advanced.
    /// Clones share the same time.
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Epoch milliseconds.
    pub(super) fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Epoch seconds.
    pub(super) fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

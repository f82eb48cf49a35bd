//! Correlation state in one process's memory: `vigil replay` and tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{CorrelateError, CorrelateFuture, CorrelationStore, Observation};
use crate::detect::correlation::MemoryState;

/// The engine's [`MemoryState`] behind a lock. Clones share the state.
#[derive(Debug, Clone, Default)]
pub struct MemoryCorrelations {
    state: Arc<Mutex<MemoryState>>,
    /// When set, every call fails as an unreachable store would (tests of
    /// failing open).
    down: Arc<AtomicBool>,
}

impl MemoryCorrelations {
    pub fn new() -> MemoryCorrelations {
        MemoryCorrelations::default()
    }

    /// Makes every call fail (or work again).
    pub fn set_unavailable(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Windows with state.
    pub fn windows(&self) -> usize {
        self.state.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl CorrelationStore for MemoryCorrelations {
    fn observe<'a>(&'a self, batch: &'a [Observation]) -> CorrelateFuture<'a> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(CorrelateError::Unavailable("memory store set down".into()));
            }
            let mut state = self
                .state
                .lock()
                .map_err(|_| CorrelateError::Unavailable("memory store poisoned".into()))?;
            Ok(state.observe(batch))
        })
    }
}

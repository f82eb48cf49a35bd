//! Correlation state shared by every Lambda instance: the port between the
//! pure engine (`vigil_detect::correlation`, which turns matching records
//! into [`Observation`]s and says when a window's state fires) and where the
//! windows' state lives.
//!
//! One method, [`CorrelationStore::observe`]: fold a batch of observations
//! (one invocation's, or one log file's) into the windows' state and return
//! the windows that fire now, each exactly once across all instances.
//! [`MemoryCorrelations`] keeps the state in one process (`vigil replay`,
//! tests); [`DynamoCorrelations`] keeps it on the state table (`corr#` keys).
//! [`finding`] turns a [`Fired`] window into the alert's finding.
//!
//! Callers fail open: a store error loses correlation alerts of that batch,
//! never the single-event alerts, and is logged and counted
//! (`CorrelationStateErrors`).

mod dynamodb;
pub mod finding;
mod memory;

use std::future::Future;
use std::pin::Pin;

pub use crate::detect::correlation::{Fired, Observation};
pub use dynamodb::{DynamoCorrelations, DYNAMO_SET_CAP, EXPIRY_MARGIN_SECS};
pub use finding::finding;
pub use memory::MemoryCorrelations;

/// Why a batch could not be (wholly) folded into the state.
#[derive(Debug, thiserror::Error)]
pub enum CorrelateError {
    /// The store could not be reached or refused the request.
    #[error("correlation state unavailable: {0}")]
    Unavailable(String),
    /// Some windows were updated and some fired before a failure: the fired
    /// ones are claimed, so they must still alert.
    #[error("correlation state failed for {failed} of {total} windows: {first}")]
    Partial {
        fired: Vec<Fired>,
        failed: usize,
        total: usize,
        first: String,
    },
}

impl CorrelateError {
    /// Windows that fired (and were claimed) before the failure.
    pub fn into_fired(self) -> Vec<Fired> {
        match self {
            CorrelateError::Partial { fired, .. } => fired,
            CorrelateError::Unavailable(_) => Vec::new(),
        }
    }
}

/// What [`CorrelationStore::observe`] returns.
pub type CorrelateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Fired>, CorrelateError>> + Send + 'a>>;

/// Where correlation windows' state lives. Boxed future so the pipeline can
/// hold any store behind `Arc<dyn CorrelationStore>`.
pub trait CorrelationStore: Send + Sync {
    /// Folds `batch` into the state; returns the windows that fire now (each
    /// (correlation, group, window) at most once, whichever caller sees it).
    fn observe<'a>(&'a self, batch: &'a [Observation]) -> CorrelateFuture<'a>;
}

#[cfg(test)]
mod tests;

//! Nothing lost, nothing twice: idempotency, suppression, storm aggregation.
//!
//! EventBridge delivers at least once and sources repeat themselves, so the
//! pipeline asks this stage, for every finding that passed the gate, whether
//! it should alert:
//!
//! 1. [`rules`]: suppression rules from configuration (type, rule, account,
//!    resource, actor; glob or exact; each with a reason and an expiry).
//! 2. `suppression.rs`: one alert per fingerprint per window; repeats are
//!    counted and the next alert carries the count. A source re-sending the
//!    same finding (GuardDuty's higher `service.count`) updates the state
//!    instead of alerting again, unless its severity rose.
//! 3. [`storm`]: when more findings alert in a storm window than the
//!    threshold allows, the rest are counted into one summary alert. CRITICAL
//!    findings always alert on their own.
//!
//! [`Idempotency`] wraps a whole EventBridge event (one event id, processed
//! once) and is used by [`crate::app::handle_event`].
//!
//! State lives behind one narrow trait per kind of record
//! ([`FingerprintStore`], [`StormStore`], [`IdempotencyStore`]): DynamoDB in
//! the functions ([`DynamoStore`]), memory for `vigil replay` and tests
//! ([`MemoryStore`]). The notifier keeps its Slack threads on the same
//! fingerprint records, through its own store ([`crate::notify::threads`]).
//! Every store failure fails *open*: the finding alerts, the failure is logged
//! and counted (`EventReport::state_store_errors`). A duplicate alert is a
//! nuisance; a lost one is the failure Vigil exists to prevent.

mod admission;
mod clock;
mod dynamodb;
mod idempotency;
mod keys;
mod memory;
pub mod rules;
mod session;
mod settings;
mod stage;
mod store;
pub mod storm;
mod suppression;
pub(crate) mod table;
mod tracking;

pub use admission::{Admission, Skip};
pub use clock::Clock;
pub use dynamodb::DynamoStore;
pub use idempotency::{Begin, Idempotency, IdempotencyGuard};
pub(crate) use keys::{fingerprint_key, STATE_RETENTION_SECONDS};
pub use memory::MemoryStore;
pub use rules::{RulesError, Suppressions};
pub use session::EventSession;
pub use settings::DedupSettings;
pub use stage::Dedup;
pub use store::{
    BeginOutcome, FingerprintStore, IdempotencyStore, StateStores, StoreError, StoreFuture,
    StormCount, StormStore, Versioned,
};
pub use storm::{ResourceSlot, StormCounters, StormEntry, StormKey, StormKind, SweepReport};
pub use suppression::RepeatKind;

#[cfg(test)]
mod tests;

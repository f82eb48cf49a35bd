//! The dedup stage as the pipeline holds it: built once per cold start from
//! the settings and the stores, it starts one [`EventSession`] per event.

use std::sync::Arc;

use super::clock::Clock;
use super::dynamodb::DynamoStore;
use super::idempotency::Idempotency;
use super::memory::MemoryStore;
use super::rules::Suppressions;
use super::session::EventSession;
use super::settings::{clamp_i64, DedupSettings};
use super::store::{IdempotencyStore, StateStores};
use super::table;
use super::tracking::Tracking;

/// The dedup stage, built once per cold start.
#[derive(Debug)]
pub struct Dedup {
    rules: Suppressions,
    tracking: Option<Tracking>,
    idempotency: Option<Idempotency>,
    clock: Clock,
}

impl Default for Dedup {
    fn default() -> Dedup {
        Dedup::disabled()
    }
}

impl Dedup {
    /// No rules, no state, no idempotency: every finding that passes the gate alerts.
    pub fn disabled() -> Dedup {
        Dedup {
            rules: Suppressions::default(),
            tracking: None,
            idempotency: None,
            clock: Clock::system(),
        }
    }

    /// The stage with the given stores (either may be absent).
    pub fn new(
        settings: &DedupSettings,
        state: Option<StateStores>,
        idempotency: Option<Arc<dyn IdempotencyStore>>,
    ) -> Dedup {
        let clock = Clock::system();
        Dedup {
            rules: Suppressions::default(),
            tracking: state.map(|stores| Tracking::new(stores, settings)),
            idempotency: idempotency.map(|store| {
                Idempotency::new(
                    store,
                    clamp_i64(settings.idempotency_ttl_seconds),
                    clock.clone(),
                )
            }),
            clock,
        }
    }

    /// DynamoDB stores for the configured tables. A missing table is logged
    /// once here, so an operator sees what the function does without it.
    pub fn from_settings(settings: &DedupSettings, sdk: &aws_config::SdkConfig) -> Dedup {
        let store_for = |table: &String| DynamoStore::new(table::client(sdk), table.clone());
        if settings.idempotency_table.is_none() {
            tracing::warn!(
                "VIGIL_IDEMPOTENCY_TABLE not set: no idempotency, a duplicate EventBridge delivery alerts again"
            );
        }
        if settings.state_table.is_none() {
            tracing::warn!(
                "VIGIL_STATE_TABLE not set: no suppression window and no storm aggregation"
            );
        }
        Dedup::new(
            settings,
            settings
                .state_table
                .as_ref()
                .map(|t| StateStores::new(store_for(t))),
            settings
                .idempotency_table
                .as_ref()
                .map(|t| Arc::new(store_for(t)) as Arc<dyn IdempotencyStore>),
        )
    }

    /// An in-memory state store (for `vigil replay` and tests): suppression
    /// and storms behave as deployed, within one process.
    pub fn in_memory(settings: &DedupSettings) -> Dedup {
        Dedup::new(settings, Some(StateStores::new(MemoryStore::new())), None)
    }

    /// Skips findings these suppression rules match (loaded at start, see
    /// [`rules::load`](super::rules::load)).
    pub fn with_suppressions(mut self, rules: Suppressions) -> Dedup {
        self.rules = rules;
        self
    }

    /// Uses `clock` instead of the system clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Dedup {
        if let Some(i) = &mut self.idempotency {
            i.set_clock(clock.clone());
        }
        self.clock = clock;
        self
    }

    /// Idempotency for whole events, when a table is configured.
    pub fn idempotency(&self) -> Option<&Idempotency> {
        self.idempotency.as_ref()
    }

    /// Starts the work on one event.
    pub fn session(&self) -> EventSession<'_> {
        EventSession::new(&self.rules, self.tracking.as_ref(), &self.clock)
    }
}

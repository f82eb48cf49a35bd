//! Fingerprint and storm tracking: the stores, the windows, and what this
//! process remembers about storms across events.

use std::sync::atomic::AtomicI64;

use super::settings::{clamp_i64, DedupSettings};
use super::store::StateStores;

/// Fingerprint and storm tracking (needs a state store).
#[derive(Debug)]
pub(super) struct Tracking {
    pub(super) stores: StateStores,
    /// The suppression window (seconds).
    pub(super) window: i64,
    pub(super) storm_threshold: u64,
    pub(super) storm_window: i64,
    /// The storm window this process last looked back from, so each process
    /// checks for unsummarized closed windows once per window.
    pub(super) last_flush_check: AtomicI64,
}

impl Tracking {
    pub(super) fn new(stores: StateStores, settings: &DedupSettings) -> Tracking {
        Tracking {
            stores,
            window: clamp_i64(settings.suppression_window_seconds),
            storm_threshold: settings.storm_threshold,
            storm_window: clamp_i64(settings.storm_window_seconds).max(1),
            last_flush_check: AtomicI64::new(i64::MIN),
        }
    }

    /// The start of the storm window `now` falls in.
    pub(super) fn storm_window_of(&self, now: i64) -> i64 {
        now.div_euclid(self.storm_window) * self.storm_window
    }
}

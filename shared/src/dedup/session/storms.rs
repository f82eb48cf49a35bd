//! The session's side of storm aggregation: counting findings into the storm
//! of their kind, and the summaries due (at the end of an event, or from a
//! sweep of the storm index).

use std::sync::atomic::Ordering;

use super::{EventSession, StormCheck, SummaryClaim};
use crate::dedup::keys::STATE_RETENTION_SECONDS;
use crate::dedup::store::StoreError;
use crate::dedup::storm::{self, ResourceSlot, StormEntry, StormKey, StormKind};
use crate::dedup::tracking::Tracking;
use crate::model::{Finding, Severity};

/// How far back a sweep looks for storms owing a final summary: a sweep
/// that could not run for a day still sends them.
const SWEEP_LOOKBACK_SECONDS: i64 = 24 * 3600;

/// A storm to summarize, and whether its window has closed.
type Due = (StormKey, bool);

impl<'d> EventSession<'d> {
    /// The tracking, when storms are on and the store has not failed.
    fn active_tracking(&self) -> Option<&'d Tracking> {
        self.tracking
            .filter(|t| t.storm_threshold > 0 && !self.store_down)
    }
}

impl EventSession<'_> {
    /// Counts `f` into the storm of its kind in the current window.
    pub(super) async fn storm_check(&mut self, t: &Tracking, f: &Finding, now: i64) -> StormCheck {
        // CRITICAL never disappears into a summary.
        if t.storm_threshold == 0 || f.severity == Severity::Critical {
            return StormCheck::Individual;
        }
        let key = StormKey {
            window: t.storm_window_of(now),
            kind: StormKind::of(f),
        };
        let name = key.to_string();
        let expires = key.window + t.storm_window + STATE_RETENTION_SECONDS;
        let counted = match t.stores.storms.count(&name, false, expires).await {
            Ok(c) => c,
            Err(e) => {
                self.store_failed("storm_count", &e);
                return StormCheck::Individual;
            }
        };
        let position = counted.position;
        if position <= t.storm_threshold {
            return StormCheck::Individual;
        }
        // Listed in the index before anything is held back, so the sweep
        // finds the storm whatever happens to this process.
        if !counted.indexed {
            let index = key.index_key();
            if let Err(e) = t.stores.storms.index(&index, &name, expires).await {
                self.store_failed("storm_index", &e);
                return StormCheck::Individual;
            }
        }
        if !self.add_to_breakdowns(t, &name, f, position).await {
            return StormCheck::Individual;
        }
        if position == t.storm_threshold + 1 {
            self.crossings.insert(key.clone());
        }
        tracing::info!(
            vigil.storm = %name,
            vigil.storm_position = position,
            vigil.finding_id = %f.id,
            "finding aggregated into the storm summary"
        );
        StormCheck::Aggregated {
            window: key.window,
            position,
        }
    }

    /// Adds `f` to the storm's breakdowns; false (counted as a store
    /// failure) when it could not be.
    async fn add_to_breakdowns(
        &mut self,
        t: &Tracking,
        name: &str,
        f: &Finding,
        position: u64,
    ) -> bool {
        let entry = StormEntry::of(f);
        let resource = entry.resource.as_str();
        let slot = if position <= t.storm_threshold + storm::TRACKED_RESOURCES {
            ResourceSlot::Track(resource)
        } else {
            ResourceSlot::TrackIfKnown(resource)
        };
        let added = match t.stores.storms.add(name, &entry, slot).await {
            Err(StoreError::Conflict { .. }) => {
                t.stores.storms.add(name, &entry, ResourceSlot::Other).await
            }
            other => other,
        };
        match added {
            Ok(()) => true,
            Err(e) => {
                // Counted but not in the breakdowns: alert on its own rather
                // than let the summary miss it.
                self.store_failed("storm_add", &e);
                false
            }
        }
    }

    /// Storm summaries due at the end of this event: the one for a storm
    /// this event started ("in progress"), and, once per window per process,
    /// final ones for storms of the windows just closed (from the index).
    /// Send each and report with `EventSession::summary_settled`.
    pub async fn finish(&mut self) -> Vec<Finding> {
        let Some(t) = self.active_tracking() else {
            return Vec::new();
        };
        let now = self.clock.now();
        let current = t.storm_window_of(now);
        let mut due = self.crossings_due(t, now);
        if t.last_flush_check.swap(current, Ordering::SeqCst) != current {
            let from = current - 2 * t.storm_window - storm::SETTLE_SECONDS;
            due.extend(self.indexed_due(t, from, now, false).await);
        }
        self.summarize(t, due).await
    }

    /// Every storm with alerts not yet summarized, open or closed: for the
    /// end of a `vigil replay`, after which nothing else will.
    pub(crate) async fn finish_all(&mut self) -> Vec<Finding> {
        self.sweep_storms(true).await
    }

    /// The scheduled sweep: final summaries of closed storms of the last
    /// day that still owe one, whichever process counted them.
    pub(crate) async fn sweep(&mut self) -> Vec<Finding> {
        self.sweep_storms(false).await
    }

    async fn sweep_storms(&mut self, include_open: bool) -> Vec<Finding> {
        let Some(t) = self.active_tracking() else {
            return Vec::new();
        };
        let now = self.clock.now();
        let mut due = self.crossings_due(t, now);
        due.extend(
            self.indexed_due(t, now - SWEEP_LOOKBACK_SECONDS, now, include_open)
                .await,
        );
        self.summarize(t, due).await
    }

    fn crossings_due(&mut self, t: &Tracking, now: i64) -> Vec<Due> {
        std::mem::take(&mut self.crossings)
            .into_iter()
            .map(|k| {
                let closed = k.window + t.storm_window <= now;
                (k, closed)
            })
            .collect()
    }

    /// Storms the index records of `from..=now` list; open ones only with
    /// `include_open`.
    async fn indexed_due(
        &mut self,
        t: &Tracking,
        from: i64,
        now: i64,
        include_open: bool,
    ) -> Vec<Due> {
        let mut due = Vec::new();
        for index in storm::index_keys(from, now) {
            let names = match t.stores.storms.indexed(&index, now).await {
                Ok(names) => names,
                Err(e) => {
                    self.store_failed("storm_index_read", &e);
                    break;
                }
            };
            self.storms_checked += names.len();
            for name in names {
                let Some(key) = StormKey::parse(&name) else {
                    tracing::warn!(index, storm = %name, "unreadable storm key in the index: skipped");
                    continue;
                };
                let closed = key.window + t.storm_window <= now;
                if closed || include_open {
                    due.push((key, closed));
                }
            }
        }
        due
    }

    /// Claims and builds the summary of each storm in `due` that has alerts
    /// not yet summarized; takes fully summarized, settled storms off the index.
    async fn summarize(&mut self, t: &Tracking, mut due: Vec<Due>) -> Vec<Finding> {
        due.sort();
        due.dedup_by(|a, b| a.0 == b.0);
        let now = self.clock.now();
        let mut out = Vec::new();
        for (key, closed) in due {
            let name = key.to_string();
            let counters = match t.stores.storms.read(&name).await {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    self.store_failed("storm_read", &e);
                    break;
                }
            };
            let replaced = counters.replaced(t.storm_threshold);
            if replaced <= counters.summarized {
                if self.settled(t, &key, now) {
                    self.unindex(t, &key).await;
                }
                continue;
            }
            match t.stores.storms.claim(&name, replaced).await {
                Ok(Some(previous)) => {
                    let summary =
                        storm::summary(&key, t.storm_window, t.storm_threshold, &counters, closed);
                    self.summary_claims.push(SummaryClaim {
                        summary_id: summary.id.clone(),
                        key,
                        claimed: replaced,
                        previous,
                    });
                    out.push(summary);
                }
                Ok(None) => {}
                Err(e) => {
                    self.store_failed("storm_claim", &e);
                    break;
                }
            }
        }
        out
    }

    /// Whether no more counts can land in the storm (its window closed a
    /// while ago), so once summarized it owes nothing.
    fn settled(&self, t: &Tracking, key: &StormKey, now: i64) -> bool {
        key.window + t.storm_window + storm::SETTLE_SECONDS <= now
    }

    async fn unindex(&mut self, t: &Tracking, key: &StormKey) {
        let name = key.to_string();
        if let Err(e) = t.stores.storms.unindex(&key.index_key(), &name).await {
            // It stays listed: the next sweep finds nothing due and tries again.
            tracing::warn!(storm = %name, error = %e, "storm not taken off the index");
        }
    }

    /// Reports whether a summary from [`EventSession::finish`] (or a sweep)
    /// was delivered; an undelivered one is given back so it is sent later.
    pub(crate) async fn summary_settled(&mut self, summary: &Finding, delivered: bool) {
        let Some(pos) = self
            .summary_claims
            .iter()
            .position(|c| c.summary_id == summary.id)
        else {
            return;
        };
        let claim = self.summary_claims.swap_remove(pos);
        let Some(t) = self.tracking else {
            return;
        };
        if delivered {
            if self.settled(t, &claim.key, self.clock.now()) {
                self.unindex(t, &claim.key).await;
            }
            return;
        }
        let name = claim.key.to_string();
        if let Err(e) = t
            .stores
            .storms
            .unclaim(&name, claim.claimed, claim.previous)
            .await
        {
            self.store_failed("storm_unclaim", &e);
        }
    }
}

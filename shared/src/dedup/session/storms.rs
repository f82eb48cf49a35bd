//! The session's side of storm aggregation: counting findings into storm
//! windows, and the summaries due at the end of the event.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::{EventSession, StormCheck};
use crate::dedup::keys::STATE_RETENTION_SECONDS;
use crate::dedup::store::StoreError;
use crate::dedup::storm::{self, ResourceSlot, StormEntry};
use crate::dedup::tracking::Tracking;
use crate::model::{Finding, Severity};

impl EventSession<'_> {
    /// Counts `f` into the current storm window.
    pub(super) async fn storm_check(&mut self, t: &Tracking, f: &Finding, now: i64) -> StormCheck {
        if t.storm_threshold == 0 {
            return StormCheck::Individual;
        }
        let window = t.storm_window_of(now);
        let key = storm::key(window);
        let critical = f.severity == Severity::Critical;
        let expires = window + t.storm_window + STATE_RETENTION_SECONDS;
        let position = match t.stores.storms.count(&key, critical, expires).await {
            Ok(p) => p,
            Err(e) => {
                self.store_failed("storm_count", &e);
                return StormCheck::Individual;
            }
        };
        // CRITICAL never disappears into a summary.
        if critical || position <= t.storm_threshold {
            return StormCheck::Individual;
        }
        let entry = StormEntry::of(f);
        let resource = entry.resource.as_str();
        let slot = if position <= t.storm_threshold + storm::TRACKED_RESOURCES {
            ResourceSlot::Track(resource)
        } else {
            ResourceSlot::TrackIfKnown(resource)
        };
        let added = match t.stores.storms.add(&key, &entry, slot).await {
            Err(StoreError::Conflict { .. }) => {
                t.stores.storms.add(&key, &entry, ResourceSlot::Other).await
            }
            other => other,
        };
        if let Err(e) = added {
            // Counted but not in the breakdowns: alert on its own rather than
            // let the summary miss it.
            self.store_failed("storm_add", &e);
            return StormCheck::Individual;
        }
        if position == t.storm_threshold + 1 {
            self.crossings.insert(window);
        }
        t.contributed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(window);
        tracing::info!(
            vigil.storm_window = window,
            vigil.storm_position = position,
            vigil.finding_id = %f.id,
            "finding aggregated into the storm summary"
        );
        StormCheck::Aggregated { window, position }
    }

    /// Storm summaries due at the end of this event: the one for a window
    /// this event pushed over the threshold, and final ones for closed
    /// windows that still have unsummarized alerts (checked once per window
    /// per process). Send each and report with `EventSession::summary_settled`.
    pub async fn finish(&mut self) -> Vec<Finding> {
        self.summaries_due(false).await
    }

    /// Every storm window with alerts not yet summarized, open or closed:
    /// for the end of a `vigil replay`, after which nothing else will.
    pub(crate) async fn finish_all(&mut self) -> Vec<Finding> {
        self.summaries_due(true).await
    }

    async fn summaries_due(&mut self, all: bool) -> Vec<Finding> {
        let Some(t) = self.tracking else {
            return Vec::new();
        };
        if t.storm_threshold == 0 || self.store_down {
            return Vec::new();
        }
        let now = self.clock.now();
        let current = t.storm_window_of(now);
        let mut due: Vec<(i64, bool)> = std::mem::take(&mut self.crossings)
            .into_iter()
            .map(|w| (w, w + t.storm_window <= now))
            .collect();
        if all {
            let every =
                std::mem::take(&mut *t.contributed.lock().unwrap_or_else(|e| e.into_inner()));
            due.extend(every.into_iter().map(|w| (w, w + t.storm_window <= now)));
        } else if t.last_flush_check.swap(current, Ordering::SeqCst) != current {
            let mut closed: BTreeSet<i64> = {
                let mut c = t.contributed.lock().unwrap_or_else(|e| e.into_inner());
                let still_open = c.split_off(&current);
                std::mem::replace(&mut *c, still_open)
            };
            closed.insert(current - t.storm_window);
            due.extend(closed.into_iter().map(|w| (w, true)));
        }
        due.sort();
        due.dedup_by_key(|(w, _)| *w);
        let mut out = Vec::new();
        for (window, closed) in due {
            let key = storm::key(window);
            let counters = match t.stores.storms.read(&key).await {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    self.store_failed("storm_read", &e);
                    break;
                }
            };
            let replaced = counters.replaced(t.storm_threshold);
            if replaced <= counters.summarized {
                continue;
            }
            match t.stores.storms.claim(&key, replaced).await {
                Ok(Some(previous)) => {
                    self.summary_claims.push((key.clone(), replaced, previous));
                    out.push(storm::summary(
                        window,
                        t.storm_window,
                        t.storm_threshold,
                        &counters,
                        closed,
                    ));
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

    /// Reports whether a summary from [`EventSession::finish`] was delivered;
    /// an undelivered one is given back so it is sent later.
    pub(crate) async fn summary_settled(&mut self, summary: &Finding, delivered: bool) {
        let Some(window) = storm::window_of(summary) else {
            return;
        };
        let key = storm::key(window);
        let Some(pos) = self.summary_claims.iter().position(|(k, ..)| *k == key) else {
            return;
        };
        let (key, claimed, previous) = self.summary_claims.swap_remove(pos);
        if delivered {
            return;
        }
        if let Some(t) = self.tracking {
            if let Err(e) = t.stores.storms.unclaim(&key, claimed, previous).await {
                self.store_failed("storm_unclaim", &e);
            }
        }
    }
}

//! The dedup work on one event: admits findings (rules, then the
//! fingerprint's window, then the storm), settles their claims once delivery
//! is known, and yields storm summaries at the end.

mod storms;

use std::collections::{BTreeMap, BTreeSet};

use tracing::{info_span, Instrument};

use super::admission::{Admission, Skip};
use super::clock::Clock;
use super::keys::{finding_key, fingerprint_key, owner, STATE_RETENTION_SECONDS};
use super::rules::Suppressions;
use super::store::StoreError;
use super::storm::StormKey;
use super::suppression::{self, FingerprintState, Observation, Verdict};
use super::tracking::Tracking;
use crate::model::Finding;

/// Optimistic-concurrency attempts on one record before failing open.
const MAX_ATTEMPTS: usize = 6;

/// An alert this event claimed and has not settled yet.
#[derive(Debug)]
struct PendingClaim {
    owner: String,
    previous: Option<FingerprintState>,
}

/// A fingerprint record as read.
struct Stored {
    /// None when there is no record, or it is unreadable.
    state: Option<FingerprintState>,
    /// None when there is no live record.
    version: Option<u64>,
}

/// How writing a fingerprint record went.
enum Written {
    Saved,
    /// The record changed since it was read: read it again.
    Changed,
    /// Failed (and counted): fail open.
    Failed,
}

/// Whether a finding alerts on its own or goes into a storm summary
/// ([`EventSession::storm_check`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum StormCheck {
    Individual,
    Aggregated { window: i64, position: u64 },
}

/// The dedup work on one event: admits findings, settles their claims once
/// delivery is known, and yields storm summaries at the end.
#[derive(Debug)]
pub struct EventSession<'d> {
    rules: &'d Suppressions,
    tracking: Option<&'d Tracking>,
    clock: &'d Clock,
    store_errors: u32,
    /// Set after the first store failure: the rest of the event fails open
    /// at once instead of waiting on a dead store again.
    store_down: bool,
    claims: BTreeMap<String, PendingClaim>,
    /// Storms this event pushed over the threshold.
    crossings: BTreeSet<StormKey>,
    /// Summaries handed out and not settled yet.
    summary_claims: Vec<SummaryClaim>,
    /// Storms the index records read by this session listed.
    storms_checked: usize,
}

/// A storm summary claimed (see [`crate::dedup::StormStore::claim`]) and
/// handed out, to confirm or give back once its delivery is known.
#[derive(Debug)]
struct SummaryClaim {
    summary_id: String,
    key: StormKey,
    claimed: u64,
    previous: u64,
}

impl<'d> EventSession<'d> {
    pub(super) fn new(
        rules: &'d Suppressions,
        tracking: Option<&'d Tracking>,
        clock: &'d Clock,
    ) -> EventSession<'d> {
        EventSession {
            rules,
            tracking,
            clock,
            store_errors: 0,
            store_down: false,
            claims: BTreeMap::new(),
            crossings: BTreeSet::new(),
            summary_claims: Vec::new(),
            storms_checked: 0,
        }
    }
}

impl EventSession<'_> {
    /// State operations that failed during this event (each failed open).
    pub fn state_store_errors(&self) -> u32 {
        self.store_errors
    }

    /// Storms listed in the index records this session read.
    pub fn storms_checked(&self) -> usize {
        self.storms_checked
    }

    fn store_failed(&mut self, what: &'static str, err: &StoreError) {
        self.store_errors += 1;
        self.store_down = true;
        tracing::error!(
            error = %err,
            vigil.dedup_operation = what,
            "state store failed: failing open (alerting rather than dropping)"
        );
    }

    /// Decides whether `f` alerts. Findings that do are claimed: call
    /// [`EventSession::settle`] once delivery succeeded or failed.
    pub(crate) async fn admit(&mut self, f: &Finding) -> Admission {
        let span = info_span!(
            "dedup",
            vigil.fingerprint = %f.fingerprint,
            vigil.dedup = tracing::field::Empty,
            vigil.suppressed_repeats = tracing::field::Empty,
        );
        async {
            let outcome = self.admit_inner(f).await;
            let current = tracing::Span::current();
            match &outcome {
                Admission::Alert { suppressed_repeats } => {
                    current.record("vigil.dedup", "alert");
                    current.record("vigil.suppressed_repeats", *suppressed_repeats);
                }
                Admission::Skip(skip) => {
                    current.record("vigil.dedup", skip.name());
                }
            }
            outcome
        }
        .instrument(span)
        .await
    }

    async fn admit_inner(&mut self, f: &Finding) -> Admission {
        let now = self.clock.now();
        if let Some(rule) = self.rules.matching(f, now) {
            return Admission::Skip(Skip::SuppressedByRule {
                rule: rule.name.clone(),
                reason: rule.reason.clone(),
            });
        }
        let Some(t) = self.tracking else {
            return Admission::ALONE;
        };
        if self.store_down || f.fingerprint.is_empty() {
            return Admission::ALONE;
        }
        let key = fingerprint_key(&f.fingerprint);
        let owner = owner(f);
        let obs = Observation {
            finding_key: finding_key(&f.id),
            severity: f.severity,
            source_count: f.count,
            owner: &owner,
        };
        // The storm verdict is taken once, even if the fingerprint write has
        // to be retried, so a finding is counted into a storm once.
        let mut storm: Option<StormCheck> = None;
        for _ in 0..MAX_ATTEMPTS {
            if let Some(admission) = self.admit_once(t, f, &key, &obs, now, &mut storm).await {
                return admission;
            }
        }
        tracing::warn!(key, "fingerprint state contended: failing open");
        self.store_errors += 1;
        Admission::ALONE
    }

    /// One read, decision and conditional write of the fingerprint record.
    /// None: the record changed meanwhile, so try again.
    async fn admit_once(
        &mut self,
        t: &Tracking,
        f: &Finding,
        key: &str,
        obs: &Observation<'_>,
        now: i64,
        storm: &mut Option<StormCheck>,
    ) -> Option<Admission> {
        let Some(stored) = self.read_fingerprint(t, key, now).await else {
            return Some(Admission::ALONE);
        };
        let (verdict, mut next) = suppression::observe(stored.state.as_ref(), obs, now, t.window);
        if let Verdict::Alert { .. } = verdict {
            if storm.is_none() {
                *storm = Some(self.storm_check(t, f, now).await);
            }
            if let Some(StormCheck::Aggregated { .. }) = storm {
                // Counted into the storm summary: delivered as far as
                // this fingerprint is concerned.
                if let Some(c) = &mut next.claim {
                    c.delivered = true;
                }
            }
        }
        match self
            .write_fingerprint(t, key, &next, stored.version, now)
            .await
        {
            Written::Saved => {}
            Written::Changed => return None,
            Written::Failed => return Some(Admission::ALONE),
        }
        Some(self.decided(f, verdict, *storm, stored.state, obs.owner, now))
    }

    /// Reads the fingerprint record. None: the store failed (counted).
    async fn read_fingerprint(&mut self, t: &Tracking, key: &str, now: i64) -> Option<Stored> {
        let loaded = match t.stores.fingerprints.load(key, now).await {
            Ok(v) => v,
            Err(e) => {
                self.store_failed("load", &e);
                return None;
            }
        };
        Some(match &loaded {
            Some(v) => match serde_json::from_str::<FingerprintState>(&v.state) {
                Ok(s) => Stored {
                    state: Some(s),
                    version: Some(v.version),
                },
                Err(e) => {
                    // Unreadable state is replaced, not trusted: alerting
                    // once too often beats suppressing on garbage.
                    tracing::warn!(key, error = %e, "unreadable fingerprint state replaced");
                    Stored {
                        state: None,
                        version: Some(v.version),
                    }
                }
            },
            None => Stored {
                state: None,
                version: None,
            },
        })
    }

    /// Writes `next` if the record is still at `version`.
    async fn write_fingerprint(
        &mut self,
        t: &Tracking,
        key: &str,
        next: &FingerprintState,
        version: Option<u64>,
        now: i64,
    ) -> Written {
        let state = match serde_json::to_string(next) {
            Ok(s) => s,
            Err(e) => {
                let e = StoreError::Corrupt {
                    key: key.to_string(),
                    message: e.to_string(),
                };
                self.store_failed("encode", &e);
                return Written::Failed;
            }
        };
        let expires = next.window_end.max(now) + STATE_RETENTION_SECONDS;
        match t
            .stores
            .fingerprints
            .save(key, &state, version, expires, now)
            .await
        {
            Ok(()) => Written::Saved,
            Err(StoreError::Conflict { .. }) => Written::Changed,
            Err(e) => {
                self.store_failed("save", &e);
                Written::Failed
            }
        }
    }

    /// The answer once the record is written: held back, or claimed for
    /// delivery (settled later by [`EventSession::settle`]).
    fn decided(
        &mut self,
        f: &Finding,
        verdict: Verdict,
        storm: Option<StormCheck>,
        previous: Option<FingerprintState>,
        owner: &str,
        now: i64,
    ) -> Admission {
        match verdict {
            Verdict::Suppress { kind, repeats } => Admission::Skip(Skip::Suppressed {
                kind,
                repeats,
                until: previous.as_ref().map(|p| p.window_end).unwrap_or(now),
            }),
            Verdict::Alert {
                suppressed_repeats, ..
            } => match storm {
                Some(StormCheck::Aggregated { window, position }) => {
                    Admission::Skip(Skip::Aggregated { window, position })
                }
                _ => {
                    let claim = PendingClaim {
                        owner: owner.to_string(),
                        previous,
                    };
                    self.claims.insert(f.fingerprint.clone(), claim);
                    Admission::Alert { suppressed_repeats }
                }
            },
        }
    }

    /// Records whether the alert for `f` was delivered: confirms the claim,
    /// or gives it back so a retry (or the next occurrence) alerts.
    pub(crate) async fn settle(&mut self, f: &Finding, delivered: bool) {
        let Some(claim) = self.claims.remove(&f.fingerprint) else {
            return;
        };
        let Some(t) = self.tracking else {
            return;
        };
        if self.store_down {
            return;
        }
        let key = fingerprint_key(&f.fingerprint);
        let now = self.clock.now();
        for _ in 0..MAX_ATTEMPTS {
            let loaded = match t.stores.fingerprints.load(&key, now).await {
                Ok(Some(v)) => v,
                Ok(None) => return,
                Err(e) => {
                    self.store_failed("settle_load", &e);
                    return;
                }
            };
            let Ok(current) = serde_json::from_str::<FingerprintState>(&loaded.state) else {
                return;
            };
            let Some(next) =
                suppression::settle(&current, &claim.owner, delivered, claim.previous.as_ref())
            else {
                return;
            };
            let Ok(state) = serde_json::to_string(&next) else {
                return;
            };
            let expires = next.window_end.max(now) + STATE_RETENTION_SECONDS;
            match t
                .stores
                .fingerprints
                .save(&key, &state, Some(loaded.version), expires, now)
                .await
            {
                Ok(()) => return,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => {
                    // Confirm failed: a duplicate of this event may alert
                    // again. Release failed: the own-claim rule lets the
                    // retry of this event alert anyway.
                    self.store_failed("settle_save", &e);
                    return;
                }
            }
        }
    }
}

//! Nothing lost, nothing twice: idempotency, suppression, storm aggregation.
//!
//! EventBridge delivers at least once and sources repeat themselves, so the
//! pipeline asks this stage, for every finding that passed the gate, whether
//! it should alert:
//!
//! 1. [`rules`]: suppression rules from configuration (type, rule, account,
//!    resource, actor; glob or exact; each with a reason and an expiry).
//! 2. [`suppression`]: one alert per fingerprint per window; repeats are
//!    counted and the next alert carries the count. A source re-sending the
//!    same finding (GuardDuty's higher `service.count`) updates the state
//!    instead of alerting again, unless its severity rose.
//! 3. [`storm`]: when more findings alert in a storm window than the
//!    threshold allows, the rest are counted into one summary alert. CRITICAL
//!    findings always alert on their own.
//!
//! [`idempotency`] wraps a whole EventBridge event (one event id, processed
//! once) and is used by [`crate::app::handle_event`].
//!
//! State lives behind [`StateStore`]: DynamoDB in the functions
//! ([`DynamoStore`]), memory for `vigil replay` and tests ([`MemoryStore`]).
//! Every store failure fails *open*: the finding alerts, the failure is logged
//! and counted (`EventReport::state_store_errors`). A duplicate alert is a
//! nuisance; a lost one is the failure Vigil exists to prevent.

pub mod dynamodb;
pub mod idempotency;
pub mod memory;
pub mod rules;
pub mod storm;
pub mod suppression;
pub(crate) mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{info_span, Instrument};

use crate::env::{ConfigError, Env};
use crate::model::{Finding, Severity};

pub use dynamodb::DynamoStore;
pub use idempotency::{Begin, BeginOutcome, Idempotency, IdempotencyGuard};
pub use memory::MemoryStore;
pub use rules::{RulesError, SuppressionRule, Suppressions};
pub use storm::{ResourceSlot, StormCounters, StormEntry};
pub use suppression::{AlertReason, Claim, FingerprintState, Observation, RepeatKind, Verdict};

/// Default suppression window: one alert per fingerprint per hour.
pub const DEFAULT_SUPPRESSION_WINDOW_SECONDS: u64 = 3600;
/// Default storm threshold: more alerts than this in a storm window are summarized.
pub const DEFAULT_STORM_THRESHOLD: u64 = 50;
/// Default storm window.
pub const DEFAULT_STORM_WINDOW_SECONDS: u64 = 300;
/// Default idempotency window (the Powertools default).
pub const DEFAULT_IDEMPOTENCY_TTL_SECONDS: u64 = 3600;

/// Fingerprint records outlive their window by this much, so that a source
/// re-sending the same finding id (GuardDuty: every 6 h by default) is still
/// recognised as an update, and the notifier's Slack thread is kept.
pub const STATE_RETENTION_SECONDS: i64 = 7 * 24 * 3600;
/// Optimistic-concurrency attempts on one record before failing open.
const MAX_ATTEMPTS: usize = 6;

/// Dedup settings, part of [`crate::Config`].
#[derive(Debug, Clone)]
pub struct DedupSettings {
    /// DynamoDB table for idempotency records (`VIGIL_IDEMPOTENCY_TABLE`).
    /// None: no idempotency (logged once at start).
    pub idempotency_table: Option<String>,
    /// How long an event id is remembered (`VIGIL_IDEMPOTENCY_TTL_SECONDS`, default 3600).
    pub idempotency_ttl_seconds: u64,
    /// DynamoDB table for fingerprint and storm state (`VIGIL_STATE_TABLE`;
    /// may be the idempotency table: keys are prefixed). None: no suppression
    /// window and no storm aggregation in the functions.
    pub state_table: Option<String>,
    /// One alert per fingerprint per this many seconds
    /// (`VIGIL_SUPPRESSION_WINDOW_SECONDS`, default 3600; 0 turns it off).
    pub suppression_window_seconds: u64,
    /// Alerts per storm window before the rest are summarized
    /// (`VIGIL_STORM_THRESHOLD`, default 50; 0 turns it off).
    pub storm_threshold: u64,
    /// The storm window (`VIGIL_STORM_WINDOW_SECONDS`, default 300).
    pub storm_window_seconds: u64,
    /// Suppression rules file, YAML or JSON (`VIGIL_SUPPRESSIONS_FILE`).
    pub suppressions_file: Option<String>,
    /// Suppression rules in an SSM parameter (`VIGIL_SUPPRESSIONS_SSM_PARAMETER`),
    /// read once per cold start.
    pub suppressions_ssm_parameter: Option<String>,
    /// The loaded rules ([`rules::load`] fills this in at start).
    pub suppressions: Suppressions,
}

impl Default for DedupSettings {
    fn default() -> DedupSettings {
        DedupSettings {
            idempotency_table: None,
            idempotency_ttl_seconds: DEFAULT_IDEMPOTENCY_TTL_SECONDS,
            state_table: None,
            suppression_window_seconds: DEFAULT_SUPPRESSION_WINDOW_SECONDS,
            storm_threshold: DEFAULT_STORM_THRESHOLD,
            storm_window_seconds: DEFAULT_STORM_WINDOW_SECONDS,
            suppressions_file: None,
            suppressions_ssm_parameter: None,
            suppressions: Suppressions::default(),
        }
    }
}

impl DedupSettings {
    /// Reads the `VIGIL_*` dedup variables.
    pub fn from_settings(env: &Env) -> Result<DedupSettings, ConfigError> {
        Ok(DedupSettings {
            idempotency_table: env.get("VIGIL_IDEMPOTENCY_TABLE"),
            idempotency_ttl_seconds: env.number(
                "VIGIL_IDEMPOTENCY_TTL_SECONDS",
                DEFAULT_IDEMPOTENCY_TTL_SECONDS,
                1,
            )?,
            state_table: env.get("VIGIL_STATE_TABLE"),
            suppression_window_seconds: env.number(
                "VIGIL_SUPPRESSION_WINDOW_SECONDS",
                DEFAULT_SUPPRESSION_WINDOW_SECONDS,
                0,
            )?,
            storm_threshold: env.number("VIGIL_STORM_THRESHOLD", DEFAULT_STORM_THRESHOLD, 0)?,
            storm_window_seconds: env.number(
                "VIGIL_STORM_WINDOW_SECONDS",
                DEFAULT_STORM_WINDOW_SECONDS,
                1,
            )?,
            suppressions_file: env.get("VIGIL_SUPPRESSIONS_FILE"),
            suppressions_ssm_parameter: env.get("VIGIL_SUPPRESSIONS_SSM_PARAMETER"),
            suppressions: Suppressions::default(),
        })
    }
}

/// Wall-clock time, or a hand-driven clock for tests (windows of an hour
/// cannot be waited for).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Clock {
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
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Epoch seconds.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// Why a state operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The record changed since it was read (optimistic concurrency), or a
    /// condition did not hold: read again and retry.
    #[error("state record {key} changed concurrently")]
    Conflict { key: String },
    /// The store could not be reached or refused the request.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// A record that cannot be read back (written by something else).
    #[error("state record {key} unreadable: {message}")]
    Corrupt { key: String, message: String },
}

/// Boxed future, so stores can be held as `Arc<dyn StateStore>`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A versioned state record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The state as JSON (fingerprint records: [`FingerprintState`]).
    pub state: String,
    pub version: u64,
}

/// The key of a fingerprint's record (`fp#<fingerprint>`): its dedup state,
/// and the notifier's Slack thread beside it ([`crate::notify::ThreadStore`]).
pub fn fingerprint_key(fingerprint: &str) -> String {
    format!("fp#{fingerprint}")
}

/// Where dedup state lives. Keys are prefixed by kind (`fp#`, `storm#`,
/// `idem#`), so one table can hold everything.
///
/// Every method must treat a record past its `expiration` as absent: TTL
/// deletion lags by up to 48 hours.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// Short name for logs (`dynamodb`, `memory`).
    fn name(&self) -> &'static str;

    /// Reads a versioned record.
    fn load<'a>(&'a self, key: &'a str, now: i64) -> StoreFuture<'a, Option<Versioned>>;

    /// Writes `state` if the stored version is still `expected` (None: no
    /// live record). Fails with [`StoreError::Conflict`] otherwise.
    fn save<'a>(
        &'a self,
        key: &'a str,
        state: &'a str,
        expected: Option<u64>,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'a, ()>;

    /// Counts one alert into a storm window; returns the window's count of
    /// non-critical alerts after it (critical ones are counted apart and
    /// return the non-critical count unchanged).
    fn storm_count<'a>(
        &'a self,
        key: &'a str,
        critical: bool,
        expires_at: i64,
    ) -> StoreFuture<'a, u64>;

    /// Adds an aggregated finding to a storm window's breakdowns. With
    /// [`ResourceSlot::TrackIfKnown`], fails with [`StoreError::Conflict`]
    /// when the resource is not tracked yet (the caller then counts it as
    /// [`ResourceSlot::Other`]), which bounds the record's size.
    fn storm_add<'a>(
        &'a self,
        key: &'a str,
        entry: &'a StormEntry,
        slot: ResourceSlot<'a>,
    ) -> StoreFuture<'a, ()>;

    /// Reads a storm window's counters (strongly consistent).
    fn storm_read<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StormCounters>>;

    /// Claims the right to summarize a storm window up to `replaced` alerts.
    /// Returns the previously summarized count, or None when someone else
    /// already summarized as much.
    fn storm_claim<'a>(&'a self, key: &'a str, replaced: u64) -> StoreFuture<'a, Option<u64>>;

    /// Gives a claim back after the summary could not be sent.
    fn storm_unclaim<'a>(
        &'a self,
        key: &'a str,
        claimed: u64,
        previous: u64,
    ) -> StoreFuture<'a, ()>;

    /// Idempotency: records an event as in progress unless a live record exists.
    fn begin<'a>(
        &'a self,
        key: &'a str,
        now_ms: i64,
        expires_at: i64,
        in_progress_until_ms: i64,
    ) -> StoreFuture<'a, BeginOutcome>;

    /// Idempotency: marks an event complete with its result.
    fn complete<'a>(
        &'a self,
        key: &'a str,
        result: &'a str,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;

    /// Idempotency: deletes the record so a retry can run.
    fn forget<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
}

/// What the stage says about one finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Alert, carrying this many suppressed repeats.
    Alert { suppressed_repeats: u64 },
    /// Do not alert, for this reason.
    Skip(Skip),
}

/// Why the stage holds a finding back (the pipeline reports each as its
/// `Decision` of the same name).
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// A repeat of a fingerprint already alerted in its suppression window,
    /// or the source re-sending a finding already alerted: counted, and the
    /// next alert carries the count.
    Suppressed {
        kind: RepeatKind,
        /// Suppressed since the last alert, this one included.
        repeats: u64,
        /// End of the suppression window (epoch seconds).
        until: i64,
    },
    /// Matched a configured suppression rule.
    SuppressedByRule { rule: String, reason: String },
    /// Past the storm threshold: counted into the storm summary alert.
    Aggregated {
        /// Start of the storm window (epoch seconds).
        window: i64,
        /// The finding's place among the window's alerts.
        position: u64,
    },
}

impl Skip {
    /// The name logs and metrics give the decision.
    pub fn name(&self) -> &'static str {
        match self {
            Skip::Suppressed { .. } => "suppressed",
            Skip::SuppressedByRule { .. } => "suppressed_by_rule",
            Skip::Aggregated { .. } => "aggregated",
        }
    }
}

/// Fingerprint and storm tracking (needs a state store).
#[derive(Debug)]
struct Tracking {
    store: Arc<dyn StateStore>,
    window: i64,
    storm_threshold: u64,
    storm_window: i64,
    /// The storm window this process last looked back from, so each process
    /// checks for unsummarized closed windows once per window.
    last_flush_check: AtomicI64,
    /// Storm windows this process aggregated into, to summarize when closed.
    contributed: Mutex<BTreeSet<i64>>,
}

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
        state: Option<Arc<dyn StateStore>>,
        idempotency: Option<Arc<dyn StateStore>>,
    ) -> Dedup {
        let clock = Clock::system();
        Dedup {
            rules: settings.suppressions.clone(),
            tracking: state.map(|store| Tracking {
                store,
                window: clamp_i64(settings.suppression_window_seconds),
                storm_threshold: settings.storm_threshold,
                storm_window: clamp_i64(settings.storm_window_seconds).max(1),
                last_flush_check: AtomicI64::new(i64::MIN),
                contributed: Mutex::new(BTreeSet::new()),
            }),
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
        let store_for = |table: &String| -> Arc<dyn StateStore> {
            Arc::new(DynamoStore::new(table::client(sdk), table.clone()))
        };
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
            settings.state_table.as_ref().map(store_for),
            settings.idempotency_table.as_ref().map(store_for),
        )
    }

    /// An in-memory state store (for `vigil replay` and tests): suppression
    /// and storms behave as deployed, within one process.
    pub fn in_memory(settings: &DedupSettings) -> Dedup {
        Dedup::new(settings, Some(Arc::new(MemoryStore::new())), None)
    }

    /// Uses `clock` instead of the system clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Dedup {
        if let Some(i) = &mut self.idempotency {
            i.set_clock(clock.clone());
        }
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Idempotency for whole events, when a table is configured.
    pub fn idempotency(&self) -> Option<&Idempotency> {
        self.idempotency.as_ref()
    }

    /// Starts the work on one event.
    pub fn session(&self) -> EventSession<'_> {
        EventSession {
            dedup: self,
            store_errors: 0,
            store_down: false,
            claims: BTreeMap::new(),
            crossings: BTreeSet::new(),
            summary_claims: Vec::new(),
        }
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX / 4)
}

/// An alert this event claimed and has not settled yet.
#[derive(Debug)]
struct PendingClaim {
    owner: String,
    previous: Option<FingerprintState>,
}

/// The dedup work on one event: admits findings, settles their claims once
/// delivery is known, and yields storm summaries at the end.
#[derive(Debug)]
pub struct EventSession<'d> {
    dedup: &'d Dedup,
    store_errors: u32,
    /// Set after the first store failure: the rest of the event fails open
    /// at once instead of waiting on a dead store again.
    store_down: bool,
    claims: BTreeMap<String, PendingClaim>,
    /// Storm windows this event pushed over the threshold.
    crossings: BTreeSet<i64>,
    /// (storm key, claimed count, previous count) of summaries handed out.
    summary_claims: Vec<(String, u64, u64)>,
}

/// Who claims an alert: the event (and finding) that carried it, so a retry
/// of the same event recognises its own claim.
fn owner(f: &Finding) -> String {
    match &f.event_id {
        Some(e) => format!("{e}/{}", f.id),
        None => f.id.clone(),
    }
}

/// The source's finding id, normalized so a GuardDuty finding id and the
/// Security Hub copy of it (whose id is the GuardDuty ARN) compare equal.
pub fn finding_key(id: &str) -> &str {
    if id.starts_with("arn:") {
        id.rsplit('/').next().unwrap_or(id)
    } else {
        id
    }
}

impl EventSession<'_> {
    /// State operations that failed during this event (each failed open).
    pub fn state_store_errors(&self) -> u32 {
        self.store_errors
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
    pub async fn admit(&mut self, f: &Finding) -> Admission {
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
        let now = self.dedup.clock.now();
        if let Some(rule) = self.dedup.rules.matching(f, now) {
            return Admission::Skip(Skip::SuppressedByRule {
                rule: rule.name.clone(),
                reason: rule.reason.clone(),
            });
        }
        let Some(t) = &self.dedup.tracking else {
            return Admission::Alert {
                suppressed_repeats: 0,
            };
        };
        if self.store_down || f.fingerprint.is_empty() {
            return Admission::Alert {
                suppressed_repeats: 0,
            };
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
            let loaded = match t.store.load(&key, now).await {
                Ok(v) => v,
                Err(e) => {
                    self.store_failed("load", &e);
                    return Admission::Alert {
                        suppressed_repeats: 0,
                    };
                }
            };
            let (previous, version) = match &loaded {
                Some(v) => match serde_json::from_str::<FingerprintState>(&v.state) {
                    Ok(s) => (Some(s), Some(v.version)),
                    Err(e) => {
                        // Unreadable state is replaced, not trusted: alerting
                        // once too often beats suppressing on garbage.
                        tracing::warn!(key, error = %e, "unreadable fingerprint state replaced");
                        (None, Some(v.version))
                    }
                },
                None => (None, None),
            };
            let (verdict, mut next) = suppression::observe(previous.as_ref(), &obs, now, t.window);
            if let Verdict::Alert { .. } = verdict {
                if storm.is_none() {
                    storm = Some(self.storm_check(t, f, now).await);
                }
                if let Some(StormCheck::Aggregated { .. }) = storm {
                    // Counted into the storm summary: delivered as far as
                    // this fingerprint is concerned.
                    if let Some(c) = &mut next.claim {
                        c.delivered = true;
                    }
                }
            }
            let state = match serde_json::to_string(&next) {
                Ok(s) => s,
                Err(e) => {
                    let e = StoreError::Corrupt {
                        key: key.clone(),
                        message: e.to_string(),
                    };
                    self.store_failed("encode", &e);
                    return Admission::Alert {
                        suppressed_repeats: 0,
                    };
                }
            };
            let expires = next.window_end.max(now) + STATE_RETENTION_SECONDS;
            match t.store.save(&key, &state, version, expires, now).await {
                Ok(()) => {}
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => {
                    self.store_failed("save", &e);
                    return Admission::Alert {
                        suppressed_repeats: 0,
                    };
                }
            }
            return match verdict {
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
                        self.claims
                            .insert(f.fingerprint.clone(), PendingClaim { owner, previous });
                        Admission::Alert { suppressed_repeats }
                    }
                },
            };
        }
        tracing::warn!(key, "fingerprint state contended: failing open");
        self.store_errors += 1;
        Admission::Alert {
            suppressed_repeats: 0,
        }
    }

    /// Counts `f` into the current storm window.
    async fn storm_check(&mut self, t: &Tracking, f: &Finding, now: i64) -> StormCheck {
        if t.storm_threshold == 0 {
            return StormCheck::Individual;
        }
        let window = now.div_euclid(t.storm_window) * t.storm_window;
        let key = storm::key(window);
        let critical = f.severity == Severity::Critical;
        let expires = window + t.storm_window + STATE_RETENTION_SECONDS;
        let position = match t.store.storm_count(&key, critical, expires).await {
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
        let added = match t.store.storm_add(&key, &entry, slot).await {
            Err(StoreError::Conflict { .. }) => {
                t.store.storm_add(&key, &entry, ResourceSlot::Other).await
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

    /// Records whether the alert for `f` was delivered: confirms the claim,
    /// or gives it back so a retry (or the next occurrence) alerts.
    pub async fn settle(&mut self, f: &Finding, delivered: bool) {
        let Some(claim) = self.claims.remove(&f.fingerprint) else {
            return;
        };
        let Some(t) = &self.dedup.tracking else {
            return;
        };
        if self.store_down {
            return;
        }
        let key = fingerprint_key(&f.fingerprint);
        let now = self.dedup.clock.now();
        for _ in 0..MAX_ATTEMPTS {
            let loaded = match t.store.load(&key, now).await {
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
                .store
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

    /// Storm summaries due at the end of this event: the one for a window
    /// this event pushed over the threshold, and final ones for closed
    /// windows that still have unsummarized alerts (checked once per window
    /// per process). Send each and report with [`EventSession::summary_settled`].
    pub async fn finish(&mut self) -> Vec<Finding> {
        self.summaries_due(false).await
    }

    /// Every storm window with alerts not yet summarized, open or closed:
    /// for the end of a `vigil replay`, after which nothing else will.
    pub async fn finish_all(&mut self) -> Vec<Finding> {
        self.summaries_due(true).await
    }

    async fn summaries_due(&mut self, all: bool) -> Vec<Finding> {
        let Some(t) = &self.dedup.tracking else {
            return Vec::new();
        };
        if t.storm_threshold == 0 || self.store_down {
            return Vec::new();
        }
        let now = self.dedup.clock.now();
        let current = now.div_euclid(t.storm_window) * t.storm_window;
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
            let counters = match t.store.storm_read(&key).await {
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
            match t.store.storm_claim(&key, replaced).await {
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
    pub async fn summary_settled(&mut self, summary: &Finding, delivered: bool) {
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
        if let Some(t) = &self.dedup.tracking {
            if let Err(e) = t.store.storm_unclaim(&key, claimed, previous).await {
                self.store_failed("storm_unclaim", &e);
            }
        }
    }
}

/// Whether a finding alerts on its own or goes into a storm summary.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StormCheck {
    Individual,
    Aggregated { window: i64, position: u64 },
}

#[cfg(test)]
mod tests;

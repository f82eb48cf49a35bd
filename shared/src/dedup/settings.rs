//! The dedup stage's settings, from the `VIGIL_*` variables.

use crate::env::{ConfigError, Env};

/// Default suppression window: one alert per fingerprint per hour.
pub(super) const DEFAULT_SUPPRESSION_WINDOW_SECONDS: u64 = 3600;
/// Default storm threshold: more alerts than this in a storm window are summarized.
pub(super) const DEFAULT_STORM_THRESHOLD: u64 = 50;
/// Default storm window.
pub(super) const DEFAULT_STORM_WINDOW_SECONDS: u64 = 300;
/// Default idempotency window (the Powertools default).
pub(super) const DEFAULT_IDEMPOTENCY_TTL_SECONDS: u64 = 3600;

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
        })
    }
}

/// Seconds as the stage computes with them; nonsense sizes are capped far
/// below overflow.
pub(super) fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX / 4)
}

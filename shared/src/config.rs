//! Configuration from the environment, read once per cold start.
//!
//! Every setting has a safe default so a function with no configuration still
//! runs; a setting that is present but malformed is an error at start-up
//! (a silent fallback could hide every alert).

use crate::enrich::AccountNames;
use crate::env::Env;
use crate::model::Severity;

pub use crate::env::ConfigError;

/// Settings every function shares.
#[derive(Debug, Clone)]
pub struct Config {
    /// SNS topic for alerts (`VIGIL_TOPIC_ARN`). None: no SNS sink.
    pub topic_arn: Option<String>,
    /// Findings below this do not alert (`VIGIL_MIN_SEVERITY`, default MEDIUM).
    pub min_severity: Severity,
    /// Alert on sample findings the sources generate (`VIGIL_ALERT_SAMPLES`, default false).
    pub alert_samples: bool,
    /// Alert on archived, suppressed or resolved findings (`VIGIL_ALERT_INACTIVE`, default false).
    pub alert_inactive: bool,
    /// Account id → name (`VIGIL_ACCOUNT_NAMES`: `id=name,...` or a JSON object).
    pub account_names: AccountNames,
    /// Trace link template (`VIGIL_TRACE_URL_TEMPLATE`) with `{trace_id}`,
    /// `{xray_trace_id}` and `{region}` placeholders.
    pub trace_url_template: Option<String>,
    /// Extra Sigma rule folder beside the bundled rules (`VIGIL_RULES_DIR`).
    pub rules_dir: Option<String>,
    /// Keep GuardDuty findings that arrive through Security Hub without
    /// alerting, because the guardduty function alerts on the direct event
    /// (`VIGIL_SECURITYHUB_SKIP_GUARDDUTY`, default true).
    pub securityhub_skip_guardduty: bool,
    /// The same for Macie findings, which the securityhub function also takes
    /// directly (`VIGIL_SECURITYHUB_SKIP_MACIE`, default true).
    pub securityhub_skip_macie: bool,
    /// Read account names from AWS Organizations (`VIGIL_ORGANIZATIONS_LOOKUP`,
    /// default false): needs the management account or a delegated
    /// administrator. Names in `VIGIL_ACCOUNT_NAMES` still win.
    pub organizations_lookup: bool,
    /// Routing table file (`VIGIL_ROUTES_FILE`), or SSM parameter
    /// (`VIGIL_ROUTES_SSM_PARAMETER`): see [`crate::route`].
    pub routes_file: Option<String>,
    pub routes_ssm_parameter: Option<String>,
    /// Idempotency, suppression and storm settings (`VIGIL_IDEMPOTENCY_TABLE`,
    /// `VIGIL_STATE_TABLE`, `VIGIL_SUPPRESSION_WINDOW_SECONDS`, ...: see
    /// [`crate::dedup::DedupSettings`]).
    pub dedup: crate::dedup::DedupSettings,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            topic_arn: None,
            min_severity: Severity::Medium,
            alert_samples: false,
            alert_inactive: false,
            account_names: AccountNames::default(),
            trace_url_template: None,
            rules_dir: None,
            securityhub_skip_guardduty: true,
            securityhub_skip_macie: true,
            organizations_lookup: false,
            routes_file: None,
            routes_ssm_parameter: None,
            dedup: crate::dedup::DedupSettings::default(),
        }
    }
}

impl Config {
    /// Reads the `VIGIL_*` variables of the process.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_settings(&Env::process())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::from_settings(&Env::new(lookup))
    }

    pub fn from_settings(env: &Env) -> Result<Config, ConfigError> {
        let d = Config::default();
        Ok(Config {
            topic_arn: env.get("VIGIL_TOPIC_ARN"),
            min_severity: env.parsed("VIGIL_MIN_SEVERITY", d.min_severity)?,
            alert_samples: env.flag("VIGIL_ALERT_SAMPLES", d.alert_samples)?,
            alert_inactive: env.flag("VIGIL_ALERT_INACTIVE", d.alert_inactive)?,
            account_names: env
                .get("VIGIL_ACCOUNT_NAMES")
                .map(|s| AccountNames::parse(&s))
                .unwrap_or_default(),
            trace_url_template: env.get("VIGIL_TRACE_URL_TEMPLATE"),
            rules_dir: env.get("VIGIL_RULES_DIR"),
            securityhub_skip_guardduty: env.flag(
                "VIGIL_SECURITYHUB_SKIP_GUARDDUTY",
                d.securityhub_skip_guardduty,
            )?,
            securityhub_skip_macie: env
                .flag("VIGIL_SECURITYHUB_SKIP_MACIE", d.securityhub_skip_macie)?,
            organizations_lookup: env.flag("VIGIL_ORGANIZATIONS_LOOKUP", d.organizations_lookup)?,
            routes_file: env.get("VIGIL_ROUTES_FILE"),
            routes_ssm_parameter: env.get("VIGIL_ROUTES_SSM_PARAMETER"),
            dedup: crate::dedup::DedupSettings::from_settings(env)?,
        })
    }
}

impl Config {
    /// Sources whose findings, arriving through Security Hub, are kept without
    /// alerting because Vigil alerts on their direct events.
    pub fn securityhub_skip_sources(&self) -> Vec<crate::model::Source> {
        use crate::model::Source;
        [
            (self.securityhub_skip_guardduty, Source::GuardDuty),
            (self.securityhub_skip_macie, Source::Macie),
        ]
        .into_iter()
        .filter_map(|(skip, source)| skip.then_some(source))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_safe() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.min_severity, Severity::Medium);
        assert!(!c.alert_samples);
        assert!(c.topic_arn.is_none());
    }

    #[test]
    fn malformed_settings_fail_loudly() {
        assert!(cfg(&[("VIGIL_MIN_SEVERITY", "urgent")]).is_err());
        assert!(cfg(&[("VIGIL_ALERT_SAMPLES", "maybe")]).is_err());
        let c = cfg(&[
            ("VIGIL_MIN_SEVERITY", "high"),
            ("VIGIL_ALERT_SAMPLES", "true"),
        ])
        .unwrap();
        assert_eq!(c.min_severity, Severity::High);
        assert!(c.alert_samples);
    }
}

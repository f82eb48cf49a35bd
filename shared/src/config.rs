//! Configuration from the environment, read once per cold start.
//!
//! Every setting has a safe default so a function with no configuration still
//! runs; a setting that is present but malformed is an error at start-up
//! (a silent fallback could hide every alert).

use crate::detect::Placeholders;
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
    /// Values of the rules' `|expand` placeholders: `VIGIL_SIGMA_PLACEHOLDERS`
    /// (a JSON object) or `VIGIL_SIGMA_PLACEHOLDERS_FILE` (a JSON or YAML
    /// file); see [`sigma_placeholders_from_env`].
    pub sigma_placeholders: Placeholders,
    /// Keep GuardDuty findings that arrive through Security Hub without
    /// alerting, because the guardduty function alerts on the direct event
    /// (`VIGIL_SECURITYHUB_SKIP_GUARDDUTY`, default true).
    pub securityhub_skip_guardduty: bool,
    /// The same for Macie findings, which the securityhub function also takes
    /// directly (`VIGIL_SECURITYHUB_SKIP_MACIE`, default true).
    pub securityhub_skip_macie: bool,
    /// The same for Inspector, Access Analyzer and Config findings, which
    /// the securityhub function takes directly when their EventBridge rules
    /// are on (`VIGIL_SECURITYHUB_SKIP_INSPECTOR`,
    /// `VIGIL_SECURITYHUB_SKIP_ACCESS_ANALYZER`, `VIGIL_SECURITYHUB_SKIP_CONFIG`,
    /// default true; the template sets each to whether its direct rule is on).
    pub securityhub_skip_inspector: bool,
    pub securityhub_skip_access_analyzer: bool,
    pub securityhub_skip_config: bool,
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
            sigma_placeholders: Placeholders::new(),
            securityhub_skip_guardduty: true,
            securityhub_skip_macie: true,
            securityhub_skip_inspector: true,
            securityhub_skip_access_analyzer: true,
            securityhub_skip_config: true,
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
            sigma_placeholders: sigma_placeholders(env)?,
            securityhub_skip_guardduty: env.flag(
                "VIGIL_SECURITYHUB_SKIP_GUARDDUTY",
                d.securityhub_skip_guardduty,
            )?,
            securityhub_skip_macie: env
                .flag("VIGIL_SECURITYHUB_SKIP_MACIE", d.securityhub_skip_macie)?,
            securityhub_skip_inspector: env.flag(
                "VIGIL_SECURITYHUB_SKIP_INSPECTOR",
                d.securityhub_skip_inspector,
            )?,
            securityhub_skip_access_analyzer: env.flag(
                "VIGIL_SECURITYHUB_SKIP_ACCESS_ANALYZER",
                d.securityhub_skip_access_analyzer,
            )?,
            securityhub_skip_config: env
                .flag("VIGIL_SECURITYHUB_SKIP_CONFIG", d.securityhub_skip_config)?,
            organizations_lookup: env.flag("VIGIL_ORGANIZATIONS_LOOKUP", d.organizations_lookup)?,
            routes_file: env.get("VIGIL_ROUTES_FILE"),
            routes_ssm_parameter: env.get("VIGIL_ROUTES_SSM_PARAMETER"),
            dedup: crate::dedup::DedupSettings::from_settings(env)?,
        })
    }
}

/// The Sigma placeholder values `env` gives (see [`sigma_placeholders_from_env`]).
pub(crate) fn sigma_placeholders(env: &Env) -> Result<Placeholders, ConfigError> {
    const INLINE: &str = "VIGIL_SIGMA_PLACEHOLDERS";
    const FILE: &str = "VIGIL_SIGMA_PLACEHOLDERS_FILE";
    let (name, text) = match (env.get(INLINE), env.get(FILE)) {
        (None, None) => return Ok(Placeholders::new()),
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                INLINE,
                format!("set {INLINE} or {FILE}, not both"),
            ))
        }
        (Some(inline), None) => (INLINE, inline),
        (None, Some(path)) => (
            FILE,
            std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::invalid(FILE, format!("cannot read {path}: {e}")))?,
        ),
    };
    Placeholders::parse(&text).map_err(|e| ConfigError::invalid(name, e.to_string()))
}

/// The values of the Sigma rules' `|expand` placeholders, from the process
/// environment as a function reads them (also for `vigil rules`, which needs
/// no other setting). `VIGIL_SIGMA_PLACEHOLDERS` holds them inline (a JSON
/// object of name → list of values, for a few short lists),
/// `VIGIL_SIGMA_PLACEHOLDERS_FILE` names a JSON or YAML file of the same
/// shape (for long lists; Lambda's environment is 4 KB in all). Neither: no
/// placeholders. Both, an unreadable file or a malformed value: an error,
/// because a rule's placeholder must mean what the deployer wrote.
pub fn sigma_placeholders_from_env() -> Result<Placeholders, ConfigError> {
    sigma_placeholders(&Env::process())
}

impl Config {
    /// Sources whose findings, arriving through Security Hub, are kept without
    /// alerting because Vigil alerts on their direct events.
    pub fn securityhub_skip_sources(&self) -> Vec<crate::model::Source> {
        use crate::model::Source;
        [
            (self.securityhub_skip_guardduty, Source::GuardDuty),
            (self.securityhub_skip_macie, Source::Macie),
            (self.securityhub_skip_inspector, Source::Inspector),
            (
                self.securityhub_skip_access_analyzer,
                Source::AccessAnalyzer,
            ),
            (self.securityhub_skip_config, Source::Config),
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
    fn sigma_placeholders_inline_or_from_a_file() {
        assert!(cfg(&[]).unwrap().sigma_placeholders.is_empty());
        let c = cfg(&[(
            "VIGIL_SIGMA_PLACEHOLDERS",
            r#"{"corporate_networks": ["192.0.2.0/24", "198.51.100.0/24"]}"#,
        )])
        .unwrap();
        assert_eq!(
            c.sigma_placeholders.get("corporate_networks").unwrap(),
            ["192.0.2.0/24", "198.51.100.0/24"]
        );
        let path =
            std::env::temp_dir().join(format!("vigil-placeholders-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "break_glass_users:\n  - breakglass-1\n  - breakglass-2\n",
        )
        .unwrap();
        let file = path.to_string_lossy().to_string();
        let c = cfg(&[("VIGIL_SIGMA_PLACEHOLDERS_FILE", &file)]).unwrap();
        assert_eq!(
            c.sigma_placeholders.get("break_glass_users").unwrap(),
            ["breakglass-1", "breakglass-2"]
        );
        let both = cfg(&[
            ("VIGIL_SIGMA_PLACEHOLDERS_FILE", &file),
            ("VIGIL_SIGMA_PLACEHOLDERS", r#"{"a": ["b"]}"#),
        ]);
        std::fs::remove_file(&path).unwrap();
        assert!(both.is_err());
        for bad in [r#"["a"]"#, r#"{"a": []}"#, "{", r#"{"a": [true]}"#] {
            let e = cfg(&[("VIGIL_SIGMA_PLACEHOLDERS", bad)]).unwrap_err();
            assert!(
                e.to_string().starts_with("VIGIL_SIGMA_PLACEHOLDERS:"),
                "{e}"
            );
        }
        let missing = cfg(&[(
            "VIGIL_SIGMA_PLACEHOLDERS_FILE",
            "/nonexistent/placeholders.json",
        )]);
        assert!(missing.unwrap_err().to_string().contains("cannot read"));
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

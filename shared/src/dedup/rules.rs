//! Suppression rules: configuration, not code.
//!
//! A YAML or JSON document (a file, `VIGIL_SUPPRESSIONS_FILE`, or an SSM
//! parameter, `VIGIL_SUPPRESSIONS_SSM_PARAMETER`, read once per cold start):
//!
//! ```yaml
//! suppressions:
//!   - name: nightly-scanner
//!     reason: Our vulnerability scanner probes every instance at night (SEC-123)
//!     expires: 2026-12-31          # a date (through the end of that day, UTC), RFC 3339, or "never"
//!     type: "Recon:EC2/Port*"      # glob or exact; a list means any of them
//!     account: ["111122223333", "444455556666"]
//!     resource: "i-0abc*"
//!     actor: "arn:aws:iam::*:role/scanner"
//!     rule: "..."                  # a detection rule's id or title
//! ```
//!
//! Every field given must match (a list: any of its patterns); a rule with no
//! field would silence everything and is refused. `reason` and `expires` are
//! required so that every suppression says why and until when. Expired rules
//! are ignored and logged. Patterns are case-sensitive; `*` matches any run of
//! characters and `?` one character. A suppressed finding is still logged and
//! counted (decision `suppressed_by_rule`), only not alerted.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::DedupSettings;
use crate::detect::glob::{self, Syntax};
use crate::documents::{OneOrMany, SsmReadError};
use crate::model::Finding;

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("suppression rules {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("suppression rules in SSM parameter {parameter}: {message}")]
    Ssm { parameter: String, message: String },
    #[error("suppression rules {origin}: not YAML or JSON of the expected shape: {message}")]
    Parse { origin: String, message: String },
    #[error("suppression rules {origin}, rule {rule}: {message}")]
    Invalid {
        origin: String,
        rule: String,
        message: String,
    },
}

/// One rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SuppressionRule {
    pub name: String,
    pub reason: String,
    /// None: never expires (written `never`).
    pub expires: Option<DateTime<Utc>>,
    pub types: Vec<String>,
    pub rules: Vec<String>,
    pub accounts: Vec<String>,
    pub resources: Vec<String>,
    pub actors: Vec<String>,
}

/// A YAML field that takes one value or a list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    reason: Option<String>,
    expires: Option<String>,
    #[serde(rename = "type")]
    finding_type: Option<OneOrMany>,
    rule: Option<OneOrMany>,
    account: Option<OneOrMany>,
    resource: Option<OneOrMany>,
    actor: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Document {
    Wrapped { suppressions: Option<Vec<RawRule>> },
    List(Vec<RawRule>),
}

/// The loaded rules (live ones only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Suppressions {
    rules: Vec<SuppressionRule>,
}

impl Suppressions {
    pub fn rules(&self) -> &[SuppressionRule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds `other`'s rules (a file and a parameter together).
    pub fn extend(&mut self, other: Suppressions) {
        self.rules.extend(other.rules);
    }

    /// Parses a document; `origin` names it in errors and logs. Rules already
    /// expired at `now` (epoch seconds) are dropped with a log line.
    pub fn parse(text: &str, origin: &str, now: i64) -> Result<Suppressions, RulesError> {
        if text.trim().is_empty() {
            return Ok(Suppressions::default());
        }
        let doc: Document = serde_yaml::from_str(text).map_err(|e| RulesError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let raw = match doc {
            Document::Wrapped { suppressions } => suppressions.unwrap_or_default(),
            Document::List(rules) => rules,
        };
        let mut rules = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let rule = validate(r, i, origin)?;
            if rule.expired(now) {
                tracing::warn!(
                    rule = %rule.name,
                    origin,
                    expires = ?rule.expires,
                    "suppression rule expired: ignored"
                );
                continue;
            }
            rules.push(rule);
        }
        Ok(Suppressions { rules })
    }

    /// The first live rule that matches `f` at `now` (epoch seconds). Rules
    /// are loaded once per cold start, so expiry is checked here too.
    pub fn matching(&self, f: &Finding, now: i64) -> Option<&SuppressionRule> {
        self.rules.iter().find(|r| !r.expired(now) && r.matches(f))
    }
}

fn validate(r: RawRule, index: usize, origin: &str) -> Result<SuppressionRule, RulesError> {
    let name = r
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("#{}", index + 1));
    let invalid = |message: &str| RulesError::Invalid {
        origin: origin.to_string(),
        rule: name.clone(),
        message: message.to_string(),
    };
    let reason = r
        .reason
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid("needs a reason"))?;
    let expires_text = r
        .expires
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid("needs `expires` (a date, an RFC 3339 time, or \"never\")"))?;
    let expires = parse_expiry(&expires_text).ok_or_else(|| {
        invalid(&format!(
            "`expires` {expires_text:?} is not a date, an RFC 3339 time, or \"never\""
        ))
    })?;
    let list = |v: Option<OneOrMany>| -> Result<Vec<String>, RulesError> {
        let v = v.map(OneOrMany::into_vec).unwrap_or_default();
        if v.iter().any(|p| p.is_empty()) {
            return Err(invalid("empty pattern"));
        }
        Ok(v)
    };
    let rule = SuppressionRule {
        types: list(r.finding_type)?,
        rules: list(r.rule)?,
        accounts: list(r.account)?,
        resources: list(r.resource)?,
        actors: list(r.actor)?,
        name: name.clone(),
        reason,
        expires,
    };
    if [
        &rule.types,
        &rule.rules,
        &rule.accounts,
        &rule.resources,
        &rule.actors,
    ]
    .iter()
    .all(|v| v.is_empty())
    {
        return Err(invalid(
            "matches nothing in particular (give type, rule, account, resource or actor): it would silence every alert",
        ));
    }
    Ok(rule)
}

/// `never`, an RFC 3339 time, or a date (meaning through the end of that day, UTC).
fn parse_expiry(s: &str) -> Option<Option<DateTime<Utc>>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("never") {
        return Some(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(Some(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let end = day.and_hms_opt(23, 59, 59)?;
    Some(Some(end.and_utc()))
}

impl SuppressionRule {
    pub(crate) fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e.timestamp() < now)
    }

    /// Every field given matches.
    pub fn matches(&self, f: &Finding) -> bool {
        let any = |patterns: &[String], values: &[&str]| {
            patterns.is_empty()
                || patterns
                    .iter()
                    .any(|p| values.iter().any(|v| glob_match(p, v)))
        };
        let rule_values: Vec<&str> = f
            .rule
            .iter()
            .flat_map(|r| [r.id.as_str(), r.title.as_str()])
            .collect();
        let mut accounts = vec![f.account_id.as_str()];
        if let Some(name) = &f.account_name {
            accounts.push(name);
        }
        let resources: Vec<&str> = f.resources.iter().map(|r| r.id.as_str()).collect();
        let actors: Vec<&str> = f
            .actor
            .iter()
            .flat_map(|a| [&a.arn, &a.user_name, &a.principal_id, &a.session_issuer])
            .flatten()
            .map(String::as_str)
            .collect();
        any(&self.types, &[f.finding_type.as_str()])
            && any(&self.rules, &rule_values)
            && any(&self.accounts, &accounts)
            && any(&self.resources, &resources)
            && any(&self.actors, &actors)
    }
}

/// Suppression patterns are shell globs: `*` any run of characters, `?`
/// one character, everything else literal (the one matcher, `detect::glob`).
fn glob_match(pattern: &str, text: &str) -> bool {
    glob::matches(pattern, text, Syntax::SHELL)
}

/// Loads the configured rules: the file, then the SSM parameter (both may
/// be set). A malformed document stops the function from starting (a silent
/// fallback could hide a mistake); an unreachable SSM is logged and the
/// function runs without those rules (alerting more, never less).
pub async fn load(
    settings: &DedupSettings,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<Suppressions, RulesError> {
    let now = Utc::now().timestamp();
    let mut out = Suppressions::default();
    if let Some(path) = &settings.suppressions_file {
        out.extend(load_file(Path::new(path), now)?);
    }
    if let (Some(parameter), Some(sdk)) = (&settings.suppressions_ssm_parameter, sdk) {
        match crate::documents::ssm_document(sdk, parameter).await {
            Ok(text) => {
                out.extend(Suppressions::parse(
                    &text,
                    &format!("ssm:{parameter}"),
                    now,
                )?);
            }
            Err(SsmReadError::NotFound) => {
                return Err(RulesError::Ssm {
                    parameter: parameter.clone(),
                    message: "parameter not found".into(),
                });
            }
            Err(SsmReadError::Unavailable(message)) => {
                tracing::error!(
                    parameter,
                    error = %message,
                    "suppression rules could not be read from SSM: running without them (alerting on everything)"
                );
            }
        }
    }
    if !out.is_empty() {
        tracing::info!(rules = out.len(), "suppression rules loaded");
    }
    Ok(out)
}

/// Reads and parses a rules file.
pub(crate) fn load_file(path: &Path, now: i64) -> Result<Suppressions, RulesError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Suppressions::parse(&text, &path.display().to_string(), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, Resource, Severity, Source};

    const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn finding() -> Finding {
        let mut f = Finding::new(
            Source::GuardDuty,
            "f1",
            "Recon:EC2/PortProbeUnprotectedPort",
        );
        f.severity = Severity::Low;
        f.account_id = "111122223333".into();
        f.resources
            .push(Resource::new("AwsEc2Instance", "i-0abc123"));
        f.actor = Some(Actor {
            arn: Some("arn:aws:iam::111122223333:role/scanner".into()),
            ..Actor::default()
        });
        f
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "Recon:EC2/Port*",
            "Recon:EC2/PortProbeUnprotectedPort"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("i-0ab?123", "i-0abc123"));
        assert!(!glob_match("i-0ab?123", "i-0ab123"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match(
            "arn:aws:iam::*:role/scanner",
            "arn:aws:iam::1:role/scanner"
        ));
        assert!(!glob_match("a*a*a*a*a*b", &"a".repeat(200)));
    }

    #[test]
    fn yaml_rules_match_on_every_given_field() {
        let yaml = r#"
suppressions:
  - name: scanner
    reason: nightly scan
    expires: 2026-12-31
    type: "Recon:EC2/Port*"
    account: ["999999999999", "111122223333"]
    actor: "arn:aws:iam::*:role/scanner"
"#;
        let s = Suppressions::parse(yaml, "test", NOW).unwrap();
        assert_eq!(s.len(), 1);
        let f = finding();
        assert_eq!(s.matching(&f, NOW).unwrap().reason, "nightly scan");
        let mut other = f.clone();
        other.account_id = "444455556666".into();
        assert!(s.matching(&other, NOW).is_none(), "account must match too");
        // Past the end of 2026-12-31 it stops matching.
        assert!(s.matching(&f, NOW + 366 * 86400).is_none());
    }

    #[test]
    fn json_lists_and_never_expiring_rules() {
        let json = r#"[{"reason":"known benign","expires":"never","resource":"i-0abc*"}]"#;
        let s = Suppressions::parse(json, "test", NOW).unwrap();
        assert_eq!(s.rules()[0].name, "#1");
        assert!(s.matching(&finding(), i64::MAX / 2).is_some());
    }

    #[test]
    fn expired_rules_are_dropped_at_load() {
        let yaml = "- {reason: old, expires: '2020-01-01T00:00:00Z', type: X}\n- {reason: live, expires: never, type: Y}";
        let s = Suppressions::parse(yaml, "test", NOW).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.rules()[0].reason, "live");
    }

    #[test]
    fn mistakes_are_errors_not_silence() {
        for bad in [
            "- {expires: never, type: X}",                // no reason
            "- {reason: r, type: X}",                     // no expiry
            "- {reason: r, expires: soon, type: X}",      // bad expiry
            "- {reason: r, expires: never}",              // matches everything
            "- {reason: r, expires: never, acount: '1'}", // typo
            "- {reason: r, expires: never, type: ''}",    // empty pattern
            "suppressions: 42",
            "{{{",
        ] {
            assert!(Suppressions::parse(bad, "test", NOW).is_err(), "{bad}");
        }
        assert!(Suppressions::parse("", "test", NOW).unwrap().is_empty());
        assert!(Suppressions::parse("suppressions:", "test", NOW)
            .unwrap()
            .is_empty());
    }
}

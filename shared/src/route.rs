//! Routing: which people an alert goes to.
//!
//! The route is decided after dedup, once per alert, from a routing table of
//! ordered rules (first match wins, like a firewall, so the table reads top to
//! bottom). A [`Route`] names the rule and the destinations it picks; it
//! travels with the alert (SNS attribute `route`, OCSF
//! `unmapped.vigil_route`), so SNS subscribers can filter on it and the
//! notifier posts to the rule's Slack channel and pages its PagerDuty service.
//!
//! The table is a YAML or JSON document (a file, `VIGIL_ROUTES_FILE`, or an
//! SSM parameter, `VIGIL_ROUTES_SSM_PARAMETER`, read once per cold start):
//!
//! ```yaml
//! routes:
//!   - name: payments                  # the SNS attribute `route`
//!     account: ["111122223333", "prod-payments*"]   # id or name
//!     ou: ["Payments", "ou-ab12-*"]   # name or id of any OU above the account
//!     tag: {team: payments}           # a tag on any resource of the finding
//!     severity: HIGH                  # at least
//!     source: [GuardDuty, Inspector]  # Vigil source or Security Hub product
//!     type: ["Recon:*"]               # finding type or detection rule id
//!     slack_channel: "#payments-security"
//!     pagerduty_service: payments     # a key in the PagerDuty secret's `services`
//!   - name: critical
//!     severity: CRITICAL
//!     pagerduty_service: security-oncall
//! default:                            # when no rule matches
//!   slack_channel: "#security-alerts"
//! ```
//!
//! Every condition given must hold (a list: any of its patterns, with `*` and
//! `?` as in suppression rules); a rule with no condition matches everything
//! and must come last. A malformed table stops the function from starting: a
//! silent fallback would send a team's alerts to the wrong people.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::accounts::AccountInfo;
use crate::detect::glob::{self, Syntax};
use crate::documents::{OneOrMany, SsmReadError};
use crate::model::{Finding, Severity};

/// Name of the route an alert takes when no rule matches.
pub(crate) const DEFAULT_ROUTE: &str = "default";

/// Where one alert goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The matching rule's name (`DEFAULT_ROUTE` when none matched): the SNS
    /// message attribute `route` that subscribers filter on.
    pub name: String,
    /// Slack channel (`#payments-security` or a channel id). None: the
    /// notifier's default channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_channel: Option<String>,
    /// PagerDuty service, by the name its routing key has in the PagerDuty
    /// secret. None: the default routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty_service: Option<String>,
}

impl Default for Route {
    fn default() -> Self {
        Route {
            name: DEFAULT_ROUTE.to_string(),
            slack_channel: None,
            pagerduty_service: None,
        }
    }
}

/// Why the routing table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("routing table {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("routing table in SSM parameter {parameter}: {message}")]
    Ssm { parameter: String, message: String },
    #[error("routing table {origin}: not YAML or JSON of the expected shape: {message}")]
    Parse { origin: String, message: String },
    #[error("routing table {origin}, route {route}: {message}")]
    Invalid {
        origin: String,
        route: String,
        message: String,
    },
}

/// One rule of the table, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRule {
    pub route: Route,
    pub accounts: Vec<String>,
    pub units: Vec<String>,
    /// Tag key → value patterns.
    pub tags: BTreeMap<String, Vec<String>>,
    pub min_severity: Option<Severity>,
    pub sources: Vec<String>,
    pub types: Vec<String>,
}

/// The routing table: rules in order, and the route when none matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingTable {
    rules: Vec<RouteRule>,
    default: Route,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    account: Option<OneOrMany>,
    ou: Option<OneOrMany>,
    #[serde(default)]
    tag: BTreeMap<String, OneOrMany>,
    severity: Option<String>,
    source: Option<OneOrMany>,
    #[serde(rename = "type")]
    finding_type: Option<OneOrMany>,
    slack_channel: Option<String>,
    pagerduty_service: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefault {
    slack_channel: Option<String>,
    pagerduty_service: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    routes: Vec<RawRule>,
    #[serde(default)]
    default: Option<RawDefault>,
}

/// Route names go into an SNS message attribute and filter policies: keep
/// them to characters that need no quoting anywhere.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl RoutingTable {
    pub fn rules(&self) -> &[RouteRule] {
        &self.rules
    }

    #[cfg(test)]
    pub(crate) fn default_route(&self) -> &Route {
        &self.default
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.default == Route::default()
    }

    /// Whether any rule matches on OUs (which needs AWS Organizations).
    pub fn uses_units(&self) -> bool {
        self.rules.iter().any(|r| !r.units.is_empty())
    }

    /// Parses a table; `origin` names it in errors.
    pub fn parse(text_in: &str, origin: &str) -> Result<RoutingTable, RoutesError> {
        if text_in.trim().is_empty() {
            return Ok(RoutingTable::default());
        }
        let doc: Document = serde_yaml::from_str(text_in).map_err(|e| RoutesError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let mut rules: Vec<RouteRule> = Vec::with_capacity(doc.routes.len());
        for (i, raw) in doc.routes.into_iter().enumerate() {
            let label = raw.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            let invalid = |message: &str| RoutesError::Invalid {
                origin: origin.to_string(),
                route: label.clone(),
                message: message.to_string(),
            };
            let name = text(raw.name).ok_or_else(|| invalid("needs a name"))?;
            if !valid_name(&name) || name == DEFAULT_ROUTE {
                return Err(invalid(
                    "the name must be 1-64 letters, digits, '-', '_' or '.', and not \"default\"",
                ));
            }
            if rules.iter().any(|r| r.route.name == name) {
                return Err(invalid("the name is used twice"));
            }
            if let Some(catch_all) = rules.iter().find(|r| r.is_catch_all()) {
                return Err(invalid(&format!(
                    "comes after route {} which matches everything, so it can never match",
                    catch_all.route.name
                )));
            }
            let list = |v: Option<OneOrMany>| -> Result<Vec<String>, RoutesError> {
                let v = v.map(OneOrMany::into_vec).unwrap_or_default();
                if v.iter().any(|p| p.trim().is_empty()) {
                    return Err(invalid("empty pattern"));
                }
                Ok(v)
            };
            let min_severity = match text(raw.severity) {
                None => None,
                Some(s) => Some(s.parse::<Severity>().map_err(|e| invalid(&e.to_string()))?),
            };
            let mut tags = BTreeMap::new();
            for (key, values) in raw.tag {
                tags.insert(key, list(Some(values))?);
            }
            let rule = RouteRule {
                accounts: list(raw.account)?,
                units: list(raw.ou)?,
                sources: list(raw.source)?,
                types: list(raw.finding_type)?,
                tags,
                min_severity,
                route: Route {
                    name,
                    slack_channel: text(raw.slack_channel),
                    pagerduty_service: text(raw.pagerduty_service),
                },
            };
            if rule.route.slack_channel.is_none() && rule.route.pagerduty_service.is_none() {
                // Still useful: the SNS attribute alone routes email and SQS
                // subscribers. Said in the log so a forgotten field shows.
                tracing::info!(
                    route = %rule.route.name,
                    "route names no Slack channel or PagerDuty service: it only sets the SNS attribute"
                );
            }
            rules.push(rule);
        }
        let default = doc.default.unwrap_or_default();
        Ok(RoutingTable {
            rules,
            default: Route {
                name: DEFAULT_ROUTE.to_string(),
                slack_channel: text(default.slack_channel),
                pagerduty_service: text(default.pagerduty_service),
            },
        })
    }

    /// The first matching rule's route, else the default route.
    pub fn route(&self, f: &Finding, account: &AccountInfo) -> &Route {
        self.rules
            .iter()
            .find(|r| r.matches(f, account))
            .map_or(&self.default, |r| &r.route)
    }

    /// Loads the configured table: the file, else the SSM parameter. A
    /// malformed table or a missing parameter stops the function from
    /// starting; an unreachable SSM is logged and every alert takes the
    /// default route (alerting everyone's default, never nobody).
    pub async fn load(
        file: Option<&str>,
        ssm_parameter: Option<&str>,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<RoutingTable, RoutesError> {
        let table = if let Some(path) = file {
            let text_in =
                std::fs::read_to_string(Path::new(path)).map_err(|source| RoutesError::Read {
                    path: path.to_string(),
                    source,
                })?;
            RoutingTable::parse(&text_in, path)?
        } else if let (Some(parameter), Some(sdk)) = (ssm_parameter, sdk) {
            match crate::documents::ssm_document(sdk, parameter).await {
                Ok(text_in) => RoutingTable::parse(&text_in, &format!("ssm:{parameter}"))?,
                Err(SsmReadError::NotFound) => {
                    return Err(RoutesError::Ssm {
                        parameter: parameter.to_string(),
                        message: "parameter not found".into(),
                    })
                }
                Err(SsmReadError::Unavailable(message)) => {
                    tracing::error!(
                        parameter,
                        error = %message,
                        "routing table could not be read from SSM: every alert takes the default route"
                    );
                    RoutingTable::default()
                }
            }
        } else {
            RoutingTable::default()
        };
        if !table.is_empty() {
            tracing::info!(routes = table.rules.len(), "routing table loaded");
        }
        Ok(table)
    }
}

impl RouteRule {
    fn is_catch_all(&self) -> bool {
        self.accounts.is_empty()
            && self.units.is_empty()
            && self.tags.is_empty()
            && self.min_severity.is_none()
            && self.sources.is_empty()
            && self.types.is_empty()
    }

    /// Every condition given holds.
    pub fn matches(&self, f: &Finding, account: &AccountInfo) -> bool {
        let any = |patterns: &[String], values: &mut dyn Iterator<Item = &str>| {
            let values: Vec<&str> = values.collect();
            patterns
                .iter()
                .any(|p| values.iter().any(|v| glob::matches(p, v, Syntax::SHELL)))
        };
        if self.min_severity.is_some_and(|min| f.severity < min) {
            return false;
        }
        if !self.accounts.is_empty()
            && !any(
                &self.accounts,
                &mut std::iter::once(f.account_id.as_str()).chain(f.account_name.as_deref()),
            )
        {
            return false;
        }
        if !self.units.is_empty()
            && !any(
                &self.units,
                &mut account
                    .units
                    .iter()
                    .flat_map(|u| std::iter::once(u.id.as_str()).chain(u.name.as_deref())),
            )
        {
            return false;
        }
        if !self.sources.is_empty() {
            // Case-insensitive: "guardduty" and "GuardDuty" are the same service.
            let source = f.source.as_str().to_ascii_lowercase();
            let product = f.product.to_ascii_lowercase();
            let patterns: Vec<String> = self
                .sources
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect();
            if !any(
                &patterns,
                &mut [source.as_str(), product.as_str()].into_iter(),
            ) {
                return false;
            }
        }
        if !self.types.is_empty() {
            let rule_id = f.rule.as_ref().map(|r| r.id.as_str());
            if !any(
                &self.types,
                &mut std::iter::once(f.finding_type.as_str()).chain(rule_id),
            ) {
                return false;
            }
        }
        self.tags.iter().all(|(key, patterns)| {
            any(
                patterns,
                &mut f
                    .resources
                    .iter()
                    .filter_map(|r| r.tags.get(key).map(String::as_str)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::OrgUnit;
    use crate::model::{Resource, Source};

    const TABLE: &str = r##"
routes:
  - name: payments
    ou: Payments
    slack_channel: "#payments-security"
    pagerduty_service: payments
  - name: team-data
    tag: {team: ["data", "analytics*"]}
    slack_channel: "#data-security"
  - name: prod-critical
    account: ["prod-*", "999900001111"]
    severity: HIGH
    pagerduty_service: oncall
  - name: inspector
    source: inspector
    type: ["Software and Configuration Checks/*"]
default:
  slack_channel: "#security-alerts"
"##;

    fn finding(account: &str, severity: Severity) -> Finding {
        let mut f = Finding::new(
            Source::GuardDuty,
            "f-1",
            "Recon:EC2/PortProbeUnprotectedPort",
        );
        f.account_id = account.into();
        f.severity = severity;
        f
    }

    fn in_unit(name: &str) -> AccountInfo {
        AccountInfo {
            name: None,
            units: vec![
                OrgUnit {
                    id: "ou-ab12-00000001".into(),
                    name: Some("Prod".into()),
                },
                OrgUnit {
                    id: "ou-ab12-00000002".into(),
                    name: Some(name.into()),
                },
            ],
        }
    }

    #[test]
    fn the_first_matching_rule_routes_and_the_default_catches_the_rest() {
        let t = RoutingTable::parse(TABLE, "test").unwrap();
        assert_eq!(t.rules().len(), 4);
        assert!(t.uses_units());
        let none = AccountInfo::default();

        // OU anywhere above the account, by name.
        let f = finding("111122223333", Severity::Low);
        let r = t.route(&f, &in_unit("Payments"));
        assert_eq!(r.name, "payments");
        assert_eq!(r.slack_channel.as_deref(), Some("#payments-security"));
        assert_eq!(r.pagerduty_service.as_deref(), Some("payments"));
        assert_eq!(t.route(&f, &in_unit("Marketing")).name, DEFAULT_ROUTE);

        // Resource tag, glob on the value.
        let mut f = finding("111122223333", Severity::Low);
        let mut bucket = Resource::new("AwsS3Bucket", "arn:aws:s3:::lake");
        bucket.tags.insert("team".into(), "analytics-eu".into());
        f.resources
            .push(Resource::new("AwsIamRole", "arn:aws:iam::1:role/x"));
        f.resources.push(bucket);
        assert_eq!(t.route(&f, &none).name, "team-data");

        // Account by name, with a minimum severity.
        let mut f = finding("444455556666", Severity::Medium);
        f.account_name = Some("prod-payments".into());
        assert_eq!(t.route(&f, &none).name, DEFAULT_ROUTE, "below HIGH");
        f.severity = Severity::Critical;
        assert_eq!(t.route(&f, &none).name, "prod-critical");
        assert_eq!(
            t.route(&finding("999900001111", Severity::High), &none)
                .name,
            "prod-critical"
        );

        // Security Hub product, case-insensitively, and the type.
        let mut f = finding("111122223333", Severity::Low);
        f.source = Source::SecurityHub;
        f.product = "Inspector".into();
        f.finding_type = "Software and Configuration Checks/Vulnerabilities/CVE".into();
        assert_eq!(t.route(&f, &none).name, "inspector");
        f.product = "Macie".into();
        let d = t.route(&f, &none);
        assert_eq!(d.name, DEFAULT_ROUTE);
        assert_eq!(d.slack_channel.as_deref(), Some("#security-alerts"));
    }

    #[test]
    fn mistakes_in_the_table_are_refused_with_the_route_named() {
        let err = |doc: &str| RoutingTable::parse(doc, "t").unwrap_err().to_string();
        assert!(err("routes: [{slack_channel: x}]").contains("needs a name"));
        assert!(err("routes: [{name: 'a b', slack_channel: x}]").contains("letters"));
        assert!(err("routes: [{name: default}]").contains("default"));
        assert!(err("routes: [{name: a, severity: urgent}]").contains("a"));
        assert!(
            err("routes: [{name: a, account: '1'}, {name: a, account: '2'}]").contains("twice")
        );
        assert!(err("routes: [{name: all}, {name: later, account: '1'}]").contains("never match"));
        assert!(err("routes: [{name: a, acount: '1'}]").contains("acount"));
        assert!(err("routes: [{name: a, account: ''}]").contains("empty pattern"));
        assert!(RoutingTable::parse("", "t").unwrap().is_empty());
        // A catch-all last is fine.
        let t = RoutingTable::parse("routes: [{name: a, account: '1'}, {name: all}]", "t").unwrap();
        assert_eq!(
            t.route(&finding("2", Severity::Low), &AccountInfo::default())
                .name,
            "all"
        );
        assert!(!t.uses_units());
    }

    #[test]
    fn the_example_table_in_the_readme_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/routes.yaml");
        let t = RoutingTable::parse(&std::fs::read_to_string(path).unwrap(), path).unwrap();
        let names: Vec<&str> = t.rules().iter().map(|r| r.route.name.as_str()).collect();
        assert_eq!(
            names,
            ["payments", "data-team", "prod-critical", "vulnerabilities"]
        );
        assert_eq!(
            t.default_route().slack_channel.as_deref(),
            Some("#security-alerts")
        );
    }

    #[tokio::test]
    async fn a_table_loads_from_a_file_and_a_missing_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("vigil-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("routes.yaml");
        std::fs::write(&path, TABLE).unwrap();
        let t = RoutingTable::load(path.to_str(), None, None).await.unwrap();
        assert_eq!(t.rules().len(), 4);
        let missing = dir.join("nope.yaml");
        assert!(matches!(
            RoutingTable::load(missing.to_str(), None, None).await,
            Err(RoutesError::Read { .. })
        ));
        assert!(RoutingTable::load(None, None, None)
            .await
            .unwrap()
            .is_empty());
    }
}

//! AWS Config rule compliance changes (`aws.config`, `Config Rules
//! Compliance Change`) into [`Finding`]s, for the rules marked as security
//! rules.
//!
//! Config evaluates many rules that are not about security (tagging, cost,
//! backups). Only rules matching the security list alert:
//! `VIGIL_CONFIG_SECURITY_RULES`, comma-separated globs (`*` and `?`) over the
//! rule name, each optionally `=SEVERITY`; the word `default` stands for the
//! AWS managed security rules Vigil knows ([`DEFAULT_RULES`]), `!glob`
//! excludes. Unset, it is `default,!securityhub-*`: rules Security Hub
//! created for its controls alert through Security Hub, not twice.
//!
//! A resource turning NON_COMPLIANT alerts once (repeats fold in dedup); the
//! same resource leaving NON_COMPLIANT gives a resolved finding, which closes
//! the Slack thread and the PagerDuty incident. Compliant evaluations of
//! resources never non-compliant give nothing.

use std::sync::OnceLock;

use serde_json::Value;

use crate::json;
use crate::model::{Finding, FindingStatus, Resource, Severity, Source};
use crate::sources::console::{partition_of_region, percent_encode, ConsoleUrl};
use crate::sources::{resource_types, Envelope, SourceError};
use crate::text;

/// The detail-type of Config compliance changes.
pub const DETAIL_TYPE: &str = "Config Rules Compliance Change";

/// The variable naming the security rules.
pub const ENV_SECURITY_RULES: &str = "VIGIL_CONFIG_SECURITY_RULES";

/// The list when the variable is unset.
pub const DEFAULT_SELECTION: &str = "default,!securityhub-*";

/// AWS managed Config rules about security, matched anywhere in the rule
/// name (conformance packs and organization rules add prefixes and
/// suffixes), with the severity of a NON_COMPLIANT resource.
pub const DEFAULT_RULES: [(&str, Severity); 40] = [
    ("root-account-mfa-enabled", Severity::High),
    ("root-account-hardware-mfa-enabled", Severity::High),
    ("iam-root-access-key-check", Severity::High),
    ("iam-policy-no-statements-with-admin-access", Severity::High),
    (
        "iam-policy-no-statements-with-full-access",
        Severity::Medium,
    ),
    ("iam-user-mfa-enabled", Severity::Medium),
    ("mfa-enabled-for-iam-console-access", Severity::Medium),
    ("access-keys-rotated", Severity::Medium),
    ("iam-user-unused-credentials-check", Severity::Medium),
    ("iam-password-policy", Severity::Medium),
    ("cloudtrail-enabled", Severity::High),
    ("multi-region-cloudtrail-enabled", Severity::High),
    ("cloud-trail-log-file-validation-enabled", Severity::Medium),
    ("cloud-trail-encryption-enabled", Severity::Medium),
    ("guardduty-enabled-centralized", Severity::High),
    ("securityhub-enabled", Severity::Medium),
    ("restricted-ssh", Severity::High),
    ("restricted-common-ports", Severity::High),
    ("vpc-default-security-group-closed", Severity::Medium),
    ("vpc-flow-logs-enabled", Severity::Medium),
    ("s3-bucket-public-read-prohibited", Severity::High),
    ("s3-bucket-public-write-prohibited", Severity::High),
    ("s3-bucket-level-public-access-prohibited", Severity::High),
    ("s3-account-level-public-access-blocks", Severity::High),
    ("s3-bucket-ssl-requests-only", Severity::Medium),
    ("s3-bucket-server-side-encryption-enabled", Severity::Medium),
    ("encrypted-volumes", Severity::Medium),
    ("ec2-ebs-encryption-by-default", Severity::Medium),
    ("ec2-imdsv2-check", Severity::Medium),
    ("ec2-instance-no-public-ip", Severity::Medium),
    ("ebs-snapshot-public-restorable-check", Severity::High),
    ("rds-instance-public-access-check", Severity::High),
    ("rds-snapshots-public-prohibited", Severity::High),
    ("rds-storage-encrypted", Severity::Medium),
    ("lambda-function-public-access-prohibited", Severity::High),
    ("redshift-cluster-public-access-check", Severity::High),
    ("eks-endpoint-no-public-access", Severity::Medium),
    ("kms-cmk-not-scheduled-for-deletion", Severity::High),
    ("cmk-backing-key-rotation-enabled", Severity::Medium),
    ("secretsmanager-rotation-enabled-check", Severity::Medium),
];

/// Severity of a rule the deployer lists without one.
const LISTED_RULE_SEVERITY: Severity = Severity::Medium;

/// One entry of the list: a glob, and the severity it gives.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    glob: String,
    severity: Severity,
}

/// Which Config rules are security rules, and how severe their failures are.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecurityRules {
    include: Vec<Entry>,
    exclude: Vec<String>,
}

impl SecurityRules {
    /// Reads a list (`default,restricted-*=high,!dev-*`). An entry whose
    /// severity cannot be read is an error: a rule must mean what the
    /// deployer wrote.
    pub fn parse(list: &str) -> Result<SecurityRules, String> {
        let mut rules = SecurityRules::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item.eq_ignore_ascii_case("default") {
                rules
                    .include
                    .extend(DEFAULT_RULES.iter().map(|(name, severity)| Entry {
                        glob: format!("*{name}*"),
                        severity: *severity,
                    }));
            } else if let Some(glob) = item.strip_prefix('!') {
                rules.exclude.push(glob.trim().to_string());
            } else {
                let (glob, severity) = match item.split_once('=') {
                    Some((g, s)) => (
                        g.trim(),
                        s.parse::<Severity>()
                            .map_err(|e| format!("{ENV_SECURITY_RULES}: {item:?}: {e}"))?,
                    ),
                    None => (item, LISTED_RULE_SEVERITY),
                };
                rules.include.push(Entry {
                    glob: glob.to_string(),
                    severity,
                });
            }
        }
        Ok(rules)
    }

    /// The process's list: the variable, else [`DEFAULT_SELECTION`]. A list
    /// that cannot be read is logged and the default used, so a typo never
    /// silences the AWS managed security rules.
    pub fn from_env() -> &'static SecurityRules {
        static RULES: OnceLock<SecurityRules> = OnceLock::new();
        RULES.get_or_init(|| {
            let list =
                std::env::var(ENV_SECURITY_RULES).unwrap_or_else(|_| DEFAULT_SELECTION.into());
            SecurityRules::parse(&list).unwrap_or_else(|e| {
                tracing::error!(error = %e, "invalid Config security rule list; using the default");
                SecurityRules::parse(DEFAULT_SELECTION).unwrap_or_default()
            })
        })
    }

    /// The severity of a NON_COMPLIANT resource of `rule`; `None` when it is
    /// no security rule. The most severe matching entry wins.
    pub fn severity(&self, rule: &str) -> Option<Severity> {
        if self.exclude.iter().any(|g| glob_match(g, rule)) {
            return None;
        }
        self.include
            .iter()
            .filter(|e| glob_match(&e.glob, rule))
            .map(|e| e.severity)
            .max()
    }
}

/// `*` any run, `?` one character, case-insensitive; iterative, so a
/// hostile rule name cannot make it slow.
fn glob_match(glob: &str, name: &str) -> bool {
    let g: Vec<char> = glob.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut gi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ni));
            gi += 1;
        } else if let Some((sg, sn)) = star {
            gi = sg + 1;
            ni = sn + 1;
            star = Some((sg, sn + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

fn missing(field: &'static str) -> SourceError {
    SourceError::MissingField {
        source_kind: Source::Config,
        field,
    }
}

/// Parses one compliance change with the process's security rule list.
pub fn parse(v: &Value, envelope: &Envelope) -> Result<Vec<Finding>, SourceError> {
    parse_with(v, envelope, SecurityRules::from_env())
}

/// Parses one compliance change with `rules`.
pub fn parse_with(
    v: &Value,
    envelope: &Envelope,
    rules: &SecurityRules,
) -> Result<Vec<Finding>, SourceError> {
    if !v.is_object() {
        return Err(missing("detail"));
    }
    let qualifier = &[
        "newEvaluationResult",
        "evaluationResultIdentifier",
        "evaluationResultQualifier",
    ];
    let at = |key: &str| {
        let mut p = qualifier.to_vec();
        p.push(key);
        json::string(v, &p)
    };
    let rule = json::string(v, &["configRuleName"])
        .or_else(|| at("configRuleName"))
        .ok_or(missing("configRuleName"))?;
    let new = json::string(v, &["newEvaluationResult", "complianceType"])
        .ok_or(missing("newEvaluationResult.complianceType"))?;
    let old = json::string(v, &["oldEvaluationResult", "complianceType"]);
    let Some(severity) = rules.severity(&rule) else {
        return Ok(Vec::new());
    };
    let status = match (new.as_str(), old.as_deref()) {
        ("NON_COMPLIANT", _) => FindingStatus::Active,
        (_, Some("NON_COMPLIANT")) => FindingStatus::Resolved,
        _ => return Ok(Vec::new()),
    };
    let resource_id = json::string(v, &["resourceId"]).or_else(|| at("resourceId"));
    let resource_type = json::string(v, &["resourceType"])
        .or_else(|| at("resourceType"))
        .unwrap_or_default();
    let change = Change {
        rule,
        new,
        old,
        resource_id,
        resource_type,
    };
    Ok(vec![finding(v, envelope, change, severity, status)])
}

/// What one compliance change says about one resource.
struct Change {
    rule: String,
    new: String,
    old: Option<String>,
    resource_id: Option<String>,
    resource_type: String,
}

/// The finding of a security rule's change.
fn finding(
    v: &Value,
    envelope: &Envelope,
    change: Change,
    severity: Severity,
    status: FindingStatus,
) -> Finding {
    let Change {
        rule,
        new,
        old,
        resource_id,
        resource_type,
    } = change;
    let account = json::string(v, &["awsAccountId"]).unwrap_or_else(|| envelope.account.clone());
    let region = json::string(v, &["awsRegion"]).unwrap_or_else(|| envelope.region.clone());
    let rule_arn = json::string(v, &["configRuleARN"]).unwrap_or_else(|| rule.clone());
    let target = resource_id.clone().unwrap_or_else(|| account.clone());
    let id = format!("{rule_arn}/{resource_type}/{target}");
    let mut f = Finding::new(Source::Config, id, text::truncate(&rule, 128));
    f.product = "Config".to_string();
    f.severity = severity;
    f.status = status;
    f.account_id = account;
    f.region = region;
    f.time = json::time_at(v, &["newEvaluationResult", "resultRecordedTime"])
        .or(envelope.time)
        .unwrap_or_else(chrono::Utc::now);
    f.event_id = Some(envelope.id.clone()).filter(|i| !i.is_empty());
    let what = if resource_type.is_empty() {
        "resource"
    } else {
        &resource_type
    };
    f.title = match status {
        FindingStatus::Resolved => {
            format!("{what} {target} complies with Config rule {rule} again")
        }
        _ => format!("{what} {target} is non-compliant with Config rule {rule}"),
    };
    f.description = json::string(v, &["newEvaluationResult", "annotation"])
        .map(|a| text::truncate(&a, 1024))
        .unwrap_or_else(|| {
            format!("AWS Config evaluated {what} {target} as {new} for rule {rule}.")
        });
    f.source_severity = Some(text::truncate(&new, 32));
    f.evidence
        .insert("config_rule".into(), text::truncate(&rule, 256));
    f.evidence
        .insert("compliance".into(), text::truncate(&new, 32));
    if let Some(old) = old {
        f.evidence
            .insert("previous_compliance".into(), text::truncate(&old, 32));
    }
    if let Some(id) = resource_id {
        let mut r = Resource::new(resource_types::from_cloudformation(&resource_type), id);
        r.region = Some(f.region.clone()).filter(|r| !r.is_empty());
        f.resources.push(r);
    } else if !f.account_id.is_empty() {
        f.resources
            .push(Resource::new("AwsAccount", f.account_id.clone()));
    }
    f.links.console =
        ConsoleUrl::new(partition_of_region(&f.region), &f.region, "config").map(|u| {
            u.view(format!(
                "/rules/details?configRuleName={}",
                percent_encode(&rule)
            ))
            .build()
        });
    f.remediation = Some(format!(
        "Bring the resource back in line with rule {} (the rule's description in the Config \
console says what it checks), or remediate with the rule's SSM automation; the alert \
resolves when Config evaluates it COMPLIANT.",
        text::truncate(&rule, 128)
    ));
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Envelope {
        Envelope {
            id: "e".into(),
            source: "aws.config".into(),
            detail_type: DETAIL_TYPE.into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            time: None,
        }
    }

    fn change(rule: &str, new: &str, old: Option<&str>) -> Value {
        let mut v = json!({"configRuleName": rule, "resourceId": "sg-1", "resourceType": "AWS::EC2::SecurityGroup",
            "awsRegion": "us-east-1", "awsAccountId": "123456789012",
            "newEvaluationResult": {"complianceType": new}});
        if let Some(old) = old {
            v["oldEvaluationResult"] = json!({"complianceType": old});
        }
        v
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "*restricted-ssh*",
            "OrgConfigRule-restricted-ssh-abc"
        ));
        assert!(glob_match(
            "securityhub-*",
            "securityhub-restricted-ssh-1a2b"
        ));
        assert!(glob_match("a?c", "ABC"));
        assert!(!glob_match("a*c", "abd"));
        assert!(glob_match("*", ""));
        assert!(!glob_match(&"*a".repeat(50), &"b".repeat(5000)));
    }

    #[test]
    fn default_list_security_rules_only_and_not_security_hubs() {
        let rules = SecurityRules::parse(DEFAULT_SELECTION).unwrap();
        assert_eq!(rules.severity("restricted-ssh"), Some(Severity::High));
        assert_eq!(
            rules.severity("restricted-ssh-conformance-pack-x1"),
            Some(Severity::High)
        );
        assert_eq!(rules.severity("securityhub-restricted-ssh-x1"), None);
        assert_eq!(rules.severity("required-tags"), None);
        let custom = SecurityRules::parse("default,team-sec-*=critical,!*-dev").unwrap();
        assert_eq!(custom.severity("team-sec-kms"), Some(Severity::Critical));
        assert_eq!(custom.severity("restricted-ssh-dev"), None);
        assert!(SecurityRules::parse("x=urgent").is_err());
    }

    #[test]
    fn non_compliant_alerts_compliant_resolves_and_the_rest_is_skipped() {
        let rules = SecurityRules::parse(DEFAULT_SELECTION).unwrap();
        let f = parse_with(
            &change("restricted-ssh", "NON_COMPLIANT", Some("COMPLIANT")),
            &envelope(),
            &rules,
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            (f.status, f.severity),
            (FindingStatus::Active, Severity::High)
        );
        assert_eq!(f.resources[0].resource_type, "AwsEc2SecurityGroup");
        let back = parse_with(
            &change("restricted-ssh", "COMPLIANT", Some("NON_COMPLIANT")),
            &envelope(),
            &rules,
        )
        .unwrap()
        .remove(0);
        assert_eq!(back.status, FindingStatus::Resolved);
        assert_eq!(back.id, f.id);
        assert_eq!(back.finding_type, f.finding_type);
        for skipped in [
            change("restricted-ssh", "COMPLIANT", None),
            change("restricted-ssh", "NOT_APPLICABLE", Some("COMPLIANT")),
            change("required-tags", "NON_COMPLIANT", None),
        ] {
            assert!(parse_with(&skipped, &envelope(), &rules)
                .unwrap()
                .is_empty());
        }
        assert!(parse_with(&json!({"configRuleName": "x"}), &envelope(), &rules).is_err());
        assert!(parse_with(&json!(1), &envelope(), &rules).is_err());
    }
}

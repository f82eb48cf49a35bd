//! Which product is behind a Security Hub finding, where Vigil has a direct
//! parser too (GuardDuty, Macie), and what a copy must share with the direct
//! parser's finding: the native type, the short id, resource ids, tactics.

use serde_json::{Map, Value};

use super::product_fields::{pf_str, PF_PRODUCT_NAME};
use crate::json;
use crate::model::{Finding, Tactic};
use crate::sources::guardduty::PRODUCT_GUARDDUTY;
use crate::sources::macie::{self, PRODUCT_MACIE};

/// Which product behind Security Hub, where Vigil has a direct parser too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    GuardDuty,
    Macie,
    Other,
}

impl Origin {
    pub(super) fn from_name(name: &str) -> Origin {
        if name.eq_ignore_ascii_case("guardduty") || name.eq_ignore_ascii_case("amazon guardduty") {
            Origin::GuardDuty
        } else if name.eq_ignore_ascii_case("macie") || name.eq_ignore_ascii_case("amazon macie") {
            Origin::Macie
        } else {
            Origin::Other
        }
    }

    /// From a Security Hub product ARN (`...:product/aws/guardduty`, or
    /// `...:productv2/aws/guardduty` in the newer Security Hub).
    pub(super) fn from_product_arn(arn: &str) -> Origin {
        if arn.ends_with("/aws/guardduty") {
            Origin::GuardDuty
        } else if arn.ends_with("/aws/macie") {
            Origin::Macie
        } else {
            Origin::Other
        }
    }

    /// From an OCSF finding's product: its name, else its uid (a product ARN).
    pub(super) fn of_ocsf(v: &Value) -> Origin {
        let product_name = json::string(v, &["metadata", "product", "name"]);
        match product_name.as_deref().map(Origin::from_name) {
            Some(o) if o != Origin::Other => o,
            _ => Origin::from_product_arn(
                json::str_at(v, &["metadata", "product", "uid"]).unwrap_or(""),
            ),
        }
    }

    /// From an ASFF finding: its product name, then its product ARN, then a
    /// GuardDuty generator or finding id.
    pub(super) fn of_asff(v: &Value, pf: Option<&Map<String, Value>>) -> Origin {
        let names = [
            json::str_at(v, &["ProductName"]),
            pf_str(pf, PF_PRODUCT_NAME),
        ];
        for name in names.into_iter().flatten() {
            let o = Origin::from_name(name);
            if o != Origin::Other {
                return o;
            }
        }
        let o = Origin::from_product_arn(json::str_at(v, &["ProductArn"]).unwrap_or(""));
        if o != Origin::Other {
            return o;
        }
        let generated_by_guardduty = [json::str_at(v, &["GeneratorId"]), json::str_at(v, &["Id"])]
            .into_iter()
            .flatten()
            .any(|s| s.contains(":guardduty:"));
        if generated_by_guardduty {
            Origin::GuardDuty
        } else {
            Origin::Other
        }
    }

    pub(super) fn product(self) -> Option<&'static str> {
        match self {
            Origin::GuardDuty => Some(PRODUCT_GUARDDUTY),
            Origin::Macie => Some(PRODUCT_MACIE),
            Origin::Other => None,
        }
    }
}

/// The native GuardDuty or Macie type from a Security Hub type, which replaces
/// the type's `/` with `-` and prefixes a namespace:
/// `TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce` →
/// `UnauthorizedAccess:EC2/SSHBruteForce`. A type already in native form is
/// returned as is; a type that is not one of theirs gives `None`.
pub(super) fn native_type(security_hub_type: &str) -> Option<String> {
    let t = security_hub_type.trim();
    let colon = t.find(':')?;
    let start = t[..colon].rfind('/').map_or(0, |i| i + 1);
    let purpose = &t[start..colon];
    let rest = &t[colon + 1..];
    // `ThreatPurpose:ResourceType/ThreatFamily...`: both names PascalCase words.
    let word = |w: &str| {
        w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && w.chars().all(|c| c.is_ascii_alphanumeric())
    };
    if !word(purpose) {
        return None;
    }
    let (resource, family) = rest.split_once('/').or_else(|| rest.split_once('-'))?;
    if !word(resource) || family.is_empty() {
        return None;
    }
    Some(format!("{purpose}:{resource}/{family}"))
}

/// The short GuardDuty finding id from its ARN (`.../finding/<id>`), as the
/// direct parser uses it.
pub(super) fn guardduty_short_id(id: &str) -> String {
    id.rsplit_once("/finding/")
        .map(|(_, short)| short)
        .filter(|s| !s.is_empty())
        .unwrap_or(id)
        .to_string()
}

/// Resource ids as people and the direct parsers know them: the account id
/// instead of `AWS::::Account:<id>`, the key id instead of
/// `AWS::IAM::AccessKey:<id>`, and for GuardDuty the instance id, which its own
/// events carry instead of the ARN. `None` for ids that name nothing.
pub(super) fn resource_id(resource_type: &str, raw: &str, origin: Origin) -> Option<String> {
    let raw = raw.trim();
    let id = if let Some(account) = raw.strip_prefix("AWS::::Account:") {
        account
    } else if let Some(key) = raw.strip_prefix("AWS::IAM::AccessKey:") {
        key
    } else if origin == Origin::GuardDuty && resource_type == "AwsEc2Instance" {
        raw.rsplit_once(":instance/").map_or(raw, |(_, id)| id)
    } else {
        raw
    };
    (!id.is_empty() && !id.eq_ignore_ascii_case("null")).then(|| id.to_string())
}

/// Tactics for a GuardDuty or Macie type when Security Hub named none: the
/// purpose when it is an ATT&CK tactic (GuardDuty), Macie's own inference.
pub(super) fn tactics_for_origin(f: &mut Finding, origin: Origin) {
    if !f.tactics.is_empty() {
        return;
    }
    match origin {
        Origin::GuardDuty => {
            let purpose = f.finding_type.split(':').next().unwrap_or_default();
            if let Some(t) = Tactic::parse(purpose) {
                f.tactics.push(t);
            }
        }
        Origin::Macie => macie::map_attack(f),
        Origin::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_types_from_security_hub_types() {
        assert_eq!(
            native_type("TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce").as_deref(),
            Some("UnauthorizedAccess:EC2/SSHBruteForce")
        );
        assert_eq!(
            native_type("Unusual Behaviors/User/Recon:IAMUser-ResourcePermissions").as_deref(),
            Some("Recon:IAMUser/ResourcePermissions")
        );
        assert_eq!(
            native_type("Sensitive Data Identifications/PII/SensitiveData:S3Object-Personal")
                .as_deref(),
            Some("SensitiveData:S3Object/Personal")
        );
        assert_eq!(
            native_type("Backdoor:EC2/C&CActivity.B!DNS").as_deref(),
            Some("Backdoor:EC2/C&CActivity.B!DNS")
        );
        assert_eq!(
            native_type("Software and Configuration Checks/Vulnerabilities/CVE"),
            None
        );
        assert_eq!(native_type("https://example.com/x"), None);
    }

    #[test]
    fn resource_ids_are_normalized() {
        assert_eq!(
            resource_id("AwsAccount", "AWS::::Account:111122223333", Origin::Other).as_deref(),
            Some("111122223333")
        );
        assert_eq!(
            resource_id(
                "AwsIamAccessKey",
                "AWS::IAM::AccessKey:null",
                Origin::GuardDuty
            ),
            None
        );
        assert_eq!(
            resource_id(
                "AwsEc2Instance",
                "arn:aws:ec2:us-east-1:1:instance/i-0abc",
                Origin::GuardDuty
            )
            .as_deref(),
            Some("i-0abc")
        );
        assert_eq!(
            resource_id(
                "AwsEc2Instance",
                "arn:aws:ec2:us-east-1:1:instance/i-0abc",
                Origin::Other
            )
            .as_deref(),
            Some("arn:aws:ec2:us-east-1:1:instance/i-0abc")
        );
    }
}

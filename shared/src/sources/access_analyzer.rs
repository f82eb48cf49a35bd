//! IAM Access Analyzer's own findings (`aws.access-analyzer`) into [`Finding`]s.
//!
//! Two kinds: external access (`Access Analyzer Finding`: a bucket, key,
//! role, queue, secret... that a policy shares outside the zone of trust, or
//! with everyone) and unused access (`Unused Access Finding for IAM
//! entities`: roles, keys, passwords and permissions nobody used). An ACTIVE
//! external access finding alerts, more severe when public and for resources
//! that give data or identity away; unused access is LOW or MEDIUM posture.
//! ARCHIVED findings are kept as archived (no alert), RESOLVED ones as
//! resolved, which closes an alert already sent; deleted findings give none.

use serde_json::Value;

use crate::json;
use crate::model::{Finding, FindingStatus, Resource, Severity, Source, Tactic, Technique};
use crate::sources::console::{partition_of_region, ConsoleUrl, Partition};
use crate::sources::{resource_types, Envelope, SourceError};
use crate::text;

/// The detail-types of Access Analyzer findings.
pub const DETAIL_TYPES: [&str; 2] = [
    "Access Analyzer Finding",
    "Unused Access Finding for IAM entities",
];

/// Actions and principals listed as evidence; the rest is counted.
const MAX_LIST_ITEMS: usize = 10;

/// Resource types that hand over data or identity when shared: public
/// access to them is CRITICAL, cross-account access HIGH.
const SENSITIVE_TYPES: [&str; 9] = [
    "AWS::S3::Bucket",
    "AWS::S3Express::DirectoryBucket",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::IAM::Role",
    "AWS::EC2::Snapshot",
    "AWS::RDS::DBSnapshot",
    "AWS::RDS::DBClusterSnapshot",
    "AWS::DynamoDB::Table",
];

fn missing(field: &'static str) -> SourceError {
    SourceError::MissingField {
        source_kind: Source::AccessAnalyzer,
        field,
    }
}

/// Parses one Access Analyzer finding event's `detail`.
pub fn parse(v: &Value, envelope: &Envelope) -> Result<Vec<Finding>, SourceError> {
    if !v.is_object() {
        return Err(missing("detail"));
    }
    if json::boolean(v, &["isDeleted"]) == Some(true) {
        return Ok(Vec::new());
    }
    let id = json::string(v, &["id"]).ok_or(missing("id"))?;
    let resource = json::string(v, &["resource"]).ok_or(missing("resource"))?;
    let cfn_type = json::string(v, &["resourceType"]).unwrap_or_default();
    let unused = envelope.detail_type == DETAIL_TYPES[1];
    let finding_type = if unused {
        json::string(v, &["findingType"]).unwrap_or_else(|| "UnusedAccess".into())
    } else {
        format!(
            "ExternalAccess/{}",
            resource_types::from_cloudformation(&cfn_type)
        )
    };
    let mut f = Finding::new(Source::AccessAnalyzer, id, finding_type);
    f.product = "IAM Access Analyzer".to_string();
    f.account_id = json::string(v, &["accountId"])
        .or_else(|| json::string(v, &["resourceOwnerAccount"]))
        .unwrap_or_else(|| envelope.account.clone());
    f.region = json::string(v, &["region"]).unwrap_or_else(|| envelope.region.clone());
    f.time = json::time_at(v, &["updatedAt"])
        .or_else(|| json::time_at(v, &["analyzedAt"]))
        .or(envelope.time)
        .unwrap_or_else(chrono::Utc::now);
    f.first_seen = json::time_at(v, &["createdAt"]);
    f.last_seen = json::time_at(v, &["analyzedAt"]);
    f.event_id = Some(envelope.id.clone()).filter(|i| !i.is_empty());
    f.status = match json::str_at(v, &["status"]) {
        Some("ARCHIVED") => FindingStatus::Archived,
        Some("RESOLVED") => FindingStatus::Resolved,
        _ => FindingStatus::Active,
    };
    let mut r = Resource::new(resource_types::from_cloudformation(&cfn_type), resource);
    r.region = Some(f.region.clone()).filter(|s| !s.is_empty());
    f.resources.push(r);
    if unused {
        read_unused(&mut f, v);
    } else {
        read_external(&mut f, v, &cfn_type);
    }
    let partition = partition_of_region(&f.region);
    f.links.console = console_link(partition, &f.region, unused);
    Ok(vec![f])
}

/// Who gets in and how: public or which accounts, with which actions.
fn read_external(f: &mut Finding, v: &Value, cfn_type: &str) {
    let public = json::boolean(v, &["isPublic"]) == Some(true);
    let sensitive = SENSITIVE_TYPES.contains(&cfn_type);
    let resource = f.resources[0].id.clone();
    if let Some(error) = json::string(v, &["error"]) {
        // Access Analyzer could not read the policy: nothing is known to be
        // shared, but the resource is unwatched until it can.
        f.severity = Severity::Low;
        f.title = format!("Access Analyzer cannot analyze {resource}");
        put(f, "analysis_error", &error);
        return;
    }
    f.severity = match (public, sensitive) {
        (true, true) => Severity::Critical,
        (true, false) | (false, true) => Severity::High,
        (false, false) => Severity::Medium,
    };
    let principals = principals(v);
    f.title = if public {
        format!("{resource} is shared with everyone")
    } else if principals.is_empty() {
        format!("{resource} is shared outside the zone of trust")
    } else {
        format!("{resource} is shared with {}", principals.join(", "))
    };
    f.description = format!(
        "IAM Access Analyzer found that a policy on this {} grants access {}.",
        if cfn_type.is_empty() {
            "resource"
        } else {
            cfn_type
        },
        if public {
            "to anyone (public)".to_string()
        } else {
            "to principals outside the zone of trust".to_string()
        }
    );
    f.source_severity = Some(if public { "public" } else { "cross-account" }.into());
    put(f, "public", if public { "true" } else { "false" });
    if !principals.is_empty() {
        put(f, "external_principals", &principals.join(", "));
    }
    let actions = strings(json::field(v, "action"));
    if !actions.is_empty() {
        put(f, "actions", &list(&actions));
    }
    if let Some(c) =
        json::field(v, "condition").filter(|c| c.as_object().is_some_and(|o| !o.is_empty()))
    {
        put(f, "condition", &c.to_string());
    }
    f.tactics.push(Tactic::Exfiltration);
    f.techniques.push(Technique {
        id: "T1537".into(),
        name: Some("Transfer Data to Cloud Account".into()),
    });
    f.evidence.insert(
        "attack_mapping".into(),
        "inferred: access granted outside the zone of trust".into(),
    );
    f.remediation = Some(
        "If the access is not intended, remove the statement or principal from the \
resource's policy (or ACL, access point) and the finding resolves; if it is, \
archive the finding or add an archive rule."
            .into(),
    );
}

/// Unused credentials are standing risk (MEDIUM); unused roles and
/// permissions are least-privilege posture (LOW).
fn read_unused(f: &mut Finding, v: &Value) {
    let resource = f.resources[0].id.clone();
    let (severity, what) = match f.finding_type.as_str() {
        "UnusedIAMUserAccessKey" => (Severity::Medium, "has an unused access key"),
        "UnusedIAMUserPassword" => (Severity::Medium, "has an unused console password"),
        "UnusedIAMRole" => (Severity::Low, "is an unused role"),
        "UnusedPermission" => (Severity::Low, "has unused permissions"),
        _ => (Severity::Low, "has unused access"),
    };
    f.severity = severity;
    f.title = format!("{resource} {what}");
    f.description = format!("IAM Access Analyzer: {resource} {what}.");
    for (key, path) in [
        ("unused_access_keys", "numberOfUnusedAccessKeys"),
        ("unused_services", "numberOfUnusedServices"),
        ("unused_actions", "numberOfUnusedActions"),
        ("last_accessed", "lastAccessed"),
    ] {
        if let Some(s) = json::string(v, &[path]) {
            put(f, key, &s);
        }
    }
    f.remediation = Some(
        "Remove what is not used: delete or deactivate the unused key or password, \
delete the unused role, or trim the policy to the permissions in use."
            .into(),
    );
}

/// `{"AWS": "999988887777"}` or `{"AWS": ["...", "..."]}`, `{"Federated": ...}`.
fn principals(v: &Value) -> Vec<String> {
    let Some(map) = json::field(v, "principal").and_then(Value::as_object) else {
        return Vec::new();
    };
    map.iter()
        .flat_map(|(kind, who)| {
            let who = match who {
                Value::Array(_) => strings(Some(who)),
                other => strings(Some(&Value::Array(vec![other.clone()]))),
            };
            who.into_iter().map(move |w| format!("{kind}:{w}"))
        })
        .take(MAX_LIST_ITEMS)
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(|s| text::truncate(s, 128)))
        .filter(|s| !s.is_empty())
        .collect()
}

fn list(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(MAX_LIST_ITEMS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LIST_ITEMS {
        s.push_str(&format!(" (+{} more)", items.len() - MAX_LIST_ITEMS));
    }
    s
}

fn put(f: &mut Finding, key: &str, value: &str) {
    if !value.trim().is_empty() {
        f.evidence
            .insert(key.to_string(), text::truncate(value.trim(), 512));
    }
}

fn console_link(partition: Partition, region: &str, unused: bool) -> Option<String> {
    let view = if unused {
        "/unused-access"
    } else {
        "/findings"
    };
    ConsoleUrl::new(partition, region, "access-analyzer").map(|u| u.view(view).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(detail_type: &str) -> Envelope {
        Envelope {
            id: "e".into(),
            source: "aws.access-analyzer".into(),
            detail_type: detail_type.into(),
            account: "111122223333".into(),
            region: "us-west-2".into(),
            time: None,
        }
    }

    fn external(public: bool, resource_type: &str, status: &str) -> Finding {
        let v = json!({"id": "f1", "resource": "arn:aws:s3:::b", "resourceType": resource_type,
            "isPublic": public, "status": status, "principal": {"AWS": "999988887777"}, "action": ["s3:GetObject"]});
        parse(&v, &envelope(DETAIL_TYPES[0])).unwrap().remove(0)
    }

    #[test]
    fn severity_by_exposure_and_resource() {
        assert_eq!(
            external(true, "AWS::S3::Bucket", "ACTIVE").severity,
            Severity::Critical
        );
        assert_eq!(
            external(false, "AWS::S3::Bucket", "ACTIVE").severity,
            Severity::High
        );
        assert_eq!(
            external(true, "AWS::SQS::Queue", "ACTIVE").severity,
            Severity::High
        );
        assert_eq!(
            external(false, "AWS::SQS::Queue", "ACTIVE").severity,
            Severity::Medium
        );
        let f = external(false, "AWS::S3::Bucket", "ACTIVE");
        assert_eq!(f.evidence["external_principals"], "AWS:999988887777");
        assert_eq!(f.resources[0].resource_type, "AwsS3Bucket");
    }

    #[test]
    fn statuses() {
        assert_eq!(
            external(false, "AWS::S3::Bucket", "ARCHIVED").status,
            FindingStatus::Archived
        );
        assert_eq!(
            external(false, "AWS::S3::Bucket", "RESOLVED").status,
            FindingStatus::Resolved
        );
        let deleted = json!({"id": "f", "resource": "r", "isDeleted": true});
        assert!(parse(&deleted, &envelope(DETAIL_TYPES[0]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unused_access_is_low_or_medium() {
        let v = json!({"id": "u", "resource": "arn:aws:iam::111122223333:user/bob", "resourceType": "AWS::IAM::User",
            "findingType": "UnusedIAMUserAccessKey", "status": "ACTIVE"});
        let f = parse(&v, &envelope(DETAIL_TYPES[1])).unwrap().remove(0);
        assert_eq!(f.severity, Severity::Medium);
        let v =
            json!({"id": "u", "resource": "arn:aws:iam::1:role/r", "findingType": "UnusedIAMRole"});
        let f = parse(&v, &envelope(DETAIL_TYPES[1])).unwrap().remove(0);
        assert_eq!(f.severity, Severity::Low);
    }

    #[test]
    fn hostile_and_missing_fields() {
        assert!(parse(&json!({"id": "x"}), &envelope(DETAIL_TYPES[0])).is_err());
        assert!(parse(&json!(null), &envelope(DETAIL_TYPES[0])).is_err());
        let v = json!({"id": "x", "resource": "r", "principal": {"AWS": [1, {"a": 2}, "x".repeat(5000)]},
            "action": "not-a-list", "region": "evil.example/?"});
        let f = parse(&v, &envelope(DETAIL_TYPES[0])).unwrap().remove(0);
        assert!(f.links.console.is_none());
        assert!(f.evidence["external_principals"].chars().count() < 200);
    }
}

//! Macie's own findings (EventBridge `aws.macie` / `Macie Finding`, `detail` =
//! one finding as the Macie API returns it) into [`Finding`]s.
//!
//! Two families: sensitive data findings (`SensitiveData:S3Object/...`, from
//! discovery jobs and automated discovery: an S3 object holds personal,
//! financial or credential data) and policy findings (`Policy:IAMUser/...`: a
//! bucket became public, shared, unencrypted). Macie's events never carry the
//! sensitive data itself, only its categories and counts, and so neither do
//! Vigil's findings.

use serde_json::Value;

use crate::json;
use crate::model::{
    Actor, ActorType, Finding, FindingStatus, Network, Resource, Severity, Source, Tactic,
};
use crate::sources::console::{percent_encode, ConsoleUrl, Partition};
use crate::sources::{Envelope, SourceError};
use crate::text;

/// [`Finding::product`] of Macie findings, whichever way they came.
pub(crate) const PRODUCT_MACIE: &str = "Macie";

/// Longest evidence value built from a finding.
const MAX_EVIDENCE_CHARS: usize = 512;
/// Sensitive data types listed per finding; the rest is counted.
const MAX_DETECTIONS: usize = 12;

fn missing(field: &'static str) -> SourceError {
    SourceError::MissingField {
        source_kind: Source::Macie,
        field,
    }
}

/// Parses one Macie finding. `envelope` is the EventBridge envelope when the
/// finding came inside one.
pub fn parse(v: &Value, envelope: Option<&Envelope>) -> Result<Finding, SourceError> {
    if !v.is_object() {
        return Err(missing("detail"));
    }
    let finding_type = json::string(v, &["type"]).ok_or(missing("type"))?;
    let id = json::string(v, &["id"]).ok_or(missing("id"))?;
    let mut f = Finding::new(Source::Macie, id, finding_type);
    f.product = PRODUCT_MACIE.to_string();
    f.title = json::string(v, &["title"]).unwrap_or_else(|| f.finding_type.clone());
    f.description = json::string(v, &["description"]).unwrap_or_default();
    read_severity(&mut f, v);

    f.account_id = json::string(v, &["accountId"])
        .or_else(|| {
            envelope
                .map(|e| e.account.clone())
                .filter(|a| !a.is_empty())
        })
        .unwrap_or_default();
    f.region = json::string(v, &["region"])
        .or_else(|| envelope.map(|e| e.region.clone()).filter(|r| !r.is_empty()))
        .unwrap_or_default();
    f.time = json::time_at(v, &["updatedAt"])
        .or_else(|| json::time_at(v, &["createdAt"]))
        .or_else(|| envelope.and_then(|e| e.time))
        .unwrap_or_else(chrono::Utc::now);
    let api = json::path(v, &["policyDetails", "action", "apiCallDetails"]);
    f.first_seen = api
        .and_then(|a| json::time_at(a, &["firstSeen"]))
        .or_else(|| json::time_at(v, &["createdAt"]));
    f.last_seen = api
        .and_then(|a| json::time_at(a, &["lastSeen"]))
        .or_else(|| json::time_at(v, &["updatedAt"]));
    f.count = json::number(v, &["count"])
        .map(|c| c.max(1.0) as u64)
        .unwrap_or(1);
    f.event_id = envelope.map(|e| e.id.clone()).filter(|id| !id.is_empty());
    if json::boolean(v, &["archived"]) == Some(true) {
        f.status = FindingStatus::Archived;
    }
    f.sample = json::boolean(v, &["sample"]).unwrap_or(false);
    if let Some(category) = json::string(v, &["category"]) {
        put(&mut f, "category", category);
    }

    read_resources(&mut f, v);
    read_classification(&mut f, v);
    read_policy(&mut f, v);
    map_attack(&mut f);

    let partition = json::str_at(v, &["partition"]).map_or(Partition::Aws, Partition::named);
    f.links.console = ConsoleUrl::new(partition, &f.region, "macie").map(|url| {
        url.view(format!("findings?itemId={}", percent_encode(&f.id)))
            .build()
    });
    if f.resources.is_empty() && !f.account_id.is_empty() {
        f.resources
            .push(Resource::new("AwsAccount", f.account_id.clone()));
    }
    Ok(f)
}

fn put(f: &mut Finding, key: &str, value: impl AsRef<str>) {
    let value = value.as_ref().trim();
    if !value.is_empty() {
        f.evidence
            .insert(key.to_string(), text::truncate(value, MAX_EVIDENCE_CHARS));
    }
}

/// `severity.description` (Low, Medium, High); else the score (1, 2, 3).
fn read_severity(f: &mut Finding, v: &Value) {
    let description = json::string(v, &["severity", "description"]);
    if let Some(s) = description
        .as_deref()
        .and_then(|d| d.parse::<Severity>().ok())
    {
        f.severity = s;
        f.source_severity = description;
        return;
    }
    match json::number(v, &["severity", "score"]) {
        Some(score) => {
            f.severity = if score >= 3.0 {
                Severity::High
            } else if score >= 2.0 {
                Severity::Medium
            } else {
                Severity::Low
            };
            f.source_severity = Some(format!("score {score}"));
        }
        None => {
            // Macie always sends a severity; if it is lost, Medium keeps the
            // finding visible at the default threshold rather than hiding it.
            f.severity = Severity::Medium;
            f.evidence.insert(
                "severity_note".into(),
                "severity missing; assumed Medium".into(),
            );
        }
    }
}

/// The bucket is the primary resource (so every finding about one bucket and
/// type shares a fingerprint); the object, when there is one, comes second.
fn read_resources(f: &mut Finding, v: &Value) {
    let Some(affected) = json::field(v, "resourcesAffected").filter(|r| r.is_object()) else {
        return;
    };
    let region = Some(f.region.clone()).filter(|r| !r.is_empty());
    let bucket = json::field(affected, "s3Bucket").filter(|b| b.is_object());
    let bucket_name = bucket.and_then(|b| json::string(b, &["name"]));
    let bucket_arn = bucket.and_then(|b| json::string(b, &["arn"]));
    if let Some(b) = bucket {
        if let Some(id) = bucket_arn.clone().or_else(|| bucket_name.clone()) {
            let mut r = Resource::new("AwsS3Bucket", id);
            r.region = region.clone();
            r.tags = json::tag_map(json::field(b, "tags"));
            f.resources.push(r);
        }
        if let Some(name) = &bucket_name {
            put(f, "s3_bucket", name);
        }
        for (key, path) in [
            (
                "bucket_public_access",
                &["publicAccess", "effectivePermission"][..],
            ),
            (
                "bucket_encryption",
                &["defaultServerSideEncryption", "encryptionType"][..],
            ),
            (
                "bucket_allows_unencrypted_uploads",
                &["allowsUnencryptedObjectUploads"][..],
            ),
            ("bucket_owner", &["owner", "displayName"][..]),
        ] {
            if let Some(s) = json::string(b, path) {
                put(f, key, s);
            }
        }
    }
    if let Some(o) = json::field(affected, "s3Object").filter(|o| o.is_object()) {
        let key = json::string(o, &["key"]);
        let path = json::string(o, &["path"]);
        let object_bucket_arn = bucket_arn.or_else(|| json::string(o, &["bucketArn"]));
        let id = match (&object_bucket_arn, &key) {
            (Some(arn), Some(key)) => Some(format!("{arn}/{key}")),
            _ => path.clone(),
        };
        if let Some(id) = id {
            let mut r = Resource::new("AwsS3Object", id);
            r.region = region;
            r.tags = json::tag_map(json::field(o, "tags"));
            f.resources.push(r);
        }
        if let Some(key) = key {
            put(f, "s3_object_key", key);
        }
        for (name, path) in [
            ("s3_object_size", &["size"][..]),
            (
                "s3_object_encryption",
                &["serverSideEncryption", "encryptionType"][..],
            ),
            ("s3_object_public", &["publicAccess"][..]),
            ("s3_object_version", &["versionId"][..]),
        ] {
            if let Some(s) = json::string(o, path) {
                put(f, name, s);
            }
        }
    }
}

/// What kinds of sensitive data, how many of each: `NAME (10), CREDIT_CARD_NUMBER (3)`.
fn read_classification(f: &mut Finding, v: &Value) {
    let Some(c) = json::field(v, "classificationDetails").filter(|c| c.is_object()) else {
        return;
    };
    let result = json::field(c, "result").unwrap_or(&Value::Null);
    let mut found: Vec<String> = Vec::new();
    let mut categories: Vec<String> = Vec::new();
    for s in json::field(result, "sensitiveData")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(cat) = json::string(s, &["category"]) {
            if !categories.contains(&cat) {
                categories.push(cat);
            }
        }
        for d in json::field(s, "detections")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = json::string(d, &["type"]) {
                found.push(count_label(t, json::number(d, &["count"])));
            }
        }
    }
    for d in json::path(result, &["customDataIdentifiers", "detections"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = json::string(d, &["name"]) {
            found.push(count_label(
                format!("custom:{name}"),
                json::number(d, &["count"]),
            ));
        }
    }
    if !categories.is_empty() {
        put(f, "sensitive_data_categories", categories.join(", "));
    }
    if !found.is_empty() {
        let more = found.len().saturating_sub(MAX_DETECTIONS);
        let mut s = found
            .iter()
            .take(MAX_DETECTIONS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if more > 0 {
            s.push_str(&format!(" (+{more} more types)"));
        }
        put(f, "sensitive_data", s);
    }
    for (key, path) in [
        ("classification_status", &["status", "code"][..]),
        ("mime_type", &["mimeType"][..]),
    ] {
        if let Some(s) = json::string(result, path) {
            put(f, key, s);
        }
    }
    for (key, field) in [
        ("classification_job", "jobId"),
        ("origin_type", "originType"),
        ("detailed_results", "detailedResultsLocation"),
    ] {
        if let Some(s) = json::string(c, &[field]) {
            put(f, key, s);
        }
    }
}

fn count_label(name: String, count: Option<f64>) -> String {
    match count {
        Some(n) if n >= 1.0 => format!("{name} ({})", n as u64),
        _ => name,
    }
}

/// Policy findings: the API call that changed the bucket and who made it.
fn read_policy(f: &mut Finding, v: &Value) {
    let Some(p) = json::field(v, "policyDetails").filter(|p| p.is_object()) else {
        return;
    };
    if let Some(kind) = json::string(p, &["action", "actionType"]) {
        put(f, "action_type", kind);
    }
    if let Some(api) = json::string(p, &["action", "apiCallDetails", "api"]) {
        put(f, "api", api);
    }
    if let Some(svc) = json::string(p, &["action", "apiCallDetails", "apiServiceName"]) {
        put(f, "api_service", svc);
    }
    let Some(actor) = json::field(p, "actor").filter(|a| a.is_object()) else {
        return;
    };
    let mut net = Network::default();
    if let Some(ip) = json::field(actor, "ipAddressDetails").filter(|i| i.is_object()) {
        net.remote_ip = json::string(ip, &["ipAddressV4"]);
        net.country = json::string(ip, &["ipCountry", "name"])
            .or_else(|| json::string(ip, &["ipCountry", "code"]));
        net.city = json::string(ip, &["ipCity", "name"]);
        net.asn = json::string(ip, &["ipOwner", "asn"]);
        net.organization = json::string(ip, &["ipOwner", "asnOrg"])
            .or_else(|| json::string(ip, &["ipOwner", "org"]))
            .or_else(|| json::string(ip, &["ipOwner", "isp"]));
    }
    net.domain = json::string(actor, &["domainDetails", "domainName"]);
    if let Some(identity) = json::field(actor, "userIdentity").filter(|u| u.is_object()) {
        let mut a = read_identity(identity);
        a.source_ip = net.remote_ip.clone();
        if a != Actor::default() {
            f.actor = Some(a);
        }
    }
    f.network = net;
}

/// `userIdentity`: a `type` and the details under the key named after it.
fn read_identity(ui: &Value) -> Actor {
    let mut a = Actor {
        actor_type: ActorType::parse(json::str_at(ui, &["type"]).unwrap_or("")),
        ..Actor::default()
    };
    for (key, kind) in [
        ("iamUser", ActorType::IamUser),
        ("assumedRole", ActorType::AssumedRole),
        ("federatedUser", ActorType::FederatedUser),
        ("root", ActorType::Root),
        ("awsAccount", ActorType::AwsAccount),
        ("awsService", ActorType::AwsService),
    ] {
        let Some(d) = json::field(ui, key).filter(|d| d.is_object()) else {
            continue;
        };
        if a.actor_type == ActorType::Unknown {
            a.actor_type = kind;
        }
        a.arn = json::string(d, &["arn"]);
        a.principal_id = json::string(d, &["principalId"]);
        a.account_id = json::string(d, &["accountId"]);
        a.user_name = json::string(d, &["userName"]);
        a.access_key_id = json::string(d, &["accessKeyId"]);
        a.invoked_by = json::string(d, &["invokedBy"]);
        a.session_issuer = json::string(d, &["sessionContext", "sessionIssuer", "arn"]);
        a.mfa_used = json::boolean(d, &["sessionContext", "attributes", "mfaAuthenticated"]);
        break;
    }
    a
}

/// ATT&CK for Macie types. Macie names no tactics: policy findings that open a
/// bucket to others read as Exfiltration, those that remove a protection as
/// Defense Evasion, marked as inferred. Sensitive data findings describe data
/// at rest, not an adversary's action, and get none.
pub(crate) fn map_attack(f: &mut Finding) {
    if !f.tactics.is_empty() {
        return;
    }
    let t = f.finding_type.as_str();
    if !t.starts_with("Policy:") {
        return;
    }
    let tactic = if t.ends_with("/S3BucketPublic")
        || t.ends_with("/S3BucketSharedExternally")
        || t.ends_with("/S3BucketReplicatedExternally")
    {
        Some(Tactic::Exfiltration)
    } else if t.ends_with("/S3BucketEncryptionDisabled")
        || t.ends_with("/S3BlockPublicAccessDisabled")
    {
        Some(Tactic::DefenseEvasion)
    } else {
        None
    };
    if let Some(tactic) = tactic {
        f.tactics.push(tactic);
        f.evidence.insert(
            "attack_mapping".into(),
            format!("inferred from Macie finding type {t}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_minimal_policy_finding() {
        let v = json!({"id": "m1", "type": "Policy:IAMUser/S3BucketPublic", "accountId": "111122223333",
            "region": "eu-west-1", "severity": {"score": 3, "description": "High"},
            "resourcesAffected": {"s3Bucket": {"name": "b", "arn": "arn:aws:s3:::b"}}});
        let f = parse(&v, None).unwrap();
        assert_eq!(f.source, Source::Macie);
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.resources[0].id, "arn:aws:s3:::b");
        assert_eq!(f.tactics, vec![Tactic::Exfiltration]);
        assert!(f.links.console.as_deref().unwrap().contains("itemId=m1"));
    }

    #[test]
    fn score_only_and_missing_severity() {
        let v =
            json!({"id": "m", "type": "SensitiveData:S3Object/Personal", "severity": {"score": 2}});
        assert_eq!(parse(&v, None).unwrap().severity, Severity::Medium);
        let v = json!({"id": "m", "type": "SensitiveData:S3Object/Personal"});
        let f = parse(&v, None).unwrap();
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.evidence.contains_key("severity_note"));
        assert!(f.tactics.is_empty());
    }

    #[test]
    fn not_a_finding_is_a_typed_error() {
        assert!(matches!(
            parse(&json!({"id": "x"}), None),
            Err(SourceError::MissingField { field: "type", .. })
        ));
        assert!(matches!(
            parse(&json!({"type": "x"}), None),
            Err(SourceError::MissingField { field: "id", .. })
        ));
        assert!(parse(&json!([]), None).is_err());
    }
}

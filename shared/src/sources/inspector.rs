//! Amazon Inspector's own findings (`aws.inspector2`, `Inspector2 Finding`,
//! `detail` = one finding as the Inspector API returns it) into [`Finding`]s.
//!
//! Package vulnerabilities (a CVE in an EC2 instance, container image or
//! Lambda function, with the fixed version), code vulnerabilities and network
//! reachability (a port open to the internet). Severity is Inspector's own;
//! the affected resource carries its tags for routing. CLOSED findings
//! resolve the alert, SUPPRESSED ones are kept as suppressed.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::json;
use crate::model::{Finding, FindingStatus, Resource, Severity, Source};
use crate::sources::console::{percent_encode, ConsoleUrl, Partition};
use crate::sources::{resource_types, Envelope, SourceError};
use crate::text;

/// The detail-type of Inspector findings.
pub const DETAIL_TYPE: &str = "Inspector2 Finding";

/// [`Finding::product`] of Inspector findings, as Security Hub names it too.
pub(crate) const PRODUCT_INSPECTOR: &str = "Inspector";

/// Resources and packages kept per finding (Inspector sends at most 10 resources).
const MAX_ITEMS: usize = 10;
/// Longest evidence value.
const MAX_EVIDENCE_CHARS: usize = 512;

fn missing(field: &'static str) -> SourceError {
    SourceError::MissingField {
        source_kind: Source::Inspector,
        field,
    }
}

/// Parses one Inspector finding.
pub fn parse(v: &Value, envelope: &Envelope) -> Result<Finding, SourceError> {
    if !v.is_object() {
        return Err(missing("detail"));
    }
    let id = json::string(v, &["findingArn"]).ok_or(missing("findingArn"))?;
    let kind = json::string(v, &["type"]).ok_or(missing("type"))?;
    let vuln_id = json::string(v, &["packageVulnerabilityDetails", "vulnerabilityId"]);
    let finding_type = match (&vuln_id, network_port(v)) {
        (Some(cve), _) => format!("{kind}:{}", text::truncate(cve, 64)),
        (None, Some(port)) => format!("{kind}:{port}"),
        (None, None) => match json::string(v, &["codeVulnerabilityDetails", "detectorId"]) {
            Some(d) => format!("{kind}:{}", text::truncate(&d, 96)),
            None => kind.clone(),
        },
    };
    let mut f = Finding::new(Source::Inspector, id, finding_type);
    f.product = PRODUCT_INSPECTOR.to_string();
    f.title = json::string(v, &["title"]).unwrap_or_else(|| f.finding_type.clone());
    f.description = json::string(v, &["description"])
        .map(|d| text::truncate(d.trim(), 2048))
        .unwrap_or_default();
    read_severity(&mut f, v);
    f.account_id = json::string(v, &["awsAccountId"]).unwrap_or_else(|| envelope.account.clone());
    f.region = envelope.region.clone();
    f.time = json::time_at(v, &["updatedAt"])
        .or_else(|| json::time_at(v, &["lastObservedAt"]))
        .or(envelope.time)
        .unwrap_or_else(chrono::Utc::now);
    f.first_seen = json::time_at(v, &["firstObservedAt"]);
    f.last_seen = json::time_at(v, &["lastObservedAt"]);
    f.event_id = Some(envelope.id.clone()).filter(|i| !i.is_empty());
    f.status = match json::str_at(v, &["status"]) {
        Some("CLOSED") => FindingStatus::Resolved,
        Some("SUPPRESSED") => FindingStatus::Suppressed,
        _ => FindingStatus::Active,
    };
    let partition = read_resources(&mut f, v);
    read_vulnerability(&mut f, v);
    read_network(&mut f, v);
    f.remediation = json::string(v, &["remediation", "recommendation", "text"])
        .filter(|t| t != "None Provided")
        .map(|t| text::truncate(&t, MAX_EVIDENCE_CHARS));
    f.links.remediation = json::string(v, &["remediation", "recommendation", "Url"])
        .or_else(|| json::string(v, &["packageVulnerabilityDetails", "sourceUrl"]));
    f.links.console = ConsoleUrl::new(partition, &f.region, "inspector/v2").map(|url| {
        url.view(format!("/findings?findingArn={}", percent_encode(&f.id)))
            .build()
    });
    if f.resources.is_empty() && !f.account_id.is_empty() {
        f.resources
            .push(Resource::new("AwsAccount", f.account_id.clone()));
    }
    Ok(f)
}

/// Inspector's label (`UNTRIAGED` has none: its score decides, else MEDIUM
/// so an unrated finding is still seen).
fn read_severity(f: &mut Finding, v: &Value) {
    let label = json::string(v, &["severity"]);
    f.source_severity = label.clone();
    if let Some(s) = label.as_deref().and_then(|l| l.parse::<Severity>().ok()) {
        f.severity = s;
        return;
    }
    f.severity = match json::number(v, &["inspectorScore"]) {
        Some(s) if s >= 9.0 => Severity::Critical,
        Some(s) if s >= 7.0 => Severity::High,
        Some(s) if s >= 4.0 => Severity::Medium,
        Some(s) if s > 0.0 => Severity::Low,
        _ => Severity::Medium,
    };
}

/// The affected resources with their tags; returns the partition they name.
fn read_resources(f: &mut Finding, v: &Value) -> Partition {
    let mut partition = Partition::Aws;
    let list = json::field(v, "resources").and_then(Value::as_array);
    for (i, r) in list.into_iter().flatten().take(MAX_ITEMS).enumerate() {
        let Some(id) = json::string(r, &["id"]) else {
            continue;
        };
        let kind = json::string(r, &["type"]).unwrap_or_default();
        let mut res = Resource::new(resource_types::from_screaming(&kind), id);
        res.region = json::string(r, &["region"]);
        res.tags = tags(json::field(r, "tags"));
        if i == 0 {
            if let Some(p) = json::str_at(r, &["partition"]) {
                partition = Partition::named(p);
            }
            if let Some(region) = &res.region {
                if f.region.is_empty() {
                    f.region = region.clone();
                }
            }
            read_resource_details(f, r);
        }
        f.resources.push(res);
    }
    partition
}

/// Inspector sends tags as a map (`{"Name": "web"}`).
fn tags(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((text::truncate(k, 128), text::truncate(v.as_str()?, 256))))
        .collect()
}

fn read_resource_details(f: &mut Finding, r: &Value) {
    for (key, path) in [
        ("ec2_image", &["details", "awsEc2Instance", "imageId"][..]),
        (
            "ec2_platform",
            &["details", "awsEc2Instance", "platform"][..],
        ),
        ("ec2_vpc", &["details", "awsEc2Instance", "vpcId"][..]),
        (
            "ecr_repository",
            &["details", "awsEcrContainerImage", "repositoryName"][..],
        ),
        (
            "ecr_image_digest",
            &["details", "awsEcrContainerImage", "imageHash"][..],
        ),
        (
            "lambda_function",
            &["details", "awsLambdaFunction", "functionName"][..],
        ),
        (
            "lambda_runtime",
            &["details", "awsLambdaFunction", "runtime"][..],
        ),
    ] {
        if let Some(s) = json::string(r, path) {
            put(f, key, &s);
        }
    }
}

/// The CVE, its score, and each vulnerable package with the version that fixes it.
fn read_vulnerability(f: &mut Finding, v: &Value) {
    let Some(p) = json::field(v, "packageVulnerabilityDetails").filter(|p| p.is_object()) else {
        return;
    };
    if let Some(id) = json::string(p, &["vulnerabilityId"]) {
        put(f, "vulnerability", &id);
    }
    for (key, path) in [
        ("fix_available", "fixAvailable"),
        ("exploit_available", "exploitAvailable"),
        ("inspector_score", "inspectorScore"),
    ] {
        if let Some(s) = json::string(v, &[path]) {
            put(f, key, &s);
        }
    }
    if let Some(score) = json::field(p, "cvss")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| json::string(c, &["baseScore"]))
    {
        put(f, "cvss_base_score", &score);
    }
    let mut packages = Vec::new();
    let mut fixed = Vec::new();
    for pkg in json::field(p, "vulnerablePackages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_ITEMS)
    {
        let name = json::string(pkg, &["name"]).unwrap_or_else(|| "?".into());
        let version = json::string(pkg, &["version"]).unwrap_or_default();
        packages.push(format!("{name} {version}").trim().to_string());
        if let Some(fix) = json::string(pkg, &["fixedInVersion"]).filter(|x| x != "NotAvailable") {
            fixed.push(format!("{name} {fix}"));
        }
        if f.remediation.is_none() {
            f.remediation = json::string(pkg, &["remediation"]);
        }
    }
    if !packages.is_empty() {
        put(f, "packages", &packages.join(", "));
    }
    if !fixed.is_empty() {
        put(f, "fixed_in", &fixed.join(", "));
    }
}

/// `tcp/22` (or `tcp/8000-8100`) of a network reachability finding.
fn network_port(v: &Value) -> Option<String> {
    let n = json::field(v, "networkReachabilityDetails")?;
    let proto = json::string(n, &["protocol"]).unwrap_or_else(|| "tcp".into());
    let begin = json::number(n, &["openPortRange", "begin"])? as u32;
    let end = json::number(n, &["openPortRange", "end"]).map_or(begin, |e| e as u32);
    let proto = text::truncate(&proto.to_ascii_lowercase(), 8);
    Some(if begin == end {
        format!("{proto}/{begin}")
    } else {
        format!("{proto}/{begin}-{end}")
    })
}

fn read_network(f: &mut Finding, v: &Value) {
    if let Some(port) = network_port(v) {
        put(f, "open_port", &port);
        f.network.protocol = port.split('/').next().map(str::to_string);
        f.network.local_port = port
            .split('/')
            .nth(1)
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse().ok());
        f.network.direction = Some("inbound".into());
    }
}

fn put(f: &mut Finding, key: &str, value: &str) {
    if !value.trim().is_empty() {
        f.evidence.insert(
            key.to_string(),
            text::truncate(value.trim(), MAX_EVIDENCE_CHARS),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Envelope {
        Envelope {
            id: "e".into(),
            source: "aws.inspector2".into(),
            detail_type: DETAIL_TYPE.into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            time: None,
        }
    }

    #[test]
    fn reads_cve_fix_resource_and_tags() {
        let v = json!({"findingArn": "arn:aws:inspector2:us-east-1:123456789012:finding/abc", "type": "PACKAGE_VULNERABILITY",
            "severity": "HIGH", "status": "ACTIVE", "awsAccountId": "123456789012",
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2023-3609",
                "vulnerablePackages": [{"name": "linux-image-aws", "version": "5.15.0.1040", "fixedInVersion": "0:5.15.0.1041"}]},
            "resources": [{"id": "i-0abc", "type": "AWS_EC2_INSTANCE", "partition": "aws", "region": "us-east-1", "tags": {"team": "payments"}}]});
        let f = parse(&v, &envelope()).unwrap();
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.finding_type, "PACKAGE_VULNERABILITY:CVE-2023-3609");
        assert_eq!(f.evidence["fixed_in"], "linux-image-aws 0:5.15.0.1041");
        assert_eq!(f.resources[0].resource_type, "AwsEc2Instance");
        assert_eq!(f.resources[0].tags["team"], "payments");
        assert!(f
            .links
            .console
            .unwrap()
            .contains("inspector/v2/home?region=us-east-1"));
    }

    #[test]
    fn closed_resolves_and_suppressed_is_kept() {
        let base = |status: &str| {
            json!({"findingArn": "a", "type": "NETWORK_REACHABILITY", "status": status,
            "severity": "MEDIUM", "networkReachabilityDetails": {"protocol": "TCP", "openPortRange": {"begin": 22, "end": 22}}})
        };
        let f = parse(&base("CLOSED"), &envelope()).unwrap();
        assert_eq!(f.status, FindingStatus::Resolved);
        assert_eq!(f.finding_type, "NETWORK_REACHABILITY:tcp/22");
        assert_eq!(f.network.local_port, Some(22));
        assert_eq!(
            parse(&base("SUPPRESSED"), &envelope()).unwrap().status,
            FindingStatus::Suppressed
        );
    }

    #[test]
    fn untriaged_uses_the_score_and_junk_is_an_error() {
        let v = json!({"findingArn": "a", "type": "PACKAGE_VULNERABILITY", "severity": "UNTRIAGED", "inspectorScore": 9.8});
        assert_eq!(parse(&v, &envelope()).unwrap().severity, Severity::Critical);
        assert!(parse(&json!({"type": "X"}), &envelope()).is_err());
        assert!(parse(&json!([]), &envelope()).is_err());
        let hostile = json!({"findingArn": "a", "type": "X", "resources": [{"id": 5, "tags": {"k": {"nested": 1}}}, "x"],
            "networkReachabilityDetails": {"openPortRange": {"begin": -1e300}}});
        let f = parse(&hostile, &envelope()).unwrap();
        assert!(f.resources[0].tags.is_empty());
    }
}

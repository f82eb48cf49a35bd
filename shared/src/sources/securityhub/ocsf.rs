//! OCSF findings of the newer Security Hub (`Findings Imported V2`):
//! [`parse_ocsf`] and the readers of each part of a finding.

use serde_json::Value;

use super::origin::{guardduty_short_id, native_type, resource_id, tactics_for_origin, Origin};
use super::{
    ensure_resource, fill, missing, port, put, put_list, string_list, tactics_from_types,
    MAX_RESOURCES,
};
use crate::json;
use crate::model::{
    Actor, ActorType, Finding, FindingStatus, Network, Resource, Severity, Source, Tactic,
    Technique,
};
use crate::ocsf;
use crate::sources::console::{ConsoleUrl, Partition};
use crate::sources::guardduty;
use crate::sources::{Envelope, SourceError};
use crate::text::link::is_console_url;

/// Parses one OCSF finding of the newer Security Hub (`Findings Imported V2`):
/// Detection, Compliance or Vulnerability findings alike.
pub fn parse_ocsf(v: &Value, envelope: Option<&Envelope>) -> Result<Finding, SourceError> {
    if !v.is_object() {
        return Err(missing("findings[]"));
    }
    let uid = json::string(v, &["finding_info", "uid"])
        .or_else(|| json::string(v, &["metadata", "uid"]))
        .ok_or(missing("finding_info.uid"))?;
    let origin = Origin::of_ocsf(v);
    let types = string_list(json::path(v, &["finding_info", "types"]));
    let finding_type = ocsf_type(v, origin, &types);
    let id = match origin {
        Origin::GuardDuty => guardduty_short_id(&uid),
        _ => uid.clone(),
    };
    let mut f = Finding::new(Source::SecurityHub, id, finding_type);
    f.product = origin
        .product()
        .map(str::to_string)
        .or_else(|| json::string(v, &["metadata", "product", "name"]))
        .or_else(|| json::string(v, &["metadata", "product", "vendor_name"]))
        .unwrap_or_else(|| "Security Hub".to_string());
    f.title = json::string(v, &["finding_info", "title"]).unwrap_or_else(|| f.finding_type.clone());
    f.description = json::string(v, &["finding_info", "desc"])
        .or_else(|| json::string(v, &["message"]))
        .unwrap_or_default();
    read_ocsf_severity(&mut f, v);

    read_ocsf_where_and_when(&mut f, v, envelope);
    f.count = json::number(v, &["count"])
        .map(|c| c.max(1.0) as u64)
        .unwrap_or(1);
    f.event_id = envelope.map(|e| e.id.clone()).filter(|id| !id.is_empty());
    f.status = ocsf_status(v);

    read_ocsf_resources(&mut f, v, origin);
    read_ocsf_evidences(&mut f, v, origin);
    read_ocsf_attacks(&mut f, v);
    if f.tactics.is_empty() {
        f.tactics = tactics_from_types(&types);
    }
    tactics_for_origin(&mut f, origin);
    read_ocsf_context(&mut f, v, &types);

    if f.id != uid {
        f.evidence.insert("securityhub_id".into(), uid);
    }
    f.links.console = finding_page(&mut f, v).or_else(|| security_hub_home(v, &f.region));
    f.sample |= guardduty::has_placeholder(&f);
    ensure_resource(&mut f);
    Ok(f)
}

/// The account and region, and when the finding changed and was seen; the
/// envelope's where the finding does not say.
fn read_ocsf_where_and_when(f: &mut Finding, v: &Value, envelope: Option<&Envelope>) {
    f.account_id = json::string(v, &["cloud", "account", "uid"])
        .or_else(|| {
            envelope
                .map(|e| e.account.clone())
                .filter(|a| !a.is_empty())
        })
        .unwrap_or_default();
    f.region = json::string(v, &["cloud", "region"])
        .or_else(|| {
            json::field(v, "resources")
                .and_then(Value::as_array)?
                .iter()
                .find_map(|r| json::string(r, &["region"]))
        })
        .or_else(|| envelope.map(|e| e.region.clone()).filter(|r| !r.is_empty()))
        .unwrap_or_default();
    f.time = ocsf_time(v, &["finding_info"], "modified_time")
        .or_else(|| ocsf_time(v, &[], "time"))
        .or_else(|| ocsf_time(v, &["finding_info"], "created_time"))
        .or_else(|| envelope.and_then(|e| e.time))
        .unwrap_or_else(chrono::Utc::now);
    f.first_seen = ocsf_time(v, &["finding_info"], "first_seen_time")
        .or_else(|| ocsf_time(v, &["finding_info"], "created_time"));
    f.last_seen = ocsf_time(v, &["finding_info"], "last_seen_time");
}

/// `finding_info.src_url` when it is a page of the AWS console; any other URL
/// the event names is kept as evidence (`src_url`), which every output shows
/// defanged, never as a link.
fn finding_page(f: &mut Finding, v: &Value) -> Option<String> {
    let url = json::string(v, &["finding_info", "src_url"])?;
    if is_console_url(&url) {
        return Some(url);
    }
    f.evidence.insert("src_url".into(), url);
    None
}

/// Security Hub's console in the finding's partition and region, when the
/// finding links to no page of its own.
fn security_hub_home(v: &Value, region: &str) -> Option<String> {
    let partition =
        json::str_at(v, &["cloud", "partition"]).map_or(Partition::Aws, Partition::named);
    ConsoleUrl::new(partition, region, "securityhub").map(|url| url.build())
}

/// OCSF times come as epoch milliseconds (`time`) and, in Security Hub, also
/// as RFC 3339 text (`time_dt`); the text wins when both are there.
fn ocsf_time(v: &Value, parent: &[&str], name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let base = if parent.is_empty() {
        Some(v)
    } else {
        json::path(v, parent)
    }?;
    json::time_at(base, &[&format!("{name}_dt")]).or_else(|| json::time_at(base, &[name]))
}

fn ocsf_type(v: &Value, origin: Origin, types: &[String]) -> String {
    if origin != Origin::Other {
        if let Some(t) = types.iter().find_map(|t| native_type(t)) {
            return t;
        }
    }
    json::string(v, &["compliance", "control"])
        .or_else(|| {
            json::field(v, "vulnerabilities")
                .and_then(Value::as_array)?
                .iter()
                .find_map(|x| json::string(x, &["cve", "uid"]))
        })
        .or_else(|| json::string(v, &["finding_info", "analytic", "uid"]))
        .or_else(|| types.first().cloned())
        .or_else(|| json::string(v, &["class_name"]))
        .unwrap_or_else(|| "Unknown".to_string())
}

/// `severity_id` 1–6 through [`ocsf::severity_from_id`]; Unknown (0) and Other
/// (99) fall back to the `severity` caption.
fn read_ocsf_severity(f: &mut Finding, v: &Value) {
    let caption = json::string(v, &["severity"]);
    match json::number(v, &["severity_id"]).map(|n| n as u64) {
        Some(id @ 1..=6) => {
            f.severity = ocsf::severity_from_id(id);
            f.source_severity = caption.or_else(|| Some(format!("severity_id {id}")));
        }
        _ => match caption.as_deref().map(str::parse::<Severity>) {
            Some(Ok(s)) => {
                f.severity = s;
                f.source_severity = caption;
            }
            _ => {
                f.severity = Severity::Medium;
                f.evidence.insert(
                    "severity_note".into(),
                    "severity missing; assumed Medium".into(),
                );
            }
        },
    }
}

/// OCSF `status_id`: 3 Suppressed, 4 Resolved, 5 Archived, 6 Deleted; a passed
/// compliance check is resolved too.
fn ocsf_status(v: &Value) -> FindingStatus {
    let by_id = match json::number(v, &["status_id"]).map(|n| n as u64) {
        Some(3) => Some(FindingStatus::Suppressed),
        Some(4) => Some(FindingStatus::Resolved),
        Some(5 | 6) => Some(FindingStatus::Archived),
        Some(1 | 2) => Some(FindingStatus::Active),
        _ => None,
    };
    let status = by_id.unwrap_or_else(|| {
        match json::str_at(v, &["status"])
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "suppressed" => FindingStatus::Suppressed,
            "resolved" => FindingStatus::Resolved,
            "archived" | "deleted" => FindingStatus::Archived,
            _ => FindingStatus::Active,
        }
    });
    let passed = json::number(v, &["compliance", "status_id"]) == Some(1.0)
        || json::str_at(v, &["compliance", "status"])
            .is_some_and(|s| s.eq_ignore_ascii_case("pass") || s.eq_ignore_ascii_case("passed"));
    if status == FindingStatus::Active && passed {
        FindingStatus::Resolved
    } else {
        status
    }
}

fn read_ocsf_resources(f: &mut Finding, v: &Value, origin: Origin) {
    let mut out = Vec::new();
    for r in json::field(v, "resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_RESOURCES)
    {
        let resource_type = json::string(r, &["type"]).unwrap_or_else(|| "Other".into());
        let raw = json::string(r, &["uid"]).or_else(|| json::string(r, &["name"]));
        let Some(id) = raw.and_then(|raw| resource_id(&resource_type, &raw, origin)) else {
            continue;
        };
        let mut res = Resource::new(resource_type, id);
        res.region = json::string(r, &["region"]);
        res.tags = json::field(r, "tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    json::string(t, &["name"])?,
                    json::string(t, &["value"]).unwrap_or_default(),
                ))
            })
            .collect();
        out.push(res);
    }
    // As with ASFF: GuardDuty's access key is the subject only when alone.
    if origin == Origin::GuardDuty && out.iter().any(|r| r.resource_type != "AwsIamAccessKey") {
        out.retain(|r| r.resource_type != "AwsIamAccessKey");
    }
    f.resources = out;
}

/// Actor and network from `evidences[]` (and a top-level `actor`, which some
/// producers use).
fn read_ocsf_evidences(f: &mut Finding, v: &Value, origin: Origin) {
    let mut actor = Actor::default();
    let mut net = Network::default();
    let evidences = json::field(v, "evidences").and_then(Value::as_array);
    let sources = std::iter::once(v).chain(evidences.into_iter().flatten());
    for e in sources {
        if let Some(a) = json::field(e, "actor").filter(|a| a.is_object()) {
            read_ocsf_actor(&mut actor, a, origin);
        }
        if let Some(src) = json::field(e, "src_endpoint").filter(|s| s.is_object()) {
            fill(&mut net.remote_ip, json::string(src, &["ip"]));
            fill(&mut net.remote_port, port(json::field(src, "port")));
            fill(&mut net.domain, json::string(src, &["domain"]));
            fill(
                &mut net.country,
                json::string(src, &["location", "country"]),
            );
            fill(&mut net.city, json::string(src, &["location", "city"]));
            fill(
                &mut net.asn,
                json::string(src, &["autonomous_system", "number"]),
            );
            fill(
                &mut net.organization,
                json::string(src, &["autonomous_system", "name"]),
            );
        }
        if let Some(dst) = json::field(e, "dst_endpoint").filter(|d| d.is_object()) {
            fill(&mut net.local_port, port(json::field(dst, "port")));
        }
        if let Some(c) = json::field(e, "connection_info").filter(|c| c.is_object()) {
            fill(&mut net.direction, json::string(c, &["direction"]));
            fill(&mut net.protocol, json::string(c, &["protocol_name"]));
        }
        if let Some(op) = json::string(e, &["api", "operation"]) {
            if !f.evidence.contains_key("api") {
                put(f, "api", op);
            }
        }
        if let Some(svc) = json::string(e, &["api", "service", "name"]) {
            if !f.evidence.contains_key("api_service") {
                put(f, "api_service", svc);
            }
        }
    }
    if let Some(ip) = &net.remote_ip {
        actor.source_ip.get_or_insert_with(|| ip.clone());
    }
    let only_ip = Actor {
        source_ip: actor.source_ip.clone(),
        ..Actor::default()
    };
    if actor != Actor::default() && actor != only_ip {
        f.actor = Some(actor);
    }
    f.network = net;
}

fn read_ocsf_actor(actor: &mut Actor, a: &Value, origin: Origin) {
    if let Some(user) = json::field(a, "user").filter(|u| u.is_object()) {
        if let Some(t) = json::str_at(user, &["type"]) {
            if actor.actor_type == ActorType::Unknown {
                actor.actor_type = ActorType::parse(t);
            }
        }
        fill(&mut actor.user_name, json::string(user, &["name"]));
        if let Some(uid) = json::string(user, &["uid"]) {
            // The direct GuardDuty parser knows no principal ARN: neither may the copy.
            if uid.starts_with("arn:") {
                if origin != Origin::GuardDuty {
                    fill(&mut actor.arn, Some(uid));
                }
            } else {
                fill(&mut actor.principal_id, Some(uid));
            }
        }
        fill(
            &mut actor.account_id,
            json::string(user, &["account", "uid"]),
        );
        fill(
            &mut actor.access_key_id,
            json::string(user, &["credential_uid"]),
        );
    }
    if let Some(session) = json::field(a, "session").filter(|s| s.is_object()) {
        fill(
            &mut actor.session_issuer,
            json::string(session, &["issuer"]),
        );
        fill(&mut actor.mfa_used, json::boolean(session, &["is_mfa"]));
    }
    if let Some(ua) = json::string(a, &["user_agent"]) {
        fill(&mut actor.user_agent, Some(ua));
    }
}

/// ATT&CK from `attacks[]`: `tactic` (or the older `tactics[]`), `technique`,
/// `sub_technique`.
fn read_ocsf_attacks(f: &mut Finding, v: &Value) {
    for a in json::field(v, "attacks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let tactics = json::field(a, "tactic").into_iter().chain(
            json::field(a, "tactics")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        for t in tactics {
            let parsed = json::str_at(t, &["uid"])
                .and_then(Tactic::parse)
                .or_else(|| json::str_at(t, &["name"]).and_then(Tactic::parse));
            if let Some(t) = parsed {
                if !f.tactics.contains(&t) {
                    f.tactics.push(t);
                }
            }
        }
        for key in ["technique", "sub_technique"] {
            if let Some(id) = json::string(a, &[key, "uid"]) {
                let t = Technique {
                    id,
                    name: json::string(a, &[key, "name"]),
                };
                if !f.techniques.contains(&t) {
                    f.techniques.push(t);
                }
            }
        }
    }
}

fn read_ocsf_context(f: &mut Finding, v: &Value, types: &[String]) {
    if let Some(class) = json::string(v, &["class_name"]) {
        put(f, "class", class);
    }
    if let Some(uid) = json::string(v, &["metadata", "product", "uid"]) {
        put(f, "product_uid", uid);
    }
    if let Some(vendor) = json::string(v, &["metadata", "product", "vendor_name"]) {
        put(f, "company", vendor);
    }
    if !types.is_empty() {
        put(f, "types", types.join(" | "));
    }
    if let Some(status) = json::string(v, &["status"]) {
        put(f, "workflow_status", status);
    }
    if let Some(c) = json::field(v, "compliance").filter(|c| c.is_object()) {
        if let Some(status) = json::string(c, &["status"]) {
            put(f, "compliance_status", status);
        }
        if let Some(control) = json::string(c, &["control"]) {
            put(f, "control_id", control);
        }
        put_list(f, "standards", &string_list(json::field(c, "standards")));
        put_list(
            f,
            "requirements",
            &string_list(json::field(c, "requirements")),
        );
    }
    f.remediation = json::string(v, &["remediation", "desc"]);
    f.links.remediation = string_list(json::path(v, &["remediation", "references"]))
        .into_iter()
        .next();
    let mut cves = Vec::new();
    let mut packages = Vec::new();
    for x in json::field(v, "vulnerabilities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = json::string(x, &["cve", "uid"]) {
            cves.push(id);
        }
        for p in json::field(x, "affected_packages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = json::string(p, &["name"]) {
                let version = json::string(p, &["version"]).unwrap_or_default();
                packages.push(format!("{name} {version}").trim().to_string());
            }
        }
    }
    put_list(f, "vulnerabilities", &cves);
    put_list(f, "vulnerable_packages", &packages);
}

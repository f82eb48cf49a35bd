//! The finding as an OCSF Detection Finding (class 2004, category 2).
//!
//! This is what machine subscribers (SQS, Lambda, HTTPS) receive, so a SIEM
//! that speaks OCSF can take Vigil's alerts without a mapping of its own.

use serde_json::{json, Map, Value};

use crate::model::{Actor, Finding, FindingStatus, Network, Severity};

pub(crate) const CLASS_UID: u32 = 2004;
pub(crate) const CATEGORY_UID: u32 = 2;
pub(crate) const OCSF_VERSION: &str = "1.3.0";

/// Activity: 1 Create for a new finding, 2 Update for a repeat GuardDuty sends
/// again with a higher count, 3 Close for resolved ones.
pub fn activity_id(f: &Finding) -> u32 {
    match f.status {
        FindingStatus::Resolved => 3,
        _ if f.count > 1 => 2,
        _ => 1,
    }
}

fn status_id(s: FindingStatus) -> u32 {
    match s {
        FindingStatus::Active => 1,
        FindingStatus::Suppressed | FindingStatus::Archived => 3,
        FindingStatus::Resolved => 4,
    }
}

/// Serializes `f` as OCSF JSON.
pub fn to_ocsf(f: &Finding) -> Value {
    let activity = activity_id(f);
    let mut out = json!({
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity,
        "type_uid": CLASS_UID * 100 + activity,
        "severity_id": f.severity.ocsf_id(),
        "severity": f.severity.label(),
        "status_id": status_id(f.status),
        "time": f.time.timestamp_millis(),
        "count": f.count,
        "message": f.title,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Vigil", "vendor_name": "Vigil", "feature": {"name": f.source.as_str()}},
            "correlation_uid": f.fingerprint,
            "original_event_uid": f.event_id,
        },
        "finding_info": finding_info(f),
        "cloud": {"provider": "AWS", "region": f.region, "account": {"uid": f.account_id, "name": f.account_name}},
        "resources": resources(f),
        "unmapped": {
            "vigil_source": f.source.as_str(),
            "vigil_source_severity": f.source_severity,
            "vigil_sample": f.sample,
        },
    });
    if !f.tactics.is_empty() || !f.techniques.is_empty() {
        out["attacks"] = Value::Array(attacks(f));
    }
    if let Some(a) = &f.actor {
        out["actor"] = actor(a);
        if let Some(ua) = &a.user_agent {
            out["http_request"] = json!({"user_agent": ua});
        }
    }
    if !f.network.is_empty() {
        out["src_endpoint"] = src_endpoint(&f.network);
    }
    if !f.evidence.is_empty() {
        out["evidences"] = json!([{"data": f.evidence}]);
    }
    if f.remediation.is_some() || f.links.remediation.is_some() {
        out["remediation"] = json!({"desc": f.remediation, "references": f.links.remediation.iter().collect::<Vec<_>>()});
    }
    if let Some(trace) = &f.trace {
        out["unmapped"]["trace_id"] = json!(trace.trace_id);
        out["unmapped"]["xray_trace_id"] = json!(trace.xray_trace_id);
        if let Some(url) = &f.links.trace {
            out["unmapped"]["trace_url"] = json!(url);
        }
    }
    strip_nulls(&mut out);
    out
}

/// What was found, when, by which rule, and where to look at it.
fn finding_info(f: &Finding) -> Value {
    let mut finding_info = json!({
        "uid": f.id,
        "title": f.title,
        "desc": f.description,
        "types": [f.finding_type],
        "product_uid": f.product,
        "created_time": f.first_seen.unwrap_or(f.time).timestamp_millis(),
        "modified_time": f.time.timestamp_millis(),
    });
    if let Some(first) = f.first_seen {
        finding_info["first_seen_time"] = json!(first.timestamp_millis());
    }
    if let Some(last) = f.last_seen {
        finding_info["last_seen_time"] = json!(last.timestamp_millis());
    }
    if let Some(rule) = &f.rule {
        finding_info["analytic"] =
            json!({"uid": rule.id, "name": rule.title, "type_id": 1, "type": "Rule"});
    }
    if let Some(url) = &f.links.console {
        finding_info["src_url"] = json!(url);
    }
    finding_info
}

fn resources(f: &Finding) -> Vec<Value> {
    f.resources
        .iter()
        .map(|r| {
            json!({
                "uid": r.id, "type": r.resource_type, "region": r.region,
                "labels": r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// ATT&CK tactics, then techniques.
fn attacks(f: &Finding) -> Vec<Value> {
    let mut attacks: Vec<Value> = f
        .tactics
        .iter()
        .map(|t| json!({"tactic": {"uid": t.id(), "name": t.name()}, "version": "v15"}))
        .collect();
    for t in &f.techniques {
        attacks.push(json!({"technique": {"uid": t.id, "name": t.name}, "version": "v15"}));
    }
    attacks
}

fn actor(actor: &Actor) -> Value {
    json!({
        "user": {"name": actor.user_name, "uid": actor.arn.as_ref().or(actor.principal_id.as_ref()),
                 "type": actor.actor_type.as_str(), "account": {"uid": actor.account_id},
                 "credential_uid": actor.access_key_id},
        "session": {"issuer": actor.session_issuer, "is_mfa": actor.mfa_used},
        "invoked_by": actor.invoked_by,
    })
}

/// The remote side of the activity.
fn src_endpoint(n: &Network) -> Value {
    json!({
        "ip": n.remote_ip, "port": n.remote_port, "domain": n.domain,
        "location": {"country": n.country, "city": n.city},
        "autonomous_system": {"number": n.asn, "name": n.organization},
    })
}

/// OCSF readers treat absent and null alike; dropping nulls keeps the alert small.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for v in map.values_mut() {
                strip_nulls(v);
            }
            let empty: Vec<String> = map
                .iter()
                .filter(|(_, v)| matches!(v, Value::Object(m) if m.is_empty()))
                .map(|(k, _)| k.clone())
                .collect();
            for k in empty {
                map.remove(&k);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Severity from an OCSF `severity_id` (Security Hub V2 findings).
pub(crate) fn severity_from_id(id: u64) -> Severity {
    match id {
        0 | 1 => Severity::Informational,
        2 => Severity::Low,
        3 => Severity::Medium,
        4 => Severity::High,
        _ => Severity::Critical,
    }
}

/// Required top-level attributes of a Detection Finding, for tests and lint.
pub fn missing_required(v: &Value) -> Vec<&'static str> {
    let obj: &Map<String, Value> = match v.as_object() {
        Some(o) => o,
        None => return vec!["<object>"],
    };
    let mut missing: Vec<&'static str> = [
        "activity_id",
        "category_uid",
        "class_uid",
        "type_uid",
        "severity_id",
        "time",
        "metadata",
        "finding_info",
    ]
    .into_iter()
    .filter(|k| !obj.contains_key(*k))
    .collect();
    if v.pointer("/metadata/product").is_none() {
        missing.push("metadata.product");
    }
    if v.pointer("/metadata/version").is_none() {
        missing.push("metadata.version");
    }
    if v.pointer("/finding_info/uid").is_none() {
        missing.push("finding_info.uid");
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, Tactic};

    #[test]
    fn a_finding_serializes_with_every_required_field() {
        let mut f = Finding::new(
            Source::GuardDuty,
            "id-1",
            "Recon:EC2/PortProbeUnprotectedPort",
        );
        f.severity = Severity::High;
        f.tactics.push(Tactic::Reconnaissance);
        let v = to_ocsf(&f);
        assert!(
            missing_required(&v).is_empty(),
            "{:?}",
            missing_required(&v)
        );
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["type_uid"], 200401);
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["attacks"][0]["tactic"]["uid"], "TA0043");
    }

    #[test]
    fn repeats_are_updates_and_resolved_is_close() {
        let mut f = Finding::new(Source::GuardDuty, "id", "t");
        f.count = 4;
        assert_eq!(to_ocsf(&f)["type_uid"], 200402);
        f.status = FindingStatus::Resolved;
        assert_eq!(to_ocsf(&f)["type_uid"], 200403);
    }
}

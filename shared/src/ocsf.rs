//! The finding as an OCSF Detection Finding (class 2004, category 2), OCSF
//! 1.7.0 with the `cloud` profile.
//!
//! This is what machine subscribers (SQS, Lambda) receive, so a SIEM that
//! speaks OCSF can take Vigil's alerts without a mapping of its own. 1.7.0 is
//! the first version with a place for the source's event id
//! (`metadata.original_event_uid`) and the newest both validators ship; its
//! evidences carry the caller's endpoint, identity and user agent (the
//! Detection Finding itself has no `src_endpoint` or `http_request`).
//! docs/alerts-and-routing.md says where each field goes; every sample alert
//! is checked against the official schema by `scripts/validate_ocsf.py`
//! (tests/tests/ocsf_schema.rs).
//!
//! Every value is event text: OCSF's typed attributes (an IP address, an ASN,
//! a country code) get only values of their type, and what does not fit stays
//! in `unmapped` rather than making the document invalid.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::model::{
    Actor, ActorType, Finding, FindingStatus, IpClass, Network, Severity, Technique,
};
use crate::text::{self, link::is_console_url};

pub(crate) const CLASS_UID: u32 = 2004;
pub(crate) const CATEGORY_UID: u32 = 2;
pub const OCSF_VERSION: &str = "1.7.0";
/// The profiles the body uses, in `metadata.profiles`: `cloud` for the
/// `cloud` object and a resource's `region`. ATT&CK goes in
/// `finding_info.attacks`, so Vigil needs no `security_control` profile, and
/// the actor sits in the evidence, so no `host` profile either.
pub(crate) const PROFILES: [&str; 1] = ["cloud"];
/// The ATT&CK release the tactic and technique ids are from.
const ATTACK_VERSION: &str = "v15";
/// OCSF `account.type_id` 10.
const AWS_ACCOUNT: (u32, &str) = (10, "AWS Account");

/// Activity: 1 Create for a new finding, 2 Update for a repeat GuardDuty sends
/// again with a higher count, 3 Close for resolved ones.
pub fn activity_id(f: &Finding) -> u32 {
    match f.status {
        FindingStatus::Resolved => 3,
        _ if f.count > 1 => 2,
        _ => 1,
    }
}

fn activity_name(activity: u32) -> &'static str {
    match activity {
        1 => "Create",
        2 => "Update",
        3 => "Close",
        _ => "Unknown",
    }
}

/// `status_id` and its caption.
fn status(s: FindingStatus) -> (u32, &'static str) {
    match s {
        FindingStatus::Active => (1, "New"),
        FindingStatus::Suppressed => (3, "Suppressed"),
        FindingStatus::Resolved => (4, "Resolved"),
        FindingStatus::Archived => (5, "Archived"),
    }
}

/// Serializes `f` as OCSF JSON.
pub fn to_ocsf(f: &Finding) -> Value {
    let activity = activity_id(f);
    let (status_id, status) = status(f.status);
    let mut unmapped = unmapped(f);
    let mut out = json!({
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity,
        "activity_name": activity_name(activity),
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": format!("Detection Finding: {}", activity_name(activity)),
        "severity_id": f.severity.ocsf_id(),
        "severity": f.severity.label(),
        "status_id": status_id,
        "status": status,
        // Vigil sends it to be acted on, except to say it is resolved.
        "is_alert": activity != 3,
        "time": f.time.timestamp_millis(),
        "count": f.count,
        "message": f.title,
        "metadata": metadata(f),
        "finding_info": finding_info(f),
        "cloud": {"provider": "AWS", "region": non_empty(&f.region),
                  "account": aws_account(non_empty(&f.account_id), f.account_name.as_deref())},
        "resources": resources(f),
        "evidences": evidences(f, &mut unmapped),
        "remediation": remediation(f),
    });
    out["unmapped"] = Value::Object(unmapped);
    strip_empty(&mut out);
    // Whoever reads it next (a SIEM, the notifier) shows these strings.
    text::clean_json(&mut out);
    out
}

fn metadata(f: &Finding) -> Value {
    json!({
        "version": OCSF_VERSION,
        "profiles": PROFILES,
        "product": {"name": "Vigil", "vendor_name": "Vigil", "version": env!("CARGO_PKG_VERSION"),
                    "feature": {"name": f.source.as_str()}},
        "correlation_uid": non_empty(&f.fingerprint),
        "original_event_uid": f.event_id,
    })
}

/// What was found, when, by which rule, and where to look at it.
fn finding_info(f: &Finding) -> Value {
    let rule = f
        .rule
        .as_ref()
        .filter(|r| !r.id.is_empty() || !r.title.is_empty());
    json!({
        "uid": f.id,
        "title": f.title,
        "desc": f.description,
        "types": non_empty(&f.finding_type).into_iter().collect::<Vec<_>>(),
        "product": {"name": non_empty(&f.product)},
        "created_time": f.first_seen.unwrap_or(f.time).timestamp_millis(),
        "modified_time": f.time.timestamp_millis(),
        "first_seen_time": f.first_seen.map(|t| t.timestamp_millis()),
        "last_seen_time": f.last_seen.map(|t| t.timestamp_millis()),
        "analytic": rule.map(|r| json!({"uid": non_empty(&r.id), "name": non_empty(&r.title),
                                        "type_id": 1, "type": "Rule"})),
        // The other rules the event matched: it alerts once, as `analytic`.
        "related_analytics": f.also_matched.iter().map(|r| json!({"uid": non_empty(&r.id),
            "name": non_empty(&r.title), "type_id": 1, "type": "Rule"})).collect::<Vec<_>>(),
        // Only a console page: the notifier makes `src_url` a button.
        "src_url": f.links.console.as_deref().filter(|u| is_console_url(u)),
        "attacks": attacks(f),
    })
}

/// An AWS account, when something names it (OCSF wants its uid or name).
fn aws_account(uid: Option<&str>, name: Option<&str>) -> Option<Value> {
    (uid.is_some() || name.is_some())
        .then(|| json!({"uid": uid, "name": name, "type_id": AWS_ACCOUNT.0, "type": AWS_ACCOUNT.1}))
}

/// The resources with an id (OCSF wants a uid or a name); tags as OCSF
/// key/value pairs.
fn resources(f: &Finding) -> Vec<Value> {
    f.resources
        .iter()
        .filter(|r| !r.id.is_empty())
        .map(|r| {
            json!({
                "uid": r.id, "type": non_empty(&r.resource_type), "region": r.region,
                "tags": r.tags.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// ATT&CK tactics, then techniques, each its own attack.
fn attacks(f: &Finding) -> Vec<Value> {
    let tactics = f
        .tactics
        .iter()
        .map(|t| json!({"tactic": {"uid": t.id(), "name": t.name()}, "version": ATTACK_VERSION}));
    let techniques = f
        .techniques
        .iter()
        .filter(|t| !t.id.is_empty() || t.name.is_some())
        .map(technique);
    tactics.chain(techniques).collect()
}

/// `T1562.008` is sub-technique 008 of `T1562`: OCSF has a place for each.
fn technique(t: &Technique) -> Value {
    match sub_technique_parent(&t.id) {
        Some(parent) => json!({
            "technique": {"uid": parent},
            "sub_technique": {"uid": t.id, "name": t.name},
            "version": ATTACK_VERSION,
        }),
        None => json!({
            "technique": {"uid": non_empty(&t.id), "name": t.name},
            "version": ATTACK_VERSION,
        }),
    }
}

fn sub_technique_parent(id: &str) -> Option<&str> {
    let (parent, sub) = id.split_once('.')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let technique = parent.strip_prefix('T').is_some_and(|n| digits(n, 4));
    (technique && digits(sub, 3)).then_some(parent)
}

/// The activity behind the finding (who, from where, with which client),
/// then the raw fields that matter: two evidences, so the SNS renderer can
/// shed the bulky second one alone. OCSF wants an evidence to name an actor,
/// an endpoint or data: a user agent alone stays in `unmapped`.
fn evidences(f: &Finding, unmapped: &mut Map<String, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    let user_agent = f.actor.as_ref().and_then(|a| a.user_agent.as_ref());
    let activity = json!({
        "actor": f.actor.as_ref().and_then(actor),
        "src_endpoint": src_endpoint(&f.network, unmapped),
        "http_request": user_agent.map(|ua| json!({"user_agent": ua})),
    });
    if activity["actor"].is_object() || activity["src_endpoint"].is_object() {
        out.push(activity);
    } else if let Some(ua) = user_agent {
        unmapped.insert("vigil_user_agent".into(), json!(ua));
    }
    if !f.evidence.is_empty() {
        out.push(json!({"data": f.evidence}));
    }
    out
}

/// The principal, when something identifies it (OCSF wants a user, a session
/// or an app). The service that acted for it (`invokedBy`) is `app_name`:
/// `invoked_by` is deprecated since OCSF 1.2.0, and the access key is the
/// session's credential (`user.credential_uid` is deprecated since 1.6.0).
fn actor(a: &Actor) -> Option<Value> {
    let mut actor = json!({
        "user": user(a),
        "session": {"issuer": a.session_issuer, "is_mfa": a.mfa_used,
                    "credential_uid": a.access_key_id},
        "app_name": a.invoked_by,
    });
    strip_empty(&mut actor);
    actor
        .as_object()
        .is_some_and(|m| !m.is_empty())
        .then_some(actor)
}

/// The user, when named (OCSF wants a name, uid or account). AWS identity
/// types (`IAMUser`, `AssumedRole`, ...) have no OCSF `type_id` of their own:
/// 99 Other, with AWS's word as the `type`, as OCSF says for Other.
fn user(a: &Actor) -> Option<Value> {
    let uid = a.arn.as_deref().or(a.principal_id.as_deref());
    let account = aws_account(a.account_id.as_deref(), None);
    if a.user_name.is_none() && uid.is_none() && account.is_none() {
        return None;
    }
    let kind = (a.actor_type != ActorType::Unknown).then(|| a.actor_type.as_str());
    Some(json!({
        "name": a.user_name, "uid": uid, "account": account,
        "type_id": kind.map(|_| 99), "type": kind,
    }))
}

/// The remote side of the activity. OCSF types it: `ip` takes an address
/// only (an AWS service principal is the `svc_name`), `country` an ISO 3166
/// code, `autonomous_system.number` an integer, and an endpoint needs an
/// address, a service or a domain. The source's values that do not fit stay
/// in `unmapped.vigil_network` under Vigil's names (all of them when there is
/// no endpoint).
fn src_endpoint(n: &Network, unmapped: &mut Map<String, Value>) -> Option<Value> {
    let remote = n.remote_ip.as_deref();
    let ip = remote.and_then(|r| r.parse::<IpAddr>().ok());
    let svc_name = remote.filter(|_| ip.is_none() && n.remote_ip_class == IpClass::AwsService);
    let asn = n.asn.as_deref().and_then(asn_number);
    let country = n.country.as_deref().and_then(country_code);
    let named = ip.is_some() || svc_name.is_some() || n.domain.is_some();
    let lost = if named {
        json!({
            "remote_ip": remote.filter(|_| ip.is_none() && svc_name.is_none()),
            "asn": n.asn.as_ref().filter(|_| asn.is_none()),
            "country": n.country.as_ref().filter(|_| country.is_none()),
        })
    } else {
        serde_json::to_value(n).unwrap_or_default()
    };
    let lost: Map<String, Value> = match lost {
        Value::Object(m) => m.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    };
    if !lost.is_empty() && !n.is_empty() {
        unmapped.insert("vigil_network".into(), Value::Object(lost));
    }
    named.then(|| {
        json!({
            "ip": ip.map(|ip| ip.to_string()), "svc_name": svc_name, "domain": n.domain,
            "port": n.remote_port,
            "location": {"city": n.city, "country": country},
            "autonomous_system": {"number": asn, "name": n.organization},
        })
    })
}

/// `64500` or `AS64500`.
fn asn_number(s: &str) -> Option<u32> {
    let digits = s
        .strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .unwrap_or(s);
    digits.parse().ok()
}

/// An ISO 3166-1 alpha-2 code (`DE`); a country name is not one.
fn country_code(s: &str) -> Option<String> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())).then(|| s.to_ascii_uppercase())
}

/// OCSF requires a `desc`: a link alone gets a pointer to it.
fn remediation(f: &Finding) -> Option<Value> {
    let link = f.links.remediation.as_ref();
    let desc = f
        .remediation
        .as_deref()
        .filter(|d| !d.is_empty())
        .or(link.map(|_| "Follow the linked remediation guidance."))?;
    Some(json!({"desc": desc, "references": link.into_iter().collect::<Vec<_>>()}))
}

/// What OCSF has no attribute for: Vigil's own fields, and the trace.
fn unmapped(f: &Finding) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("vigil_source".into(), json!(f.source.as_str()));
    m.insert("vigil_source_severity".into(), json!(f.source_severity));
    m.insert("vigil_sample".into(), json!(f.sample));
    if let Some(trace) = &f.trace {
        m.insert("trace_id".into(), json!(trace.trace_id));
        m.insert("xray_trace_id".into(), json!(trace.xray_trace_id));
        m.insert("trace_url".into(), json!(f.links.trace));
    }
    m
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// OCSF readers treat absent, null and empty alike, and OCSF's objects must
/// name something: dropping nulls, empty lists and empty objects keeps the
/// alert small and valid.
fn strip_empty(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.values_mut().for_each(strip_empty);
            map.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(strip_empty),
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
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

/// What OCSF 1.7.0 requires of a Detection Finding, and of the `cloud`
/// profile when declared, that `v` lacks: a quick check for Rust tests. The
/// full check against the schema is `scripts/validate_ocsf.py`.
pub fn missing_required(v: &Value) -> Vec<&'static str> {
    if !v.is_object() {
        return vec!["<object>"];
    }
    let cloud = v
        .pointer("/metadata/profiles")
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|p| p == "cloud"));
    let required: &[(&'static str, &str)] = &[
        ("activity_id", "/activity_id"),
        ("category_uid", "/category_uid"),
        ("class_uid", "/class_uid"),
        ("type_uid", "/type_uid"),
        ("severity_id", "/severity_id"),
        ("time", "/time"),
        ("metadata.product", "/metadata/product"),
        ("metadata.version", "/metadata/version"),
        ("finding_info.uid", "/finding_info/uid"),
    ];
    let mut missing: Vec<&'static str> = required
        .iter()
        .filter(|(_, pointer)| v.pointer(pointer).is_none())
        .map(|(name, _)| *name)
        .collect();
    if cloud && v.pointer("/cloud/provider").is_none() {
        missing.push("cloud.provider");
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, Tactic};

    fn finding() -> Finding {
        let mut f = Finding::new(
            Source::GuardDuty,
            "id-1",
            "Recon:EC2/PortProbeUnprotectedPort",
        );
        f.account_id = "111122223333".into();
        f.region = "us-east-1".into();
        f
    }

    #[test]
    fn a_finding_serializes_with_every_required_field() {
        let mut f = finding();
        f.severity = Severity::High;
        f.tactics.push(Tactic::Reconnaissance);
        f.event_id = Some("evt-1".into());
        let v = to_ocsf(&f);
        assert!(
            missing_required(&v).is_empty(),
            "{:?}",
            missing_required(&v)
        );
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["type_uid"], 200401);
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["severity"], "High");
        assert_eq!(v["metadata"]["version"], "1.7.0");
        assert_eq!(v["metadata"]["profiles"], json!(["cloud"]));
        assert_eq!(v["metadata"]["original_event_uid"], "evt-1");
        assert_eq!(v["cloud"]["account"]["uid"], "111122223333");
        // ATT&CK in finding_info, not the security_control profile's top level.
        assert_eq!(v["finding_info"]["attacks"][0]["tactic"]["uid"], "TA0043");
        assert!(v.get("attacks").is_none());
    }

    #[test]
    fn repeats_are_updates_and_resolved_is_close() {
        let mut f = Finding::new(Source::GuardDuty, "id", "t");
        f.count = 4;
        assert_eq!(to_ocsf(&f)["type_uid"], 200402);
        f.status = FindingStatus::Resolved;
        let v = to_ocsf(&f);
        assert_eq!(v["type_uid"], 200403);
        assert_eq!(
            (v["status_id"].clone(), v["is_alert"].clone()),
            (json!(4), json!(false))
        );
        f.status = FindingStatus::Archived;
        assert_eq!(to_ocsf(&f)["status"], "Archived");
    }

    #[test]
    fn the_caller_is_evidence_and_what_ocsf_cannot_type_stays_unmapped() {
        let mut f = finding();
        f.actor = Some(Actor {
            actor_type: ActorType::AssumedRole,
            user_name: Some("alice".into()),
            access_key_id: Some("ASIAEXAMPLE".into()),
            user_agent: Some("aws-cli/2.15".into()),
            invoked_by: Some("cloudformation.amazonaws.com".into()),
            ..Actor::default()
        });
        f.network = Network {
            remote_ip: Some("2001:db8:0:0::1".into()),
            country: Some("Germany".into()),
            asn: Some("AS64500".into()),
            ..Network::default()
        };
        let v = to_ocsf(&f);
        let e = &v["evidences"][0];
        assert_eq!(e["actor"]["user"]["type"], "AssumedRole");
        assert_eq!(e["actor"]["user"]["type_id"], 99);
        assert_eq!(e["actor"]["session"]["credential_uid"], "ASIAEXAMPLE");
        assert_eq!(e["actor"]["app_name"], "cloudformation.amazonaws.com");
        assert!(e["actor"].get("invoked_by").is_none());
        assert_eq!(e["http_request"]["user_agent"], "aws-cli/2.15");
        assert_eq!(e["src_endpoint"]["ip"], "2001:db8::1");
        assert_eq!(e["src_endpoint"]["autonomous_system"]["number"], 64500);
        // A country name is no ISO code: it alone stays unmapped.
        assert!(e["src_endpoint"].get("location").is_none());
        assert_eq!(
            v["unmapped"]["vigil_network"],
            json!({"country": "Germany"})
        );
        for top in ["actor", "src_endpoint", "http_request"] {
            assert!(v.get(top).is_none(), "{top}");
        }

        f.network = Network {
            remote_ip: Some("ec2.amazonaws.com".into()),
            remote_ip_class: IpClass::AwsService,
            country: Some("de".into()),
            city: Some("Berlin".into()),
            ..Network::default()
        };
        let v = to_ocsf(&f);
        let endpoint = &v["evidences"][0]["src_endpoint"];
        assert_eq!(endpoint["svc_name"], "ec2.amazonaws.com");
        assert_eq!(endpoint["location"]["country"], "DE");
        assert!(endpoint.get("ip").is_none() && v["unmapped"].get("vigil_network").is_none());

        f.network.remote_ip_class = IpClass::Unknown;
        f.network.remote_ip = Some("<not an address>".into());
        let v = to_ocsf(&f);
        assert!(v["evidences"][0].get("src_endpoint").is_none());
        assert_eq!(
            v["unmapped"]["vigil_network"]["remote_ip"],
            "<not an address>"
        );
    }

    #[test]
    fn a_user_agent_alone_is_no_evidence() {
        let mut f = finding();
        f.actor = Some(Actor {
            user_agent: Some("Boto3/1.34".into()),
            ..Actor::default()
        });
        let v = to_ocsf(&f);
        assert!(v.get("evidences").is_none());
        assert_eq!(v["unmapped"]["vigil_user_agent"], "Boto3/1.34");
    }

    #[test]
    fn sub_techniques_name_their_technique() {
        let mut f = finding();
        for id in ["T1562.008", "T1078", "T1562.08", "X1562.008"] {
            f.techniques.push(Technique {
                id: id.into(),
                name: Some(format!("name of {id}")),
            });
        }
        let attacks = to_ocsf(&f)["finding_info"]["attacks"].clone();
        assert_eq!(attacks[0]["technique"], json!({"uid": "T1562"}));
        assert_eq!(attacks[0]["sub_technique"]["uid"], "T1562.008");
        assert_eq!(attacks[1]["technique"]["uid"], "T1078");
        for odd in [2, 3] {
            assert!(attacks[odd].get("sub_technique").is_none());
        }
    }

    #[test]
    fn remediation_always_has_a_desc() {
        let mut f = finding();
        assert!(to_ocsf(&f).get("remediation").is_none());
        f.links.remediation = Some("https://docs.aws.amazon.com/guardduty/".into());
        let v = to_ocsf(&f);
        assert!(v["remediation"]["desc"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
        assert_eq!(
            v["remediation"]["references"][0],
            "https://docs.aws.amazon.com/guardduty/"
        );
        f.remediation = Some("Rotate the key.".into());
        assert_eq!(to_ocsf(&f)["remediation"]["desc"], "Rotate the key.");
    }

    #[test]
    fn nothing_is_null_or_empty() {
        fn walk(v: &Value, path: &str) {
            assert!(!is_empty(v), "{path} is empty");
            match v {
                Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, &format!("{path}.{k}"))),
                Value::Array(a) => a.iter().for_each(|v| walk(v, &format!("{path}[]"))),
                _ => {}
            }
        }
        let mut f = Finding::new(Source::GuardDuty, "id", "");
        f.resources
            .push(crate::model::Resource::new("AwsS3Bucket", ""));
        f.actor = Some(Actor::default());
        f.rule = Some(crate::model::RuleRef::new(String::new(), String::new()));
        walk(&to_ocsf(&f), "");
    }
}

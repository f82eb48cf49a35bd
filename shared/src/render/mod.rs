//! What an alert says, per channel: the SNS subject, the plain-text email
//! ([`email`]), the Amazon Q Developer (AWS Chatbot) custom notification
//! ([`chatbot`]), and the per-protocol SNS message that carries them all.
//!
//! Event text reaches them only as [`Untrusted`], which gives it out as a
//! channel's safe text (`crate::text`): the email and Chatbot writers take
//! nothing else.

mod chatbot;
mod email;

use serde_json::{json, Value};

pub use email::email_body;

use crate::model::{Finding, IpClass, Severity, Tactic};
use crate::ocsf;
use crate::route::Route;
use crate::text::{truncate, Untrusted};

/// One alert about to be sent.
#[derive(Debug, Clone)]
pub struct Alert<'a> {
    pub finding: &'a Finding,
    /// Repeats of this fingerprint suppressed since the last alert.
    pub suppressed_repeats: u64,
    /// W3C `traceparent` of the span that sent it, for downstream subscribers.
    pub traceparent: Option<String>,
    /// X-Ray `AWSTraceHeader` form of the same context.
    pub aws_trace_header: Option<String>,
    /// Who it goes to, from the routing table. None: no table configured.
    pub route: Option<&'a Route>,
}

impl<'a> Alert<'a> {
    pub fn new(finding: &'a Finding) -> Alert<'a> {
        Alert {
            finding,
            suppressed_repeats: 0,
            traceparent: None,
            aws_trace_header: None,
            route: None,
        }
    }
}

/// SNS allows 256 KB per message; leave room for the JSON envelope of SNS itself.
pub(crate) const SNS_MESSAGE_BUDGET: usize = 240 * 1024;

/// `[HIGH] GuardDuty: <title> | <account>` — severity first so mail filters and
/// phones show it before anything is cut.
pub fn subject(f: &Finding) -> String {
    let account = f.account_name.as_deref().unwrap_or(&f.account_id);
    Untrusted::new(&format!(
        "[{}] {}: {} | {}",
        f.severity.as_str(),
        f.source.as_str(),
        truncate(&f.title, 200),
        truncate(account, 100)
    ))
    .subject()
}

/// Who acted, as raw event text for a renderer to make safe: name (type),
/// MFA, access key. Each part is cut first so none can push the rest out.
fn who(f: &Finding) -> Option<String> {
    let a = f.actor.as_ref()?;
    let name = a.display_name()?;
    let mut s = format!("{} ({})", truncate(name, 300), a.actor_type.as_str());
    if let Some(mfa) = a.mfa_used {
        s.push_str(if mfa { ", MFA used" } else { ", no MFA" });
    }
    if let Some(key) = &a.access_key_id {
        s.push_str(&format!(", access key {}", truncate(key, 64)));
    }
    Some(s)
}

/// Where the activity came from, as raw event text (see [`who`]).
fn network_line(f: &Finding) -> Option<String> {
    let n = &f.network;
    let ip = n
        .remote_ip
        .as_deref()
        .or_else(|| f.actor.as_ref().and_then(|a| a.source_ip.as_deref()))?;
    let mut s = truncate(ip, 64);
    if let Some(port) = n.remote_port {
        s.push_str(&format!(":{port}"));
    }
    let class = match n.remote_ip_class {
        IpClass::Private => " (private)",
        IpClass::AwsService => " (AWS service)",
        IpClass::Public => " (public)",
        IpClass::Unknown => "",
    };
    s.push_str(class);
    let place: Vec<String> = [&n.city, &n.country, &n.organization]
        .into_iter()
        .flatten()
        .map(|p| truncate(p, 80))
        .collect();
    if !place.is_empty() {
        s.push_str(&format!(", {}", place.join(", ")));
    }
    if let Some(asn) = &n.asn {
        s.push_str(&format!(", AS{}", truncate(asn, 16)));
    }
    Some(s)
}

/// How many of the other rules an alert names ("also matched"); the rest are
/// counted.
const ALSO_MATCHED_SHOWN: usize = 5;

/// The titles (else ids) of the other rules the event matched, the first
/// [`ALSO_MATCHED_SHOWN`], and how many more there are.
fn also_matched(f: &Finding) -> Option<(Vec<&str>, usize)> {
    if f.also_matched.is_empty() {
        return None;
    }
    let names = f.also_matched.iter().take(ALSO_MATCHED_SHOWN).map(|r| {
        if r.title.is_empty() {
            r.id.as_str()
        } else {
            r.title.as_str()
        }
    });
    let more = f.also_matched.len().saturating_sub(ALSO_MATCHED_SHOWN);
    Some((names.collect(), more))
}

/// Why a tactic matters, in a sentence a non-specialist on call can act on.
fn why_it_matters(f: &Finding) -> &'static str {
    let Some(t) = f.tactics.first() else {
        return match f.severity {
            Severity::Critical | Severity::High => "The source rates this high: treat it as a possible compromise until shown otherwise.",
            _ => "A security control or posture check flagged this; it may weaken the account's defences.",
        };
    };
    match t {
        Tactic::Reconnaissance | Tactic::Discovery => {
            "Someone is mapping the environment; this often comes before an attack."
        }
        Tactic::ResourceDevelopment => "Someone is preparing resources to use in an attack.",
        Tactic::InitialAccess => {
            "Someone may have gained a foothold, often with stolen or leaked credentials."
        }
        Tactic::Execution => "Untrusted code or commands may be running on your resources.",
        Tactic::Persistence => {
            "Someone may be setting up a way back in that survives a password or key reset."
        }
        Tactic::PrivilegeEscalation => {
            "Someone may be gaining more permissions than they should have."
        }
        Tactic::DefenseEvasion => {
            "Logging, monitoring or protections may have been weakened to hide activity."
        }
        Tactic::CredentialAccess => "Credentials or secrets may be exposed or stolen.",
        Tactic::LateralMovement => "Activity may be spreading to other resources or accounts.",
        Tactic::Collection => "Data may be gathered in preparation for theft.",
        Tactic::CommandAndControl => "A resource may be talking to an attacker's infrastructure.",
        Tactic::Exfiltration => "Data may be leaving the account.",
        Tactic::Impact => {
            "Availability, integrity or cost may be affected (destruction, ransom, crypto-mining)."
        }
    }
}

/// One of the next steps an alert suggests.
#[derive(Debug, Clone, PartialEq)]
enum Step<'a> {
    Say(&'static str),
    /// Deactivate this access key (event text).
    DeactivateKey(&'a str),
    /// Open the finding at this URL (a console URL, or shown defanged).
    OpenConsole(&'a str),
}

/// What to do first, by what the finding is about.
fn next_steps(f: &Finding) -> Vec<Step<'_>> {
    let mut steps = vec![Step::Say(
        "Confirm whether the activity was expected: ask the owner of the resource or principal.",
    )];
    if let Some(actor) = f.actor.as_ref() {
        if let Some(key) = &actor.access_key_id {
            steps.push(Step::DeactivateKey(key));
        } else if actor.display_name().is_some() {
            steps.push(Step::Say("If not expected, revoke the principal's sessions and review its recent CloudTrail activity."));
        }
    }
    let resource_type = f
        .primary_resource()
        .map_or("", |r| r.resource_type.as_str());
    if let Some(step) = resource_step(resource_type) {
        steps.push(Step::Say(step));
    }
    if f.remediation.is_some() || f.links.remediation.is_some() {
        steps.push(Step::Say(
            "Follow the source's remediation guidance (below).",
        ));
    }
    if let Some(url) = &f.links.console {
        steps.push(Step::OpenConsole(url));
    }
    steps
}

/// The first thing to do about one kind of resource.
fn resource_step(resource_type: &str) -> Option<&'static str> {
    Some(match resource_type {
        "AwsEc2Instance" => "Isolate the instance (restrictive security group) and snapshot its volumes before changing anything.",
        "AwsS3Bucket" => "Check the bucket policy, ACLs and Block Public Access settings; review data events for the bucket.",
        "AwsEksCluster" | "KubernetesWorkload" | "Container" | "AwsEcsCluster" | "AwsEcsTask" => {
            "Review the workload's recent API calls and isolate the pod or task if compromise is suspected."
        }
        "AwsLambdaFunction" => "Review the function's recent changes and its execution role's permissions.",
        "AwsRdsDbInstance" => "Review database logins and rotate the credentials that were used.",
        _ => return None,
    })
}

pub(crate) fn severity_emoji(s: Severity) -> &'static str {
    match s {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Informational => ":information_source:",
    }
}

/// The SNS `MessageStructure=json` body, one body per protocol:
///
/// - `email`: the plain-text email;
/// - `https`: the Amazon Q Developer (Chatbot) custom notification, because
///   Chatbot subscribes over https (any other https subscriber gets it too);
/// - `sms`: the subject line;
/// - `sqs`, `lambda` and `default` (http, email-json, firehose, application,
///   any protocol not named): the OCSF finding.
///
/// Stays under `SNS_MESSAGE_BUDGET` by trimming the email and dropping
/// evidence from the OCSF copy when needed.
pub fn sns_message(alert: &Alert<'_>) -> String {
    let f = alert.finding;
    let mut email = email_body(alert);
    let mut chat = chatbot::notification(alert);
    let mut ocsf = ocsf::to_ocsf(f);
    if let Some(route) = alert.route {
        ocsf["unmapped"]["vigil_route"] = serde_json::to_value(route).unwrap_or_default();
    }
    let sms = subject(f);
    let build = |email: &str, chat: &Value, ocsf: &Value| {
        // The OCSF text goes in three times: escaped once, copied thrice
        // (keys in the order serde_json writes an object's).
        let machine = json_text(&ocsf.to_string());
        let fields = [
            ("default", machine.as_str()),
            ("email", &json_text(email)),
            ("https", &json_text(&chat.to_string())),
            ("lambda", &machine),
            ("sms", &json_text(&sms)),
            ("sqs", &machine),
        ];
        let mut out =
            String::with_capacity(fields.iter().map(|(k, v)| k.len() + v.len() + 4).sum());
        for (i, (key, value)) in fields.iter().enumerate() {
            out.push(if i == 0 { '{' } else { ',' });
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
            out.push_str(value);
        }
        out.push('}');
        out
    };
    let mut msg = build(&email, &chat, &ocsf);
    // Three machine copies share the budget: shed the bulky, least useful parts
    // first, then cut every string and list harder until it fits. Any event
    // field can be huge (an attacker picks them), so no field is trusted to be small.
    for (max_str, max_items, max_email) in [(2000, 20, 20_000), (200, 5, 4000), (40, 2, 1000)] {
        if msg.len() <= SNS_MESSAGE_BUDGET {
            break;
        }
        shed_evidence_data(&mut ocsf);
        shrink(&mut ocsf, max_str, max_items);
        shrink(&mut chat, max_str, max_items);
        ocsf["metadata"]["is_truncated"] = json!(true);
        email = truncate(&email, max_email);
        msg = build(&email, &chat, &ocsf);
    }
    msg
}

/// `s` as a JSON string literal, quotes and escapes included.
fn json_text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Drops the evidence of raw fields ([`ocsf::to_ocsf`] keeps them apart from
/// the actor and endpoint, which stay).
fn shed_evidence_data(ocsf: &mut Value) {
    let Some(obj) = ocsf.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(evidences)) = obj.get_mut("evidences") {
        evidences.retain(|e| e.get("data").is_none());
        if evidences.is_empty() {
            obj.remove("evidences");
        }
    }
}

/// Cuts every string in `v` to `max_str` characters and every list to `max_items`.
fn shrink(v: &mut Value, max_str: usize, max_items: usize) {
    match v {
        Value::String(s) if s.chars().count() > max_str => *s = truncate(s, max_str),
        Value::Array(items) => {
            items.truncate(max_items);
            items.iter_mut().for_each(|i| shrink(i, max_str, max_items));
        }
        Value::Object(map) => {
            // Keys are event text too (tags, evidence names).
            if map.keys().any(|k| k.chars().count() > max_str) || map.len() > 4 * max_items.max(10)
            {
                let kept: serde_json::Map<String, Value> = std::mem::take(map)
                    .into_iter()
                    .take(4 * max_items.max(10))
                    .map(|(k, v)| (truncate(&k, max_str), v))
                    .collect();
                *map = kept;
            }
            map.values_mut().for_each(|i| shrink(i, max_str, max_items));
        }
        _ => {}
    }
}

/// What an attribute says when the finding does not: SNS refuses an empty
/// value, and a filter policy can match it (`{"account": ["unknown"]}`).
pub const UNKNOWN_ATTRIBUTE: &str = "unknown";

/// The longest attribute value Vigil sends, in characters (an account id is
/// 12, a finding type rarely 100). SNS counts attributes in the message's
/// 256 KiB, so an attacker-sized value must not push the alert out.
pub const ATTRIBUTE_MAX: usize = 256;

/// SNS message attributes subscribers filter on. None is empty (SNS refuses
/// an empty value: the placeholder is [`UNKNOWN_ATTRIBUTE`]) and none is
/// longer than [`ATTRIBUTE_MAX`].
pub fn attributes(f: &Finding) -> Vec<(&'static str, String)> {
    let bounded = |s: &str| {
        let v = Untrusted::new(s).line(ATTRIBUTE_MAX).into_string();
        if v.trim().is_empty() {
            UNKNOWN_ATTRIBUTE.to_string()
        } else {
            v
        }
    };
    vec![
        ("severity", f.severity.as_str().to_string()),
        ("source", f.source.as_str().to_string()),
        ("finding_type", bounded(f.type_or_rule())),
        ("account", bounded(&f.account_id)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, Resource, Source};

    fn finding() -> Finding {
        let mut f = Finding::new(
            Source::GuardDuty,
            "f-1",
            "UnauthorizedAccess:IAMUser/TorIPCaller",
        );
        f.title = "API called from a Tor exit node".into();
        f.severity = Severity::High;
        f.account_id = "111122223333".into();
        f.account_name = Some("prod".into());
        f.region = "us-east-1".into();
        f.fingerprint = "fp".into();
        f.resources
            .push(Resource::new("AwsIamAccessKey", "AKIAEXAMPLE"));
        f.actor = Some(Actor {
            user_name: Some("alice".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            ..Actor::default()
        });
        f
    }

    #[test]
    fn subject_starts_with_severity_and_names_the_account() {
        let s = subject(&finding());
        assert!(s.starts_with("[HIGH] GuardDuty: "), "{s}");
        assert!(s.ends_with("| prod"));
        assert!(s.len() <= 99);
    }

    #[test]
    fn message_has_every_protocol_and_valid_json_per_key() {
        let f = finding();
        let msg: Value = serde_json::from_str(&sns_message(&Alert::new(&f))).unwrap();
        for key in ["default", "email", "sqs", "lambda", "https", "sms"] {
            assert!(msg[key].is_string(), "{key}");
        }
        assert_eq!(msg["default"], msg["sqs"]);
        assert_eq!(msg["sms"], subject(&f));
        let chat: Value = serde_json::from_str(msg["https"].as_str().unwrap()).unwrap();
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert_eq!(chat["metadata"]["threadId"], "fp");
        let ocsf: Value = serde_json::from_str(msg["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(ocsf["class_uid"], 2004);
        let email = msg["email"].as_str().unwrap();
        assert!(email.contains("Severity:     High"));
        assert!(email.contains("Next steps"));
        assert!(!email.contains('{'));
    }

    #[test]
    fn the_other_rules_an_event_matched_are_named_in_every_body() {
        let mut f = finding();
        f.also_matched = (1..=7)
            .map(|i| crate::model::RuleRef::new(format!("cis-{i}"), format!("CIS 4.{i}")))
            .collect();
        let msg: Value = serde_json::from_str(&sns_message(&Alert::new(&f))).unwrap();
        let email = msg["email"].as_str().unwrap();
        assert!(
            email.contains("Also matched: CIS 4.1, CIS 4.2, CIS 4.3, CIS 4.4, CIS 4.5 and 2 more"),
            "{email}"
        );
        let chat: Value = serde_json::from_str(msg["https"].as_str().unwrap()).unwrap();
        let desc = chat["content"]["description"].as_str().unwrap();
        assert!(desc.contains("*Also matched:* CIS 4.1, "), "{desc}");
        assert!(desc.contains(" and 2 more"), "{desc}");
        let ocsf: Value = serde_json::from_str(msg["lambda"].as_str().unwrap()).unwrap();
        let related = ocsf["finding_info"]["related_analytics"]
            .as_array()
            .unwrap();
        assert_eq!(related.len(), 7);
        assert_eq!(related[0]["uid"], "cis-1");
        assert_eq!(related[0]["name"], "CIS 4.1");
        let view = crate::notify::view::AlertView::parse(msg["lambda"].as_str().unwrap()).unwrap();
        assert_eq!(view.also_matched.len(), 7);
        let card = crate::notify::slack::card(&view).to_string();
        assert!(card.contains("Also matched"), "{card}");
        assert!(card.contains("CIS 4.5 (+2 more)"), "{card}");
        // Without other rules, no line and no field.
        let plain = sns_message(&Alert::new(&finding()));
        assert!(!plain.contains("Also matched"), "{plain}");
    }

    #[test]
    fn huge_values_in_any_field_stay_under_the_sns_limit() {
        let big = "y".repeat(300_000);
        let mut f = finding();
        f.title = big.clone();
        f.id = big.clone();
        f.account_id = big.clone();
        f.finding_type = big.clone();
        f.resources = (0..50)
            .map(|i| Resource::new(big.clone(), format!("{i}{big}")))
            .collect();
        f.actor.as_mut().unwrap().user_agent = Some(big.clone());
        f.network.remote_ip = Some(big.clone());
        f.evidence.insert("api".into(), big.clone());
        let msg = sns_message(&Alert::new(&f));
        assert!(msg.len() <= 256 * 1024, "{}", msg.len());
        let parsed: Value = serde_json::from_str(&msg).unwrap();
        let machine: Value = serde_json::from_str(parsed["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(machine["metadata"]["is_truncated"], true);
        // The caller survives the cut; only the raw evidence fields are shed.
        assert!(machine["evidences"][0]["actor"].is_object());
        assert!(machine["evidences"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("data").is_none()));
        assert!(subject(&f).len() <= 99);
    }

    #[test]
    fn huge_descriptions_stay_under_the_sns_limit() {
        let mut f = finding();
        f.description = "x".repeat(400_000);
        for i in 0..2000 {
            f.evidence.insert(format!("k{i}"), "y".repeat(200));
        }
        assert!(sns_message(&Alert::new(&f)).len() <= 256 * 1024);
    }

    #[test]
    fn attributes_are_never_empty_and_always_bounded() {
        let mut f = finding();
        f.account_id = String::new();
        f.finding_type = " \n".into();
        let attrs: std::collections::HashMap<_, _> = attributes(&f).into_iter().collect();
        assert_eq!(attrs["account"], UNKNOWN_ATTRIBUTE);
        assert_eq!(attrs["finding_type"], UNKNOWN_ATTRIBUTE);
        f.account_id = "1".repeat(300_000);
        for (name, value) in attributes(&f) {
            assert!(
                !value.is_empty() && value.chars().count() <= ATTRIBUTE_MAX,
                "{name}"
            );
        }
    }
}

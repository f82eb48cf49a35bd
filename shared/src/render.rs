//! What an alert says, per channel: the SNS subject, the plain-text email, the
//! Amazon Q Developer (AWS Chatbot) custom notification, and the per-protocol
//! SNS message that carries them all.
//!
//! Every piece of event text passes through `crate::text` on its way in.

use serde_json::{json, Value};

use crate::model::{Finding, IpClass, Severity, Tactic};
use crate::ocsf;
use crate::route::Route;
use crate::text::{markdown_code, one_line, sns_subject, strip_controls, truncate};

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
    sns_subject(&format!(
        "[{}] {}: {} | {}",
        f.severity.as_str(),
        f.source.as_str(),
        one_line(&f.title, 200),
        account
    ))
}

/// Short text for a place that shows one line: `what` on `which resource`.
pub(crate) fn headline(f: &Finding) -> String {
    one_line(&f.title, 300)
}

fn who(f: &Finding) -> Option<String> {
    let a = f.actor.as_ref()?;
    let name = a.display_name()?;
    let mut s = format!("{} ({})", one_line(name, 300), a.actor_type.as_str());
    if let Some(mfa) = a.mfa_used {
        s.push_str(if mfa { ", MFA used" } else { ", no MFA" });
    }
    if let Some(key) = &a.access_key_id {
        s.push_str(&format!(", access key {}", one_line(key, 64)));
    }
    Some(s)
}

fn network_line(f: &Finding) -> Option<String> {
    let n = &f.network;
    let ip = n
        .remote_ip
        .as_deref()
        .or_else(|| f.actor.as_ref().and_then(|a| a.source_ip.as_deref()))?;
    let mut s = one_line(ip, 64);
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
        .map(|p| one_line(p, 80))
        .collect();
    if !place.is_empty() {
        s.push_str(&format!(", {}", place.join(", ")));
    }
    if let Some(asn) = &n.asn {
        s.push_str(&format!(", AS{}", one_line(asn, 16)));
    }
    Some(s)
}

/// Why a tactic matters, in a sentence a non-specialist on call can act on.
fn why_it_matters(f: &Finding) -> String {
    let Some(t) = f.tactics.first() else {
        return match f.severity {
            Severity::Critical | Severity::High => "The source rates this high: treat it as a possible compromise until shown otherwise.".into(),
            _ => "A security control or posture check flagged this; it may weaken the account's defences.".into(),
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
    .into()
}

/// What to do first, by what the finding is about.
pub(crate) fn next_steps(f: &Finding) -> Vec<String> {
    let mut steps = Vec::new();
    let resource_type = f
        .primary_resource()
        .map(|r| r.resource_type.as_str())
        .unwrap_or("");
    steps.push(
        "Confirm whether the activity was expected: ask the owner of the resource or principal."
            .to_string(),
    );
    if let Some(actor) = f.actor.as_ref() {
        if let Some(key) = &actor.access_key_id {
            steps.push(format!(
                "If not expected, deactivate access key {} and review what it did in CloudTrail.",
                one_line(key, 64)
            ));
        } else if actor.display_name().is_some() {
            steps.push("If not expected, revoke the principal's sessions and review its recent CloudTrail activity.".into());
        }
    }
    match resource_type {
        "AwsEc2Instance" => steps.push("Isolate the instance (restrictive security group) and snapshot its volumes before changing anything.".into()),
        "AwsS3Bucket" => steps.push("Check the bucket policy, ACLs and Block Public Access settings; review data events for the bucket.".into()),
        "AwsEksCluster" | "KubernetesWorkload" | "Container" | "AwsEcsCluster" | "AwsEcsTask" => {
            steps.push("Review the workload's recent API calls and isolate the pod or task if compromise is suspected.".into())
        }
        "AwsLambdaFunction" => steps.push("Review the function's recent changes and its execution role's permissions.".into()),
        "AwsRdsDbInstance" => steps.push("Review database logins and rotate the credentials that were used.".into()),
        _ => {}
    }
    if f.remediation.is_some() || f.links.remediation.is_some() {
        steps.push("Follow the source's remediation guidance (below).".into());
    }
    if let Some(url) = &f.links.console {
        steps.push(format!("Open the finding in the console: {url}"));
    }
    steps
}

/// The plain-text email: severity, what happened, who, where, when, why it
/// matters, next steps, links. No JSON.
pub fn email_body(alert: &Alert<'_>) -> String {
    let f = alert.finding;
    let mut out = String::new();
    email_summary(&mut out, f);
    email_actor_and_resources(&mut out, f);
    email_context(&mut out, alert);
    out.push('\n');
    email_sections(&mut out, f);
    email_links(&mut out, f);
    out
}

/// One labelled line of the email's header block.
fn line(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<13}{value}\n"));
}

/// Severity, what, type, source, account, region.
fn email_summary(out: &mut String, f: &Finding) {
    line(
        out,
        "Severity:",
        &format!(
            "{}{}",
            f.severity.label(),
            f.source_severity
                .as_deref()
                .map(|s| format!(" (source score {s})"))
                .unwrap_or_default()
        ),
    );
    line(out, "What:", &headline(f));
    line(out, "Type:", &one_line(f.type_or_rule(), 200));
    line(
        out,
        "Source:",
        &format!("{} / {}", f.source.as_str(), one_line(&f.product, 100)),
    );
    line(out, "Account:", &one_line(&f.account_label(), 200));
    line(out, "Region:", &one_line(&f.region, 40));
}

/// Who acted, on which resources, from where, with which user agent.
fn email_actor_and_resources(out: &mut String, f: &Finding) {
    if let Some(w) = who(f) {
        line(out, "Who:", &w);
    }
    if let Some(r) = f.primary_resource() {
        line(
            out,
            "Resource:",
            &format!("{} ({})", one_line(&r.id, 400), r.resource_type),
        );
        for extra in f.resources.iter().skip(1).take(4) {
            line(
                out,
                "",
                &format!("{} ({})", one_line(&extra.id, 400), extra.resource_type),
            );
        }
    }
    if let Some(n) = network_line(f) {
        line(out, "From:", &n);
    }
    if let Some(ua) = f.actor.as_ref().and_then(|a| a.user_agent.as_deref()) {
        line(out, "User agent:", &one_line(ua, 200));
    }
}

/// When, ATT&CK, repeats suppressed, and whether it is a sample.
fn email_context(out: &mut String, alert: &Alert<'_>) {
    let f = alert.finding;
    let when = match (f.first_seen, f.last_seen) {
        (Some(first), Some(last)) if first != last => format!(
            "{} to {}{}",
            first.format("%Y-%m-%d %H:%M:%S UTC"),
            last.format("%Y-%m-%d %H:%M:%S UTC"),
            if f.count > 1 {
                format!(" (seen {} times)", f.count)
            } else {
                String::new()
            }
        ),
        _ => format!("{}", f.time.format("%Y-%m-%d %H:%M:%S UTC")),
    };
    line(out, "When:", &when);
    if !f.tactics.is_empty() {
        let tactics: Vec<String> = f.tactics.iter().map(Tactic::to_string).collect();
        line(out, "ATT&CK:", &tactics.join(", "));
    }
    if !f.techniques.is_empty() {
        let t: Vec<&str> = f.techniques.iter().map(|t| t.id.as_str()).collect();
        line(out, "Techniques:", &t.join(", "));
    }
    if alert.suppressed_repeats > 0 {
        line(
            out,
            "Repeats:",
            &format!(
                "{} more since the last alert (suppressed)",
                alert.suppressed_repeats
            ),
        );
    }
    if f.sample {
        line(
            out,
            "Note:",
            "this is a SAMPLE finding generated by the source, not real activity",
        );
    }
}

/// What happened, why it matters, evidence, next steps, remediation.
fn email_sections(out: &mut String, f: &Finding) {
    if !f.description.is_empty() {
        out.push_str("What happened\n");
        out.push_str(&truncate(&strip_controls(&f.description, true), 4000));
        out.push_str("\n\n");
    }
    out.push_str("Why it matters\n");
    out.push_str(&why_it_matters(f));
    out.push_str("\n\n");
    if !f.evidence.is_empty() {
        out.push_str("Evidence\n");
        for (k, v) in f.evidence.iter().take(20) {
            out.push_str(&format!("  {}: {}\n", k, one_line(v, 300)));
        }
        out.push('\n');
    }
    out.push_str("Next steps\n");
    for (i, step) in next_steps(f).iter().enumerate() {
        out.push_str(&format!("  {}. {}\n", i + 1, step));
    }
    if let Some(rem) = &f.remediation {
        out.push_str(&format!(
            "\nRemediation\n{}\n",
            truncate(&strip_controls(rem, true), 2000)
        ));
    }
}

/// Console, remediation and trace links, and the finding's ids.
fn email_links(out: &mut String, f: &Finding) {
    out.push_str("\nLinks\n");
    if let Some(url) = &f.links.console {
        out.push_str(&format!("  Console: {url}\n"));
    }
    if let Some(url) = &f.links.remediation {
        out.push_str(&format!("  Remediation: {}\n", one_line(url, 500)));
    }
    if let Some(url) = &f.links.trace {
        out.push_str(&format!("  Trace: {url}\n"));
    }
    if let Some(t) = &f.trace {
        out.push_str(&format!(
            "  Trace id: {} (X-Ray {})\n",
            t.trace_id, t.xray_trace_id
        ));
    }
    out.push_str(&format!(
        "\nFinding id: {}\nFingerprint: {}\n",
        one_line(&f.id, 300),
        f.fingerprint
    ));
}

/// The Amazon Q Developer in chat applications (AWS Chatbot) custom
/// notification. Payloads outside this schema are dropped silently by Chatbot,
/// so its shape is tested field by field. Repeats of a fingerprint share a
/// `threadId` so they thread together.
pub(crate) fn chatbot(alert: &Alert<'_>) -> Value {
    let f = alert.finding;
    let mut desc = format!(
        "*{}* {} finding in account {} ({})\n",
        f.severity.label(),
        f.source.as_str(),
        markdown_code(&f.account_label(), 120),
        markdown_code(&f.region, 40),
    );
    if let Some(r) = f.primary_resource() {
        desc.push_str(&format!(
            "*Resource:* {} {}\n",
            markdown_code(&r.resource_type, 60),
            markdown_code(&r.id, 300)
        ));
    }
    if let Some(w) = who(f) {
        desc.push_str(&format!("*Actor:* {}\n", markdown_code(&w, 300)));
    }
    if let Some(n) = network_line(f) {
        desc.push_str(&format!("*Source IP:* {}\n", markdown_code(&n, 300)));
    }
    if !f.tactics.is_empty() {
        let t: Vec<String> = f
            .tactics
            .iter()
            .map(|t| format!("{} ({})", t.name(), t.id()))
            .collect();
        desc.push_str(&format!("*ATT&CK:* {}\n", t.join(", ")));
    }
    if alert.suppressed_repeats > 0 {
        desc.push_str(&format!(
            "_{} repeats suppressed since the last alert_\n",
            alert.suppressed_repeats
        ));
    }
    if let Some(t) = &f.trace {
        match &f.links.trace {
            Some(url) => desc.push_str(&format!("*Trace:* <{}|{}>\n", url, t.trace_id)),
            None => desc.push_str(&format!("*Trace:* `{}`\n", t.trace_id)),
        }
    }
    let mut keywords = vec![
        f.severity.as_str().to_string(),
        f.source.as_str().to_string(),
    ];
    keywords.extend(f.tactics.iter().map(|t| t.name().to_string()));
    let related: Vec<String> = f
        .resources
        .iter()
        .filter(|r| r.id.starts_with("arn:"))
        .map(|r| one_line(&r.id, 500))
        .collect();
    json!({
        "version": "1.0",
        "source": "custom",
        "id": one_line(&f.id, 200),
        "content": {
            "textType": "client-markdown",
            "title": format!("{} {}", severity_emoji(f.severity), slack_title(f)),
            "description": desc,
            "nextSteps": next_steps(f),
            "keywords": keywords,
        },
        "metadata": {
            "threadId": f.fingerprint,
            "summary": one_line(&f.title, 200),
            "eventType": one_line(f.type_or_rule(), 200),
            "relatedResources": related,
            "additionalContext": {
                "account": f.account_id,
                "region": one_line(&f.region, 40),
                "severity": f.severity.as_str(),
                "findingId": one_line(&f.id, 200),
            },
        },
    })
}

fn slack_title(f: &Finding) -> String {
    crate::text::slack_escape(&one_line(
        &format!("[{}] {}", f.severity.as_str(), f.title),
        250,
    ))
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

/// The SNS `MessageStructure=json` body: email gets text, `default` (Chatbot,
/// and any protocol not named) gets the custom notification, machines get OCSF.
/// Stays under `SNS_MESSAGE_BUDGET` by trimming the email and dropping
/// evidence from the OCSF copy when needed.
pub fn sns_message(alert: &Alert<'_>) -> String {
    let f = alert.finding;
    let mut email = email_body(alert);
    let mut default = chatbot(alert);
    let mut ocsf = ocsf::to_ocsf(f);
    if let Some(route) = alert.route {
        ocsf["unmapped"]["vigil_route"] = serde_json::to_value(route).unwrap_or_default();
    }
    let build = |email: &str, default: &Value, ocsf: &Value| {
        let machine = ocsf.to_string();
        json!({
            "default": default.to_string(),
            "email": email,
            "sqs": machine,
            "lambda": machine,
            "https": machine,
        })
        .to_string()
    };
    let mut msg = build(&email, &default, &ocsf);
    // Three machine copies share the budget: shed the bulky, least useful parts
    // first, then cut every string and list harder until it fits. Any event
    // field can be huge (an attacker picks them), so no field is trusted to be small.
    for (max_str, max_items, max_email) in [(2000, 20, 20_000), (200, 5, 4000), (40, 2, 1000)] {
        if msg.len() <= SNS_MESSAGE_BUDGET {
            break;
        }
        shed_evidence_data(&mut ocsf);
        shrink(&mut ocsf, max_str, max_items);
        shrink(&mut default, max_str, max_items);
        ocsf["metadata"]["is_truncated"] = json!(true);
        email = truncate(&email, max_email);
        msg = build(&email, &default, &ocsf);
    }
    msg
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

/// SNS message attributes subscribers filter on.
pub fn attributes(f: &Finding) -> Vec<(&'static str, String)> {
    vec![
        ("severity", f.severity.as_str().to_string()),
        ("source", f.source.as_str().to_string()),
        ("finding_type", one_line(f.type_or_rule(), 256)),
        ("account", f.account_id.clone()),
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
        for key in ["default", "email", "sqs", "lambda", "https"] {
            assert!(msg[key].is_string(), "{key}");
        }
        let chat: Value = serde_json::from_str(msg["default"].as_str().unwrap()).unwrap();
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert_eq!(chat["metadata"]["threadId"], "fp");
        let ocsf: Value = serde_json::from_str(msg["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(ocsf["class_uid"], 2004);
        let email = msg["email"].as_str().unwrap();
        assert!(email.contains("Severity:    High"));
        assert!(email.contains("Next steps"));
        assert!(!email.contains('{'));
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
}

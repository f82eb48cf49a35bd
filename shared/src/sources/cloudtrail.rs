//! CloudTrail records into findings, once a rule has matched them.
//!
//! A finding says who (actor, type, MFA, source IP, user agent) did what (the
//! API call) to which resource, and which rule fired.

use serde_json::Value;

use crate::detect::{Hit, RuleMeta, Verdict};
use crate::json;
use crate::model::{Actor, ActorType, Finding, Network, Resource, RuleRef, Source};
use crate::sources::console::{percent_encode, ConsoleUrl, Partition};
use crate::sources::Envelope;
use crate::text;

/// The one finding for a record's rules: the winner's, marked as an attempt
/// when it is one, listing the other rules that matched.
pub fn judged(record: &Value, envelope: Option<&Envelope>, verdict: &Verdict<'_>) -> Finding {
    let mut f = finding(record, envelope, verdict.winner.rule);
    if verdict.winner.attempt {
        mark_attempt(&mut f, record);
    }
    f.also_matched = verdict.also.iter().map(rule_ref).collect();
    tracing::info!(
        vigil.rule = verdict.winner.rule.id.as_str(),
        vigil.attempt = verdict.winner.attempt,
        vigil.matched_rules = %matched_ids(verdict),
        vigil.finding_id = f.id.as_str(),
        "CloudTrail record matched rules"
    );
    f
}

/// The rule ids of a verdict, the winner first, comma-separated (an
/// attempt marked `~`), for the log line every matched rule appears in.
fn matched_ids(verdict: &Verdict<'_>) -> String {
    let ids: Vec<String> = verdict
        .all()
        .map(|h| {
            let id = text::one_line(&h.rule.id, 100);
            if h.attempt {
                format!("~{id}")
            } else {
                id
            }
        })
        .collect();
    ids.join(",")
}

fn rule_ref(hit: &Hit<'_>) -> RuleRef {
    RuleRef {
        attempt: hit.attempt,
        ..RuleRef::new(hit.rule.id.clone(), hit.rule.title.clone())
    }
}

/// A failed call matched a rule only with its error hidden: it did not take
/// effect, so the finding says so and stays at LOW at most (below the
/// default minimum severity: logged and counted, not alerted).
fn mark_attempt(f: &mut Finding, record: &Value) {
    let error = json::string(record, &["errorCode"])
        .map(|c| text::one_line(&c, 100))
        .unwrap_or_else(|| "an error".into());
    f.severity = f.severity.min(crate::detect::ATTEMPT_SEVERITY);
    f.title = format!("Attempted: {} (failed: {error})", f.title);
    f.description = format!(
        "The call failed ({error}) and did not take effect; had it worked, this rule would have fired.\n\n{}",
        f.description
    );
    if let Some(rule) = f.rule.as_mut() {
        rule.attempt = true;
    }
    f.evidence.insert("outcome".into(), "attempt".into());
}

/// Builds the finding for `rule` matching `record`.
pub fn finding(record: &Value, envelope: Option<&Envelope>, rule: &RuleMeta) -> Finding {
    let event_name = json::string(record, &["eventName"]).unwrap_or_default();
    let mut f = Finding::new(
        Source::CloudTrail,
        format!("{}:{}", rule.id, event_id(record, envelope, &event_name)),
        rule.id.clone(),
    );
    f.product = "Vigil".into();
    f.rule = Some(RuleRef::new(rule.id.clone(), rule.title.clone()));
    f.severity = rule.severity;
    f.tactics = rule.tactics.clone();
    f.techniques = rule.techniques.clone();
    read_where_and_when(&mut f, record, envelope);

    let actor = actor(record);
    f.network = Network {
        remote_ip: actor.source_ip.clone(),
        ..Network::default()
    };
    f.resources = resources(record, &f.account_id);
    f.title = title(rule, &actor, &event_name, &f.resources);
    f.description = description(rule);
    f.links.remediation = rule.references.first().cloned();
    f.actor = Some(actor);

    read_evidence(&mut f, record);
    f.links.console = json::string(record, &["eventID"]).and_then(|id| {
        let partition = Partition::of_arn(json::str_at(record, &["userIdentity", "arn"]));
        let url = ConsoleUrl::new(partition, &f.region, "cloudtrailv2")?;
        Some(url.view(format!("/events/{}", percent_encode(&id))).build())
    });
    f
}

/// CloudTrail's event id, else the envelope's, else the call and its time.
fn event_id(record: &Value, envelope: Option<&Envelope>, event_name: &str) -> String {
    json::string(record, &["eventID"])
        .or_else(|| envelope.map(|e| e.id.clone()).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| {
            let event_source = json::string(record, &["eventSource"]).unwrap_or_default();
            format!(
                "{event_source}/{event_name}/{}",
                json::string(record, &["eventTime"]).unwrap_or_default()
            )
        })
}

/// The account, region and time of the call; the envelope's where the record
/// has none.
fn read_where_and_when(f: &mut Finding, record: &Value, envelope: Option<&Envelope>) {
    f.account_id = account(f, record, envelope);
    f.region = json::string(record, &["awsRegion"])
        .or_else(|| envelope.map(|e| e.region.clone()).filter(|r| !r.is_empty()))
        .unwrap_or_default();
    f.time = json::time_at(record, &["eventTime"])
        .or_else(|| envelope.and_then(|e| e.time))
        .unwrap_or_else(chrono::Utc::now);
    f.first_seen = Some(f.time);
    f.last_seen = Some(f.time);
    f.event_id = envelope.map(|e| e.id.clone()).filter(|id| !id.is_empty());
}

/// The account the call happened in. EventBridge stamps the envelope's
/// `account` itself (the sender's, for a custom event), so it wins over the
/// record's `recipientAccountId`; a record that names another account keeps
/// that id in the evidence (`record_recipient_account_id`) and is logged.
/// Without an envelope (log files, replay), the record's.
fn account(f: &mut Finding, record: &Value, envelope: Option<&Envelope>) -> String {
    let recipient = json::string(record, &["recipientAccountId"]);
    let Some(envelope_account) = envelope
        .map(|e| e.account.as_str())
        .filter(|a| !a.is_empty())
    else {
        return recipient
            .or_else(|| json::string(record, &["userIdentity", "accountId"]))
            .unwrap_or_default();
    };
    if let Some(other) = recipient.filter(|r| r != envelope_account) {
        let other = text::one_line(&other, 64);
        tracing::warn!(
            envelope_account,
            record_account = %other,
            event_id = envelope.map_or("", |e| e.id.as_str()),
            "CloudTrail record names another account than its envelope: the envelope's is used"
        );
        f.evidence
            .insert("record_recipient_account_id".into(), other);
    }
    envelope_account.to_string()
}

/// `<rule>: <who> called <API> on <resource>`.
fn title(rule: &RuleMeta, actor: &Actor, event_name: &str, resources: &[Resource]) -> String {
    let who = actor
        .display_name()
        .map(|n| text::one_line(n, 200))
        .unwrap_or_else(|| "unknown principal".into());
    let target = resources
        .first()
        .map(|r| format!(" on {}", text::one_line(&r.id, 200)))
        .unwrap_or_default();
    format!("{}: {} called {}{}", rule.title, who, event_name, target)
}

/// The rule's description (its title when it has none) and its known false
/// positives.
fn description(rule: &RuleMeta) -> String {
    let mut description = if rule.description.is_empty() {
        rule.title.clone()
    } else {
        rule.description.clone()
    };
    if !rule.false_positives.is_empty() {
        description.push_str(&format!(
            "\n\nKnown false positives: {}",
            rule.false_positives.join("; ")
        ));
    }
    description
}

/// What the call was and how it went, and its request parameters.
fn read_evidence(f: &mut Finding, record: &Value) {
    for (key, p) in [
        ("event_name", &["eventName"][..]),
        ("event_source", &["eventSource"][..]),
        ("event_type", &["eventType"][..]),
        ("error_code", &["errorCode"][..]),
        ("error_message", &["errorMessage"][..]),
        ("cloudtrail_event_id", &["eventID"][..]),
        ("read_only", &["readOnly"][..]),
        ("console_login", &["responseElements", "ConsoleLogin"][..]),
    ] {
        if let Some(v) = json::string(record, p) {
            f.evidence.insert(key.into(), v);
        }
    }
    if let Some(params) = json::field(record, "requestParameters").filter(|p| p.is_object()) {
        f.evidence.insert(
            "request_parameters".into(),
            text::truncate(&params.to_string(), 1000),
        );
    }
}

/// The principal from `userIdentity`, with MFA, source IP and user agent.
pub fn actor(record: &Value) -> Actor {
    let ui = json::field(record, "userIdentity").unwrap_or(&Value::Null);
    let actor_type = ActorType::parse(json::str_at(ui, &["type"]).unwrap_or_default());
    let issuer_arn = json::string(ui, &["sessionContext", "sessionIssuer", "arn"]);
    let mfa = json::boolean(ui, &["sessionContext", "attributes", "mfaAuthenticated"])
        .or_else(|| json::str_at(record, &["additionalEventData", "MFAUsed"]).map(|m| m == "Yes"));
    let user_name = json::string(ui, &["userName"])
        .or_else(|| json::string(ui, &["sessionContext", "sessionIssuer", "userName"]))
        .or_else(|| json::string(record, &["additionalEventData", "UserName"]))
        .or_else(|| (actor_type == ActorType::Root).then(|| "root".to_string()));
    Actor {
        actor_type,
        arn: json::string(ui, &["arn"]),
        user_name,
        principal_id: json::string(ui, &["principalId"]),
        account_id: json::string(ui, &["accountId"]),
        session_issuer: issuer_arn,
        access_key_id: json::string(ui, &["accessKeyId"]),
        mfa_used: mfa,
        source_ip: json::string(record, &["sourceIPAddress"]),
        user_agent: json::string(record, &["userAgent"]),
        invoked_by: json::string(ui, &["invokedBy"]),
    }
}

/// Resources named by the record: `resources[]` when CloudTrail lists them,
/// else the common request parameters that name a target.
fn resources(record: &Value, account: &str) -> Vec<Resource> {
    let mut out: Vec<Resource> = json::field(record, "resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let id = json::string(r, &["ARN"]).or_else(|| json::string(r, &["arn"]))?;
            let kind = json::string(r, &["type"]).unwrap_or_else(|| "Other".into());
            Some(Resource::new(kind.replace("::", ""), id))
        })
        .collect();
    if !out.is_empty() {
        return out;
    }
    let params = json::field(record, "requestParameters").unwrap_or(&Value::Null);
    const NAMED: [(&str, &str); 16] = [
        ("bucketName", "AwsS3Bucket"),
        ("userName", "AwsIamUser"),
        ("roleName", "AwsIamRole"),
        ("groupName", "AwsIamGroup"),
        ("policyArn", "AwsIamPolicy"),
        ("name", "Other"),
        ("trailName", "AwsCloudTrailTrail"),
        ("detectorId", "AwsGuardDutyDetector"),
        ("keyId", "AwsKmsKey"),
        ("instanceId", "AwsEc2Instance"),
        ("groupId", "AwsEc2SecurityGroup"),
        ("snapshotId", "AwsEc2Snapshot"),
        ("imageId", "AwsEc2Image"),
        ("dBSnapshotIdentifier", "AwsRdsDbSnapshot"),
        ("secretId", "AwsSecretsManagerSecret"),
        ("functionName", "AwsLambdaFunction"),
    ];
    for (key, kind) in NAMED {
        if let Some(id) = json::string(params, &[key]) {
            let kind = if key == "name"
                && json::str_at(record, &["eventSource"]) == Some("cloudtrail.amazonaws.com")
            {
                "AwsCloudTrailTrail"
            } else {
                kind
            };
            out.push(Resource::new(kind, id));
            break;
        }
    }
    if out.is_empty() && !account.is_empty() {
        out.push(Resource::new("AwsAccount", account));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;
    use serde_json::json;

    #[test]
    fn a_console_login_without_mfa() {
        let record = json!({
            "eventVersion": "1.08", "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "eventID": "e-1", "eventTime": "2026-01-01T10:00:00Z", "awsRegion": "us-east-1",
            "recipientAccountId": "111122223333", "sourceIPAddress": "203.0.113.9",
            "userAgent": "Mozilla/5.0",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "userName": "alice", "accountId": "111122223333"},
            "additionalEventData": {"MFAUsed": "No"},
            "responseElements": {"ConsoleLogin": "Success"}
        });
        let rule = RuleMeta {
            id: "r1".into(),
            title: "Console login without MFA".into(),
            description: String::new(),
            severity: Severity::Medium,
            tactics: vec![],
            techniques: vec![],
            false_positives: vec![],
            references: vec![],
            kind: crate::detect::RuleKind::Attack,
        };
        let f = finding(&record, None, &rule);
        let a = f.actor.as_ref().unwrap();
        assert_eq!(a.actor_type, ActorType::IamUser);
        assert_eq!(a.mfa_used, Some(false));
        assert_eq!(a.source_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(f.id, "r1:e-1");
        assert_eq!(f.rule.as_ref().unwrap().id, "r1");
        assert!(f.title.contains("alice called ConsoleLogin"), "{}", f.title);
        assert_eq!(f.evidence["console_login"], "Success");
        assert_eq!(f.account_id, "111122223333");

        // The envelope's account wins; the record's other one is noted.
        let envelope = Envelope {
            id: "evt-1".into(),
            source: "aws.signin".into(),
            detail_type: "AWS Console Sign In via CloudTrail".into(),
            account: "444455556666".into(),
            ..Envelope::default()
        };
        let f = finding(&record, Some(&envelope), &rule);
        assert_eq!(f.account_id, "444455556666");
        assert_eq!(f.evidence["record_recipient_account_id"], "111122223333");
    }
}

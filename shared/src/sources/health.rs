//! AWS Health security notifications (`aws.health`, `AWS Health Event` and
//! `AWS Health Abuse Event`) into [`Finding`]s.
//!
//! AWS Health is how AWS tells an account that one of its access keys was
//! found on a public site (`AWS_RISK_CREDENTIALS_EXPOSED`), is in use by
//! someone else (`..._COMPROMISED`), that its console was taken over, that
//! AWS quarantined an IAM user, or that its resources are reported for abuse.
//! These are the most urgent alerts Vigil sends: CRITICAL, the key and its
//! user named, and the rotation steps. Everything else Health sends
//! (maintenance, scheduled retirements, service issues) is not a security
//! signal and gives no finding.

use serde_json::Value;

use crate::json;
use crate::model::{Actor, ActorType, Finding, Resource, Severity, Source, Tactic, Technique};
use crate::sources::console::{percent_encode, ConsoleUrl, Partition};
use crate::sources::{Envelope, SourceError};
use crate::text;

/// The detail-types AWS Health sends to EventBridge.
pub const DETAIL_TYPES: [&str; 2] = ["AWS Health Event", "AWS Health Abuse Event"];

/// Longest description kept.
const MAX_DESCRIPTION_CHARS: usize = 2048;
/// Affected entities listed as evidence; the rest is counted.
const MAX_ENTITIES: usize = 10;

/// The rotation AWS asks for, as the alert's next steps.
const ROTATE_STEPS: &str = "1. Create a new access key for the user and move every \
application to it. 2. Deactivate, then delete, the exposed key (IAM console, or \
`aws iam update-access-key --status Inactive` then `aws iam delete-access-key`). \
3. Review CloudTrail for the key's calls since the exposure (unknown IPs, new users, \
keys, roles, instances) and undo them. 4. Remove the key from where it was published \
and from its history. 5. Answer the AWS Support case and check whether AWS attached \
the AWSCompromisedKeyQuarantine policy to the user.";

const ROTATE_DOC: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html";

/// What a Health event says, for the security ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    CredentialsExposed,
    CredentialsExposureSuspected,
    CredentialsCompromised,
    CredentialsCompromiseSuspected,
    ConsoleCompromise,
    IamQuarantine,
    /// An abuse report about the account's resources (`AWS_ABUSE_*`).
    Abuse,
    /// Another `AWS_RISK_*` code: AWS's risk team wrote, so it is read.
    OtherRisk,
}

impl Signal {
    /// The signal of an event type code; `None` for events that are no
    /// security signal.
    pub fn of(event_type_code: &str, service: &str, detail_type: &str) -> Option<Signal> {
        let code = event_type_code.trim().to_ascii_uppercase();
        Some(match code.as_str() {
            "AWS_RISK_CREDENTIALS_EXPOSED" => Signal::CredentialsExposed,
            "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED" => Signal::CredentialsExposureSuspected,
            "AWS_RISK_CREDENTIALS_COMPROMISED" => Signal::CredentialsCompromised,
            "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED" => Signal::CredentialsCompromiseSuspected,
            "AWS_RISK_ACCOUNT_CONSOLE_COMPROMISE" | "AWS_RISK_CONSOLE_COMPROMISE" => {
                Signal::ConsoleCompromise
            }
            "AWS_RISK_IAM_QUARANTINE" => Signal::IamQuarantine,
            c if c.starts_with("AWS_ABUSE_") => Signal::Abuse,
            c if c.starts_with("AWS_RISK_") => Signal::OtherRisk,
            _ if detail_type == "AWS Health Abuse Event"
                || service.eq_ignore_ascii_case("ABUSE") =>
            {
                Signal::Abuse
            }
            _ => return None,
        })
    }

    /// Confirmed exposure or compromise is CRITICAL; suspicions, abuse
    /// reports and other risk notices HIGH.
    pub fn severity(self) -> Severity {
        match self {
            Signal::CredentialsExposed
            | Signal::CredentialsCompromised
            | Signal::ConsoleCompromise
            | Signal::IamQuarantine => Severity::Critical,
            Signal::CredentialsExposureSuspected
            | Signal::CredentialsCompromiseSuspected
            | Signal::Abuse
            | Signal::OtherRisk => Severity::High,
        }
    }

    fn about_keys(self) -> bool {
        matches!(
            self,
            Signal::CredentialsExposed
                | Signal::CredentialsExposureSuspected
                | Signal::CredentialsCompromised
                | Signal::CredentialsCompromiseSuspected
                | Signal::IamQuarantine
        )
    }

    fn headline(self) -> &'static str {
        match self {
            Signal::CredentialsExposed => "AWS found an access key published online",
            Signal::CredentialsExposureSuspected => "AWS suspects an access key was published",
            Signal::CredentialsCompromised => "AWS says an access key is compromised",
            Signal::CredentialsCompromiseSuspected => {
                "AWS suspects an access key is used by someone else"
            }
            Signal::ConsoleCompromise => "AWS says the account's console access is compromised",
            Signal::IamQuarantine => "AWS quarantined an IAM user",
            Signal::Abuse => "AWS received an abuse report about this account",
            Signal::OtherRisk => "AWS sent a security risk notification",
        }
    }
}

fn missing(field: &'static str) -> SourceError {
    SourceError::MissingField {
        source_kind: Source::Health,
        field,
    }
}

/// Parses one Health event's `detail`: one finding for a security
/// notification, none for anything else.
pub fn parse(v: &Value, envelope: &Envelope) -> Result<Vec<Finding>, SourceError> {
    if !v.is_object() {
        return Err(missing("detail"));
    }
    let code = json::string(v, &["eventTypeCode"]).ok_or(missing("eventTypeCode"))?;
    let service = json::string(v, &["service"]).unwrap_or_default();
    let Some(signal) = Signal::of(&code, &service, &envelope.detail_type) else {
        return Ok(Vec::new());
    };
    let id = json::string(v, &["eventArn"])
        .or_else(|| Some(envelope.id.clone()).filter(|i| !i.is_empty()))
        .ok_or(missing("eventArn"))?;
    let mut f = Finding::new(Source::Health, id, code);
    f.product = "AWS Health".to_string();
    f.severity = signal.severity();
    f.source_severity = json::string(v, &["eventTypeCategory"]);
    f.description = description(v);
    f.account_id =
        json::string(v, &["affectedAccount"]).unwrap_or_else(|| envelope.account.clone());
    f.region = json::string(v, &["eventRegion"]).unwrap_or_else(|| envelope.region.clone());
    f.time = json::time_at(v, &["lastUpdatedTime"])
        .or_else(|| json::time_at(v, &["startTime"]))
        .or(envelope.time)
        .unwrap_or_else(chrono::Utc::now);
    f.first_seen = json::time_at(v, &["startTime"]);
    f.event_id = Some(envelope.id.clone()).filter(|i| !i.is_empty());
    for (key, path) in [
        ("health_service", "service"),
        ("health_category", "eventTypeCategory"),
        ("health_status", "statusCode"),
        ("health_scope", "eventScopeCode"),
    ] {
        if let Some(s) = json::string(v, &[path]) {
            f.evidence.insert(key.into(), text::truncate(&s, 128));
        }
    }
    let affected = Affected::read(v, &f.description);
    affected.apply(&mut f, signal);
    f.title = title(signal, &affected);
    if signal.about_keys() {
        f.remediation = Some(ROTATE_STEPS.to_string());
        f.links.remediation = Some(ROTATE_DOC.to_string());
        f.tactics.push(Tactic::CredentialAccess);
        f.techniques.push(Technique {
            id: "T1552.001".into(),
            name: Some("Unsecured Credentials: Credentials In Files".into()),
        });
    } else if signal == Signal::ConsoleCompromise {
        f.tactics.push(Tactic::InitialAccess);
        f.techniques.push(Technique {
            id: "T1078.004".into(),
            name: Some("Valid Accounts: Cloud Accounts".into()),
        });
    }
    let partition = Partition::of_arn(Some(&f.id));
    let region = if f.region.is_empty() {
        "us-east-1"
    } else {
        &f.region
    };
    f.links.console = ConsoleUrl::new(partition, region, "health").map(|url| {
        url.view(format!(
            "/dashboard/account-health?eventArn={}",
            percent_encode(&f.id)
        ))
        .build()
    });
    Ok(vec![f])
}

/// The English description, else the first one.
fn description(v: &Value) -> String {
    let list = json::field(v, "eventDescription").and_then(Value::as_array);
    let pick = list.and_then(|l| {
        l.iter()
            .find(|d| json::str_at(d, &["language"]).is_some_and(|l| l.starts_with("en")))
            .or_else(|| l.first())
    });
    pick.and_then(|d| json::string(d, &["latestDescription"]))
        .map(|d| text::truncate(d.trim(), MAX_DESCRIPTION_CHARS))
        .unwrap_or_default()
}

/// The keys, users and other entities an event names.
#[derive(Debug, Default)]
struct Affected {
    keys: Vec<String>,
    user: Option<String>,
    others: Vec<String>,
}

impl Affected {
    fn read(v: &Value, description: &str) -> Affected {
        let mut a = Affected::default();
        for e in json::field(v, "affectedEntities")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(value) = json::string(e, &["entityValue"]) else {
                continue;
            };
            let value = value.trim().to_string();
            if is_access_key_id(&value) {
                a.keys.push(value);
            } else if let Some(user) = value.split_once(":user/").map(|(_, u)| u) {
                a.user
                    .get_or_insert_with(|| user.rsplit('/').next().unwrap_or(user).into());
            } else {
                a.others.push(value);
            }
        }
        if a.keys.is_empty() {
            a.keys = description
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| is_access_key_id(w))
                .map(str::to_string)
                .collect();
        }
        if a.user.is_none() {
            a.user = user_in(description);
        }
        a
    }

    fn apply(&self, f: &mut Finding, signal: Signal) {
        for key in self.keys.iter().take(MAX_ENTITIES) {
            f.resources
                .push(Resource::new("AwsIamAccessKey", key.clone()));
        }
        if let Some(user) = &self.user {
            f.resources.push(Resource::new("AwsIamUser", user.clone()));
            f.evidence.insert("iam_user".into(), user.clone());
        }
        for other in self.others.iter().take(MAX_ENTITIES) {
            f.resources
                .push(Resource::new("Other", text::truncate(other, 256)));
        }
        if !self.keys.is_empty() {
            f.evidence
                .insert("access_keys".into(), self.keys.join(", "));
        }
        if signal.about_keys() || self.user.is_some() {
            f.actor = Some(Actor {
                actor_type: ActorType::IamUser,
                user_name: self.user.clone(),
                access_key_id: self.keys.first().cloned(),
                account_id: Some(f.account_id.clone()).filter(|a| !a.is_empty()),
                ..Actor::default()
            });
        }
        if f.resources.is_empty() && !f.account_id.is_empty() {
            f.resources
                .push(Resource::new("AwsAccount", f.account_id.clone()));
        }
    }
}

/// `AKIA...`/`ASIA...` and 16 to 128 upper-case letters and digits.
fn is_access_key_id(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && (s.starts_with("AKIA") || s.starts_with("ASIA"))
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The user a description names: `IAM User "name"` or `IAM user name`.
fn user_in(description: &str) -> Option<String> {
    let lower = description.to_ascii_lowercase();
    let at = lower.find("iam user")? + "iam user".len();
    let rest = description.get(at..)?.trim_start();
    let name: String = rest
        .trim_start_matches(['"', '\'', '“'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))
        .take(64)
        .collect();
    (!name.is_empty()).then_some(name)
}

fn title(signal: Signal, a: &Affected) -> String {
    let mut t = signal.headline().to_string();
    if let Some(key) = a.keys.first() {
        t.push_str(&format!(": {key}"));
    }
    if let Some(user) = &a.user {
        t.push_str(&format!(" (IAM user {user})"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Envelope {
        Envelope {
            id: "e1".into(),
            source: "aws.health".into(),
            detail_type: "AWS Health Event".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            time: None,
        }
    }

    #[test]
    fn severity_by_code() {
        let s = |c: &str| Signal::of(c, "RISK", "AWS Health Event").map(Signal::severity);
        assert_eq!(s("AWS_RISK_CREDENTIALS_EXPOSED"), Some(Severity::Critical));
        assert_eq!(
            s("AWS_RISK_CREDENTIALS_COMPROMISED"),
            Some(Severity::Critical)
        );
        assert_eq!(
            s("AWS_RISK_ACCOUNT_CONSOLE_COMPROMISE"),
            Some(Severity::Critical)
        );
        assert_eq!(s("AWS_RISK_IAM_QUARANTINE"), Some(Severity::Critical));
        assert_eq!(
            s("AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED"),
            Some(Severity::High)
        );
        assert_eq!(
            s("AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED"),
            Some(Severity::High)
        );
        assert_eq!(s("AWS_ABUSE_DOS_REPORT"), Some(Severity::High));
        assert_eq!(s("AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED"), None);
        assert_eq!(
            Signal::of("ANYTHING", "EC2", "AWS Health Abuse Event"),
            Some(Signal::Abuse)
        );
    }

    #[test]
    fn names_the_key_and_user() {
        let v = json!({"eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED", "eventArn": "arn:aws:health:us-east-1::event/RISK/X/1",
            "eventDescription": [{"language": "en_US", "latestDescription": "Key AKIAIOSFODNN7EXAMPLE of IAM User \"bob\" is public"}],
            "affectedEntities": [{"entityValue": "AKIAIOSFODNN7EXAMPLE"}]});
        let f = parse(&v, &envelope()).unwrap().remove(0);
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.resources[0].id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(f.evidence["iam_user"], "bob");
        assert!(f.title.contains("AKIAIOSFODNN7EXAMPLE") && f.title.contains("bob"));
        assert!(f.remediation.as_deref().unwrap().contains("Deactivate"));
        assert_eq!(f.actor.as_ref().unwrap().user_name.as_deref(), Some("bob"));
    }

    #[test]
    fn non_security_events_give_nothing_and_junk_is_an_error() {
        let v = json!({"eventTypeCode": "AWS_EC2_MAINTENANCE_SCHEDULED", "service": "EC2"});
        assert!(parse(&v, &envelope()).unwrap().is_empty());
        assert!(parse(&json!({}), &envelope()).is_err());
        assert!(parse(&json!("x"), &envelope()).is_err());
    }

    #[test]
    fn hostile_entities_do_not_become_keys_or_users() {
        let v = json!({"eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
            "eventDescription": [{"latestDescription": "IAM user <@U123|x> AKIA<b>"}],
            "affectedEntities": [{"entityValue": "AKIA\u{202e}EVIL0000000000"}, {"entityValue": 7}, "x"]});
        let f = parse(&v, &envelope()).unwrap().remove(0);
        assert!(f
            .resources
            .iter()
            .all(|r| r.resource_type != "AwsIamAccessKey"));
        assert!(!f.evidence.contains_key("iam_user"));
        assert_eq!(f.id, "e1");
    }
}

//! What the notifier reads from an alert: the OCSF Detection Finding that
//! [`crate::render::sns_message`] puts under the `lambda` key.
//!
//! It reads where [`crate::ocsf::to_ocsf`] writes (OCSF 1.7.0: the caller in
//! `evidences[]`, ATT&CK in `finding_info.attacks`), and where Vigil wrote
//! before (top-level `actor`, `src_endpoint`, `http_request`, `attacks`), so
//! alerts queued before an upgrade still read.
//!
//! The notifier never rebuilds a full [`crate::Finding`]: it reads the few
//! fields a chat card or a page needs, forgivingly (a missing or oddly typed
//! field is `None`, never an error), because the alert may come from a newer or
//! older Vigil than the notifier. Only an alert without a finding id is
//! rejected: without it there is nothing to name and nothing to dedup on.
//!
//! Every string here is still untrusted event text: escaping happens where it
//! is rendered ([`super::slack`], [`super::pagerduty`]).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::json;
use crate::model::Severity;
use crate::ocsf;
use crate::route::Route;
use crate::text::link::is_console_url;

/// Why an SNS message is not an alert the notifier can read.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("the message is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the message is not an OCSF finding: {0}")]
    NotAFinding(&'static str),
}

/// Where the finding stands, from OCSF `status_id` and `activity_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    /// First alert for this fingerprint.
    New,
    /// The source or Vigil has seen it before (OCSF activity 2 Update, a
    /// `count` above 1, or repeats suppressed since the last alert).
    Repeat,
    /// Resolved at the source (OCSF `status_id` 4 or activity 3 Close):
    /// PagerDuty resolves the incident.
    Resolved,
}

/// A resource the finding is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceView {
    pub uid: String,
    pub kind: Option<String>,
}

/// The principal that acted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActorView {
    pub name: Option<String>,
    /// ARN or principal id.
    pub uid: Option<String>,
    /// `Root`, `IAMUser`, `AssumedRole`, ...
    pub kind: Option<String>,
    pub mfa: Option<bool>,
    pub access_key_id: Option<String>,
}

impl ActorView {
    /// Reads an OCSF `actor` object. The access key is the session's
    /// `credential_uid` (the user's before OCSF 1.6.0).
    fn read(a: &Value) -> ActorView {
        let u = |p: &[&str]| json::string(a, p);
        ActorView {
            name: u(&["user", "name"]),
            uid: u(&["user", "uid"]),
            kind: u(&["user", "type"]),
            mfa: json::boolean(a, &["session", "is_mfa"]),
            access_key_id: u(&["session", "credential_uid"])
                .or_else(|| u(&["user", "credential_uid"])),
        }
    }

    /// The shortest name a person recognises.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.uid.as_deref())
    }
}

/// The remote side of the activity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointView {
    pub ip: Option<String>,
    pub port: Option<u64>,
    pub domain: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub asn: Option<String>,
    pub org: Option<String>,
}

impl EndpointView {
    /// Reads an OCSF network endpoint (`src_endpoint`), and fills what it
    /// lacks from `unmapped.vigil_network`: Vigil's own network fields, which
    /// the alert carries when a value did not fit OCSF's types (an address
    /// that is no IP, a country name). `ip` is the address, else the AWS
    /// service (`svc_name`) that called.
    fn read(e: Option<&Value>, network: Option<&Value>) -> Option<EndpointView> {
        if e.is_none() && network.is_none() {
            return None;
        }
        let g = |p: &[&str]| e.and_then(|e| json::string(e, p));
        let n = |key: &str| network.and_then(|n| json::string(n, &[key]));
        let port = |v: Option<&Value>, key: &str| {
            json::number(v?, &[key])
                .filter(|p| (0.0..=65535.0).contains(p))
                .map(|p| p as u64)
        };
        Some(EndpointView {
            ip: g(&["ip"])
                .or_else(|| g(&["svc_name"]))
                .or_else(|| n("remote_ip")),
            port: port(e, "port").or_else(|| port(network, "remote_port")),
            domain: g(&["domain"]).or_else(|| n("domain")),
            country: g(&["location", "country"]).or_else(|| n("country")),
            city: g(&["location", "city"]).or_else(|| n("city")),
            asn: g(&["autonomous_system", "number"]).or_else(|| n("asn")),
            org: g(&["autonomous_system", "name"]).or_else(|| n("organization")),
        })
    }
}

/// An ATT&CK tactic as the alert names it (`TA0006`, "Credential Access").
#[derive(Debug, Clone, PartialEq)]
pub struct TacticView {
    pub uid: String,
    pub name: Option<String>,
}

/// The fields of one alert that the notifier renders.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    /// `finding_info.uid`: the source's finding id.
    pub finding_id: String,
    /// `metadata.correlation_uid`: the dedup fingerprint; the finding id when
    /// the alert carries none. PagerDuty's `dedup_key`.
    pub fingerprint: String,
    pub title: String,
    pub description: String,
    /// Source finding type or rule id (`finding_info.types[0]`, else the analytic uid).
    pub finding_type: Option<String>,
    /// GuardDuty, CloudTrail, SecurityHub, ... (`metadata.product.feature.name`).
    pub source: Option<String>,
    pub product: Option<String>,
    pub severity: Severity,
    /// The source's own score or label ("8.0").
    pub source_severity: Option<String>,
    pub status: AlertStatus,
    /// How many times the source has seen it.
    pub count: u64,
    /// Repeats Vigil suppressed since the last alert
    /// (`unmapped.vigil_suppressed_repeats`), when the alert says.
    pub suppressed_repeats: Option<u64>,
    pub time: Option<DateTime<Utc>>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub region: Option<String>,
    pub resources: Vec<ResourceView>,
    pub actor: Option<ActorView>,
    pub src_endpoint: Option<EndpointView>,
    pub user_agent: Option<String>,
    pub tactics: Vec<TacticView>,
    pub techniques: Vec<String>,
    /// The other rules the event matched (`finding_info.related_analytics`
    /// names, else uids): it alerts once, and lists these.
    pub also_matched: Vec<String>,
    /// `finding_info.src_url`: the finding in the AWS console, when it is a
    /// console URL ([`crate::text::link::is_console_url`]); else `None`.
    pub console_url: Option<String>,
    /// `unmapped.trace_id`: Vigil's W3C trace id for this event.
    pub trace_id: Option<String>,
    pub xray_trace_id: Option<String>,
    /// `unmapped.trace_url`: the trace in the configured backend.
    pub trace_url: Option<String>,
    /// A sample the source generated for testing.
    pub sample: bool,
    /// `unmapped.vigil_route`: the routing table's choice of Slack channel
    /// and PagerDuty service. None: defaults everywhere.
    pub route: Option<Route>,
}

impl AlertView {
    /// Reads the SNS message body (the `lambda` key of Vigil's message).
    pub fn parse(message: &str) -> Result<AlertView, ViewError> {
        let v: Value = serde_json::from_str(message)?;
        AlertView::from_ocsf(&v)
    }

    /// Reads an OCSF Detection Finding as [`crate::ocsf::to_ocsf`] writes it.
    pub(crate) fn from_ocsf(v: &Value) -> Result<AlertView, ViewError> {
        check_class(v)?;
        let s = |p: &[&str]| json::string(v, p);
        let finding_id =
            s(&["finding_info", "uid"]).ok_or(ViewError::NotAFinding("no finding_info.uid"))?;
        let fingerprint = s(&["metadata", "correlation_uid"]).unwrap_or_else(|| finding_id.clone());
        let Seen {
            count,
            suppressed_repeats,
            status,
        } = Seen::read(v);
        let (tactics, techniques) = read_attacks(v);
        Ok(AlertView {
            title: s(&["finding_info", "title"])
                .or_else(|| s(&["message"]))
                .unwrap_or_else(|| finding_id.clone()),
            description: s(&["finding_info", "desc"]).unwrap_or_default(),
            finding_type: read_finding_type(v),
            source: s(&["metadata", "product", "feature", "name"])
                .or_else(|| s(&["unmapped", "vigil_source"])),
            product: s(&["finding_info", "product", "name"])
                .or_else(|| s(&["finding_info", "product_uid"])),
            severity: read_severity(v),
            source_severity: s(&["unmapped", "vigil_source_severity"]),
            status,
            count,
            suppressed_repeats,
            time: json::time_at(v, &["time"]),
            first_seen: json::time_at(v, &["finding_info", "first_seen_time"]),
            last_seen: json::time_at(v, &["finding_info", "last_seen_time"]),
            account_id: s(&["cloud", "account", "uid"]),
            account_name: s(&["cloud", "account", "name"]),
            region: s(&["cloud", "region"]),
            resources: read_resources(v),
            actor: evidence_or_top(v, "actor").map(ActorView::read),
            src_endpoint: EndpointView::read(
                evidence_or_top(v, "src_endpoint"),
                json::path(v, &["unmapped", "vigil_network"]).filter(|n| n.is_object()),
            ),
            user_agent: evidence_or_top(v, "http_request")
                .and_then(|h| json::string(h, &["user_agent"]))
                .or_else(|| s(&["unmapped", "vigil_user_agent"])),
            tactics,
            techniques,
            also_matched: read_related_analytics(v),
            // The SNS body is input too: only a console page is a link.
            console_url: s(&["finding_info", "src_url"]).filter(|u| is_console_url(u)),
            trace_id: s(&["unmapped", "trace_id"]),
            xray_trace_id: s(&["unmapped", "xray_trace_id"]),
            trace_url: s(&["unmapped", "trace_url"]),
            sample: json::boolean(v, &["unmapped", "vigil_sample"]).unwrap_or(false),
            route: json::path(v, &["unmapped", "vigil_route"])
                .and_then(|r| serde_json::from_value(r.clone()).ok()),
            finding_id,
            fingerprint,
        })
    }

    /// "prod (111122223333)", the id alone, or the name alone.
    pub fn account_label(&self) -> Option<String> {
        match (&self.account_name, &self.account_id) {
            (Some(name), Some(id)) if name != id => Some(format!("{name} ({id})")),
            (_, Some(id)) => Some(id.clone()),
            (Some(name), None) => Some(name.clone()),
            (None, None) => None,
        }
    }

    /// The resource most alerts are about: the first one.
    pub fn primary_resource(&self) -> Option<&ResourceView> {
        self.resources.first()
    }

    /// The remote IP: the network endpoint's.
    pub fn source_ip(&self) -> Option<&str> {
        self.src_endpoint.as_ref()?.ip.as_deref()
    }

    /// How many times it has been seen, for "seen again (N times)": the
    /// repeats Vigil suppressed since the last alert plus this one when the
    /// alert says, else the source's count.
    pub(crate) fn times_seen(&self) -> u64 {
        match self.suppressed_repeats {
            Some(n) if n > 0 => n.saturating_add(1),
            _ => self.count,
        }
    }

    /// Takes the suppressed-repeat count from the SNS message attribute
    /// `suppressed_repeats` when the body does not carry one: the SNS sink
    /// sends it as an attribute. A positive count makes a new alert a repeat.
    pub(crate) fn note_suppressed_repeats(&mut self, repeats: u64) {
        if self.suppressed_repeats.is_some() {
            return;
        }
        self.suppressed_repeats = Some(repeats);
        if repeats > 0 && self.status == AlertStatus::New {
            self.status = AlertStatus::Repeat;
        }
    }
}

/// The first evidence's `key` object, else a top-level one (older alerts).
fn evidence_or_top<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    json::path(v, &["evidences"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|e| json::field(e, key).filter(|x| x.is_object()))
        .or_else(|| json::field(v, key).filter(|x| x.is_object()))
}

/// An OCSF Detection Finding says so in `class_uid`.
fn check_class(v: &Value) -> Result<(), ViewError> {
    if !v.is_object() {
        return Err(ViewError::NotAFinding("not a JSON object"));
    }
    match json::number(v, &["class_uid"]) {
        Some(c) if c as u32 == ocsf::CLASS_UID => Ok(()),
        Some(_) => Err(ViewError::NotAFinding("class_uid is not 2004")),
        None => Err(ViewError::NotAFinding("no class_uid")),
    }
}

/// `severity_id`, else the `severity` label, else informational.
fn read_severity(v: &Value) -> Severity {
    json::number(v, &["severity_id"])
        .filter(|n| *n >= 0.0)
        .map(|n| ocsf::severity_from_id(n as u64))
        .or_else(|| json::string(v, &["severity"]).and_then(|l| l.parse().ok()))
        .unwrap_or(Severity::Informational)
}

/// How often the finding has been seen, and so where it stands.
struct Seen {
    count: u64,
    suppressed_repeats: Option<u64>,
    status: AlertStatus,
}

impl Seen {
    fn read(v: &Value) -> Seen {
        let count = json::number(v, &["count"])
            .filter(|n| *n >= 1.0)
            .map_or(1, |n| n as u64);
        let suppressed_repeats = json::number(v, &["unmapped", "vigil_suppressed_repeats"])
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64);
        let status_id = json::number(v, &["status_id"]).map(|n| n as i64);
        let activity_id = json::number(v, &["activity_id"]).map(|n| n as i64);
        let status = if status_id == Some(4) || activity_id == Some(3) {
            AlertStatus::Resolved
        } else if activity_id == Some(2) || count > 1 || suppressed_repeats.unwrap_or(0) > 0 {
            AlertStatus::Repeat
        } else {
            AlertStatus::New
        };
        Seen {
            count,
            suppressed_repeats,
            status,
        }
    }
}

/// The names (else uids) of `finding_info.related_analytics`, at most 20.
fn read_related_analytics(v: &Value) -> Vec<String> {
    json::path(v, &["finding_info", "related_analytics"])
        .and_then(Value::as_array)
        .map(|items| {
            let name = |a: &Value| json::string(a, &["name"]).or_else(|| json::string(a, &["uid"]));
            items.iter().filter_map(name).take(20).collect()
        })
        .unwrap_or_default()
}

/// `finding_info.types[0]`, else the analytic (rule) uid.
fn read_finding_type(v: &Value) -> Option<String> {
    json::path(v, &["finding_info", "types"])
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .or_else(|| json::string(v, &["finding_info", "analytic", "uid"]))
}

/// The resources with a uid (or at least a name).
fn read_resources(v: &Value) -> Vec<ResourceView> {
    json::path(v, &["resources"])
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|r| {
                    Some(ResourceView {
                        uid: json::string(r, &["uid"]).or_else(|| json::string(r, &["name"]))?,
                        kind: json::string(r, &["type"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The ATT&CK tactics and technique ids of `finding_info.attacks[]` (of
/// `attacks[]` in older alerts); a sub-technique's id is the technique's.
fn read_attacks(v: &Value) -> (Vec<TacticView>, Vec<String>) {
    let mut tactics = Vec::new();
    let mut techniques = Vec::new();
    let attacks = json::path(v, &["finding_info", "attacks"])
        .or_else(|| json::path(v, &["attacks"]))
        .and_then(Value::as_array);
    for attack in attacks.into_iter().flatten() {
        if let Some(uid) = json::string(attack, &["tactic", "uid"]) {
            tactics.push(TacticView {
                uid,
                name: json::string(attack, &["tactic", "name"]),
            });
        }
        if let Some(uid) = json::string(attack, &["sub_technique", "uid"])
            .or_else(|| json::string(attack, &["technique", "uid"]))
        {
            techniques.push(uid);
        }
    }
    (tactics, techniques)
}

/// Alerts for the notifier's unit tests: a typical one, and one with hostile
/// text in every field the alert carries.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::model::{
        Actor, ActorType, Finding, Network, Resource, RuleRef, Source, Tactic, Technique, TraceIds,
    };

    pub(crate) fn finding() -> Finding {
        let mut f = Finding::new(
            Source::GuardDuty,
            "f-1",
            "UnauthorizedAccess:IAMUser/TorIPCaller",
        );
        f.title = "API called from a Tor exit node".into();
        f.description = "An API was invoked from a Tor exit node.".into();
        f.severity = Severity::High;
        f.account_id = "111122223333".into();
        f.account_name = Some("prod".into());
        f.region = "us-east-1".into();
        f.fingerprint = "fp-1".into();
        f.resources
            .push(Resource::new("AwsIamAccessKey", "AKIAEXAMPLE"));
        f.actor = Some(Actor {
            actor_type: ActorType::IamUser,
            user_name: Some("alice".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            mfa_used: Some(false),
            ..Actor::default()
        });
        f.network = Network {
            remote_ip: Some("198.51.100.7".into()),
            remote_port: Some(443),
            country: Some("Germany".into()),
            ..Network::default()
        };
        f.tactics.push(Tactic::InitialAccess);
        f.links.console =
            Some("https://console.aws.amazon.com/guardduty/home#/findings?fId=f-1".into());
        f.links.trace =
            Some("https://ui.honeycomb.io/trace?trace_id=4bf92f3577b34da6a3ce929d0e0e4736".into());
        f.trace = Some(TraceIds {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            xray_trace_id: "1-4bf92f35-77b34da6a3ce929d0e0e4736".into(),
        });
        f
    }

    pub(crate) fn sample_view() -> AlertView {
        AlertView::from_ocsf(&ocsf::to_ocsf(&finding())).unwrap()
    }

    /// Mentions, links, markdown, terminal escapes, NUL, bidi overrides,
    /// non-ASCII, and 100k characters.
    pub(crate) fn evil(tag: &str) -> String {
        format!(
            "{tag} <!channel> <!here> <@U1> <#C1> <!subteam^S1> <https://evil.example|click> \
             *bold* _it_ ~strike~ `code` ```block``` `lone > quote &amp; & \u{1b}[31mred\u{1b}[0m \0nul \
             \u{202e}rtl\u{202c} \u{200b}zw \u{2028}ls élan 日本語 😀 :skull: {}",
            "x".repeat(100_000)
        )
    }

    pub(crate) fn hostile() -> AlertView {
        let mut f = finding();
        f.id = evil("id");
        f.product = evil("product");
        f.finding_type = evil("type");
        f.rule = Some(RuleRef::new(evil("rule"), evil("rule title")));
        f.also_matched = vec![RuleRef::new(evil("also"), evil("also title"))];
        f.title = evil("title");
        f.description = format!("{}\n{}", evil("desc"), evil("line2"));
        f.source_severity = Some(evil("score"));
        f.techniques.push(Technique {
            id: evil("T"),
            name: Some(evil("tech")),
        });
        f.account_id = evil("acct");
        f.account_name = Some(evil("acct name"));
        f.region = evil("region");
        f.resources = (0..30)
            .map(|i| {
                let mut r = Resource::new(evil("rtype"), evil(&format!("res{i}")));
                r.tags.insert(evil("tagk"), evil("tagv"));
                r
            })
            .collect();
        f.actor = Some(Actor {
            actor_type: ActorType::AssumedRole,
            arn: Some(evil("arn")),
            user_name: Some(evil("user")),
            principal_id: Some(evil("pid")),
            account_id: Some(evil("aid")),
            session_issuer: Some(evil("issuer")),
            access_key_id: Some(evil("key")),
            mfa_used: Some(true),
            source_ip: Some(evil("ip")),
            user_agent: Some(evil("ua")),
            invoked_by: Some(evil("invoked")),
        });
        f.network = Network {
            remote_ip: Some(evil("ip")),
            remote_port: Some(1),
            country: Some(evil("country")),
            city: Some(evil("city")),
            asn: Some(evil("asn")),
            organization: Some(evil("org")),
            domain: Some(evil("domain")),
            ..Network::default()
        };
        f.evidence.insert(evil("ek"), evil("ev"));
        f.remediation = Some(evil("fix"));
        f.links.console = Some(format!("https://evil.example/<x>{}", evil("c")));
        f.links.trace = Some("javascript:alert('evil')".into());
        f.fingerprint = evil("fp");
        f.event_id = Some(evil("event"));
        f.trace = Some(TraceIds {
            trace_id: evil("trace"),
            xray_trace_id: evil("xray"),
        });
        AlertView::from_ocsf(&ocsf::to_ocsf(&f)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::finding;
    use super::*;
    use crate::model::FindingStatus;

    #[test]
    fn reads_everything_the_ocsf_writer_puts_in() {
        let f = finding();
        let v = AlertView::from_ocsf(&ocsf::to_ocsf(&f)).unwrap();
        assert_eq!(v.finding_id, "f-1");
        assert_eq!(v.fingerprint, "fp-1");
        assert_eq!(v.title, f.title);
        assert_eq!(v.description, f.description);
        assert_eq!(v.severity, Severity::High);
        assert_eq!(v.status, AlertStatus::New);
        assert_eq!(
            v.finding_type.as_deref(),
            Some("UnauthorizedAccess:IAMUser/TorIPCaller")
        );
        assert_eq!(v.source.as_deref(), Some("GuardDuty"));
        assert_eq!(v.account_label().as_deref(), Some("prod (111122223333)"));
        assert_eq!(v.region.as_deref(), Some("us-east-1"));
        assert_eq!(v.primary_resource().unwrap().uid, "AKIAEXAMPLE");
        assert_eq!(
            v.primary_resource().unwrap().kind.as_deref(),
            Some("AwsIamAccessKey")
        );
        let actor = v.actor.as_ref().unwrap();
        assert_eq!(actor.display_name(), Some("alice"));
        assert_eq!(actor.kind.as_deref(), Some("IAMUser"));
        assert_eq!(actor.mfa, Some(false));
        assert_eq!(v.source_ip(), Some("198.51.100.7"));
        assert_eq!(v.src_endpoint.as_ref().unwrap().port, Some(443));
        assert_eq!(v.tactics[0].uid, "TA0001");
        assert_eq!(v.tactics[0].name.as_deref(), Some("Initial Access"));
        assert_eq!(v.console_url, f.links.console);
        assert_eq!(v.trace_url, f.links.trace);
        assert_eq!(
            v.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(actor.access_key_id.as_deref(), Some("AKIAEXAMPLE"));
        assert_eq!(v.product.as_deref(), Some("GuardDuty"));
    }

    #[test]
    fn reads_what_ocsf_could_not_type_and_sub_techniques() {
        let mut f = finding();
        f.network.remote_ip = Some("ec2.amazonaws.com".into());
        f.network.remote_ip_class = crate::model::IpClass::AwsService;
        f.actor.as_mut().unwrap().user_agent = Some("aws-cli/2.15".into());
        f.techniques.push(crate::model::Technique {
            id: "T1562.008".into(),
            name: None,
        });
        let v = AlertView::from_ocsf(&ocsf::to_ocsf(&f)).unwrap();
        assert_eq!(v.source_ip(), Some("ec2.amazonaws.com"));
        assert_eq!(
            v.src_endpoint.as_ref().unwrap().country.as_deref(),
            Some("Germany")
        );
        assert_eq!(v.user_agent.as_deref(), Some("aws-cli/2.15"));
        assert_eq!(v.techniques, ["T1562.008"]);

        f.actor = Some(crate::model::Actor {
            user_agent: Some("Boto3/1.34".into()),
            ..Default::default()
        });
        f.network.remote_ip = Some("<no address>".into());
        f.network.remote_ip_class = crate::model::IpClass::Unknown;
        let v = AlertView::from_ocsf(&ocsf::to_ocsf(&f)).unwrap();
        assert_eq!(v.user_agent.as_deref(), Some("Boto3/1.34"));
        assert_eq!(v.source_ip(), Some("<no address>"));
        assert_eq!(v.src_endpoint.unwrap().port, Some(443));
    }

    #[test]
    fn reads_alerts_in_the_shape_older_vigil_wrote() {
        let v = AlertView::parse(
            r#"{"class_uid": 2004, "metadata": {"version": "1.3.0"},
                "finding_info": {"uid": "f-1", "product_uid": "GuardDuty"},
                "actor": {"user": {"name": "alice", "credential_uid": "AKIAEXAMPLE"}},
                "src_endpoint": {"ip": "198.51.100.7", "port": 443},
                "http_request": {"user_agent": "aws-cli/2.15"},
                "attacks": [{"tactic": {"uid": "TA0001"}}, {"technique": {"uid": "T1078"}}]}"#,
        )
        .unwrap();
        assert_eq!(v.actor.as_ref().unwrap().display_name(), Some("alice"));
        assert_eq!(
            v.actor.as_ref().unwrap().access_key_id.as_deref(),
            Some("AKIAEXAMPLE")
        );
        assert_eq!(v.source_ip(), Some("198.51.100.7"));
        assert_eq!(v.user_agent.as_deref(), Some("aws-cli/2.15"));
        assert_eq!(v.product.as_deref(), Some("GuardDuty"));
        assert_eq!(v.tactics[0].uid, "TA0001");
        assert_eq!(v.techniques, ["T1078"]);
    }

    #[test]
    fn repeats_and_resolved_are_recognised() {
        let mut f = finding();
        f.count = 5;
        let v = AlertView::from_ocsf(&ocsf::to_ocsf(&f)).unwrap();
        assert_eq!(v.status, AlertStatus::Repeat);
        assert_eq!(v.times_seen(), 5);
        f.status = FindingStatus::Resolved;
        assert_eq!(
            AlertView::from_ocsf(&ocsf::to_ocsf(&f)).unwrap().status,
            AlertStatus::Resolved
        );

        let mut v = AlertView::from_ocsf(&ocsf::to_ocsf(&finding())).unwrap();
        v.note_suppressed_repeats(0);
        assert_eq!(v.status, AlertStatus::New);
        let mut v = AlertView::from_ocsf(&ocsf::to_ocsf(&finding())).unwrap();
        v.note_suppressed_repeats(2);
        assert_eq!((v.status, v.times_seen()), (AlertStatus::Repeat, 3));

        let mut o = ocsf::to_ocsf(&finding());
        o["unmapped"]["vigil_suppressed_repeats"] = 3.into();
        let v = AlertView::from_ocsf(&o).unwrap();
        assert_eq!(v.status, AlertStatus::Repeat);
        assert_eq!(v.times_seen(), 4);
    }

    #[test]
    fn what_is_not_a_finding_is_an_error_not_a_panic() {
        for bad in [
            "",
            "null",
            "[]",
            "\"x\"",
            "{}",
            r#"{"class_uid": 2001, "finding_info": {"uid": "x"}}"#,
            r#"{"class_uid": 2004}"#,
            r#"{"class_uid": 2004, "finding_info": {"uid": ""}}"#,
        ] {
            assert!(AlertView::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn odd_types_read_as_absent() {
        let v = AlertView::parse(
            r#"{"class_uid": "2004", "finding_info": {"uid": 7, "types": [1]},
                "severity_id": -3, "count": "many", "resources": [{"type": "x"}, 5],
                "actor": "alice", "src_endpoint": {"port": 99999}, "attacks": [null, {"tactic": 1}]}"#,
        )
        .unwrap();
        assert_eq!(v.finding_id, "7");
        assert_eq!(v.fingerprint, "7");
        assert_eq!(v.title, "7");
        assert_eq!(v.severity, Severity::Informational);
        assert_eq!(v.count, 1);
        assert!(v.resources.is_empty());
        assert!(v.actor.is_none());
        assert_eq!(v.src_endpoint.unwrap().port, None);
        assert!(v.tactics.is_empty());
        assert_eq!(v.finding_type, None);
    }
}

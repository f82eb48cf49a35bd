//! The normalized finding: one model for every source.
//!
//! Aligned with OCSF Detection Finding (class 2004, see `vigil::ocsf`). Fields
//! that drive routing and filtering (severity, source, ATT&CK tactic, actor type)
//! are enums so a typo cannot silently route an alert to nobody.
//!
//! A crate of its own (serde, chrono and thiserror only) so the detection engine
//! (`vigil-detect`) can name severities and tactics without building the AWS
//! SDK; the `vigil` crate re-exports it as `vigil::model`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How bad a finding is, in the five steps every source maps onto.
///
/// Ordered, so `severity >= min_severity` is the routing test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// GuardDuty's documented ranges: Low 1.0–3.9, Medium 4.0–6.9, High 7.0–8.9,
    /// Critical 9.0–10.0. Scores below 1 (never sent today) read as Informational.
    pub fn from_guardduty(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score >= 1.0 {
            Severity::Low
        } else {
            Severity::Informational
        }
    }

    /// Upper-case label, as Security Hub's `Severity.Label` and our SNS attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// OCSF `severity_id`.
    pub fn ocsf_id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// Title case for people: "High".
    pub fn label(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown severity name in configuration or a source.
#[derive(Debug, thiserror::Error)]
#[error("unknown severity {0:?} (expected informational, low, medium, high or critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" | "none" => Ok(Severity::Informational),
            "low" => Ok(Severity::Low),
            "medium" | "moderate" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(UnknownSeverity(s.to_string())),
        }
    }
}

/// Which service produced the finding (not the product inside Security Hub:
/// that is [`Finding::product`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    GuardDuty,
    CloudTrail,
    SecurityHub,
    Macie,
    /// AWS Health security notifications (exposed or compromised credentials, abuse).
    Health,
    /// IAM Access Analyzer's own findings (external and unused access).
    AccessAnalyzer,
    /// Amazon Inspector's own findings (`aws.inspector2`).
    Inspector,
    /// AWS Config rule compliance changes.
    Config,
    /// GuardDuty Malware Protection for S3 object scan results.
    MalwareProtection,
}

impl Source {
    pub const ALL: [Source; 9] = [
        Source::GuardDuty,
        Source::CloudTrail,
        Source::SecurityHub,
        Source::Macie,
        Source::Health,
        Source::AccessAnalyzer,
        Source::Inspector,
        Source::Config,
        Source::MalwareProtection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::GuardDuty => "GuardDuty",
            Source::CloudTrail => "CloudTrail",
            Source::SecurityHub => "SecurityHub",
            Source::Macie => "Macie",
            Source::Health => "Health",
            Source::AccessAnalyzer => "AccessAnalyzer",
            Source::Inspector => "Inspector",
            Source::Config => "Config",
            Source::MalwareProtection => "MalwareProtection",
        }
    }

    /// Sources that tell when a finding they alerted on is over (Config
    /// COMPLIANT, Inspector CLOSED, Access Analyzer RESOLVED): their resolved
    /// findings go out so the alert's Slack thread and PagerDuty incident close.
    pub fn sends_resolutions(self) -> bool {
        matches!(
            self,
            Source::Config | Source::Inspector | Source::AccessAnalyzer
        )
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// MITRE ATT&CK Enterprise tactics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tactic {
    Reconnaissance,
    ResourceDevelopment,
    InitialAccess,
    Execution,
    Persistence,
    PrivilegeEscalation,
    DefenseEvasion,
    CredentialAccess,
    Discovery,
    LateralMovement,
    Collection,
    CommandAndControl,
    Exfiltration,
    Impact,
}

impl Tactic {
    pub const ALL: [Tactic; 14] = [
        Tactic::Reconnaissance,
        Tactic::ResourceDevelopment,
        Tactic::InitialAccess,
        Tactic::Execution,
        Tactic::Persistence,
        Tactic::PrivilegeEscalation,
        Tactic::DefenseEvasion,
        Tactic::CredentialAccess,
        Tactic::Discovery,
        Tactic::LateralMovement,
        Tactic::Collection,
        Tactic::CommandAndControl,
        Tactic::Exfiltration,
        Tactic::Impact,
    ];

    /// ATT&CK id, e.g. `TA0006`.
    pub fn id(self) -> &'static str {
        match self {
            Tactic::Reconnaissance => "TA0043",
            Tactic::ResourceDevelopment => "TA0042",
            Tactic::InitialAccess => "TA0001",
            Tactic::Execution => "TA0002",
            Tactic::Persistence => "TA0003",
            Tactic::PrivilegeEscalation => "TA0004",
            Tactic::DefenseEvasion => "TA0005",
            Tactic::CredentialAccess => "TA0006",
            Tactic::Discovery => "TA0007",
            Tactic::LateralMovement => "TA0008",
            Tactic::Collection => "TA0009",
            Tactic::CommandAndControl => "TA0011",
            Tactic::Exfiltration => "TA0010",
            Tactic::Impact => "TA0040",
        }
    }

    /// ATT&CK display name, e.g. "Credential Access".
    pub fn name(self) -> &'static str {
        match self {
            Tactic::Reconnaissance => "Reconnaissance",
            Tactic::ResourceDevelopment => "Resource Development",
            Tactic::InitialAccess => "Initial Access",
            Tactic::Execution => "Execution",
            Tactic::Persistence => "Persistence",
            Tactic::PrivilegeEscalation => "Privilege Escalation",
            Tactic::DefenseEvasion => "Defense Evasion",
            Tactic::CredentialAccess => "Credential Access",
            Tactic::Discovery => "Discovery",
            Tactic::LateralMovement => "Lateral Movement",
            Tactic::Collection => "Collection",
            Tactic::CommandAndControl => "Command and Control",
            Tactic::Exfiltration => "Exfiltration",
            Tactic::Impact => "Impact",
        }
    }

    /// Parses the forms sources use: `TA0006`, `credential_access` (Sigma tags),
    /// `CredentialAccess` (GuardDuty threat purposes), `Credential Access`.
    pub fn parse(s: &str) -> Option<Tactic> {
        let norm: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        Tactic::ALL.into_iter().find(|t| {
            t.id().eq_ignore_ascii_case(&norm)
                || t.name()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .eq_ignore_ascii_case(&norm)
        })
    }
}

impl fmt::Display for Tactic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.id())
    }
}

/// An ATT&CK technique such as `T1562.008`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Technique {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What kind of principal acted, from CloudTrail's `userIdentity.type` and
/// GuardDuty's `userType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ActorType {
    Root,
    IamUser,
    AssumedRole,
    Role,
    FederatedUser,
    IdentityCenterUser,
    AwsService,
    AwsAccount,
    WebIdentityUser,
    SamlUser,
    #[default]
    Unknown,
}

impl ActorType {
    pub fn parse(s: &str) -> ActorType {
        match s {
            "Root" => ActorType::Root,
            "IAMUser" => ActorType::IamUser,
            "AssumedRole" => ActorType::AssumedRole,
            "Role" => ActorType::Role,
            "FederatedUser" => ActorType::FederatedUser,
            "IdentityCenterUser" => ActorType::IdentityCenterUser,
            "AWSService" => ActorType::AwsService,
            "AWSAccount" => ActorType::AwsAccount,
            "WebIdentityUser" => ActorType::WebIdentityUser,
            "SAMLUser" => ActorType::SamlUser,
            _ => ActorType::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::Root => "Root",
            ActorType::IamUser => "IAMUser",
            ActorType::AssumedRole => "AssumedRole",
            ActorType::Role => "Role",
            ActorType::FederatedUser => "FederatedUser",
            ActorType::IdentityCenterUser => "IdentityCenterUser",
            ActorType::AwsService => "AWSService",
            ActorType::AwsAccount => "AWSAccount",
            ActorType::WebIdentityUser => "WebIdentityUser",
            ActorType::SamlUser => "SAMLUser",
            ActorType::Unknown => "Unknown",
        }
    }

    /// Identities that exist once per account, not per region: a finding about
    /// them must dedup across regions.
    pub fn is_global(self) -> bool {
        !matches!(self, ActorType::AwsService | ActorType::Unknown)
    }
}

/// Who did it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "type")]
    pub actor_type: ActorType,
    /// Principal ARN when known, otherwise the best name the source gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Role behind an assumed-role session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_used: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Service that acted on the principal's behalf (`userIdentity.invokedBy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
}

impl Actor {
    /// The shortest name a person recognises: user name, else ARN, else principal id.
    pub fn display_name(&self) -> Option<&str> {
        self.user_name
            .as_deref()
            .or(self.arn.as_deref())
            .or(self.principal_id.as_deref())
    }
}

/// What it happened to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Type in Security Hub's vocabulary where one fits (`AwsEc2Instance`,
    /// `AwsIamAccessKey`, `AwsS3Bucket`, `AwsEksCluster`, ...).
    #[serde(rename = "type")]
    pub resource_type: String,
    /// ARN when known, else the service's id (instance id, bucket name, ...).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Resource {
    pub fn new(resource_type: impl Into<String>, id: impl Into<String>) -> Resource {
        Resource {
            resource_type: resource_type.into(),
            id: id.into(),
            ..Resource::default()
        }
    }

    /// IAM and the account itself are global: their findings dedup across regions.
    pub fn is_global(&self) -> bool {
        self.resource_type.starts_with("AwsIam") || self.resource_type == "AwsAccount"
    }
}

/// Where the remote side of the activity sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum IpClass {
    /// RFC 1918, loopback, link-local, CGNAT, unique local.
    Private,
    /// Not an address: an AWS service principal such as `ec2.amazonaws.com`.
    AwsService,
    Public,
    #[default]
    Unknown,
}

/// Network context of the activity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(default)]
    pub remote_ip_class: IpClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl Network {
    pub fn is_empty(&self) -> bool {
        *self == Network::default()
    }
}

/// Lifecycle state the source reports; only `Active` findings alert by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum FindingStatus {
    #[default]
    Active,
    Archived,
    Suppressed,
    Resolved,
}

/// The rule that fired, for detections Vigil made itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRef {
    pub id: String,
    pub title: String,
    /// The call failed (`errorCode`) and the rule matched it only with the
    /// error hidden: an attempt, which did not take effect. Correlation
    /// rules count bursts of these.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attempt: bool,
}

impl RuleRef {
    /// A rule that matched the record as it is (not an attempt).
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> RuleRef {
        RuleRef {
            id: id.into(),
            title: title.into(),
            attempt: false,
        }
    }
}

/// Links a responder follows from the alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// Trace ids of Vigil's own processing of the event, so an alert leads to its
/// spans and log lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceIds {
    /// W3C / OpenTelemetry trace id, 32 hex digits.
    pub trace_id: String,
    /// The same id in X-Ray form, `1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy`.
    pub xray_trace_id: String,
}

/// The trace context of the span processing an event, as Vigil passes it on.
#[derive(Debug, Clone, Default)]
pub struct TraceContext {
    pub ids: TraceIds,
    /// W3C `traceparent` header value.
    pub traceparent: String,
    /// X-Ray `AWSTraceHeader` value.
    pub aws_trace_header: String,
}

/// One normalized security finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id: the source's finding id, or rule id + CloudTrail event id.
    pub id: String,
    pub source: Source,
    /// Product that produced it (GuardDuty, Macie, Inspector, a partner, or
    /// "Vigil" for rule detections).
    pub product: String,
    /// Source finding type, or the rule id for detections.
    pub finding_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
    /// The other rules that matched the same event: one event alerts once,
    /// as its winning `rule`, and these are shown beside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_matched: Vec<RuleRef>,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    /// The source's own score or label, kept for reference (e.g. "8.0").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_severity: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tactics: Vec<Tactic>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<Technique>,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    pub region: String,
    /// When the source says the finding was created or the call was made.
    pub time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// How many times the source has seen it (GuardDuty `service.count`).
    pub count: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "Network::is_empty")]
    pub network: Network,
    /// The raw fields that matter, by name (API called, error code, threat list...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default)]
    pub links: Links,
    #[serde(default)]
    pub status: FindingStatus,
    /// A sample the source generated for testing (GuardDuty `sample: true`).
    #[serde(default)]
    pub sample: bool,
    /// The EventBridge event id that carried it (the log correlation id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Dedup key: source/rule + account + resource + actor (see `enrich`).
    #[serde(default)]
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceIds>,
}

impl Finding {
    /// A finding with the required fields and everything else empty; sources
    /// fill in what they know.
    pub fn new(source: Source, id: impl Into<String>, finding_type: impl Into<String>) -> Finding {
        Finding {
            id: id.into(),
            source,
            product: source.as_str().to_string(),
            finding_type: finding_type.into(),
            rule: None,
            also_matched: Vec::new(),
            title: String::new(),
            description: String::new(),
            severity: Severity::Informational,
            source_severity: None,
            tactics: Vec::new(),
            techniques: Vec::new(),
            account_id: String::new(),
            account_name: None,
            region: String::new(),
            time: DateTime::<Utc>::UNIX_EPOCH,
            first_seen: None,
            last_seen: None,
            count: 1,
            resources: Vec::new(),
            actor: None,
            network: Network::default(),
            evidence: BTreeMap::new(),
            remediation: None,
            links: Links::default(),
            status: FindingStatus::Active,
            sample: false,
            event_id: None,
            fingerprint: String::new(),
            trace: None,
        }
    }

    /// The account as people know it: "prod (123456789012)" or just the id.
    pub fn account_label(&self) -> String {
        match &self.account_name {
            Some(name) if !name.is_empty() => format!("{name} ({})", self.account_id),
            _ => self.account_id.clone(),
        }
    }

    /// The resource most alerts are about: the first one.
    pub fn primary_resource(&self) -> Option<&Resource> {
        self.resources.first()
    }

    /// Rule id for detections, finding type otherwise: what metrics group by.
    pub fn type_or_rule(&self) -> &str {
        self.rule
            .as_ref()
            .map(|r| r.id.as_str())
            .unwrap_or(&self.finding_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guardduty_ranges_map_to_severity() {
        assert_eq!(Severity::from_guardduty(1.0), Severity::Low);
        assert_eq!(Severity::from_guardduty(3.9), Severity::Low);
        assert_eq!(Severity::from_guardduty(4.0), Severity::Medium);
        assert_eq!(Severity::from_guardduty(6.9), Severity::Medium);
        assert_eq!(Severity::from_guardduty(7.0), Severity::High);
        assert_eq!(Severity::from_guardduty(8.9), Severity::High);
        assert_eq!(Severity::from_guardduty(9.0), Severity::Critical);
        assert_eq!(Severity::from_guardduty(10.0), Severity::Critical);
        assert_eq!(Severity::from_guardduty(0.5), Severity::Informational);
    }

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::High > Severity::Medium);
        assert_eq!("high".parse::<Severity>().unwrap(), Severity::High);
        assert_eq!("CRITICAL".parse::<Severity>().unwrap(), Severity::Critical);
        assert!("urgent".parse::<Severity>().is_err());
    }

    #[test]
    fn tactic_parses_every_spelling() {
        assert_eq!(Tactic::parse("TA0006"), Some(Tactic::CredentialAccess));
        assert_eq!(
            Tactic::parse("credential_access"),
            Some(Tactic::CredentialAccess)
        );
        assert_eq!(
            Tactic::parse("CredentialAccess"),
            Some(Tactic::CredentialAccess)
        );
        assert_eq!(
            Tactic::parse("Command and Control"),
            Some(Tactic::CommandAndControl)
        );
        assert_eq!(Tactic::parse("Backdoor"), None);
    }
}

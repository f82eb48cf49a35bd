//! Sources: recognise an incoming event and turn it into findings.
//!
//! [`classify`] looks at an EventBridge event (or a bare finding or CloudTrail
//! record, as replay and log files carry them) and says which parser owns it.
//! Each parser keeps what it can read: only input that is not its kind of
//! event at all is an error.
//!
//! The face the pipeline uses: [`classify`], [`findings`] (the owning
//! parser, and for CloudTrail the detector) and [`forwarded_from`] (a Security
//! Hub copy of a finding another source delivers too). What each source reads:
//!
//! - [`guardduty`]: `GuardDuty Finding` events, one finding in `detail`, or a
//!   bare finding as `GetFindings` returns it;
//! - [`cloudtrail`]: one CloudTrail record (the `... via CloudTrail`
//!   detail-types, or a bare record from a log file), into one finding for
//!   the rules that matched it (the best one, the others listed), or an
//!   attempt finding for a failed call (see `detect::judge`);
//! - [`securityhub`]: ASFF findings (`Security Hub Findings - Imported`,
//!   custom actions, `GetFindings`), OCSF findings (`Findings Imported V2`),
//!   and insight results, which carry no finding;
//! - [`macie`]: Macie's own `Macie Finding` events;
//! - [`s3_notifications`]: S3, SNS and EventBridge object-created
//!   notifications, which name the CloudTrail log files to read;
//! - [`health`]: AWS Health security notifications (`AWS Health Event`,
//!   `AWS Health Abuse Event`); other Health events carry no finding;
//! - [`access_analyzer`]: IAM Access Analyzer's external and unused access findings;
//! - [`inspector`]: Amazon Inspector's `Inspector2 Finding` events;
//! - [`config_rules`]: AWS Config `Config Rules Compliance Change` events of
//!   the rules marked as security rules;
//! - [`malware_scan`]: GuardDuty Malware Protection for S3 object scan results.
//!
//! The parser modules stay public for tests, benchmarks and replay; console
//! links, which every parser builds, are private to `sources`.

pub mod access_analyzer;
pub mod cloudtrail;
pub mod config_rules;
pub(crate) mod console;
pub mod guardduty;
pub mod health;
pub mod inspector;
pub mod log_file;
pub mod macie;
pub mod malware_scan;
mod resource_types;
pub mod s3_notifications;
pub mod securityhub;

use serde_json::Value;

use crate::detect::{Detector, RuleMeta};
use crate::json;
use crate::model::{Finding, Source};

pub use securityhub::forwarded_from;

/// Why an event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("event is not a JSON object")]
    NotAnObject,
    #[error("unsupported event: source {event_source:?}, detail-type {detail_type:?}")]
    Unsupported {
        event_source: String,
        detail_type: String,
    },
    #[error("{source_kind} event without a usable `{field}`")]
    MissingField {
        source_kind: Source,
        field: &'static str,
    },
    #[error("expected a {expected} event, got {got}")]
    WrongSource { expected: Source, got: String },
    /// The envelope's `source` is not the AWS service its `detail-type`
    /// belongs to: a custom event copying an AWS detail-type (anyone allowed
    /// to `PutEvents` on the bus can send one; only AWS can send `aws.*`).
    #[error("refused {detail_type:?} event {event_id:?} from source {got:?} sent by account {account:?}: only {expected} sends it")]
    ForgedSource {
        detail_type: String,
        got: String,
        expected: String,
        /// The sending account, as EventBridge stamps it on a custom event.
        account: String,
        event_id: String,
    },
}

impl SourceError {
    /// Whether the event was refused as forged: a retry can never make it
    /// acceptable, so it is counted and logged, not retried.
    pub fn is_forged(&self) -> bool {
        matches!(self, SourceError::ForgedSource { .. })
    }
}

/// The EventBridge envelope fields Vigil uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub source: String,
    pub detail_type: String,
    pub account: String,
    pub region: String,
    pub time: Option<chrono::DateTime<chrono::Utc>>,
}

impl Envelope {
    /// Reads the envelope if `event` has one (`detail-type` and `detail`).
    pub fn read(event: &Value) -> Option<Envelope> {
        let detail_type = json::str_at(event, &["detail-type"])?;
        event.get("detail")?;
        Some(Envelope {
            id: json::string(event, &["id"]).unwrap_or_default(),
            source: json::string(event, &["source"]).unwrap_or_default(),
            detail_type: detail_type.to_string(),
            account: json::string(event, &["account"]).unwrap_or_default(),
            region: json::string(event, &["region"]).unwrap_or_default(),
            time: json::time_at(event, &["time"]),
        })
    }
}

/// What an event is, with the part each parser reads.
#[derive(Debug)]
pub enum SourceEvent<'a> {
    /// One GuardDuty finding (EventBridge `detail`, or bare as `GetFindings` returns it).
    GuardDuty {
        finding: &'a Value,
        envelope: Option<Envelope>,
    },
    /// One CloudTrail record (EventBridge `detail`, or a bare record from a log file).
    CloudTrail {
        record: &'a Value,
        envelope: Option<Envelope>,
    },
    /// Security Hub: `Findings - Imported` and custom actions (ASFF,
    /// `detail.findings[]`), `Findings Imported V2` (OCSF), insight results.
    SecurityHub {
        detail: &'a Value,
        envelope: Envelope,
    },
    /// Macie's own `Macie Finding` event.
    Macie {
        finding: &'a Value,
        envelope: Envelope,
    },
    /// An AWS Health event (security notifications alert, the rest not).
    Health {
        detail: &'a Value,
        envelope: Envelope,
    },
    /// An IAM Access Analyzer finding (external or unused access).
    AccessAnalyzer {
        detail: &'a Value,
        envelope: Envelope,
    },
    /// An Amazon Inspector finding.
    Inspector {
        finding: &'a Value,
        envelope: Envelope,
    },
    /// An AWS Config rule compliance change.
    Config {
        detail: &'a Value,
        envelope: Envelope,
    },
    /// A GuardDuty Malware Protection for S3 object scan result.
    MalwareScan {
        detail: &'a Value,
        envelope: Envelope,
    },
}

impl SourceEvent<'_> {
    pub fn source(&self) -> Source {
        match self {
            SourceEvent::GuardDuty { .. } => Source::GuardDuty,
            SourceEvent::CloudTrail { .. } => Source::CloudTrail,
            SourceEvent::SecurityHub { .. } => Source::SecurityHub,
            SourceEvent::Macie { .. } => Source::Macie,
            SourceEvent::Health { .. } => Source::Health,
            SourceEvent::AccessAnalyzer { .. } => Source::AccessAnalyzer,
            SourceEvent::Inspector { .. } => Source::Inspector,
            SourceEvent::Config { .. } => Source::Config,
            SourceEvent::MalwareScan { .. } => Source::MalwareProtection,
        }
    }

    /// The EventBridge event id, Vigil's correlation id, when there is one.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            SourceEvent::GuardDuty { envelope, .. } | SourceEvent::CloudTrail { envelope, .. } => {
                envelope.as_ref().map(|e| e.id.as_str())
            }
            SourceEvent::SecurityHub { envelope, .. }
            | SourceEvent::Macie { envelope, .. }
            | SourceEvent::Health { envelope, .. }
            | SourceEvent::AccessAnalyzer { envelope, .. }
            | SourceEvent::Inspector { envelope, .. }
            | SourceEvent::Config { envelope, .. }
            | SourceEvent::MalwareScan { envelope, .. } => Some(envelope.id.as_str()),
        }
        .filter(|id| !id.is_empty())
    }
}

/// CloudTrail detail-types EventBridge uses. Console sign-in is documented with
/// both spellings, so both are accepted.
const CLOUDTRAIL_DETAIL_TYPES: [&str; 6] = [
    "AWS API Call via CloudTrail",
    "AWS Console Sign In via CloudTrail",
    "AWS Console Signin via CloudTrail",
    "AWS Console Action via CloudTrail",
    "AWS Service Event via CloudTrail",
    "AWS Insight via CloudTrail",
];

/// The kinds of EventBridge event Vigil reads, by detail-type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvelopeKind {
    GuardDuty,
    SecurityHub,
    Macie,
    CloudTrail,
    /// The direct sources of issue #19, each one AWS `source` and a few detail-types.
    Direct(DirectKind),
}

/// The sources read straight from their own service's events, by the
/// detail-types that service documents and the one `source` that sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirectKind {
    Health,
    AccessAnalyzer,
    Inspector,
    Config,
    MalwareScan,
}

impl DirectKind {
    const ALL: [DirectKind; 5] = [
        DirectKind::Health,
        DirectKind::AccessAnalyzer,
        DirectKind::Inspector,
        DirectKind::Config,
        DirectKind::MalwareScan,
    ];

    fn detail_types(self) -> &'static [&'static str] {
        match self {
            DirectKind::Health => &health::DETAIL_TYPES,
            DirectKind::AccessAnalyzer => &access_analyzer::DETAIL_TYPES,
            DirectKind::Inspector => &[inspector::DETAIL_TYPE],
            DirectKind::Config => &[config_rules::DETAIL_TYPE],
            DirectKind::MalwareScan => &[malware_scan::DETAIL_TYPE],
        }
    }

    /// The only `source` AWS sends these detail-types with.
    fn aws_source(self) -> &'static str {
        match self {
            DirectKind::Health => "aws.health",
            DirectKind::AccessAnalyzer => "aws.access-analyzer",
            DirectKind::Inspector => "aws.inspector2",
            DirectKind::Config => "aws.config",
            DirectKind::MalwareScan => "aws.guardduty",
        }
    }

    fn event<'a>(self, detail: &'a Value, envelope: Envelope) -> SourceEvent<'a> {
        match self {
            DirectKind::Health => SourceEvent::Health { detail, envelope },
            DirectKind::AccessAnalyzer => SourceEvent::AccessAnalyzer { detail, envelope },
            DirectKind::Inspector => SourceEvent::Inspector {
                finding: detail,
                envelope,
            },
            DirectKind::Config => SourceEvent::Config { detail, envelope },
            DirectKind::MalwareScan => SourceEvent::MalwareScan { detail, envelope },
        }
    }
}

impl EnvelopeKind {
    fn of(detail_type: &str) -> Option<EnvelopeKind> {
        if detail_type == "GuardDuty Finding" {
            Some(EnvelopeKind::GuardDuty)
        } else if detail_type.starts_with("Security Hub Findings")
            || detail_type.starts_with("Findings Imported")
            || securityhub::EventKind::from_detail_type(detail_type).is_some()
        {
            Some(EnvelopeKind::SecurityHub)
        } else if detail_type == "Macie Finding" {
            Some(EnvelopeKind::Macie)
        } else if CLOUDTRAIL_DETAIL_TYPES.contains(&detail_type) {
            Some(EnvelopeKind::CloudTrail)
        } else {
            DirectKind::ALL
                .into_iter()
                .find(|k| k.detail_types().contains(&detail_type))
                .map(EnvelopeKind::Direct)
        }
    }
}

/// Says which parser owns `event`. An EventBridge event must come from the
/// AWS source its detail-type belongs to ([`check_source`]).
pub fn classify(event: &Value) -> Result<SourceEvent<'_>, SourceError> {
    if !event.is_object() {
        return Err(SourceError::NotAnObject);
    }
    if let Some(envelope) = Envelope::read(event) {
        let detail = &event["detail"];
        let Some(kind) = EnvelopeKind::of(&envelope.detail_type) else {
            return Err(SourceError::Unsupported {
                event_source: envelope.source,
                detail_type: envelope.detail_type,
            });
        };
        check_source(kind, &envelope, detail)?;
        return Ok(match kind {
            EnvelopeKind::GuardDuty => SourceEvent::GuardDuty {
                finding: detail,
                envelope: Some(envelope),
            },
            EnvelopeKind::SecurityHub => SourceEvent::SecurityHub { detail, envelope },
            EnvelopeKind::Macie => SourceEvent::Macie {
                finding: detail,
                envelope,
            },
            EnvelopeKind::CloudTrail => SourceEvent::CloudTrail {
                record: detail,
                envelope: Some(envelope),
            },
            EnvelopeKind::Direct(direct) => direct.event(detail, envelope),
        });
    }
    if is_bare_guardduty_finding(event) {
        return Ok(SourceEvent::GuardDuty {
            finding: event,
            envelope: None,
        });
    }
    if securityhub::is_bare(event) {
        // A bare ASFF finding or a `GetFindings` response, as replay reads them.
        return Ok(SourceEvent::SecurityHub {
            detail: event,
            envelope: Envelope {
                source: "aws.securityhub".into(),
                ..Envelope::default()
            },
        });
    }
    // API call records carry eventName and eventSource; CloudTrail Insights
    // records (eventType AwsCloudTrailInsight) keep them under insightDetails.
    let insight = event.get("eventType").and_then(Value::as_str) == Some("AwsCloudTrailInsight");
    if insight || (event.get("eventName").is_some() && event.get("eventSource").is_some()) {
        return Ok(SourceEvent::CloudTrail {
            record: event,
            envelope: None,
        });
    }
    Err(SourceError::Unsupported {
        event_source: json::string(event, &["source"]).unwrap_or_default(),
        detail_type: json::string(event, &["detail-type"]).unwrap_or_default(),
    })
}

/// A finding of an event that could not be read, skipped while the rest of
/// the event was.
#[derive(Debug)]
pub struct InvalidFinding {
    /// Its place in the event (`detail.findings[index]`).
    pub index: usize,
    pub error: SourceError,
}

/// What an event's parser read: the findings, and those it had to skip.
#[derive(Debug, Default)]
pub struct Parsed {
    pub findings: Vec<Finding>,
    pub invalid: Vec<InvalidFinding>,
}

impl From<Vec<Finding>> for Parsed {
    fn from(findings: Vec<Finding>) -> Parsed {
        Parsed {
            findings,
            invalid: Vec::new(),
        }
    }
}

/// The findings in an event: its source's parser reads them, and a CloudTrail
/// record gives at most one finding: the best rule of `detector` it matches,
/// the others in `also_matched`, or, for a failed call no rule matched, an
/// attempt (none without a detector). Security Hub findings that cannot be read are in
/// [`Parsed::invalid`].
pub fn findings(
    event: SourceEvent<'_>,
    detector: Option<&dyn Detector>,
) -> Result<Parsed, SourceError> {
    Ok(match event {
        SourceEvent::GuardDuty { finding, envelope } => {
            vec![guardduty::parse(finding, envelope.as_ref())?].into()
        }
        SourceEvent::CloudTrail { record, envelope } => {
            let _detect = tracing::info_span!("detect").entered();
            let Some(detector) = detector else {
                return Ok(Parsed::default());
            };
            let mut hits: Vec<&RuleMeta> = Vec::new();
            detector.detect(record, &mut hits);
            let mut attempts: Vec<&RuleMeta> = Vec::new();
            detector.attempts(record, &hits, &mut attempts);
            match crate::detect::judge(&hits, &attempts) {
                Some(verdict) => {
                    vec![cloudtrail::judged(record, envelope.as_ref(), &verdict)].into()
                }
                None => Parsed::default(),
            }
        }
        SourceEvent::SecurityHub { detail, envelope } => {
            securityhub::parse_counted(detail, &envelope)?
        }
        SourceEvent::Macie { finding, envelope } => {
            vec![macie::parse(finding, Some(&envelope))?].into()
        }
        SourceEvent::Health { detail, envelope } => {
            skipped_when_empty(health::parse(detail, &envelope)?, &envelope)
        }
        SourceEvent::AccessAnalyzer { detail, envelope } => {
            skipped_when_empty(access_analyzer::parse(detail, &envelope)?, &envelope)
        }
        SourceEvent::Inspector { finding, envelope } => {
            vec![inspector::parse(finding, &envelope)?].into()
        }
        SourceEvent::Config { detail, envelope } => {
            skipped_when_empty(config_rules::parse(detail, &envelope)?, &envelope)
        }
        SourceEvent::MalwareScan { detail, envelope } => {
            skipped_when_empty(malware_scan::parse(detail, &envelope)?, &envelope)
        }
    })
}

/// The findings of a direct source's event. An event that is that source's
/// but no security signal (a Health maintenance notice, a clean scan, a
/// compliant resource never alerted) is read without error and logged as
/// skipped, so it is neither retried nor sent to the dead-letter queue.
fn skipped_when_empty(findings: Vec<Finding>, envelope: &Envelope) -> Parsed {
    if findings.is_empty() {
        tracing::info!(
            event_id = %envelope.id,
            detail_type = %envelope.detail_type,
            "event skipped: no security finding in it"
        );
    }
    findings.into()
}

/// Refuses an envelope whose `source` is not the one AWS uses for its
/// detail-type. EventBridge refuses `aws.*` sources from `PutEvents`, so only
/// AWS can send an event that passes.
fn check_source(
    kind: EnvelopeKind,
    envelope: &Envelope,
    detail: &Value,
) -> Result<(), SourceError> {
    let got = envelope.source.as_str();
    let (accepted, expected) = match kind {
        EnvelopeKind::GuardDuty => (got == "aws.guardduty", "aws.guardduty".to_string()),
        EnvelopeKind::SecurityHub => (got == "aws.securityhub", "aws.securityhub".to_string()),
        EnvelopeKind::Macie => (got == "aws.macie", "aws.macie".to_string()),
        EnvelopeKind::CloudTrail => cloudtrail_source_matches(envelope, detail),
        EnvelopeKind::Direct(direct) => {
            (got == direct.aws_source(), direct.aws_source().to_string())
        }
    };
    if accepted {
        return Ok(());
    }
    Err(SourceError::ForgedSource {
        detail_type: envelope.detail_type.clone(),
        got: got.to_string(),
        expected,
        account: envelope.account.clone(),
        event_id: envelope.id.clone(),
    })
}

/// A CloudTrail record reaches EventBridge with source `aws.<service>` of its
/// `eventSource` (`signin.amazonaws.com` → `aws.signin`). Insights name the
/// service under `insightDetails`, and CloudTrail itself may send them, so
/// `aws.cloudtrail` is accepted there too. A record whose service cannot be
/// read still needs an `aws.*` source. Returns whether `source` is accepted,
/// and what was expected.
fn cloudtrail_source_matches(envelope: &Envelope, record: &Value) -> (bool, String) {
    let got = envelope.source.as_str();
    let insight = envelope.detail_type == "AWS Insight via CloudTrail";
    let event_source = json::str_at(record, &["eventSource"])
        .or_else(|| json::str_at(record, &["insightDetails", "eventSource"]));
    let service = event_source.and_then(|s| s.strip_suffix(".amazonaws.com"));
    match service {
        Some(service) if !service.is_empty() => {
            let expected = format!("aws.{service}");
            let accepted = got == expected || (insight && got == "aws.cloudtrail");
            (accepted, expected)
        }
        _ => (
            got.starts_with("aws.") && got.len() > 4,
            "an aws.* source".to_string(),
        ),
    }
}

fn is_bare_guardduty_finding(v: &Value) -> bool {
    let arn_says = json::str_at(v, &["arn"]).is_some_and(|a| a.contains(":guardduty:"));
    let service_says = json::str_at(v, &["service", "serviceName"]) == Some("guardduty");
    (arn_says || service_says) && json::str_at(v, &["type"]).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_envelopes_and_bare_records() {
        let gd = json!({"detail-type":"GuardDuty Finding","source":"aws.guardduty","id":"e1","detail":{}});
        assert!(matches!(classify(&gd), Ok(SourceEvent::GuardDuty { .. })));
        let signin = json!({"detail-type":"AWS Console Signin via CloudTrail","source":"aws.signin","detail":{}});
        assert!(matches!(
            classify(&signin),
            Ok(SourceEvent::CloudTrail { .. })
        ));
        let insight =
            json!({"eventVersion":"1.08","eventType":"AwsCloudTrailInsight","insightDetails":{}});
        assert!(matches!(
            classify(&insight),
            Ok(SourceEvent::CloudTrail { .. })
        ));
        let bare = json!({"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com"});
        assert!(matches!(
            classify(&bare),
            Ok(SourceEvent::CloudTrail { envelope: None, .. })
        ));
        let ec2 = json!({"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}});
        assert!(matches!(
            classify(&ec2),
            Err(SourceError::Unsupported { .. })
        ));
        assert!(matches!(
            classify(&json!([1])),
            Err(SourceError::NotAnObject)
        ));
    }

    fn forged(event: &Value) -> bool {
        matches!(classify(event), Err(e) if e.is_forged())
    }

    #[test]
    fn an_envelope_must_come_from_the_aws_source_of_its_detail_type() {
        let record = |source: &str, event_source: &str| {
            json!({"detail-type": "AWS API Call via CloudTrail", "source": source, "account": "111122223333",
                "detail": {"eventSource": event_source, "eventName": "StopLogging"}})
        };
        assert!(!forged(&record(
            "aws.cloudtrail",
            "cloudtrail.amazonaws.com"
        )));
        assert!(!forged(&record("aws.iam", "iam.amazonaws.com")));
        assert!(forged(&record(
            "attacker.custom",
            "cloudtrail.amazonaws.com"
        )));
        assert!(forged(&record("aws.iam", "cloudtrail.amazonaws.com")));
        assert!(forged(&record("", "cloudtrail.amazonaws.com")));
        // No service to match: an `aws.*` source is still required.
        assert!(!forged(&record("aws.cloudtrail", "")));
        assert!(forged(&record("custom", "")));
        let signin = json!({"detail-type": "AWS Console Sign In via CloudTrail", "source": "signin.custom",
            "detail": {"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin"}});
        match classify(&signin) {
            Err(SourceError::ForgedSource { expected, got, .. }) => {
                assert_eq!(
                    (expected.as_str(), got.as_str()),
                    ("aws.signin", "signin.custom")
                )
            }
            other => panic!("{other:?}"),
        }
        let insight = |source: &str| {
            json!({"detail-type": "AWS Insight via CloudTrail", "source": source,
                "detail": {"eventType": "AwsCloudTrailInsight", "insightDetails": {"eventSource": "ec2.amazonaws.com"}}})
        };
        assert!(!forged(&insight("aws.cloudtrail")));
        assert!(!forged(&insight("aws.ec2")));
        assert!(forged(&insight("aws.s3")));
        for (detail_type, real) in [
            ("GuardDuty Finding", "aws.guardduty"),
            ("Security Hub Findings - Imported", "aws.securityhub"),
            ("Findings Imported V2", "aws.securityhub"),
            ("Macie Finding", "aws.macie"),
            ("AWS Health Event", "aws.health"),
            ("AWS Health Abuse Event", "aws.health"),
            ("Access Analyzer Finding", "aws.access-analyzer"),
            (
                "Unused Access Finding for IAM entities",
                "aws.access-analyzer",
            ),
            ("Inspector2 Finding", "aws.inspector2"),
            ("Config Rules Compliance Change", "aws.config"),
            (
                "GuardDuty Malware Protection Object Scan Result",
                "aws.guardduty",
            ),
        ] {
            let event =
                |source: &str| json!({"detail-type": detail_type, "source": source, "detail": {}});
            assert!(!forged(&event(real)), "{detail_type}");
            assert!(forged(&event("aws.custom")), "{detail_type}");
            assert!(forged(&event(&format!("{real}.x"))), "{detail_type}");
        }
    }

    #[test]
    fn every_sample_envelope_passes_the_source_check() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events");
        let mut checked = 0;
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let Ok(v) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
                else {
                    continue;
                };
                if Envelope::read(&v).is_some() {
                    assert!(!forged(&v), "{}", path.display());
                    checked += 1;
                }
            }
        }
        assert!(checked > 10, "{checked} sample envelopes");
    }
}

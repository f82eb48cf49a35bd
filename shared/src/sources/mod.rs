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
//!   detail-types, or a bare record from a log file), into one finding per
//!   rule that matched it;
//! - [`securityhub`]: ASFF findings (`Security Hub Findings - Imported`,
//!   custom actions, `GetFindings`), OCSF findings (`Findings Imported V2`),
//!   and insight results, which carry no finding;
//! - [`macie`]: Macie's own `Macie Finding` events;
//! - [`s3_notifications`]: S3, SNS and EventBridge object-created
//!   notifications, which name the CloudTrail log files to read.
//!
//! The parser modules stay public for tests, benchmarks and replay; console
//! links, which every parser builds, are private to `sources`.

pub mod cloudtrail;
mod console;
pub mod guardduty;
pub mod log_file;
pub mod macie;
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
}

impl SourceEvent<'_> {
    pub fn source(&self) -> Source {
        match self {
            SourceEvent::GuardDuty { .. } => Source::GuardDuty,
            SourceEvent::CloudTrail { .. } => Source::CloudTrail,
            SourceEvent::SecurityHub { .. } => Source::SecurityHub,
            SourceEvent::Macie { .. } => Source::Macie,
        }
    }

    /// The EventBridge event id, Vigil's correlation id, when there is one.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            SourceEvent::GuardDuty { envelope, .. } | SourceEvent::CloudTrail { envelope, .. } => {
                envelope.as_ref().map(|e| e.id.as_str())
            }
            SourceEvent::SecurityHub { envelope, .. } | SourceEvent::Macie { envelope, .. } => {
                Some(envelope.id.as_str())
            }
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

/// Says which parser owns `event`.
pub fn classify(event: &Value) -> Result<SourceEvent<'_>, SourceError> {
    if !event.is_object() {
        return Err(SourceError::NotAnObject);
    }
    if let Some(envelope) = Envelope::read(event) {
        let detail = &event["detail"];
        let dt = envelope.detail_type.as_str();
        return match (envelope.source.as_str(), dt) {
            ("aws.guardduty", "GuardDuty Finding") => Ok(SourceEvent::GuardDuty {
                finding: detail,
                envelope: Some(envelope),
            }),
            ("aws.securityhub", d)
                if d.starts_with("Security Hub Findings")
                    || d.starts_with("Findings Imported")
                    || securityhub::EventKind::from_detail_type(d).is_some() =>
            {
                Ok(SourceEvent::SecurityHub { detail, envelope })
            }
            ("aws.macie", "Macie Finding") => Ok(SourceEvent::Macie {
                finding: detail,
                envelope,
            }),
            (_, d) if CLOUDTRAIL_DETAIL_TYPES.contains(&d) => Ok(SourceEvent::CloudTrail {
                record: detail,
                envelope: Some(envelope),
            }),
            (source, detail_type) => Err(SourceError::Unsupported {
                event_source: source.to_string(),
                detail_type: detail_type.to_string(),
            }),
        };
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

/// The findings in an event: its source's parser reads them, and a CloudTrail
/// record gives one finding per rule of `detector` that matches it (none
/// without a detector).
pub fn findings(
    event: SourceEvent<'_>,
    detector: Option<&dyn Detector>,
) -> Result<Vec<Finding>, SourceError> {
    Ok(match event {
        SourceEvent::GuardDuty { finding, envelope } => {
            vec![guardduty::parse(finding, envelope.as_ref())?]
        }
        SourceEvent::CloudTrail { record, envelope } => {
            let _detect = tracing::info_span!("detect").entered();
            let Some(detector) = detector else {
                return Ok(Vec::new());
            };
            let mut hits: Vec<&RuleMeta> = Vec::new();
            detector.detect(record, &mut hits);
            hits.into_iter()
                .map(|rule| cloudtrail::finding(record, envelope.as_ref(), rule))
                .collect()
        }
        SourceEvent::SecurityHub { detail, envelope } => securityhub::parse(detail, &envelope)?,
        SourceEvent::Macie { finding, envelope } => {
            vec![macie::parse(finding, Some(&envelope))?]
        }
    })
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
}

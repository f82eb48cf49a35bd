//! Security Hub findings into [`Finding`]s.
//!
//! Three event families arrive from `aws.securityhub`:
//! - the CSPM's ASFF events: `Security Hub Findings - Imported` (and the older
//!   `Security Hub Findings`) and `Security Hub Findings - Custom Action`, with
//!   one or more findings in `detail.findings[]`;
//! - the newer Security Hub's `Findings Imported V2`, with OCSF findings in
//!   `detail.findings[]`;
//! - `Security Hub Insight Results`, which carry counts, not findings: they
//!   parse to no finding at all rather than to an error.
//!
//! Security Hub is a hub: most of what it sends was produced by another product
//! (Inspector, Config, Macie, GuardDuty, partners). [`Finding::source`] is
//! Security Hub and [`Finding::product`] the real producer. GuardDuty and Macie
//! findings also reach Vigil directly, so for those this parser rebuilds what
//! the direct parser would have produced (the native finding type, the same
//! primary resource id and actor) so both copies share one fingerprint, and
//! [`forwarded_from`] lets the pipeline keep the copy without alerting twice.
//!
//! The readers live by format: `asff` (the CSPM's ASFF) and `ocsf` (the newer
//! Security Hub's OCSF), with `origin` (which product is behind a finding) and
//! `product_fields` (ASFF's flat `ProductFields` map) beside them; what both
//! formats share is here.
//!
//! As everywhere in `sources`, a field that is missing or oddly typed is
//! skipped, never fatal: only a finding without any id is refused, and one
//! unreadable finding does not cost the others in the same event.

mod asff;
mod ocsf;
mod origin;
mod product_fields;

use serde_json::Value;

use crate::json;
use crate::model::{Finding, Resource, Source, Tactic};
use crate::sources::guardduty::PRODUCT_GUARDDUTY;
use crate::sources::macie::PRODUCT_MACIE;
use crate::sources::{Envelope, InvalidFinding, Parsed, SourceError};
use crate::text;

pub use asff::parse_asff;
pub use ocsf::parse_ocsf;

/// The Security Hub EventBridge detail-types Vigil recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `Security Hub Findings - Imported`, and `Security Hub Findings` as older
    /// integrations still send it: ASFF findings.
    Imported,
    /// `Security Hub Findings - Custom Action`: findings a person sent from the
    /// console with a custom action.
    CustomAction,
    /// `Security Hub Insight Results`: result counts of an insight, no findings.
    InsightResults,
    /// `Findings Imported V2`: OCSF findings from the newer Security Hub.
    ImportedV2,
}

impl EventKind {
    /// Every detail-type in [`EventKind::from_detail_type`], for event patterns and tests.
    pub const DETAIL_TYPES: [&'static str; 5] = [
        "Security Hub Findings - Imported",
        "Security Hub Findings",
        "Security Hub Findings - Custom Action",
        "Security Hub Insight Results",
        "Findings Imported V2",
    ];

    pub fn from_detail_type(detail_type: &str) -> Option<EventKind> {
        match detail_type {
            "Security Hub Findings - Imported" | "Security Hub Findings" => {
                Some(EventKind::Imported)
            }
            "Security Hub Findings - Custom Action" => Some(EventKind::CustomAction),
            "Security Hub Insight Results" => Some(EventKind::InsightResults),
            "Findings Imported V2" => Some(EventKind::ImportedV2),
            _ => None,
        }
    }

    /// Whether events of this kind carry findings.
    fn carries_findings(self) -> bool {
        self != EventKind::InsightResults
    }
}

/// Parses the `detail` of an `aws.securityhub` event into its findings
/// ([`parse_counted`] without the skipped ones).
pub fn parse(detail: &Value, envelope: &Envelope) -> Result<Vec<Finding>, SourceError> {
    parse_counted(detail, envelope).map(|p| p.findings)
}

/// Parses the `detail` of an `aws.securityhub` event into its findings, and
/// the ones it skipped.
///
/// Insight results give an empty list. Each finding is read as ASFF or OCSF by
/// its shape, so a detail-type Vigil does not know yet still works. A finding
/// that cannot be read (no `Id`) is logged with its place in the event and
/// returned in [`Parsed::invalid`] (the pipeline counts it in the
/// `InvalidFindings` metric) while the others are read; the event fails only
/// when it carried findings and none could be read (a retry would not help,
/// but the dead-letter queue keeps it for a look).
pub fn parse_counted(detail: &Value, envelope: &Envelope) -> Result<Parsed, SourceError> {
    let kind = EventKind::from_detail_type(&envelope.detail_type);
    if kind.is_some_and(|k| !k.carries_findings()) {
        return Ok(Parsed::default());
    }
    let findings: &[Value] = match json::field(detail, "findings").and_then(Value::as_array) {
        Some(list) => list,
        // A bare finding, as replay reads one.
        None if is_asff(detail) || is_ocsf(detail) => std::slice::from_ref(detail),
        None => return Err(missing("detail.findings")),
    };
    let action = json::string(detail, &["actionName"]);
    let mut out = Parsed::default();
    for (index, raw) in findings.iter().enumerate() {
        let parsed = if is_ocsf(raw) {
            parse_ocsf(raw, Some(envelope))
        } else {
            parse_asff(raw, Some(envelope))
        };
        match parsed {
            Ok(mut f) => {
                if kind == Some(EventKind::CustomAction) {
                    if let Some(a) = &action {
                        f.evidence.insert("custom_action".into(), a.clone());
                    }
                }
                out.findings.push(f);
            }
            Err(error) => {
                tracing::error!(
                    index,
                    of = findings.len(),
                    error = %error,
                    event_id = %envelope.id,
                    "Security Hub finding skipped: detail.findings[{index}] cannot be read"
                );
                out.invalid.push(InvalidFinding { index, error });
            }
        }
    }
    if out.findings.is_empty() && !out.invalid.is_empty() {
        return Err(out.invalid.swap_remove(0).error);
    }
    Ok(out)
}

/// The Vigil source that also delivers this finding directly, when `f` is a
/// Security Hub copy of a GuardDuty, Macie, Inspector, IAM Access Analyzer or
/// AWS Config finding (by the product Security Hub names). The pipeline uses
/// it to keep the copy without alerting twice (`VIGIL_SECURITYHUB_SKIP_*`):
/// the direct path alerts, the copy is kept.
pub fn forwarded_from(f: &Finding) -> Option<Source> {
    if f.source != Source::SecurityHub {
        return None;
    }
    let product = f.product.trim().to_ascii_lowercase();
    let product = product
        .strip_prefix("amazon ")
        .or_else(|| product.strip_prefix("aws "))
        .unwrap_or(&product);
    match product {
        p if p.eq_ignore_ascii_case(PRODUCT_GUARDDUTY) => Some(Source::GuardDuty),
        p if p.eq_ignore_ascii_case(PRODUCT_MACIE) => Some(Source::Macie),
        "inspector" => Some(Source::Inspector),
        "iam access analyzer" | "access analyzer" => Some(Source::AccessAnalyzer),
        "config" => Some(Source::Config),
        _ => None,
    }
}

/// OCSF findings have `finding_info` or a `class_uid`; ASFF ones `SchemaVersion`
/// and PascalCase keys.
fn is_ocsf(v: &Value) -> bool {
    v.get("finding_info").is_some() || v.get("class_uid").is_some()
}

fn is_asff(v: &Value) -> bool {
    v.get("SchemaVersion").is_some() && v.get("ProductArn").is_some()
}

/// A Security Hub finding outside any EventBridge envelope: one ASFF finding,
/// or a `GetFindings` response (`{"Findings": [...]}`).
pub(crate) fn is_bare(v: &Value) -> bool {
    // GuardDuty's `GetFindings` also answers `{"Findings": [...]}`: only ASFF
    // findings (with a `ProductArn`) are Security Hub's.
    is_asff(v)
        || v.get("Findings")
            .and_then(Value::as_array)
            .and_then(|f| f.first())
            .is_some_and(is_asff)
}

// What the ASFF and OCSF readers share.

/// Resources kept per finding: some products list hundreds, an alert needs a few.
const MAX_RESOURCES: usize = 20;

/// Longest evidence value taken from a finding's free-form fields.
const MAX_EVIDENCE_CHARS: usize = 256;

/// Longest list (vulnerability ids, packages, standards) kept as evidence.
const MAX_LIST_ITEMS: usize = 10;

fn missing(field: &'static str) -> SourceError {
    SourceError::MissingField {
        source_kind: Source::SecurityHub,
        field,
    }
}

/// Strings of a JSON array, skipping anything else.
fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().filter(|s| !s.is_empty()).map(str::to_string))
        .collect()
}

fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

fn port(v: Option<&Value>) -> Option<u16> {
    v.and_then(|p| match p {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
    .and_then(|p| u16::try_from(p).ok())
}

/// Evidence text, kept short.
fn put(f: &mut Finding, key: &str, value: impl AsRef<str>) {
    let value = value.as_ref().trim();
    if !value.is_empty() {
        f.evidence
            .insert(key.to_string(), text::truncate(value, MAX_EVIDENCE_CHARS));
    }
}

fn put_list(f: &mut Finding, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let mut shown: Vec<&str> = items
        .iter()
        .take(MAX_LIST_ITEMS)
        .map(String::as_str)
        .collect();
    shown.dedup();
    let more = items.len().saturating_sub(MAX_LIST_ITEMS);
    let mut s = shown.join(", ");
    if more > 0 {
        s.push_str(&format!(" (+{more} more)"));
    }
    put(f, key, s);
}

/// ATT&CK tactics from Security Hub's `TTPs/<tactic>/...` types.
fn tactics_from_types(types: &[String]) -> Vec<Tactic> {
    let mut out: Vec<Tactic> = Vec::new();
    for t in types {
        let mut parts = t.split('/');
        if parts.next().map(str::trim) == Some("TTPs") {
            if let Some(tactic) = parts.next().and_then(|p| Tactic::parse(p.trim())) {
                if !out.contains(&tactic) {
                    out.push(tactic);
                }
            }
        }
    }
    out
}

/// When the account itself is all a finding is about, it is about the account.
fn ensure_resource(f: &mut Finding) {
    if f.resources.is_empty() && !f.account_id.is_empty() {
        f.resources
            .push(Resource::new("AwsAccount", f.account_id.clone()));
    }
    for r in &mut f.resources {
        if r.region.is_none() && !f.region.is_empty() && r.resource_type != "AwsAccount" {
            r.region = Some(f.region.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_finding_without_id_is_a_typed_error_and_others_survive() {
        assert!(matches!(
            parse_asff(&json!({"Title": "x"}), None),
            Err(SourceError::MissingField { field: "Id", .. })
        ));
        assert!(parse_asff(&json!("text"), None).is_err());
        let env = Envelope {
            detail_type: "Security Hub Findings - Imported".into(),
            ..Envelope::default()
        };
        let detail =
            json!({"findings": [{"Title": "no id"}, {"Id": "ok", "Severity": {"Label": "LOW"}}]});
        let out = parse(&detail, &env).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "ok");
        assert!(parse(&json!({"findings": [{"Title": "no id"}]}), &env).is_err());
        assert!(parse(&json!({"findings": "nope"}), &env).is_err());
        assert!(parse(&json!({"findings": []}), &env).unwrap().is_empty());
    }

    #[test]
    fn bare_findings_are_recognised_by_shape() {
        let asff = json!({"SchemaVersion": "2018-10-08", "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/inspector", "Id": "x"});
        assert!(is_bare(&asff));
        assert!(is_bare(&json!({"Findings": [asff]})));
        // GuardDuty's GetFindings answer looks alike but has no ProductArn.
        assert!(!is_bare(
            &json!({"Findings": [{"SchemaVersion": "2.0", "Id": "g", "Type": "Recon:EC2/Portscan"}]})
        ));
        assert!(!is_bare(&json!({"Findings": []})));
    }
}

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
//! As everywhere in `sources`, a field that is missing or oddly typed is
//! skipped, never fatal: only a finding without any id is refused, and one
//! unreadable finding does not cost the others in the same event.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::json;
use crate::model::{
    Actor, ActorType, Finding, FindingStatus, Network, Resource, Severity, Source, Tactic,
    Technique,
};
use crate::ocsf;
use crate::sources::console::{percent_encode, ConsoleUrl, Partition};
use crate::sources::guardduty::{self, PRODUCT_GUARDDUTY};
use crate::sources::macie::{self, PRODUCT_MACIE};
use crate::sources::{Envelope, SourceError};
use crate::text;

/// Resources kept per finding: some products list hundreds, an alert needs a few.
const MAX_RESOURCES: usize = 20;
/// Scalar fields of the primary resource's `Details` kept as evidence.
const MAX_DETAIL_FIELDS: usize = 6;
/// Longest evidence value taken from a finding's free-form fields.
const MAX_EVIDENCE_CHARS: usize = 256;
/// Longest list (vulnerability ids, packages, standards) kept as evidence.
const MAX_LIST_ITEMS: usize = 10;

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
    pub fn carries_findings(self) -> bool {
        self != EventKind::InsightResults
    }
}

/// Parses the `detail` of an `aws.securityhub` event into its findings.
///
/// Insight results give an empty list. Each finding is read as ASFF or OCSF by
/// its shape, so a detail-type Vigil does not know yet still works. A finding
/// that cannot be read is logged and skipped; the event fails only when it
/// carried findings and none could be read (a retry would not help, but the
/// dead-letter queue keeps it for a look).
pub fn parse(detail: &Value, envelope: &Envelope) -> Result<Vec<Finding>, SourceError> {
    let kind = EventKind::from_detail_type(&envelope.detail_type);
    if kind.is_some_and(|k| !k.carries_findings()) {
        return Ok(Vec::new());
    }
    let findings: &[Value] = match json::field(detail, "findings").and_then(Value::as_array) {
        Some(list) => list,
        // A bare finding, as replay reads one.
        None if is_asff(detail) || is_ocsf(detail) => std::slice::from_ref(detail),
        None => return Err(missing("detail.findings")),
    };
    let action = json::string(detail, &["actionName"]);
    let mut out = Vec::with_capacity(findings.len());
    let mut first_error = None;
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
                out.push(f);
            }
            Err(e) => {
                tracing::warn!(index, error = %e, event_id = %envelope.id, "Security Hub finding skipped");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

/// The Vigil source that also delivers this finding directly, when `f` is a
/// Security Hub copy of a GuardDuty or Macie finding. The pipeline uses it to
/// keep the copy without alerting twice (`VIGIL_SECURITYHUB_SKIP_*`).
pub fn forwarded_from(f: &Finding) -> Option<Source> {
    if f.source != Source::SecurityHub {
        return None;
    }
    match f.product.as_str() {
        PRODUCT_GUARDDUTY => Some(Source::GuardDuty),
        PRODUCT_MACIE => Some(Source::Macie),
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
pub fn is_bare(v: &Value) -> bool {
    // GuardDuty's `GetFindings` also answers `{"Findings": [...]}`: only ASFF
    // findings (with a `ProductArn`) are Security Hub's.
    is_asff(v)
        || v.get("Findings")
            .and_then(Value::as_array)
            .and_then(|f| f.first())
            .is_some_and(is_asff)
}

fn missing(field: &'static str) -> SourceError {
    SourceError::MissingField {
        source_kind: Source::SecurityHub,
        field,
    }
}

/// Which product behind Security Hub, where Vigil has a direct parser too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    GuardDuty,
    Macie,
    Other,
}

impl Origin {
    fn from_name(name: &str) -> Origin {
        if name.eq_ignore_ascii_case("guardduty") || name.eq_ignore_ascii_case("amazon guardduty") {
            Origin::GuardDuty
        } else if name.eq_ignore_ascii_case("macie") || name.eq_ignore_ascii_case("amazon macie") {
            Origin::Macie
        } else {
            Origin::Other
        }
    }

    /// From a Security Hub product ARN (`...:product/aws/guardduty`, or
    /// `...:productv2/aws/guardduty` in the newer Security Hub).
    fn from_product_arn(arn: &str) -> Origin {
        if arn.ends_with("/aws/guardduty") {
            Origin::GuardDuty
        } else if arn.ends_with("/aws/macie") {
            Origin::Macie
        } else {
            Origin::Other
        }
    }

    fn of_asff(v: &Value, pf: Option<&Map<String, Value>>) -> Origin {
        let names = [
            json::str_at(v, &["ProductName"]),
            pf_str(pf, PF_PRODUCT_NAME),
        ];
        for name in names.into_iter().flatten() {
            let o = Origin::from_name(name);
            if o != Origin::Other {
                return o;
            }
        }
        let o = Origin::from_product_arn(json::str_at(v, &["ProductArn"]).unwrap_or(""));
        if o != Origin::Other {
            return o;
        }
        let generated_by_guardduty = [json::str_at(v, &["GeneratorId"]), json::str_at(v, &["Id"])]
            .into_iter()
            .flatten()
            .any(|s| s.contains(":guardduty:"));
        if generated_by_guardduty {
            Origin::GuardDuty
        } else {
            Origin::Other
        }
    }

    fn product(self) -> Option<&'static str> {
        match self {
            Origin::GuardDuty => Some(PRODUCT_GUARDDUTY),
            Origin::Macie => Some(PRODUCT_MACIE),
            Origin::Other => None,
        }
    }
}

const PF_PRODUCT_NAME: &str = "aws/securityhub/ProductName";

/// A non-empty string value of `ProductFields` (a flat string map).
fn pf_str<'a>(pf: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a str> {
    pf?.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// The first `ProductFields` value whose key is `suffix` or ends with
/// `/suffix`: GuardDuty's fields come as `aws/guardduty/service/...` in newer
/// findings and without the prefix in older ones.
fn pf_suffix<'a>(pf: Option<&'a Map<String, Value>>, suffix: &str) -> Option<&'a str> {
    pf?.iter()
        .find(|(k, v)| {
            (k.as_str() == suffix
                || (k.ends_with(suffix) && k[..k.len() - suffix.len()].ends_with('/')))
                && v.as_str().is_some_and(|s| !s.is_empty())
        })
        .and_then(|(_, v)| v.as_str())
}

/// GuardDuty's own field from `ProductFields`, by its exact service path.
fn pf_guardduty<'a>(pf: Option<&'a Map<String, Value>>, field: &str) -> Option<&'a str> {
    pf_str(pf, &format!("aws/guardduty/service/{field}")).or_else(|| pf_str(pf, field))
}

/// Strings of a JSON array, skipping anything else.
fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().filter(|s| !s.is_empty()).map(str::to_string))
        .collect()
}

/// The native GuardDuty or Macie type from a Security Hub type, which replaces
/// the type's `/` with `-` and prefixes a namespace:
/// `TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce` →
/// `UnauthorizedAccess:EC2/SSHBruteForce`. A type already in native form is
/// returned as is; a type that is not one of theirs gives `None`.
pub fn native_type(security_hub_type: &str) -> Option<String> {
    let t = security_hub_type.trim();
    let colon = t.find(':')?;
    let start = t[..colon].rfind('/').map_or(0, |i| i + 1);
    let purpose = &t[start..colon];
    let rest = &t[colon + 1..];
    // `ThreatPurpose:ResourceType/ThreatFamily...`: both names PascalCase words.
    let word = |w: &str| {
        w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && w.chars().all(|c| c.is_ascii_alphanumeric())
    };
    if !word(purpose) {
        return None;
    }
    let (resource, family) = rest.split_once('/').or_else(|| rest.split_once('-'))?;
    if !word(resource) || family.is_empty() {
        return None;
    }
    Some(format!("{purpose}:{resource}/{family}"))
}

/// The short GuardDuty finding id from its ARN (`.../finding/<id>`), as the
/// direct parser uses it.
fn guardduty_short_id(id: &str) -> String {
    id.rsplit_once("/finding/")
        .map(|(_, short)| short)
        .filter(|s| !s.is_empty())
        .unwrap_or(id)
        .to_string()
}

/// Resource ids as people and the direct parsers know them: the account id
/// instead of `AWS::::Account:<id>`, the key id instead of
/// `AWS::IAM::AccessKey:<id>`, and for GuardDuty the instance id, which its own
/// events carry instead of the ARN. `None` for ids that name nothing.
fn resource_id(resource_type: &str, raw: &str, origin: Origin) -> Option<String> {
    let raw = raw.trim();
    let id = if let Some(account) = raw.strip_prefix("AWS::::Account:") {
        account
    } else if let Some(key) = raw.strip_prefix("AWS::IAM::AccessKey:") {
        key
    } else if origin == Origin::GuardDuty && resource_type == "AwsEc2Instance" {
        raw.rsplit_once(":instance/").map_or(raw, |(_, id)| id)
    } else {
        raw
    };
    (!id.is_empty() && !id.eq_ignore_ascii_case("null")).then(|| id.to_string())
}

/// Severity from a label or a 0–100 normalized score (ASFF's documented
/// ranges: 0 Informational, 1–39 Low, 40–69 Medium, 70–89 High, 90–100 Critical).
fn severity_from_normalized(score: f64) -> Severity {
    if score >= 90.0 {
        Severity::Critical
    } else if score >= 70.0 {
        Severity::High
    } else if score >= 40.0 {
        Severity::Medium
    } else if score >= 1.0 {
        Severity::Low
    } else {
        Severity::Informational
    }
}

/// The Security Hub console page of one finding. The search value is encoded
/// twice, as the console expects it.
fn console_link(partition: Partition, region: &str, id: &str) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    let id = percent_encode(&percent_encode(id));
    let url = ConsoleUrl::new(partition, region, "securityhub")?.view(format!(
        "/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253A{id}"
    ));
    Some(url.build())
}

/// The region of an ARN (`arn:aws:service:<region>:...`).
fn region_of(arn: Option<&str>) -> Option<String> {
    arn?.split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
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

fn port_str(s: Option<&str>) -> Option<u16> {
    s.and_then(|s| s.trim().parse().ok())
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

/// Tactics for a GuardDuty or Macie type when Security Hub named none: the
/// purpose when it is an ATT&CK tactic (GuardDuty), Macie's own inference.
fn tactics_for_origin(f: &mut Finding, origin: Origin) {
    if !f.tactics.is_empty() {
        return;
    }
    match origin {
        Origin::GuardDuty => {
            let purpose = f.finding_type.split(':').next().unwrap_or_default();
            if let Some(t) = Tactic::parse(purpose) {
                f.tactics.push(t);
            }
        }
        Origin::Macie => macie::map_attack(f),
        Origin::Other => {}
    }
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

// ------------------------------------------------------------------ ASFF

/// Parses one ASFF finding (from `detail.findings[]`, or bare as `GetFindings`
/// returns it).
pub fn parse_asff(v: &Value, envelope: Option<&Envelope>) -> Result<Finding, SourceError> {
    let obj = v.as_object().ok_or(missing("findings[]"))?;
    let pf = obj.get("ProductFields").and_then(Value::as_object);
    let asff_id = json::string(v, &["Id"])
        .or_else(|| pf_str(pf, "aws/securityhub/FindingId").map(str::to_string))
        .ok_or(missing("Id"))?;
    let origin = Origin::of_asff(v, pf);

    let mut types = string_list(obj.get("Types"));
    if types.is_empty() {
        types = string_list(json::path(v, &["FindingProviderFields", "Types"]));
    }
    let finding_type = asff_type(v, pf, origin, &types);
    let id = match origin {
        Origin::GuardDuty => guardduty_short_id(&asff_id),
        _ => asff_id.clone(),
    };
    let mut f = Finding::new(Source::SecurityHub, id, finding_type);
    f.product = asff_product(v, pf, origin);
    f.title = json::string(v, &["Title"]).unwrap_or_else(|| f.finding_type.clone());
    f.description = json::string(v, &["Description"]).unwrap_or_default();
    read_asff_severity(&mut f, v, pf, origin);

    let product_arn = json::str_at(v, &["ProductArn"]);
    f.account_id = json::string(v, &["AwsAccountId"])
        .or_else(|| {
            envelope
                .map(|e| e.account.clone())
                .filter(|a| !a.is_empty())
        })
        .unwrap_or_default();
    // Security Hub fills this in from Organizations where it can.
    f.account_name = json::string(v, &["AwsAccountName"]);
    f.region = json::string(v, &["Region"])
        .or_else(|| first_resource_region(v))
        .or_else(|| region_of(product_arn))
        .or_else(|| envelope.map(|e| e.region.clone()).filter(|r| !r.is_empty()))
        .unwrap_or_default();
    f.time = json::time_at(v, &["UpdatedAt"])
        .or_else(|| json::time_at(v, &["CreatedAt"]))
        .or_else(|| envelope.and_then(|e| e.time))
        .unwrap_or_else(chrono::Utc::now);
    f.first_seen =
        json::time_at(v, &["FirstObservedAt"]).or_else(|| json::time_at(v, &["CreatedAt"]));
    f.last_seen = json::time_at(v, &["LastObservedAt"]);
    f.event_id = envelope.map(|e| e.id.clone()).filter(|id| !id.is_empty());
    f.status = asff_status(v);

    read_asff_resources(&mut f, v, origin);
    read_asff_network(&mut f, v, pf, origin);
    read_asff_context(&mut f, v, pf, &types);
    if origin == Origin::GuardDuty {
        read_guardduty_fields(&mut f, pf);
    }
    f.tactics = tactics_from_types(&types);
    tactics_for_origin(&mut f, origin);

    if f.id != asff_id {
        f.evidence.insert("securityhub_id".into(), asff_id.clone());
    }
    f.links.console = console_link(Partition::of_arn(product_arn), &f.region, &asff_id);
    f.sample |= asff_sample(pf) || guardduty::has_placeholder(&f);
    ensure_resource(&mut f);
    Ok(f)
}

fn first_resource_region(v: &Value) -> Option<String> {
    json::field(v, "Resources")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|r| json::string(r, &["Region"]))
}

/// The real product: GuardDuty and Macie by their canonical names, then what
/// the finding says, then the product ARN's last part.
fn asff_product(v: &Value, pf: Option<&Map<String, Value>>, origin: Origin) -> String {
    if let Some(p) = origin.product() {
        return p.to_string();
    }
    json::string(v, &["ProductName"])
        .or_else(|| pf_str(pf, PF_PRODUCT_NAME).map(str::to_string))
        .or_else(|| {
            json::str_at(v, &["ProductArn"])
                .and_then(|arn| arn.rsplit('/').next())
                .map(product_from_arn_tail)
        })
        .or_else(|| json::string(v, &["CompanyName"]))
        .unwrap_or_else(|| "Security Hub".to_string())
}

/// AWS integrations' product ARN ends (`product/aws/<name>`) as the console names them.
fn product_from_arn_tail(tail: &str) -> String {
    match tail {
        "securityhub" => "Security Hub",
        "inspector" => "Inspector",
        "config" => "Config",
        "access-analyzer" => "IAM Access Analyzer",
        "firewall-manager" => "Firewall Manager",
        "ssm-patch-manager" => "Systems Manager Patch Manager",
        "health" => "Health",
        "guardduty" => PRODUCT_GUARDDUTY,
        "macie" => PRODUCT_MACIE,
        other => other,
    }
    .to_string()
}

/// What fired, as stably as the product allows: GuardDuty's and Macie's native
/// type, a control id, a Config rule name, a vulnerability id, the generator,
/// the first type.
fn asff_type(
    v: &Value,
    pf: Option<&Map<String, Value>>,
    origin: Origin,
    types: &[String],
) -> String {
    if origin != Origin::Other {
        if let Some(t) = types.iter().find_map(|t| native_type(t)) {
            return t;
        }
    }
    json::string(v, &["Compliance", "SecurityControlId"])
        .or_else(|| pf_str(pf, "ControlId").map(str::to_string))
        .or_else(|| pf_str(pf, "aws/config/ConfigRuleName").map(str::to_string))
        .or_else(|| vulnerability_ids(v).into_iter().next())
        // GuardDuty's generator is its detector: not a type.
        .or_else(|| {
            if origin == Origin::Other {
                json::string(v, &["GeneratorId"]).map(|g| short_generator(&g))
            } else {
                None
            }
        })
        .or_else(|| types.first().cloned())
        .unwrap_or_else(|| "Unknown".to_string())
}

/// CIS 1.2 control generators are ARNs (`arn:aws:securityhub:::ruleset/cis-...`):
/// the part after `ruleset/` says the same in fewer characters.
fn short_generator(generator: &str) -> String {
    match generator.split_once(":ruleset/") {
        Some((prefix, rest)) if prefix.starts_with("arn:") && !rest.is_empty() => rest.to_string(),
        _ => generator.to_string(),
    }
}

fn vulnerability_ids(v: &Value) -> Vec<String> {
    json::field(v, "Vulnerabilities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| json::string(x, &["Id"]))
        .collect()
}

/// `Severity.Label`, then the provider's label, then the 0–100 `Normalized`
/// score, then `Original`, then the product's own score.
fn read_asff_severity(f: &mut Finding, v: &Value, pf: Option<&Map<String, Value>>, origin: Origin) {
    let labels = [
        json::string(v, &["Severity", "Label"]),
        json::string(v, &["FindingProviderFields", "Severity", "Label"]),
        pf_str(pf, "aws/securityhub/SeverityLabel").map(str::to_string),
    ];
    for label in labels.into_iter().flatten() {
        if let Ok(s) = label.parse::<Severity>() {
            f.severity = s;
            f.source_severity = Some(label);
            return;
        }
    }
    if let Some(n) = json::number(v, &["Severity", "Normalized"]) {
        f.severity = severity_from_normalized(n);
        f.source_severity = Some(format!("normalized {n}"));
        return;
    }
    if let Some(original) = json::string(v, &["Severity", "Original"]) {
        if let Ok(s) = original.parse::<Severity>() {
            f.severity = s;
            f.source_severity = Some(original);
            return;
        }
    }
    let product = json::number(v, &["Severity", "Product"])
        .or_else(|| json::number(v, &["Severity", "Original"]));
    if let Some(score) = product {
        f.severity = match origin {
            Origin::GuardDuty => Severity::from_guardduty(score),
            // Scores of 10 or less are on a 0–10 scale in practice.
            _ if score <= 10.0 => severity_from_normalized(score * 10.0),
            _ => severity_from_normalized(score),
        };
        f.source_severity = Some(format!("product {score}"));
        return;
    }
    // Security Hub always sends a severity; if it is lost, Medium keeps the
    // finding visible at the default threshold rather than hiding it.
    f.severity = Severity::Medium;
    f.evidence.insert(
        "severity_note".into(),
        "severity missing; assumed Medium".into(),
    );
}

/// Archived records, suppressed or resolved workflows and passed checks are
/// not active; everything else is.
fn asff_status(v: &Value) -> FindingStatus {
    if json::str_at(v, &["RecordState"]).is_some_and(|s| s.eq_ignore_ascii_case("ARCHIVED")) {
        return FindingStatus::Archived;
    }
    let workflow = json::str_at(v, &["Workflow", "Status"])
        .or_else(|| json::str_at(v, &["WorkflowState"]))
        .unwrap_or("")
        .to_ascii_uppercase();
    match workflow.as_str() {
        "SUPPRESSED" | "DEFERRED" => return FindingStatus::Suppressed,
        "RESOLVED" => return FindingStatus::Resolved,
        _ => {}
    }
    if json::str_at(v, &["Compliance", "Status"]).is_some_and(|s| s.eq_ignore_ascii_case("PASSED"))
    {
        return FindingStatus::Resolved;
    }
    FindingStatus::Active
}

fn asff_tags(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), value))
        })
        .collect()
}

fn read_asff_resources(f: &mut Finding, v: &Value, origin: Origin) {
    let mut targets: Vec<(Resource, &Value)> = Vec::new();
    let mut actors: Vec<(Resource, &Value)> = Vec::new();
    let mut actor = Actor::default();
    let list = json::field(v, "Resources").and_then(Value::as_array);
    for r in list.into_iter().flatten().take(MAX_RESOURCES * 2) {
        let resource_type = json::string(r, &["Type"]).unwrap_or_else(|| "Other".into());
        if resource_type == "AwsIamAccessKey" && actor.access_key_id.is_none() {
            read_access_key_actor(&mut actor, r);
        }
        let Some(id) =
            json::str_at(r, &["Id"]).and_then(|raw| resource_id(&resource_type, raw, origin))
        else {
            continue;
        };
        if resource_type == "AwsIamAccessKey" {
            actor.access_key_id.get_or_insert_with(|| id.clone());
        }
        let mut res = Resource::new(resource_type, id);
        res.region = json::string(r, &["Region"]);
        res.tags = asff_tags(json::field(r, "Tags"));
        let is_actor =
            json::str_at(r, &["ResourceRole"]).is_some_and(|s| s.eq_ignore_ascii_case("actor"));
        if is_actor {
            actors.push((res, r));
        } else {
            targets.push((res, r));
        }
    }
    // GuardDuty names the access key as the resource only when the key is what
    // the finding is about; otherwise the key is the actor.
    if origin == Origin::GuardDuty
        && targets
            .iter()
            .any(|(r, _)| r.resource_type != "AwsIamAccessKey")
    {
        targets.retain(|(r, _)| r.resource_type != "AwsIamAccessKey");
    }
    if origin != Origin::GuardDuty && actor.arn.is_none() {
        // Partners name the acting principal as a resource with role Actor.
        actor.arn = actors
            .iter()
            .find(|(r, _)| r.resource_type.starts_with("AwsIam") && r.id.starts_with("arn:"))
            .map(|(r, _)| r.id.clone());
    }
    if let Some((_, raw)) = targets.first().or(actors.first()) {
        read_details(f, raw);
    }
    f.resources = targets
        .into_iter()
        .chain(actors)
        .map(|(r, _)| r)
        .take(MAX_RESOURCES)
        .collect();
    if actor != Actor::default() {
        // The direct GuardDuty parser knows no principal ARN: neither may the
        // copy, or their fingerprints would differ.
        if origin == Origin::GuardDuty {
            actor.arn = None;
        }
        f.actor = Some(actor);
    }
}

/// The principal behind an access key (`Details.AwsIamAccessKey`).
fn read_access_key_actor(actor: &mut Actor, r: &Value) {
    let Some(d) = json::path(r, &["Details", "AwsIamAccessKey"]).filter(|d| d.is_object()) else {
        return;
    };
    if let Some(t) = json::str_at(d, &["PrincipalType"]) {
        actor.actor_type = ActorType::parse(t);
    }
    actor.user_name =
        json::string(d, &["UserName"]).or_else(|| json::string(d, &["PrincipalName"]));
    actor.principal_id = json::string(d, &["PrincipalId"]);
    actor.account_id = json::string(d, &["AccountId"]);
    actor.access_key_id = json::string(d, &["AccessKeyId"]).filter(|k| k != "null");
    actor.session_issuer = json::string(d, &["SessionContext", "SessionIssuer", "Arn"]);
    actor.mfa_used = json::boolean(d, &["SessionContext", "Attributes", "MfaAuthenticated"]);
}

/// A few scalar fields of the primary resource's `Details`, as evidence: enough
/// to recognise the resource, never the whole (sometimes huge) object.
fn read_details(f: &mut Finding, r: &Value) {
    let Some(details) = json::field(r, "Details").and_then(Value::as_object) else {
        return;
    };
    let mut taken = 0;
    for inner in details.values().filter_map(Value::as_object) {
        for (k, v) in inner {
            if taken >= MAX_DETAIL_FIELDS {
                return;
            }
            let value = match v {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            put(f, &format!("detail.{k}"), value);
            taken += 1;
        }
    }
}

/// The remote side: ASFF `Network`, then `Action` (GuardDuty's action in
/// Security Hub form), then GuardDuty's flattened `ProductFields`.
fn read_asff_network(f: &mut Finding, v: &Value, pf: Option<&Map<String, Value>>, origin: Origin) {
    let mut net = Network::default();
    if let Some(n) = json::field(v, "Network").filter(|n| n.is_object()) {
        let direction = json::string(n, &["Direction"]);
        let outbound = direction.as_deref() == Some("OUT");
        let (remote, local) = if outbound {
            ("Destination", "Source")
        } else {
            ("Source", "Destination")
        };
        net.remote_ip = json::string(n, &[&format!("{remote}IpV4")])
            .or_else(|| json::string(n, &[&format!("{remote}IpV6")]));
        net.remote_port = port(json::field(n, &format!("{remote}Port")));
        net.local_port = port(json::field(n, &format!("{local}Port")));
        net.domain = json::string(n, &[&format!("{remote}Domain")]);
        net.protocol = json::string(n, &["Protocol"]);
        net.direction = direction.map(|d| match d.as_str() {
            "IN" => "INBOUND".to_string(),
            "OUT" => "OUTBOUND".to_string(),
            _ => d,
        });
    }
    if let Some(action) = json::field(v, "Action").filter(|a| a.is_object()) {
        read_action(f, &mut net, action);
    }
    if origin == Origin::GuardDuty {
        read_guardduty_network(f, &mut net, pf);
    }
    if let (Some(ip), Some(actor)) = (&net.remote_ip, f.actor.as_mut()) {
        actor.source_ip.get_or_insert_with(|| ip.clone());
    }
    f.network = net;
}

/// ASFF `Action`, read with the same camelCase names as GuardDuty's own
/// (the JSON helpers fall back to PascalCase).
fn read_action(f: &mut Finding, net: &mut Network, action: &Value) {
    if let Some(kind) = json::string(action, &["actionType"]) {
        put(f, "action_type", kind);
    }
    if let Some(a) = json::field(action, "awsApiCallAction") {
        read_remote_ip(net, json::field(a, "remoteIpDetails"));
        for (key, field) in [
            ("api", "api"),
            ("api_service", "serviceName"),
            ("caller_type", "callerType"),
        ] {
            if let Some(s) = json::string(a, &[field]) {
                put(f, key, s);
            }
        }
        fill(
            &mut net.domain,
            json::string(a, &["domainDetails", "domain"]),
        );
    }
    if let Some(a) = json::field(action, "networkConnectionAction") {
        read_remote_ip(net, json::field(a, "remoteIpDetails"));
        fill(
            &mut net.remote_port,
            port(json::path(a, &["remotePortDetails", "port"])),
        );
        fill(
            &mut net.local_port,
            port(json::path(a, &["localPortDetails", "port"])),
        );
        fill(&mut net.protocol, json::string(a, &["protocol"]));
        fill(
            &mut net.direction,
            json::string(a, &["connectionDirection"]),
        );
    }
    if let Some(a) = json::field(action, "dnsRequestAction") {
        fill(&mut net.domain, json::string(a, &["domain"]));
        fill(&mut net.protocol, json::string(a, &["protocol"]));
    }
    if let Some(first) = json::path(action, &["portProbeAction", "portProbeDetails"])
        .and_then(Value::as_array)
        .and_then(|d| d.first())
    {
        read_remote_ip(net, json::field(first, "remoteIpDetails"));
        fill(
            &mut net.local_port,
            port(json::path(first, &["localPortDetails", "port"])),
        );
        fill(&mut net.direction, Some("INBOUND".to_string()));
    }
}

fn read_remote_ip(net: &mut Network, details: Option<&Value>) {
    let Some(d) = details.filter(|d| d.is_object()) else {
        return;
    };
    fill(
        &mut net.remote_ip,
        json::string(d, &["ipAddressV4"]).or_else(|| json::string(d, &["ipAddressV6"])),
    );
    fill(
        &mut net.country,
        json::string(d, &["country", "countryName"])
            .or_else(|| json::string(d, &["country", "countryCode"])),
    );
    fill(&mut net.city, json::string(d, &["city", "cityName"]));
    fill(&mut net.asn, json::string(d, &["organization", "asn"]));
    fill(
        &mut net.organization,
        json::string(d, &["organization", "asnOrg"])
            .or_else(|| json::string(d, &["organization", "org"]))
            .or_else(|| json::string(d, &["organization", "isp"])),
    );
}

/// GuardDuty's network fields, flattened into `ProductFields` keys such as
/// `aws/guardduty/service/action/networkConnectionAction/remoteIpDetails/ipAddressV4`.
fn read_guardduty_network(f: &mut Finding, net: &mut Network, pf: Option<&Map<String, Value>>) {
    let s = |suffix: &str| pf_suffix(pf, suffix).map(str::to_string);
    fill(
        &mut net.remote_ip,
        s("remoteIpDetails/ipAddressV4").or_else(|| s("remoteIpDetails/ipAddressV6")),
    );
    fill(&mut net.country, s("remoteIpDetails/country/countryName"));
    fill(&mut net.city, s("remoteIpDetails/city/cityName"));
    fill(&mut net.asn, s("remoteIpDetails/organization/asn"));
    fill(
        &mut net.organization,
        s("remoteIpDetails/organization/asnOrg").or_else(|| s("remoteIpDetails/organization/org")),
    );
    fill(
        &mut net.remote_port,
        port_str(pf_suffix(pf, "remotePortDetails/port")),
    );
    fill(
        &mut net.local_port,
        port_str(pf_suffix(pf, "localPortDetails/port")),
    );
    fill(&mut net.direction, s("connectionDirection"));
    fill(
        &mut net.protocol,
        s("networkConnectionAction/protocol").or_else(|| s("dnsRequestAction/protocol")),
    );
    fill(
        &mut net.domain,
        s("dnsRequestAction/domain").or_else(|| s("domainDetails/domain")),
    );
    for (key, suffix) in [
        ("action_type", "action/actionType"),
        ("api", "awsApiCallAction/api"),
        ("api_service", "awsApiCallAction/serviceName"),
        ("error_code", "awsApiCallAction/errorCode"),
        ("caller_type", "awsApiCallAction/callerType"),
    ] {
        if let Some(v) = pf_suffix(pf, suffix) {
            if !f.evidence.contains_key(key) {
                put(f, key, v);
            }
        }
    }
}

/// GuardDuty's service fields: count, archived, feature, first/last seen.
fn read_guardduty_fields(f: &mut Finding, pf: Option<&Map<String, Value>>) {
    if let Some(count) = pf_guardduty(pf, "count").and_then(|c| c.trim().parse::<f64>().ok()) {
        if count.is_finite() {
            f.count = count.max(1.0) as u64;
        }
    }
    if pf_guardduty(pf, "archived").is_some_and(|a| a.eq_ignore_ascii_case("true"))
        && f.status == FindingStatus::Active
    {
        f.status = FindingStatus::Archived;
    }
    if let Some(feature) = pf_guardduty(pf, "featureName") {
        put(f, "feature", feature);
    }
    let seen = |field: &str| pf_guardduty(pf, field).and_then(|t| json::time(&Value::from(t)));
    if f.first_seen.is_none() {
        f.first_seen = seen("eventFirstSeen");
    }
    if f.last_seen.is_none() {
        f.last_seen = seen("eventLastSeen");
    }
    if let Some(lists) = pf_suffix(pf, "threatListName") {
        put(f, "threat_lists", lists);
    }
}

/// `sample` flags in `ProductFields`, flat (`.../additionalInfo/sample`) or
/// inside a JSON `additionalInfo` string.
fn asff_sample(pf: Option<&Map<String, Value>>) -> bool {
    let Some(pf) = pf else {
        return false;
    };
    pf.iter().any(|(k, v)| {
        let Some(s) = v.as_str() else {
            return false;
        };
        if k == "sample" || k.ends_with("/sample") {
            return s.eq_ignore_ascii_case("true");
        }
        if k == "additionalInfo" || k.ends_with("/additionalInfo") {
            return json::object_or_json_string(v)
                .is_some_and(|a| json::boolean(&a, &["sample"]) == Some(true));
        }
        false
    })
}

/// Everything else a responder wants: product, generator, types, compliance,
/// remediation, vulnerabilities, malware, the product's own link.
fn read_asff_context(
    f: &mut Finding,
    v: &Value,
    pf: Option<&Map<String, Value>>,
    types: &[String],
) {
    if let Some(arn) = json::string(v, &["ProductArn"]) {
        put(f, "product_arn", arn);
    }
    if let Some(company) = json::string(v, &["CompanyName"])
        .or_else(|| pf_str(pf, "aws/securityhub/CompanyName").map(str::to_string))
    {
        put(f, "company", company);
    }
    if let Some(generator) = json::string(v, &["GeneratorId"]) {
        put(f, "generator_id", generator);
    }
    if !types.is_empty() {
        put(f, "types", types.join(" | "));
    }
    if let Some(state) =
        json::string(v, &["Workflow", "Status"]).or_else(|| json::string(v, &["WorkflowState"]))
    {
        put(f, "workflow_status", state);
    }
    if let Some(state) = json::string(v, &["RecordState"]) {
        put(f, "record_state", state);
    }

    if let Some(status) = json::string(v, &["Compliance", "Status"]) {
        put(f, "compliance_status", status);
    }
    if let Some(reason) = json::path(v, &["Compliance", "StatusReasons"])
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| json::string(r, &["Description"]))
    {
        put(f, "compliance_reason", reason);
    }
    let control = json::string(v, &["Compliance", "SecurityControlId"])
        .or_else(|| pf_str(pf, "ControlId").map(str::to_string))
        .or_else(|| pf_str(pf, "RuleId").map(str::to_string));
    if let Some(control) = control {
        put(f, "control_id", control);
    }
    let mut standards: Vec<String> = json::path(v, &["Compliance", "AssociatedStandards"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| json::string(s, &["StandardsId"]))
        .collect();
    if standards.is_empty() {
        standards.extend(
            pf_str(pf, "StandardsArn")
                .or_else(|| pf_str(pf, "StandardsGuideArn"))
                .map(str::to_string),
        );
    }
    put_list(f, "standards", &standards);
    put_list(
        f,
        "requirements",
        &string_list(json::path(v, &["Compliance", "RelatedRequirements"])),
    );
    if let Some(rule) = pf_str(pf, "aws/config/ConfigRuleName") {
        put(f, "config_rule", rule);
    }

    f.remediation = json::string(v, &["Remediation", "Recommendation", "Text"])
        .filter(|t| !t.trim().eq_ignore_ascii_case("none provided"));
    f.links.remediation = json::string(v, &["Remediation", "Recommendation", "Url"])
        .or_else(|| pf_str(pf, "RecommendationUrl").map(str::to_string));

    let vulns = vulnerability_ids(v);
    put_list(f, "vulnerabilities", &vulns);
    let mut max_cvss: Option<f64> = None;
    let mut packages = Vec::new();
    for vuln in json::field(v, "Vulnerabilities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for c in json::field(vuln, "Cvss")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(score) = json::number(c, &["BaseScore"]) {
                max_cvss = Some(max_cvss.map_or(score, |m: f64| m.max(score)));
            }
        }
        for p in json::field(vuln, "VulnerablePackages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = json::string(p, &["Name"]) {
                let version = json::string(p, &["Version"]).unwrap_or_default();
                packages.push(format!("{name} {version}").trim().to_string());
            }
        }
        if let Some(fix) = json::string(vuln, &["FixAvailable"]) {
            put(f, "fix_available", fix);
        }
    }
    if let Some(score) = max_cvss {
        put(f, "cvss", format!("{score:.1}"));
    }
    put_list(f, "vulnerable_packages", &packages);

    let malware: Vec<String> = json::field(v, "Malware")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| json::string(m, &["Name"]))
        .collect();
    put_list(f, "malware", &malware);
    if let Some(url) = json::string(v, &["SourceUrl"]) {
        put(f, "source_url", url);
    }
}

// ------------------------------------------------------------------ OCSF (V2)

/// Parses one OCSF finding of the newer Security Hub (`Findings Imported V2`):
/// Detection, Compliance or Vulnerability findings alike.
pub fn parse_ocsf(v: &Value, envelope: Option<&Envelope>) -> Result<Finding, SourceError> {
    if !v.is_object() {
        return Err(missing("findings[]"));
    }
    let uid = json::string(v, &["finding_info", "uid"])
        .or_else(|| json::string(v, &["metadata", "uid"]))
        .ok_or(missing("finding_info.uid"))?;
    let product_name = json::string(v, &["metadata", "product", "name"]);
    let origin = match product_name.as_deref().map(Origin::from_name) {
        Some(o) if o != Origin::Other => o,
        _ => {
            Origin::from_product_arn(json::str_at(v, &["metadata", "product", "uid"]).unwrap_or(""))
        }
    };
    let types = string_list(json::path(v, &["finding_info", "types"]));
    let finding_type = ocsf_type(v, origin, &types);
    let id = match origin {
        Origin::GuardDuty => guardduty_short_id(&uid),
        _ => uid.clone(),
    };
    let mut f = Finding::new(Source::SecurityHub, id, finding_type);
    f.product = origin
        .product()
        .map(str::to_string)
        .or(product_name)
        .or_else(|| json::string(v, &["metadata", "product", "vendor_name"]))
        .unwrap_or_else(|| "Security Hub".to_string());
    f.title = json::string(v, &["finding_info", "title"]).unwrap_or_else(|| f.finding_type.clone());
    f.description = json::string(v, &["finding_info", "desc"])
        .or_else(|| json::string(v, &["message"]))
        .unwrap_or_default();
    read_ocsf_severity(&mut f, v);

    f.account_id = json::string(v, &["cloud", "account", "uid"])
        .or_else(|| {
            envelope
                .map(|e| e.account.clone())
                .filter(|a| !a.is_empty())
        })
        .unwrap_or_default();
    f.region = json::string(v, &["cloud", "region"])
        .or_else(|| {
            json::field(v, "resources")
                .and_then(Value::as_array)?
                .iter()
                .find_map(|r| json::string(r, &["region"]))
        })
        .or_else(|| envelope.map(|e| e.region.clone()).filter(|r| !r.is_empty()))
        .unwrap_or_default();
    f.time = ocsf_time(v, &["finding_info"], "modified_time")
        .or_else(|| ocsf_time(v, &[], "time"))
        .or_else(|| ocsf_time(v, &["finding_info"], "created_time"))
        .or_else(|| envelope.and_then(|e| e.time))
        .unwrap_or_else(chrono::Utc::now);
    f.first_seen = ocsf_time(v, &["finding_info"], "first_seen_time")
        .or_else(|| ocsf_time(v, &["finding_info"], "created_time"));
    f.last_seen = ocsf_time(v, &["finding_info"], "last_seen_time");
    f.count = json::number(v, &["count"])
        .map(|c| c.max(1.0) as u64)
        .unwrap_or(1);
    f.event_id = envelope.map(|e| e.id.clone()).filter(|id| !id.is_empty());
    f.status = ocsf_status(v);

    read_ocsf_resources(&mut f, v, origin);
    read_ocsf_evidences(&mut f, v, origin);
    read_ocsf_attacks(&mut f, v);
    if f.tactics.is_empty() {
        f.tactics = tactics_from_types(&types);
    }
    tactics_for_origin(&mut f, origin);
    read_ocsf_context(&mut f, v, &types);

    if f.id != uid {
        f.evidence.insert("securityhub_id".into(), uid);
    }
    f.links.console = json::string(v, &["finding_info", "src_url"]).or_else(|| {
        let partition =
            json::str_at(v, &["cloud", "partition"]).map_or(Partition::Aws, Partition::named);
        ConsoleUrl::new(partition, &f.region, "securityhub").map(|url| url.build())
    });
    f.sample |= guardduty::has_placeholder(&f);
    ensure_resource(&mut f);
    Ok(f)
}

/// OCSF times come as epoch milliseconds (`time`) and, in Security Hub, also
/// as RFC 3339 text (`time_dt`); the text wins when both are there.
fn ocsf_time(v: &Value, parent: &[&str], name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let base = if parent.is_empty() {
        Some(v)
    } else {
        json::path(v, parent)
    }?;
    json::time_at(base, &[&format!("{name}_dt")]).or_else(|| json::time_at(base, &[name]))
}

fn ocsf_type(v: &Value, origin: Origin, types: &[String]) -> String {
    if origin != Origin::Other {
        if let Some(t) = types.iter().find_map(|t| native_type(t)) {
            return t;
        }
    }
    json::string(v, &["compliance", "control"])
        .or_else(|| {
            json::field(v, "vulnerabilities")
                .and_then(Value::as_array)?
                .iter()
                .find_map(|x| json::string(x, &["cve", "uid"]))
        })
        .or_else(|| json::string(v, &["finding_info", "analytic", "uid"]))
        .or_else(|| types.first().cloned())
        .or_else(|| json::string(v, &["class_name"]))
        .unwrap_or_else(|| "Unknown".to_string())
}

/// `severity_id` 1–6 through [`ocsf::severity_from_id`]; Unknown (0) and Other
/// (99) fall back to the `severity` caption.
fn read_ocsf_severity(f: &mut Finding, v: &Value) {
    let caption = json::string(v, &["severity"]);
    match json::number(v, &["severity_id"]).map(|n| n as u64) {
        Some(id @ 1..=6) => {
            f.severity = ocsf::severity_from_id(id);
            f.source_severity = caption.or_else(|| Some(format!("severity_id {id}")));
        }
        _ => match caption.as_deref().map(str::parse::<Severity>) {
            Some(Ok(s)) => {
                f.severity = s;
                f.source_severity = caption;
            }
            _ => {
                f.severity = Severity::Medium;
                f.evidence.insert(
                    "severity_note".into(),
                    "severity missing; assumed Medium".into(),
                );
            }
        },
    }
}

/// OCSF `status_id`: 3 Suppressed, 4 Resolved, 5 Archived, 6 Deleted; a passed
/// compliance check is resolved too.
fn ocsf_status(v: &Value) -> FindingStatus {
    let by_id = match json::number(v, &["status_id"]).map(|n| n as u64) {
        Some(3) => Some(FindingStatus::Suppressed),
        Some(4) => Some(FindingStatus::Resolved),
        Some(5 | 6) => Some(FindingStatus::Archived),
        Some(1 | 2) => Some(FindingStatus::Active),
        _ => None,
    };
    let status = by_id.unwrap_or_else(|| {
        match json::str_at(v, &["status"])
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "suppressed" => FindingStatus::Suppressed,
            "resolved" => FindingStatus::Resolved,
            "archived" | "deleted" => FindingStatus::Archived,
            _ => FindingStatus::Active,
        }
    });
    let passed = json::number(v, &["compliance", "status_id"]) == Some(1.0)
        || json::str_at(v, &["compliance", "status"])
            .is_some_and(|s| s.eq_ignore_ascii_case("pass") || s.eq_ignore_ascii_case("passed"));
    if status == FindingStatus::Active && passed {
        FindingStatus::Resolved
    } else {
        status
    }
}

fn read_ocsf_resources(f: &mut Finding, v: &Value, origin: Origin) {
    let mut out = Vec::new();
    for r in json::field(v, "resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_RESOURCES)
    {
        let resource_type = json::string(r, &["type"]).unwrap_or_else(|| "Other".into());
        let raw = json::string(r, &["uid"]).or_else(|| json::string(r, &["name"]));
        let Some(id) = raw.and_then(|raw| resource_id(&resource_type, &raw, origin)) else {
            continue;
        };
        let mut res = Resource::new(resource_type, id);
        res.region = json::string(r, &["region"]);
        res.tags = json::field(r, "tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    json::string(t, &["name"])?,
                    json::string(t, &["value"]).unwrap_or_default(),
                ))
            })
            .collect();
        out.push(res);
    }
    // As with ASFF: GuardDuty's access key is the subject only when alone.
    if origin == Origin::GuardDuty && out.iter().any(|r| r.resource_type != "AwsIamAccessKey") {
        out.retain(|r| r.resource_type != "AwsIamAccessKey");
    }
    f.resources = out;
}

/// Actor and network from `evidences[]` (and a top-level `actor`, which some
/// producers use).
fn read_ocsf_evidences(f: &mut Finding, v: &Value, origin: Origin) {
    let mut actor = Actor::default();
    let mut net = Network::default();
    let evidences = json::field(v, "evidences").and_then(Value::as_array);
    let sources = std::iter::once(v).chain(evidences.into_iter().flatten());
    for e in sources {
        if let Some(a) = json::field(e, "actor").filter(|a| a.is_object()) {
            read_ocsf_actor(&mut actor, a, origin);
        }
        if let Some(src) = json::field(e, "src_endpoint").filter(|s| s.is_object()) {
            fill(&mut net.remote_ip, json::string(src, &["ip"]));
            fill(&mut net.remote_port, port(json::field(src, "port")));
            fill(&mut net.domain, json::string(src, &["domain"]));
            fill(
                &mut net.country,
                json::string(src, &["location", "country"]),
            );
            fill(&mut net.city, json::string(src, &["location", "city"]));
            fill(
                &mut net.asn,
                json::string(src, &["autonomous_system", "number"]),
            );
            fill(
                &mut net.organization,
                json::string(src, &["autonomous_system", "name"]),
            );
        }
        if let Some(dst) = json::field(e, "dst_endpoint").filter(|d| d.is_object()) {
            fill(&mut net.local_port, port(json::field(dst, "port")));
        }
        if let Some(c) = json::field(e, "connection_info").filter(|c| c.is_object()) {
            fill(&mut net.direction, json::string(c, &["direction"]));
            fill(&mut net.protocol, json::string(c, &["protocol_name"]));
        }
        if let Some(op) = json::string(e, &["api", "operation"]) {
            if !f.evidence.contains_key("api") {
                put(f, "api", op);
            }
        }
        if let Some(svc) = json::string(e, &["api", "service", "name"]) {
            if !f.evidence.contains_key("api_service") {
                put(f, "api_service", svc);
            }
        }
    }
    if let Some(ip) = &net.remote_ip {
        actor.source_ip.get_or_insert_with(|| ip.clone());
    }
    let only_ip = Actor {
        source_ip: actor.source_ip.clone(),
        ..Actor::default()
    };
    if actor != Actor::default() && actor != only_ip {
        f.actor = Some(actor);
    }
    f.network = net;
}

fn read_ocsf_actor(actor: &mut Actor, a: &Value, origin: Origin) {
    if let Some(user) = json::field(a, "user").filter(|u| u.is_object()) {
        if let Some(t) = json::str_at(user, &["type"]) {
            if actor.actor_type == ActorType::Unknown {
                actor.actor_type = ActorType::parse(t);
            }
        }
        fill(&mut actor.user_name, json::string(user, &["name"]));
        if let Some(uid) = json::string(user, &["uid"]) {
            // The direct GuardDuty parser knows no principal ARN: neither may the copy.
            if uid.starts_with("arn:") {
                if origin != Origin::GuardDuty {
                    fill(&mut actor.arn, Some(uid));
                }
            } else {
                fill(&mut actor.principal_id, Some(uid));
            }
        }
        fill(
            &mut actor.account_id,
            json::string(user, &["account", "uid"]),
        );
        fill(
            &mut actor.access_key_id,
            json::string(user, &["credential_uid"]),
        );
    }
    if let Some(session) = json::field(a, "session").filter(|s| s.is_object()) {
        fill(
            &mut actor.session_issuer,
            json::string(session, &["issuer"]),
        );
        fill(&mut actor.mfa_used, json::boolean(session, &["is_mfa"]));
    }
    if let Some(ua) = json::string(a, &["user_agent"]) {
        fill(&mut actor.user_agent, Some(ua));
    }
}

/// ATT&CK from `attacks[]`: `tactic` (or the older `tactics[]`), `technique`,
/// `sub_technique`.
fn read_ocsf_attacks(f: &mut Finding, v: &Value) {
    for a in json::field(v, "attacks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let tactics = json::field(a, "tactic").into_iter().chain(
            json::field(a, "tactics")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        for t in tactics {
            let parsed = json::str_at(t, &["uid"])
                .and_then(Tactic::parse)
                .or_else(|| json::str_at(t, &["name"]).and_then(Tactic::parse));
            if let Some(t) = parsed {
                if !f.tactics.contains(&t) {
                    f.tactics.push(t);
                }
            }
        }
        for key in ["technique", "sub_technique"] {
            if let Some(id) = json::string(a, &[key, "uid"]) {
                let t = Technique {
                    id,
                    name: json::string(a, &[key, "name"]),
                };
                if !f.techniques.contains(&t) {
                    f.techniques.push(t);
                }
            }
        }
    }
}

fn read_ocsf_context(f: &mut Finding, v: &Value, types: &[String]) {
    if let Some(class) = json::string(v, &["class_name"]) {
        put(f, "class", class);
    }
    if let Some(uid) = json::string(v, &["metadata", "product", "uid"]) {
        put(f, "product_uid", uid);
    }
    if let Some(vendor) = json::string(v, &["metadata", "product", "vendor_name"]) {
        put(f, "company", vendor);
    }
    if !types.is_empty() {
        put(f, "types", types.join(" | "));
    }
    if let Some(status) = json::string(v, &["status"]) {
        put(f, "workflow_status", status);
    }
    if let Some(c) = json::field(v, "compliance").filter(|c| c.is_object()) {
        if let Some(status) = json::string(c, &["status"]) {
            put(f, "compliance_status", status);
        }
        if let Some(control) = json::string(c, &["control"]) {
            put(f, "control_id", control);
        }
        put_list(f, "standards", &string_list(json::field(c, "standards")));
        put_list(
            f,
            "requirements",
            &string_list(json::field(c, "requirements")),
        );
    }
    f.remediation = json::string(v, &["remediation", "desc"]);
    f.links.remediation = string_list(json::path(v, &["remediation", "references"]))
        .into_iter()
        .next();
    let mut cves = Vec::new();
    let mut packages = Vec::new();
    for x in json::field(v, "vulnerabilities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = json::string(x, &["cve", "uid"]) {
            cves.push(id);
        }
        for p in json::field(x, "affected_packages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = json::string(p, &["name"]) {
                let version = json::string(p, &["version"]).unwrap_or_default();
                packages.push(format!("{name} {version}").trim().to_string());
            }
        }
    }
    put_list(f, "vulnerabilities", &cves);
    put_list(f, "vulnerable_packages", &packages);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn native_types_from_security_hub_types() {
        assert_eq!(
            native_type("TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce").as_deref(),
            Some("UnauthorizedAccess:EC2/SSHBruteForce")
        );
        assert_eq!(
            native_type("Unusual Behaviors/User/Recon:IAMUser-ResourcePermissions").as_deref(),
            Some("Recon:IAMUser/ResourcePermissions")
        );
        assert_eq!(
            native_type("Sensitive Data Identifications/PII/SensitiveData:S3Object-Personal")
                .as_deref(),
            Some("SensitiveData:S3Object/Personal")
        );
        assert_eq!(
            native_type("Backdoor:EC2/C&CActivity.B!DNS").as_deref(),
            Some("Backdoor:EC2/C&CActivity.B!DNS")
        );
        assert_eq!(
            native_type("Software and Configuration Checks/Vulnerabilities/CVE"),
            None
        );
        assert_eq!(native_type("https://example.com/x"), None);
    }

    #[test]
    fn resource_ids_are_normalized() {
        assert_eq!(
            resource_id("AwsAccount", "AWS::::Account:111122223333", Origin::Other).as_deref(),
            Some("111122223333")
        );
        assert_eq!(
            resource_id(
                "AwsIamAccessKey",
                "AWS::IAM::AccessKey:null",
                Origin::GuardDuty
            ),
            None
        );
        assert_eq!(
            resource_id(
                "AwsEc2Instance",
                "arn:aws:ec2:us-east-1:1:instance/i-0abc",
                Origin::GuardDuty
            )
            .as_deref(),
            Some("i-0abc")
        );
        assert_eq!(
            resource_id(
                "AwsEc2Instance",
                "arn:aws:ec2:us-east-1:1:instance/i-0abc",
                Origin::Other
            )
            .as_deref(),
            Some("arn:aws:ec2:us-east-1:1:instance/i-0abc")
        );
    }

    #[test]
    fn console_link_encodes_the_id_twice() {
        let link = console_link(Partition::Aws, "us-east-1", "arn:aws:x/1").unwrap();
        assert!(link.starts_with("https://us-east-1.console.aws.amazon.com/securityhub/"));
        assert!(link.ends_with("arn%253Aaws%253Ax%252F1"), "{link}");
        assert!(console_link(Partition::China, "cn-north-1", "x")
            .unwrap()
            .starts_with("https://console.amazonaws.cn/"));
        assert_eq!(console_link(Partition::Aws, "", "x"), None);
    }

    #[test]
    fn the_account_name_security_hub_knows_is_kept() {
        let f = parse_asff(
            &json!({"Id": "a", "AwsAccountId": "111122223333", "AwsAccountName": "payments-prod"}),
            None,
        )
        .unwrap();
        assert_eq!(f.account_name.as_deref(), Some("payments-prod"));
        let f = parse_asff(&json!({"Id": "a", "AwsAccountId": "111122223333"}), None).unwrap();
        assert_eq!(f.account_name, None);
    }

    #[test]
    fn severity_falls_back_through_the_documented_fields() {
        let f = parse_asff(&json!({"Id": "a", "Severity": {"Normalized": 75}}), None).unwrap();
        assert_eq!(f.severity, Severity::High);
        let f = parse_asff(&json!({"Id": "a", "Severity": {"Product": 3}}), None).unwrap();
        assert_eq!(f.severity, Severity::Low);
        let f = parse_asff(
            &json!({"Id": "a", "Severity": {"Label": "bogus", "Normalized": 95}}),
            None,
        )
        .unwrap();
        assert_eq!(f.severity, Severity::Critical);
        let f = parse_asff(&json!({"Id": "a"}), None).unwrap();
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.evidence.contains_key("severity_note"));
    }

    #[test]
    fn statuses_follow_record_workflow_and_compliance() {
        let base = |extra: Value| {
            let mut v = json!({"Id": "a", "Severity": {"Label": "HIGH"}});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse_asff(&v, None).unwrap().status
        };
        assert_eq!(
            base(json!({"RecordState": "ARCHIVED"})),
            FindingStatus::Archived
        );
        assert_eq!(
            base(json!({"Workflow": {"Status": "SUPPRESSED"}})),
            FindingStatus::Suppressed
        );
        assert_eq!(
            base(json!({"Workflow": {"Status": "RESOLVED"}})),
            FindingStatus::Resolved
        );
        assert_eq!(
            base(json!({"Compliance": {"Status": "PASSED"}})),
            FindingStatus::Resolved
        );
        assert_eq!(
            base(json!({"Workflow": {"Status": "NOTIFIED"}, "Compliance": {"Status": "FAILED"}})),
            FindingStatus::Active
        );
    }

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

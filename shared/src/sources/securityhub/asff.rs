//! ASFF findings, as the Security Hub CSPM sends them (`Security Hub Findings -
//! Imported`, custom actions, `GetFindings`): [`parse_asff`] and the readers of
//! each part of a finding.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::origin::{guardduty_short_id, native_type, resource_id, tactics_for_origin, Origin};
use super::product_fields::{
    asff_sample, pf_str, read_guardduty_fields, read_guardduty_network, PF_PRODUCT_NAME,
};
use super::{
    ensure_resource, fill, missing, port, put, put_list, string_list, tactics_from_types,
    MAX_RESOURCES,
};
use crate::json;
use crate::model::{Actor, ActorType, Finding, FindingStatus, Network, Resource, Severity, Source};
use crate::sources::console::{percent_encode, ConsoleUrl, Partition};
use crate::sources::guardduty::{self, PRODUCT_GUARDDUTY};
use crate::sources::macie::PRODUCT_MACIE;
use crate::sources::{Envelope, SourceError};

/// Scalar fields of the primary resource's `Details` kept as evidence.
const MAX_DETAIL_FIELDS: usize = 6;

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

/// The region of an ARN (`arn:aws:service:<region>:...`).
fn region_of(arn: Option<&str>) -> Option<String> {
    arn?.split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
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

/// Everything else a responder wants: product, generator, types, compliance,
/// remediation, vulnerabilities, malware, the product's own link.
fn read_asff_context(
    f: &mut Finding,
    v: &Value,
    pf: Option<&Map<String, Value>>,
    types: &[String],
) {
    read_asff_provenance(f, v, pf, types);
    read_asff_compliance(f, v, pf);
    f.remediation = json::string(v, &["Remediation", "Recommendation", "Text"])
        .filter(|t| !t.trim().eq_ignore_ascii_case("none provided"));
    f.links.remediation = json::string(v, &["Remediation", "Recommendation", "Url"])
        .or_else(|| pf_str(pf, "RecommendationUrl").map(str::to_string));
    read_asff_vulnerabilities(f, v);
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

/// Who produced the finding and where it stands in Security Hub: product,
/// company, generator, types, workflow and record state.
fn read_asff_provenance(
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
}

/// The compliance check: status and reason, control, standards, requirements,
/// the Config rule.
fn read_asff_compliance(f: &mut Finding, v: &Value, pf: Option<&Map<String, Value>>) {
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
}

/// Vulnerability ids, the highest CVSS base score, the vulnerable packages,
/// whether a fix is available.
fn read_asff_vulnerabilities(f: &mut Finding, v: &Value) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}

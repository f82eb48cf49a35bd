//! GuardDuty findings (EventBridge `GuardDuty Finding`, or bare as `GetFindings`
//! returns them) into [`Finding`]s.
//!
//! Every resource type GuardDuty reports is read: EC2 instances, access keys,
//! S3 buckets (and Malware Protection objects), EKS, ECS tasks and containers,
//! Lambda functions, RDS, EBS malware scans, Runtime Monitoring, and attack
//! sequences. A type or field this parser does not know is kept as evidence and
//! never fails the finding: GuardDuty adds finding types every few months.

use serde_json::Value;

use crate::json;
use crate::model::{
    Actor, ActorType, Finding, FindingStatus, Network, Resource, Severity, Source, Tactic,
    Technique,
};
use crate::sources::console::{percent_encode, ConsoleUrl, Partition};
use crate::sources::{Envelope, SourceError};

/// [`Finding::product`] of GuardDuty findings, whichever way they came.
pub(crate) const PRODUCT_GUARDDUTY: &str = "GuardDuty";

/// Parses one GuardDuty finding. `envelope` is the EventBridge envelope when
/// the finding came inside one.
pub fn parse(finding: &Value, envelope: Option<&Envelope>) -> Result<Finding, SourceError> {
    if !finding.is_object() {
        return Err(SourceError::MissingField {
            source_kind: Source::GuardDuty,
            field: "detail",
        });
    }
    // Without a type or an id there is nothing stable to alert on or dedup by.
    let finding_type = json::string(finding, &["type"]).ok_or(SourceError::MissingField {
        source_kind: Source::GuardDuty,
        field: "type",
    })?;
    let id = json::string(finding, &["id"])
        .or_else(|| json::string(finding, &["arn"]))
        .ok_or(SourceError::MissingField {
            source_kind: Source::GuardDuty,
            field: "id",
        })?;

    let mut f = Finding::new(Source::GuardDuty, id, finding_type);
    f.product = PRODUCT_GUARDDUTY.into();
    f.title = json::string(finding, &["title"]).unwrap_or_else(|| f.finding_type.clone());
    f.description = json::string(finding, &["description"]).unwrap_or_default();

    read_severity(&mut f, finding);

    f.account_id = json::string(finding, &["accountId"])
        .or_else(|| {
            envelope
                .map(|e| e.account.clone())
                .filter(|a| !a.is_empty())
        })
        .unwrap_or_default();
    f.region = json::string(finding, &["region"])
        .or_else(|| envelope.map(|e| e.region.clone()).filter(|r| !r.is_empty()))
        .unwrap_or_default();
    f.time = json::time_at(finding, &["updatedAt"])
        .or_else(|| json::time_at(finding, &["createdAt"]))
        .or_else(|| envelope.and_then(|e| e.time))
        .unwrap_or_else(chrono::Utc::now);
    f.event_id = envelope.map(|e| e.id.clone()).filter(|id| !id.is_empty());

    let service = json::field(finding, "service").unwrap_or(&Value::Null);
    read_service(&mut f, service);

    let resource = json::field(finding, "resource").unwrap_or(&Value::Null);
    read_resources(&mut f, resource);
    read_action(&mut f, service);
    read_runtime(&mut f, service);
    read_threats(&mut f, service);
    map_attack(&mut f);

    if let Some(arn) = json::string(finding, &["arn"]) {
        f.evidence.insert("finding_arn".into(), arn);
    }
    f.links.console = ConsoleUrl::new(partition(finding), &f.region, "guardduty").map(|url| {
        url.view(format!(
            "/findings?macros=current&fId={}",
            percent_encode(&f.id)
        ))
        .build()
    });
    // Placeholders GuardDuty puts in generated samples, even when `sample` is lost.
    f.sample |= has_placeholder(&f);
    Ok(f)
}

/// GuardDuty's 1.0–10.0 score.
fn read_severity(f: &mut Finding, finding: &Value) {
    match json::number(finding, &["severity"]) {
        Some(score) => {
            f.severity = Severity::from_guardduty(score);
            f.source_severity = Some(format!("{score:.1}"));
        }
        None => {
            // GuardDuty always sends a score; if it is lost, Medium keeps the
            // finding visible at the default threshold rather than hiding it.
            f.severity = Severity::Medium;
            f.evidence.insert(
                "severity_note".into(),
                "score missing; assumed Medium".into(),
            );
        }
    }
}

/// What `service` says about the finding's life: first and last seen, count,
/// archived, sample, the GuardDuty feature that found it.
fn read_service(f: &mut Finding, service: &Value) {
    f.first_seen = json::time_at(service, &["eventFirstSeen"]);
    f.last_seen = json::time_at(service, &["eventLastSeen"]);
    f.count = json::number(service, &["count"])
        .map(|c| c.max(1.0) as u64)
        .unwrap_or(1);
    if json::boolean(service, &["archived"]) == Some(true) {
        f.status = FindingStatus::Archived;
    }
    let additional = json::field(service, "additionalInfo").and_then(json::object_or_json_string);
    f.sample = additional
        .as_ref()
        .and_then(|a| json::boolean(a, &["sample"]))
        .unwrap_or(false);
    if let Some(feature) = json::string(service, &["featureName"]) {
        f.evidence.insert("feature".into(), feature);
    }
}

/// The partition the finding names, else its ARN's.
fn partition(finding: &Value) -> Partition {
    match json::str_at(finding, &["partition"]) {
        Some(name) => Partition::named(name),
        None => Partition::of_arn(json::str_at(finding, &["arn"])),
    }
}

fn read_resources(f: &mut Finding, resource: &Value) {
    let resource_type = json::string(resource, &["resourceType"]).unwrap_or_default();
    if !resource_type.is_empty() {
        f.evidence
            .insert("resource_type".into(), resource_type.clone());
    }

    if let Some(key) = json::field(resource, "accessKeyDetails") {
        read_access_key(f, key, &resource_type);
    }
    read_s3_buckets(f, resource);
    read_kubernetes(f, resource);
    read_ecs(f, resource);
    read_lambda(f, resource);
    read_rds(f, resource);
    read_ebs_volumes(f, resource);
    if let Some(instance) = json::field(resource, "instanceDetails") {
        read_instance(f, instance, &resource_type);
    }
    if resource_type == "AttackSequence" {
        read_attack_sequence(f);
    }
    // Keep the finding about *something*: the account itself.
    if f.resources.is_empty() && !f.account_id.is_empty() {
        f.resources
            .push(Resource::new("AwsAccount", f.account_id.clone()));
    }
    for r in &mut f.resources {
        r.region = Some(f.region.clone()).filter(|r| !r.is_empty());
    }
}

/// The access key (the subject of `AccessKey` findings) and who holds it.
fn read_access_key(f: &mut Finding, key: &Value, resource_type: &str) {
    let actor = actor_from_access_key(key);
    if let Some(access_key) = actor.access_key_id.clone() {
        if resource_type == "AccessKey" {
            f.resources
                .push(Resource::new("AwsIamAccessKey", access_key));
        }
    }
    if actor != Actor::default() {
        f.actor = Some(actor);
    }
}

/// S3 buckets, with the object keys Malware Protection names.
fn read_s3_buckets(f: &mut Finding, resource: &Value) {
    for bucket in json::field(resource, "s3BucketDetails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = json::string(bucket, &["arn"]).or_else(|| json::string(bucket, &["name"]));
        if let Some(id) = id {
            let mut r = Resource::new("AwsS3Bucket", id);
            r.tags = json::tag_map(json::field(bucket, "tags"));
            f.resources.push(r);
        }
        if let Some(object) = json::field(bucket, "s3ObjectDetails").and_then(Value::as_array) {
            for o in object {
                if let Some(key) = json::string(o, &["key"]) {
                    f.evidence.insert("s3_object_key".into(), key);
                }
            }
        }
    }
}

/// The EKS cluster, and the Kubernetes user and workload.
fn read_kubernetes(f: &mut Finding, resource: &Value) {
    if let Some(eks) = json::field(resource, "eksClusterDetails") {
        if let Some(id) = json::string(eks, &["arn"]).or_else(|| json::string(eks, &["name"])) {
            let mut r = Resource::new("AwsEksCluster", id);
            r.tags = json::tag_map(json::field(eks, "tags"));
            f.resources.push(r);
        }
    }
    if let Some(k8s) = json::field(resource, "kubernetesDetails") {
        if let Some(user) = json::string(k8s, &["kubernetesUserDetails", "username"]) {
            f.actor.get_or_insert_with(Actor::default).user_name = Some(user);
        }
        if let Some(w) = json::field(k8s, "kubernetesWorkloadDetails").filter(|w| w.is_object()) {
            let name = json::string(w, &["name"]).unwrap_or_default();
            let ns = json::string(w, &["namespace"]).unwrap_or_default();
            if !name.is_empty() {
                f.resources
                    .push(Resource::new("KubernetesWorkload", format!("{ns}/{name}")));
            }
        }
    }
}

/// The ECS cluster and task, and the container with its image.
fn read_ecs(f: &mut Finding, resource: &Value) {
    if let Some(ecs) = json::field(resource, "ecsClusterDetails") {
        if let Some(id) = json::string(ecs, &["arn"]).or_else(|| json::string(ecs, &["name"])) {
            let mut r = Resource::new("AwsEcsCluster", id);
            r.tags = json::tag_map(json::field(ecs, "tags"));
            f.resources.push(r);
        }
        if let Some(task) = json::string(ecs, &["taskDetails", "arn"]) {
            f.resources.push(Resource::new("AwsEcsTask", task));
        }
    }
    if let Some(container) = json::field(resource, "containerDetails") {
        let id = json::string(container, &["id"]).or_else(|| json::string(container, &["name"]));
        if let Some(id) = id {
            f.resources.push(Resource::new("Container", id));
        }
        if let Some(image) = json::string(container, &["image"]) {
            f.evidence.insert("container_image".into(), image);
        }
    }
}

fn read_lambda(f: &mut Finding, resource: &Value) {
    let Some(lambda) = json::field(resource, "lambdaDetails") else {
        return;
    };
    let id =
        json::string(lambda, &["functionArn"]).or_else(|| json::string(lambda, &["functionName"]));
    if let Some(id) = id {
        let mut r = Resource::new("AwsLambdaFunction", id);
        r.tags = json::tag_map(json::field(lambda, "tags"));
        f.resources.push(r);
    }
}

/// RDS instances and Limitless shard groups, and the database user.
fn read_rds(f: &mut Finding, resource: &Value) {
    for key in ["rdsDbInstanceDetails", "rdsLimitlessDbDetails"] {
        if let Some(rds) = json::field(resource, key) {
            let id = json::string(rds, &["dbInstanceArn"])
                .or_else(|| json::string(rds, &["dbInstanceIdentifier"]))
                .or_else(|| json::string(rds, &["dbShardGroupArn"]))
                .or_else(|| json::string(rds, &["dbClusterIdentifier"]));
            if let Some(id) = id {
                let mut r = Resource::new("AwsRdsDbInstance", id);
                r.tags = json::tag_map(json::field(rds, "tags"));
                f.resources.push(r);
            }
        }
    }
    if let Some(user) = json::string(resource, &["rdsDbUserDetails", "user"]) {
        let actor = f.actor.get_or_insert_with(Actor::default);
        actor.user_name = Some(user);
    }
}

/// EBS volumes a Malware Protection scan covered or skipped.
fn read_ebs_volumes(f: &mut Finding, resource: &Value) {
    let Some(ebs) = json::field(resource, "ebsVolumeDetails") else {
        return;
    };
    for vol in ["scannedVolumeDetails", "skippedVolumeDetails"] {
        for v in json::field(ebs, vol)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(arn) = json::string(v, &["volumeArn"]) {
                f.resources.push(Resource::new("AwsEc2Volume", arn));
            }
        }
    }
}

fn read_instance(f: &mut Finding, instance: &Value, resource_type: &str) {
    if let Some(id) = json::string(instance, &["instanceId"]) {
        let mut r = Resource::new("AwsEc2Instance", id);
        r.tags = json::tag_map(json::field(instance, "tags"));
        // The instance is the subject only for instance findings; IAM and S3
        // findings carry instanceDetails as placeholders.
        if resource_type == "Instance" || f.resources.is_empty() {
            f.resources.push(r);
        }
    }
}

fn actor_from_access_key(key: &Value) -> Actor {
    let user_type = json::string(key, &["userType"]).unwrap_or_default();
    Actor {
        actor_type: ActorType::parse(&user_type),
        user_name: json::string(key, &["userName"]),
        principal_id: json::string(key, &["principalId"]),
        access_key_id: json::string(key, &["accessKeyId"]),
        ..Actor::default()
    }
}

fn read_action(f: &mut Finding, service: &Value) {
    let Some(action) = json::field(service, "action") else {
        return;
    };
    if let Some(kind) = json::string(action, &["actionType"]) {
        f.evidence.insert("action_type".into(), kind);
    }
    let mut net = Network::default();
    if let Some(a) = json::field(action, "networkConnectionAction") {
        read_network_connection(&mut net, a);
    }
    if let Some(a) = json::field(action, "awsApiCallAction") {
        read_api_call(f, &mut net, a);
    }
    if let Some(a) = json::field(action, "dnsRequestAction") {
        read_dns_request(f, &mut net, a);
    }
    if let Some(a) = json::field(action, "portProbeAction") {
        read_port_probe(&mut net, a);
    }
    if let Some(a) = json::field(action, "kubernetesApiCallAction") {
        read_kubernetes_api_call(f, &mut net, a);
    }
    if let Some(a) = json::field(action, "rdsLoginAttemptAction") {
        read_remote_ip(&mut net, json::field(a, "remoteIpDetails"));
    }
    if let Some(ip) = &net.remote_ip {
        if let Some(actor) = f.actor.as_mut() {
            actor.source_ip.get_or_insert_with(|| ip.clone());
        }
    }
    f.network = net;
}

fn read_network_connection(net: &mut Network, a: &Value) {
    read_remote_ip(net, json::field(a, "remoteIpDetails"));
    net.remote_port = port(json::path(a, &["remotePortDetails", "port"]));
    net.local_port = port(json::path(a, &["localPortDetails", "port"]));
    net.protocol = json::string(a, &["protocol"]);
    net.direction = json::string(a, &["connectionDirection"]);
}

/// The API called, by whom, from where; the caller's user agent.
fn read_api_call(f: &mut Finding, net: &mut Network, a: &Value) {
    read_remote_ip(net, json::field(a, "remoteIpDetails"));
    for (key, field) in [
        ("api", "api"),
        ("api_service", "serviceName"),
        ("error_code", "errorCode"),
        ("caller_type", "callerType"),
    ] {
        if let Some(v) = json::string(a, &[field]) {
            f.evidence.insert(key.into(), v);
        }
    }
    if let Some(domain) = json::string(a, &["domainDetails", "domain"]) {
        net.domain = Some(domain);
    }
    if let Some(ua) =
        json::string(a, &["userAgent", "fullUserAgent"]).or_else(|| json::string(a, &["userAgent"]))
    {
        f.actor.get_or_insert_with(Actor::default).user_agent = Some(ua);
    }
}

fn read_dns_request(f: &mut Finding, net: &mut Network, a: &Value) {
    net.domain = json::string(a, &["domain"]);
    net.protocol = json::string(a, &["protocol"]);
    if let Some(blocked) = json::boolean(a, &["blocked"]) {
        f.evidence.insert("dns_blocked".into(), blocked.to_string());
    }
}

/// The first probe's remote side: port probes are always inbound.
fn read_port_probe(net: &mut Network, a: &Value) {
    if let Some(first) = json::field(a, "portProbeDetails")
        .and_then(Value::as_array)
        .and_then(|d| d.first())
    {
        read_remote_ip(net, json::field(first, "remoteIpDetails"));
        net.local_port = port(json::path(first, &["localPortDetails", "port"]));
    }
    net.direction = Some("INBOUND".into());
}

/// The Kubernetes API call: verb, URI, status, and the caller's IP and agent.
fn read_kubernetes_api_call(f: &mut Finding, net: &mut Network, a: &Value) {
    read_remote_ip(net, json::field(a, "remoteIpDetails"));
    if net.remote_ip.is_none() {
        net.remote_ip = json::field(a, "sourceIPs")
            .or_else(|| json::field(a, "sourceIps"))
            .and_then(Value::as_array)
            .and_then(|ips| ips.first())
            .and_then(|ip| ip.as_str().map(str::to_string));
    }
    for (key, field) in [
        ("k8s_verb", "verb"),
        ("k8s_request_uri", "requestUri"),
        ("k8s_status", "statusCode"),
    ] {
        if let Some(v) = json::string(a, &[field]) {
            f.evidence.insert(key.into(), v);
        }
    }
    if let Some(ua) = json::string(a, &["userAgent"]) {
        f.actor.get_or_insert_with(Actor::default).user_agent = Some(ua);
    }
}

fn read_remote_ip(net: &mut Network, details: Option<&Value>) {
    let Some(d) = details.filter(|d| d.is_object()) else {
        return;
    };
    net.remote_ip = json::string(d, &["ipAddressV4"]).or_else(|| json::string(d, &["ipAddressV6"]));
    net.country = json::string(d, &["country", "countryName"])
        .or_else(|| json::string(d, &["country", "countryCode"]));
    net.city = json::string(d, &["city", "cityName"]);
    net.asn = json::string(d, &["organization", "asn"]);
    net.organization = json::string(d, &["organization", "asnOrg"])
        .or_else(|| json::string(d, &["organization", "org"]))
        .or_else(|| json::string(d, &["organization", "isp"]));
}

fn port(v: Option<&Value>) -> Option<u16> {
    v.and_then(|p| match p {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
    .and_then(|p| u16::try_from(p).ok())
}

fn read_runtime(f: &mut Finding, service: &Value) {
    let Some(rt) = json::field(service, "runtimeDetails") else {
        return;
    };
    for (key, p) in [
        ("process_name", &["process", "name"][..]),
        ("process_path", &["process", "executablePath"][..]),
        ("process_sha256", &["process", "executableSha256"][..]),
        ("process_user", &["process", "user"][..]),
        ("command_line", &["context", "commandLineExample"][..]),
    ] {
        if let Some(v) = json::string(rt, p) {
            f.evidence.insert(key.into(), v);
        }
    }
}

fn read_threats(f: &mut Finding, service: &Value) {
    let mut names = Vec::new();
    for t in json::path(service, &["evidence", "threatIntelligenceDetails"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(list) = json::string(t, &["threatListName"]) {
            names.push(list);
        }
    }
    if !names.is_empty() {
        f.evidence.insert("threat_lists".into(), names.join(", "));
    }
    // Malware Protection (EBS and S3) reports threats found in a scan.
    let scan = json::field(service, "ebsVolumeScanDetails")
        .or_else(|| json::field(service, "malwareScanDetails"));
    if let Some(scan) = scan {
        let threats: Vec<String> = json::path(
            scan,
            &["scanDetections", "threatDetectedByName", "threatNames"],
        )
        .or_else(|| json::field(scan, "threats"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| json::string(t, &["name"]))
        .collect();
        if !threats.is_empty() {
            f.evidence.insert("malware".into(), threats.join(", "));
        }
    }
}

/// Attack sequences describe their principal and ATT&CK coverage in the text.
fn read_attack_sequence(f: &mut Finding) {
    // "... observed for IAMUser/john_doe with principalId AIDA... in account 1111..."
    if let Some(rest) = f.description.split(" observed for ").nth(1) {
        let principal = rest.split_whitespace().next().unwrap_or_default();
        if let Some((kind, name)) = principal.split_once('/') {
            let actor = f.actor.get_or_insert_with(Actor::default);
            actor.actor_type = ActorType::parse(kind);
            actor.user_name = Some(name.to_string());
        }
        if let Some(pid) = rest
            .split("principalId ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        {
            f.actor.get_or_insert_with(Actor::default).principal_id = Some(pid.to_string());
        }
    }
    if let Some(bucket) = f
        .title
        .split("S3 bucket ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
    {
        f.resources
            .push(Resource::new("AwsS3Bucket", bucket.trim_end_matches('.')));
    }
}

/// ATT&CK from the threat purpose (the part of the type before `:`), and for
/// attack sequences from the tactics and techniques GuardDuty lists.
fn map_attack(f: &mut Finding) {
    let purpose = f
        .finding_type
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let resource_kind = f
        .finding_type
        .split(':')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_string();
    if purpose == "AttackSequence" {
        for line in f.description.lines() {
            if let Some(list) = line.split("tactics observed:").nth(1) {
                f.tactics
                    .extend(list.split(',').filter_map(|t| Tactic::parse(t.trim())));
            }
            if let Some(list) = line.split("techniques observed:").nth(1) {
                for t in list.split(", T") {
                    let t = t.trim();
                    let t = t.strip_prefix('T').unwrap_or(t);
                    let (id, name) = t.split_once(" - ").unwrap_or((t, ""));
                    if id.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                        f.techniques.push(Technique {
                            id: format!("T{}", id.trim()),
                            name: Some(name.trim().to_string()).filter(|n| !n.is_empty()),
                        });
                    }
                }
            }
        }
        f.tactics.dedup();
        return;
    }
    if let Some(t) = Tactic::parse(&purpose) {
        f.tactics.push(t);
        return;
    }
    // Purposes that are not ATT&CK tactics: the closest tactic by what the
    // finding family does, marked as inferred so nobody mistakes it for GuardDuty's word.
    let inferred = match purpose.as_str() {
        "Recon" if resource_kind == "EC2" => Some(Tactic::Reconnaissance),
        "Recon" => Some(Tactic::Discovery),
        "Backdoor"
            if f.finding_type.contains("DenialOfService") || f.finding_type.contains("Spambot") =>
        {
            Some(Tactic::Impact)
        }
        "Backdoor" | "Trojan" => Some(Tactic::CommandAndControl),
        "CryptoCurrency" => Some(Tactic::Impact),
        "UnauthorizedAccess" => Some(Tactic::InitialAccess),
        "Stealth" => Some(Tactic::DefenseEvasion),
        "PenTest" => Some(Tactic::Discovery),
        "Policy" if f.finding_type.contains("RootCredentialUsage") => {
            Some(Tactic::PrivilegeEscalation)
        }
        "Policy" => Some(Tactic::DefenseEvasion),
        "Behavior" => Some(Tactic::Discovery),
        _ => None,
    };
    if let Some(t) = inferred {
        f.tactics.push(t);
        f.evidence.insert(
            "attack_mapping".into(),
            format!("inferred from threat purpose {purpose}"),
        );
    }
}

/// GuardDuty and Macie mark generated samples with `GeneratedFinding*`
/// placeholders, even when the `sample` flag is lost on the way.
pub(crate) fn has_placeholder(f: &Finding) -> bool {
    const MARK: &str = "GeneratedFinding";
    f.resources.iter().any(|r| r.id.contains(MARK))
        || f.actor.as_ref().is_some_and(|a| {
            [&a.user_name, &a.access_key_id, &a.principal_id]
                .into_iter()
                .flatten()
                .any(|s| s.contains(MARK))
        })
        || f.network
            .organization
            .as_deref()
            .is_some_and(|o| o.contains(MARK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ec2_finding() -> Value {
        json!({
            "schemaVersion": "2.0", "accountId": "111122223333", "region": "eu-west-1",
            "id": "abc123", "arn": "arn:aws:guardduty:eu-west-1:111122223333:detector/d/finding/abc123",
            "type": "Backdoor:EC2/C&CActivity.B!DNS", "severity": 8,
            "title": "C&C domain queried", "description": "d",
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-02T00:00:00.000Z",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0abc", "tags": [{"key": "team", "value": "payments"}]}},
            "service": {"serviceName": "guardduty", "count": 3, "archived": false,
                "eventFirstSeen": "2026-01-01T00:00:00Z", "eventLastSeen": "2026-01-02T00:00:00Z",
                "action": {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                    "connectionDirection": "OUTBOUND", "protocol": "TCP",
                    "remoteIpDetails": {"ipAddressV4": "198.51.100.7", "country": {"countryName": "Nowhere"},
                        "organization": {"asn": "64500", "asnOrg": "Example Org"}},
                    "remotePortDetails": {"port": 443}}}}
        })
    }

    #[test]
    fn reads_an_ec2_finding() {
        let f = parse(&ec2_finding(), None).unwrap();
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.source_severity.as_deref(), Some("8.0"));
        assert_eq!(f.count, 3);
        assert_eq!(f.resources[0].resource_type, "AwsEc2Instance");
        assert_eq!(f.resources[0].tags["team"], "payments");
        assert_eq!(f.network.remote_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(f.network.remote_port, Some(443));
        assert_eq!(f.network.country.as_deref(), Some("Nowhere"));
        assert_eq!(f.network.organization.as_deref(), Some("Example Org"));
        assert_eq!(f.tactics, vec![Tactic::CommandAndControl]);
        assert!(f.evidence["attack_mapping"].contains("Backdoor"));
        assert!(f.links.console.as_deref().unwrap().contains("fId=abc123"));
        assert!(!f.sample);
    }

    #[test]
    fn missing_fields_keep_what_is_known() {
        let f = parse(&json!({"type": "Something:New/Type", "id": "x"}), None).unwrap();
        assert_eq!(f.finding_type, "Something:New/Type");
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.tactics.is_empty());
    }

    #[test]
    fn not_a_finding_is_a_typed_error() {
        let err = parse(&json!({"hello": "world"}), None).unwrap_err();
        assert!(matches!(
            err,
            SourceError::MissingField { field: "type", .. }
        ));
        assert!(parse(&json!("text"), None).is_err());
    }

    #[test]
    fn sample_flag_in_a_json_string() {
        let mut v = ec2_finding();
        v["service"]["additionalInfo"] = json!("{\"sample\":true}");
        assert!(parse(&v, None).unwrap().sample);
    }

    #[test]
    fn archived_findings_are_marked() {
        let mut v = ec2_finding();
        v["service"]["archived"] = json!(true);
        assert_eq!(parse(&v, None).unwrap().status, FindingStatus::Archived);
    }

    #[test]
    fn pascal_case_fields_read_too() {
        let v = json!({"Type": "Recon:EC2/PortProbeUnprotectedPort", "Id": "p1", "Severity": 2,
            "AccountId": "1", "Region": "us-east-1",
            "Resource": {"ResourceType": "Instance", "InstanceDetails": {"InstanceId": "i-1"}}});
        let f = parse(&v, None).unwrap();
        assert_eq!(f.severity, Severity::Low);
        assert_eq!(f.tactics, vec![Tactic::Reconnaissance]);
        assert_eq!(f.resources[0].id, "i-1");
    }
}

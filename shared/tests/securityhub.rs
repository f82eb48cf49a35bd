//! Security Hub (ASFF and OCSF) and Macie sources: the real public samples in
//! `../shared/events/securityhub` (when present), the project's own examples in
//! `examples/events/securityhub`, and hand-written events for what no public
//! sample shows (Findings Imported V2, Macie's own events).

#![recursion_limit = "512"]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vigil::enrich::Enricher;
use vigil::model::{FindingStatus, Severity, Source, Tactic};
use vigil::pipeline::{Decision, Pipeline};
use vigil::sinks::MemorySink;
use vigil::sources::securityhub::{self, EventKind};
use vigil::sources::{classify, guardduty, macie, Envelope, SourceEvent};
use vigil::{Config, Finding};

#[path = "../../tests/src/samples.rs"]
mod samples;
use samples::project_root;

/// The public samples, or `None` with a note (a fresh clone has no
/// `../shared`; under CI that is a failure).
fn shared_samples() -> Option<Vec<(String, Value)>> {
    let dir = samples::shared_events("securityhub")?;
    Some(read_dir(&dir))
}

fn own_examples() -> Vec<(String, Value)> {
    read_dir(&samples::own_events("securityhub"))
}

fn read_dir(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

fn sample(name: &str) -> Option<Value> {
    shared_samples()?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Parses any Security Hub or Macie event through `classify`, as the pipeline does.
fn parse_event(event: &Value) -> Vec<Finding> {
    match classify(event).expect("classified") {
        SourceEvent::SecurityHub { detail, envelope } => {
            securityhub::parse(detail, &envelope).expect("parsed")
        }
        SourceEvent::Macie { finding, envelope } => {
            vec![macie::parse(finding, Some(&envelope)).expect("parsed")]
        }
        other => panic!("not a Security Hub or Macie event: {:?}", other.source()),
    }
}

fn enriched(mut f: Finding) -> Finding {
    Enricher::default().enrich(&mut f);
    f
}

fn pipeline(sink: MemorySink, config: Config) -> Pipeline {
    Pipeline::builder(&config).sink(Box::new(sink)).build()
}

fn imported(findings: Vec<Value>) -> Value {
    json!({"version": "0", "id": "evt-sh-1", "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub", "account": "111122223333", "time": "2026-11-26T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {"findings": findings}})
}

// ---------------------------------------------------------------- public samples

#[test]
fn every_public_sample_parses_and_imported_events_give_every_finding() {
    let Some(samples) = shared_samples() else {
        return;
    };
    assert!(samples.len() > 100, "only {} samples", samples.len());
    let (mut events, mut bare, mut insights) = (0, 0, 0);
    for (name, v) in &samples {
        if v.get("detail-type").is_some() {
            let kind = EventKind::from_detail_type(v["detail-type"].as_str().unwrap());
            let findings = parse_event(v);
            if kind == Some(EventKind::InsightResults) {
                assert!(findings.is_empty(), "{name}");
                insights += 1;
                continue;
            }
            let expected = v["detail"]["findings"].as_array().map_or(0, Vec::len);
            assert_eq!(findings.len(), expected, "{name}");
            assert!(expected > 0, "{name}");
            events += 1;
            for f in &findings {
                check_basics(name, f);
                assert_eq!(f.event_id.as_deref(), v["id"].as_str(), "{name}");
            }
        } else {
            let f = securityhub::parse_asff(v, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            check_basics(name, &f);
            bare += 1;
        }
    }
    assert!(
        events >= 20 && bare >= 100 && insights == 2,
        "{events} {bare} {insights}"
    );
}

fn check_basics(name: &str, f: &Finding) {
    assert_eq!(f.source, Source::SecurityHub, "{name}");
    assert!(!f.id.is_empty(), "{name}: id");
    assert!(
        !f.finding_type.is_empty() && f.finding_type != "Unknown",
        "{name}: type"
    );
    assert!(!f.product.is_empty(), "{name}: product");
    assert!(!f.title.is_empty(), "{name}: title");
    assert!(!f.account_id.is_empty(), "{name}: account");
    assert!(!f.region.is_empty(), "{name}: region");
    // Every public sample carries a severity somewhere: none may fall back.
    assert!(f.source_severity.is_some(), "{name}: severity");
    assert!(
        !f.evidence.contains_key("severity_note"),
        "{name}: severity"
    );
    assert!(!f.resources.is_empty(), "{name}: resources");
    assert!(
        f.links
            .console
            .as_deref()
            .is_some_and(|l| l.contains("/securityhub/home?region=")),
        "{name}: console link"
    );
}

#[test]
fn inactive_findings_in_the_public_samples_are_never_active() {
    let Some(samples) = shared_samples() else {
        return;
    };
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for (name, v) in &samples {
        let raws: Vec<&Value> = match v["detail"]["findings"].as_array() {
            Some(list) => list.iter().collect(),
            None if v.get("detail-type").is_none() => vec![v],
            None => continue,
        };
        for raw in raws {
            let f = securityhub::parse_asff(raw, None).unwrap();
            let expected = if raw["RecordState"] == "ARCHIVED" {
                Some(("archived", FindingStatus::Archived))
            } else if raw["Workflow"]["Status"] == "SUPPRESSED" {
                Some(("suppressed", FindingStatus::Suppressed))
            } else if raw["Workflow"]["Status"] == "RESOLVED" {
                Some(("resolved", FindingStatus::Resolved))
            } else if raw["Compliance"]["Status"] == "PASSED" {
                Some(("passed", FindingStatus::Resolved))
            } else {
                None
            };
            match expected {
                Some((kind, status)) => {
                    assert_eq!(f.status, status, "{name}");
                    *seen.entry(kind).or_default() += 1;
                }
                None => assert_eq!(f.status, FindingStatus::Active, "{name}"),
            }
        }
    }
    for kind in ["archived", "resolved", "passed"] {
        assert!(seen.get(kind).copied().unwrap_or(0) > 0, "no {kind} sample");
    }
}

#[test]
fn an_inspector_finding() {
    let Some(v) = sample(
        "cloud-custodian-placebo__test_ecr_image_filter_security_finding__securityhub.GetFindings_1__00_inspector.json",
    ) else {
        return;
    };
    let f = securityhub::parse_asff(&v, None).unwrap();
    assert_eq!(f.product, "Inspector");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.finding_type, "CVE-2021-44228");
    assert_eq!(f.account_id, "644160558196");
    assert_eq!(f.region, "us-east-1");
    assert_eq!(f.resources[0].resource_type, "AwsEcrContainerImage");
    assert!(f.resources[0].id.contains("repository/sas-log4j-test"));
    assert_eq!(f.evidence["cvss"], "10.0");
    assert_eq!(f.evidence["vulnerabilities"], "CVE-2021-44228");
    assert!(f.evidence["vulnerable_packages"].contains("log4j-core 2.14.1"));
    assert_eq!(f.evidence["detail.RepositoryName"], "sas-log4j-test");
    // "None Provided" is no remediation.
    assert_eq!(f.remediation, None);
    assert_eq!(f.status, FindingStatus::Active);
    assert!(f
        .links
        .console
        .as_deref()
        .unwrap()
        .contains("arn%253Aaws%253Ainspector2"));
    // Inspector is a direct source too: this is its Security Hub copy.
    assert_eq!(securityhub::forwarded_from(&f), Some(Source::Inspector));
}

#[test]
fn a_cis_control_finding_and_a_config_rule_finding() {
    let Some(event) = sample("asr__source__layer__test__test_json_data__CIS-1.3.json") else {
        return;
    };
    let f = parse_event(&event).remove(0);
    assert_eq!(f.product, "Security Hub");
    assert_eq!(
        f.finding_type,
        "cis-aws-foundations-benchmark/v/1.2.0/rule/1.3"
    );
    assert_eq!(
        f.evidence["generator_id"],
        "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/1.3"
    );
    assert_eq!(f.evidence["control_id"], "1.3");
    assert_eq!(f.evidence["compliance_status"], "WARNING");
    assert!(f.evidence["compliance_reason"].contains("AWS Config"));
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.resources[0].resource_type, "AwsAccount");
    assert_eq!(f.resources[0].id, "111111111111");
    assert_eq!(
        f.links.remediation.as_deref(),
        Some("https://docs.aws.amazon.com/console/securityhub/standards-cis-1.3/remediation")
    );
    assert_eq!(
        f.event_id.as_deref(),
        Some("1622bd23-7237-fdec-8fb0-a019cccfd3cb")
    );

    let v = sample("awsdocs-shguide__securityhub-internal-providers__block0.json").unwrap();
    let f = securityhub::parse_asff(&v, None).unwrap();
    assert_eq!(f.product, "Config");
    assert_eq!(
        f.finding_type,
        "s3-bucket-level-public-access-prohibited-config-integration-demo"
    );
    assert_eq!(f.evidence["compliance_status"], "FAILED");
    assert_eq!(
        f.resources[0].id,
        "arn:aws:s3:::config-integration-demo-bucket"
    );
    assert_eq!(f.region, "eu-central-1");
    assert_eq!(f.status, FindingStatus::Active);

    let v = sample("awsdocs-shguide__sample-control-findings__block0.json").unwrap();
    let f = securityhub::parse_asff(&v, None).unwrap();
    assert_eq!(f.finding_type, "CloudTrail.2");
    assert!(f.evidence["standards"].contains("aws-foundation-best-practices"));
}

#[test]
fn custom_actions_carry_every_selected_finding_and_insights_none() {
    let Some(event) = sample("asr__source__layer__test__test_json_data__CIS_1-6-multi-select.json")
    else {
        return;
    };
    let findings = parse_event(&event);
    assert_eq!(findings.len(), 2);
    assert!(findings
        .iter()
        .all(|f| f.evidence.contains_key("custom_action")));
    assert_ne!(findings[0].id, findings[1].id);

    let insight = sample("cloud-custodian__event-securityhub-insight-2.json").unwrap();
    assert!(parse_event(&insight).is_empty());
}

#[test]
fn partner_findings_keep_their_product_and_actor() {
    let Some(v) = sample(
        "panther__Decoy.IAM.Assumed__Suspicious_activity_detected_accessing_private_decoy_IAM_role_arn_aws_iam_123456789012_role_Dummy-Test-InfoRole-ab21cde5__d0c714cf7f.json",
    ) else {
        return;
    };
    let f = securityhub::parse_asff(&v, None).unwrap();
    assert_eq!(f.product, "DecoyDetector");
    assert_eq!(f.severity, Severity::High);
    // The target comes first; the actor's resources after it.
    assert_eq!(f.resources[0].resource_type, "AwsIamRole");
    assert!(f.resources[0]
        .id
        .ends_with("role/Dummy-Test-InfoRole-ab21cde50f"));
    let actor = f.actor.as_ref().unwrap();
    assert_eq!(actor.access_key_id.as_deref(), Some("ABC9ONWNS3155VIEJC8U"));
    assert_eq!(
        actor.principal_id.as_deref(),
        Some("ABCDEFGH0TOGJSGNQKI0:john.doe")
    );
    assert_eq!(actor.mfa_used, Some(false));
    assert_eq!(
        actor.arn.as_deref(),
        Some("arn:aws:iam::123456789012:user/tester")
    );
    assert_eq!(f.network.remote_ip.as_deref(), Some("11.1.111.11"));
    assert_eq!(f.evidence["api"], "AssumeRole");
    // Time in Panther's space-separated form.
    assert_eq!(f.time.to_rfc3339(), "2024-05-24T13:17:15+00:00");

    let legacy = sample("sumologic__securityhub-collector__test__event.json").unwrap();
    let f = parse_event(&legacy).remove(0);
    assert_eq!(f.product, "Machine Data Analytics");
    assert_eq!(f.severity, Severity::Low);
}

#[tokio::test]
async fn bare_findings_and_get_findings_responses_replay() {
    let Some(samples) = shared_samples() else {
        return;
    };
    let bare: Vec<Value> = samples
        .iter()
        .filter(|(_, v)| v.get("detail-type").is_none())
        .take(3)
        .map(|(_, v)| v.clone())
        .collect();
    assert!(matches!(
        classify(&bare[0]),
        Ok(SourceEvent::SecurityHub { .. })
    ));
    assert_eq!(parse_event(&bare[0]).len(), 1);
    let response = json!({"Findings": bare});
    let p = pipeline(MemorySink::new(), Config::default());
    let r = p.process_event(&response).await.unwrap();
    assert_eq!(r.source, Source::SecurityHub);
    assert_eq!(r.event_id, None);
    assert_eq!(r.findings.len(), 3);
}

// ---------------------------------------------------------------- GuardDuty through Security Hub

/// The direct GuardDuty event for the finding the GuardDuty guide shows in ASFF.
fn direct_ssh_brute_force() -> Value {
    json!({"schemaVersion": "2.0", "accountId": "193043430472", "region": "us-east-1", "partition": "aws",
        "id": "46ba0ac2845071e23ccdeb2ae03bfdea",
        "arn": "arn:aws:guardduty:us-east-1:193043430472:detector/d4b040365221be2b54a6264dc9a4bc64/finding/46ba0ac2845071e23ccdeb2ae03bfdea",
        "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 2,
        "title": "199.241.229.197 is performing SSH brute force attacks against i-0c10c2c7863d1a356.",
        "description": "d", "createdAt": "2020-08-22T09:34:34.146Z", "updatedAt": "2020-09-30T12:14:00.206Z",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0c10c2c7863d1a356",
            "tags": [{"key": "Name", "value": "kubectl"}]}},
        "service": {"serviceName": "guardduty", "count": 74, "archived": false,
            "action": {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                "connectionDirection": "INBOUND", "protocol": "TCP",
                "remoteIpDetails": {"ipAddressV4": "199.241.229.197"},
                "localPortDetails": {"port": 22}, "remotePortDetails": {"port": 46717}}}}})
}

#[test]
fn a_guardduty_finding_through_security_hub_has_the_direct_fingerprint() {
    let Some(v) = sample("awsdocs-gdguide__securityhub-integration__block0.json") else {
        return;
    };
    let copy = enriched(securityhub::parse_asff(&v, None).unwrap());
    let direct = enriched(guardduty::parse(&direct_ssh_brute_force(), None).unwrap());
    assert_eq!(copy.product, "GuardDuty");
    assert_eq!(copy.source, Source::SecurityHub);
    assert_eq!(copy.finding_type, direct.finding_type);
    assert_eq!(copy.id, direct.id);
    assert_eq!(copy.resources[0].id, "i-0c10c2c7863d1a356");
    assert_eq!(copy.resources[0].tags["Name"], "kubectl");
    assert_eq!(copy.fingerprint, direct.fingerprint);
    assert_eq!(copy.tactics, vec![Tactic::InitialAccess]);
    assert_eq!(copy.count, 74);
    assert_eq!(copy.network.remote_ip.as_deref(), Some("199.241.229.197"));
    assert_eq!(copy.network.remote_port, Some(46717));
    assert_eq!(copy.network.local_port, Some(22));
    assert_eq!(
        copy.network.organization.as_deref(),
        Some("CENTURYLINK-US-LEGACY-QWEST")
    );
    assert_eq!(copy.network.direction.as_deref(), Some("INBOUND"));
    assert!(copy.evidence["securityhub_id"].ends_with("/finding/46ba0ac2845071e23ccdeb2ae03bfdea"));
    assert_eq!(securityhub::forwarded_from(&copy), Some(Source::GuardDuty));
    assert_eq!(securityhub::forwarded_from(&direct), None);

    // Another resource or type must not collide.
    let mut other = direct_ssh_brute_force();
    other["resource"]["instanceDetails"]["instanceId"] = json!("i-0ffffffffffffffff");
    assert_ne!(
        enriched(guardduty::parse(&other, None).unwrap()).fingerprint,
        copy.fingerprint
    );
}

#[test]
fn an_access_key_finding_through_security_hub_has_the_direct_fingerprint() {
    let Some(v) = sample(
        "cloud-custodian-placebo__test_security_hub_mode_action_insight__securityhub.GetFindings_1__00_guardduty.json",
    ) else {
        return;
    };
    let copy = enriched(securityhub::parse_asff(&v, None).unwrap());
    let direct = json!({"accountId": "644160558196", "region": "us-east-1",
        "id": "f6b5c52d7a829ed112f7556dd1cc40c4", "type": "Recon:IAMUser/ResourcePermissions", "severity": 5,
        "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": "AKIAIPRJCJL6BOF6DPMA",
            "userName": "brent.clements", "userType": "IAMUser"}},
        "service": {"serviceName": "guardduty", "count": 4, "action": {"actionType": "AWS_API_CALL",
            "awsApiCallAction": {"api": "DescribeInstances", "serviceName": "ec2.amazonaws.com",
                "remoteIpDetails": {"ipAddressV4": "204.63.43.36"}}}}});
    let direct = enriched(guardduty::parse(&direct, None).unwrap());
    assert_eq!(copy.finding_type, "Recon:IAMUser/ResourcePermissions");
    assert_eq!(copy.fingerprint, direct.fingerprint);
    assert_eq!(copy.severity, Severity::Medium);
    assert_eq!(copy.count, 4);
    assert_eq!(copy.tactics, vec![Tactic::Discovery]);
    assert_eq!(copy.evidence["api"], "DescribeInstances");
    let actor = copy.actor.as_ref().unwrap();
    assert_eq!(actor.user_name.as_deref(), Some("brent.clements"));
    assert_eq!(actor.access_key_id.as_deref(), Some("AKIAIPRJCJL6BOF6DPMA"));
    assert_eq!(actor.source_ip.as_deref(), Some("204.63.43.36"));
}

#[tokio::test]
async fn security_hub_copies_of_guardduty_findings_do_not_alert_unless_configured() {
    let raw = json!({"SchemaVersion": "2018-10-08",
        "Id": "arn:aws:guardduty:us-east-1:111122223333:detector/d1/finding/f1",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "GeneratorId": "arn:aws:guardduty:us-east-1:111122223333:detector/d1",
        "AwsAccountId": "111122223333", "Types": ["TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS"],
        "CreatedAt": "2026-11-26T10:00:00Z", "UpdatedAt": "2026-11-26T10:00:00Z",
        "Severity": {"Label": "HIGH", "Normalized": 70}, "Title": "C&C", "Description": "d",
        "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:111122223333:instance/i-1", "Region": "us-east-1"}],
        "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE"});
    let event = imported(vec![raw]);

    let sink = MemorySink::new();
    let p = pipeline(sink.clone(), Config::default());
    let report = p.process_event(&event).await.unwrap();
    assert_eq!(report.source, Source::SecurityHub);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        report.findings[0].decision,
        Decision::FromOtherSource(Source::GuardDuty)
    );
    assert_eq!(
        vigil::pipeline::decision_name(&report.findings[0].decision),
        "from_other_source"
    );
    assert_eq!(
        report.findings[0].finding.finding_type,
        "Backdoor:EC2/C&CActivity.B!DNS"
    );
    assert!(sink.sent().is_empty());

    let config = Config {
        securityhub_skip_guardduty: false,
        ..Config::default()
    };
    let p = pipeline(sink.clone(), config);
    assert_eq!(p.process_event(&event).await.unwrap().alerts(), 1);
    assert_eq!(sink.sent().len(), 1);
    assert_eq!(sink.sent()[0].finding.product, "GuardDuty");
}

#[tokio::test]
async fn resolved_and_suppressed_findings_do_not_alert_and_insights_are_no_error() {
    let finding = |workflow: &str, record: &str| {
        json!({"Id": format!("arn:aws:securityhub:us-east-1:111122223333:security-control/S3.8/finding/{workflow}"),
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub", "ProductName": "Security Hub",
            "AwsAccountId": "111122223333", "Region": "us-east-1", "Types": ["Software and Configuration Checks"],
            "Severity": {"Label": "CRITICAL"}, "Title": "t",
            "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"},
            "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::b"}],
            "Workflow": {"Status": workflow}, "RecordState": record})
    };
    let sink = MemorySink::new();
    let p = pipeline(sink.clone(), Config::default());
    for (workflow, record, status) in [
        ("RESOLVED", "ACTIVE", FindingStatus::Resolved),
        ("SUPPRESSED", "ACTIVE", FindingStatus::Suppressed),
        ("NEW", "ARCHIVED", FindingStatus::Archived),
    ] {
        let r = p
            .process_event(&imported(vec![finding(workflow, record)]))
            .await
            .unwrap();
        assert_eq!(r.findings[0].finding.status, status, "{workflow} {record}");
        assert_eq!(r.findings[0].decision, Decision::Inactive);
    }
    let r = p
        .process_event(&imported(vec![finding("NOTIFIED", "ACTIVE")]))
        .await
        .unwrap();
    assert_eq!(r.alerts(), 1);
    assert_eq!(sink.sent().len(), 1);

    let insight = json!({"version": "0", "id": "i1", "detail-type": "Security Hub Insight Results",
        "source": "aws.securityhub", "account": "111122223333", "time": "2026-11-26T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {"insightName": "x", "insightResults": [{"a": 1}]}});
    let r = p.process_event(&insight).await.unwrap();
    assert!(r.findings.is_empty());
}

#[tokio::test]
async fn the_function_pipeline_takes_security_hub_and_macie_only() {
    let p = Pipeline::builder(&Config::default())
        .accept(&[Source::SecurityHub, Source::Macie])
        .build();
    let gd = json!({"version": "0", "id": "e", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
        "account": "1", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"id": "x", "type": "Recon:EC2/Portscan", "severity": 5}});
    assert!(matches!(
        p.process_event(&gd).await,
        Err(vigil::PipelineError::NotAccepted { .. })
    ));
    for (name, event) in own_examples() {
        assert!(p.process_event(&event).await.is_ok(), "{name}");
    }
}

// ---------------------------------------------------------------- the project's own examples

#[tokio::test]
async fn own_examples_parse_and_alert_as_their_names_say() {
    let examples = own_examples();
    assert_eq!(examples.len(), 3);
    let sink = MemorySink::new();
    let p = pipeline(sink.clone(), Config::default());
    for (name, event) in &examples {
        let r = p.process_event(event).await.unwrap();
        assert_eq!(r.findings.len(), 1, "{name}");
        // Security Hub's copy of an Inspector finding is kept without
        // alerting while Inspector's direct events alert (the default).
        let copy = name == "inspector-log4j-critical.json";
        assert_eq!(r.alerts(), usize::from(!copy), "{name}");
        if copy {
            assert_eq!(
                r.findings[0].decision,
                Decision::FromOtherSource(Source::Inspector)
            );
        }
        let f = &r.findings[0].finding;
        match name.as_str() {
            "inspector-log4j-critical.json" => {
                assert_eq!(f.product, "Inspector");
                assert_eq!(f.severity, Severity::Critical);
                assert_eq!(f.finding_type, "CVE-2021-44228");
                assert_eq!(f.resources[0].tags["team"], "payments");
                assert_eq!(f.evidence["fix_available"], "YES");
                assert!(f.remediation.as_deref().unwrap().contains("2.17.1"));
            }
            "control-s3-public-access-failed.json" => {
                assert_eq!(f.product, "Security Hub");
                assert_eq!(f.severity, Severity::High);
                assert_eq!(f.finding_type, "S3.8");
                assert_eq!(f.evidence["compliance_status"], "FAILED");
                assert!(f.evidence["requirements"].contains("CIS"));
                assert_eq!(f.region, "eu-west-1");
                assert!(f.links.remediation.as_deref().unwrap().contains("S3.8"));
            }
            "macie-personal-data-high.json" => {
                assert_eq!(f.source, Source::Macie);
                assert_eq!(f.severity, Severity::High);
                assert_eq!(f.finding_type, "SensitiveData:S3Object/Personal");
            }
            other => panic!("unexpected example {other}"),
        }
        assert!(!f.fingerprint.is_empty());
    }
    assert_eq!(sink.sent().len(), 2, "the Inspector copy is not sent");
}

// ---------------------------------------------------------------- Macie's own events

#[test]
fn a_macie_sensitive_data_finding() {
    let (_, event) = own_examples()
        .into_iter()
        .find(|(n, _)| n.starts_with("macie"))
        .unwrap();
    let f = parse_event(&event).remove(0);
    assert_eq!(f.id, "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c");
    assert_eq!(f.product, "Macie");
    assert_eq!(f.source_severity.as_deref(), Some("High"));
    assert_eq!(f.account_id, "111122223333");
    assert_eq!(f.region, "us-east-1");
    assert_eq!(f.resources[0].resource_type, "AwsS3Bucket");
    assert_eq!(f.resources[0].id, "arn:aws:s3:::example-crm-exports");
    assert_eq!(f.resources[0].tags["team"], "sales-ops");
    assert_eq!(f.resources[1].resource_type, "AwsS3Object");
    assert_eq!(
        f.resources[1].id,
        "arn:aws:s3:::example-crm-exports/exports/2026-11/customers-full.csv"
    );
    assert_eq!(
        f.evidence["s3_object_key"],
        "exports/2026-11/customers-full.csv"
    );
    assert_eq!(
        f.evidence["sensitive_data"],
        "NAME (1203), USA_SOCIAL_SECURITY_NUMBER (234)"
    );
    assert_eq!(
        f.evidence["sensitive_data_categories"],
        "PERSONAL_INFORMATION"
    );
    assert_eq!(f.evidence["bucket_public_access"], "NOT_PUBLIC");
    assert!(!f.sample);
    assert!(f.tactics.is_empty());
    assert_eq!(
        f.links.console.as_deref(),
        Some("https://us-east-1.console.aws.amazon.com/macie/home?region=us-east-1#findings?itemId=9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c")
    );
    assert_eq!(
        f.event_id.as_deref(),
        Some("5b8e2d47-c1a9-4f03-8e6b-94d7a0c3f215")
    );
}

/// A Macie policy finding as the Macie API and EventBridge document it.
fn macie_policy_event(sample: bool, archived: bool) -> Value {
    json!({"version": "0", "id": "0948ba87-d3b8-c6d4-f2da-732a1example", "detail-type": "Macie Finding",
        "source": "aws.macie", "account": "123456789012", "time": "2026-11-26T23:12:15Z", "region": "us-east-1",
        "resources": [],
        "detail": {"schemaVersion": "1.0", "id": "64b917aa-3843-014c-91d8-937ffexample",
            "accountId": "123456789012", "partition": "aws", "region": "us-east-1",
            "type": "Policy:IAMUser/S3BlockPublicAccessDisabled",
            "title": "Block Public Access settings are disabled for the S3 bucket",
            "description": "All Amazon S3 block public access settings are disabled for the Amazon S3 bucket.",
            "severity": {"score": 2, "description": "Medium"},
            "createdAt": "2026-11-26T15:46:02Z", "updatedAt": "2026-11-26T23:12:15Z", "count": 2,
            "category": "POLICY", "archived": archived, "sample": sample,
            "resourcesAffected": {"s3Bucket": {"arn": "arn:aws:s3:::example-public-site", "name": "example-public-site",
                "tags": [], "publicAccess": {"effectivePermission": "PUBLIC"}}},
            "policyDetails": {
                "action": {"actionType": "AWS_API_CALL", "apiCallDetails": {"api": "DeletePublicAccessBlock",
                    "apiServiceName": "s3.amazonaws.com", "firstSeen": "2026-11-26T15:46:02.401Z",
                    "lastSeen": "2026-11-26T23:11:59.102Z"}},
                "actor": {"domainDetails": {"domainName": ""},
                    "ipAddressDetails": {"ipAddressV4": "198.51.100.23", "ipCity": {"name": "Seattle"},
                        "ipCountry": {"code": "US", "name": "United States"},
                        "ipGeoLocation": {"lat": 47.6, "lon": -122.3},
                        "ipOwner": {"asn": "64496", "asnOrg": "ExampleNet", "isp": "ExampleNet", "org": "ExampleNet"}},
                    "userIdentity": {"type": "AssumedRole", "assumedRole": {
                        "accessKeyId": "ASIAIOSFODNN7EXAMPLE", "accountId": "123456789012",
                        "arn": "arn:aws:sts::123456789012:assumed-role/web-deploy/session-1",
                        "principalId": "AROAEXAMPLEID:session-1",
                        "sessionContext": {"attributes": {"creationDate": "2026-11-26T15:40:00Z", "mfaAuthenticated": false},
                            "sessionIssuer": {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:role/web-deploy",
                                "principalId": "AROAEXAMPLEID", "type": "Role", "userName": "web-deploy"}}}}}}}})
}

#[tokio::test]
async fn a_macie_policy_finding_names_the_actor_and_samples_do_not_alert() {
    let f = parse_event(&macie_policy_event(false, false)).remove(0);
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.count, 2);
    assert_eq!(f.tactics, vec![Tactic::DefenseEvasion]);
    assert!(f.evidence["attack_mapping"].contains("inferred"));
    assert_eq!(f.evidence["api"], "DeletePublicAccessBlock");
    let actor = f.actor.as_ref().unwrap();
    assert_eq!(actor.actor_type, vigil::model::ActorType::AssumedRole);
    assert_eq!(
        actor.session_issuer.as_deref(),
        Some("arn:aws:iam::123456789012:role/web-deploy")
    );
    assert_eq!(actor.access_key_id.as_deref(), Some("ASIAIOSFODNN7EXAMPLE"));
    assert_eq!(actor.mfa_used, Some(false));
    assert_eq!(f.network.remote_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(f.network.country.as_deref(), Some("United States"));
    assert_eq!(f.network.domain, None);
    assert_eq!(
        f.first_seen.unwrap().to_rfc3339(),
        "2026-11-26T15:46:02.401+00:00"
    );

    let sink = MemorySink::new();
    let p = pipeline(sink.clone(), Config::default());
    let r = p
        .process_event(&macie_policy_event(true, false))
        .await
        .unwrap();
    assert_eq!(r.source, Source::Macie);
    assert_eq!(r.findings[0].decision, Decision::Sample);
    let r = p
        .process_event(&macie_policy_event(false, true))
        .await
        .unwrap();
    assert_eq!(r.findings[0].decision, Decision::Inactive);
    let r = p
        .process_event(&macie_policy_event(false, false))
        .await
        .unwrap();
    assert_eq!(r.alerts(), 1);
}

#[tokio::test]
async fn a_macie_finding_through_security_hub_is_kept_without_alerting() {
    let raw = json!({"SchemaVersion": "2018-10-08", "Id": "64b917aa-3843-014c-91d8-937ffexample",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/macie", "ProductName": "Macie",
        "CompanyName": "Amazon", "Region": "us-east-1", "GeneratorId": "aws/macie",
        "AwsAccountId": "123456789012",
        "Types": ["Software and Configuration Checks/AWS Security Best Practices/Policy:IAMUser-S3BlockPublicAccessDisabled"],
        "CreatedAt": "2026-11-26T15:46:02Z", "UpdatedAt": "2026-11-26T23:12:15Z",
        "Severity": {"Label": "MEDIUM", "Normalized": 40}, "Title": "t", "Description": "d",
        "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::example-public-site", "Region": "us-east-1"}],
        "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE"});
    let copy = securityhub::parse_asff(&raw, None).unwrap();
    assert_eq!(copy.product, "Macie");
    assert_eq!(
        copy.finding_type,
        "Policy:IAMUser/S3BlockPublicAccessDisabled"
    );
    assert_eq!(copy.tactics, vec![Tactic::DefenseEvasion]);
    assert_eq!(securityhub::forwarded_from(&copy), Some(Source::Macie));

    let p = pipeline(MemorySink::new(), Config::default());
    let r = p.process_event(&imported(vec![raw])).await.unwrap();
    assert_eq!(
        r.findings[0].decision,
        Decision::FromOtherSource(Source::Macie)
    );
}

// ---------------------------------------------------------------- Findings Imported V2 (OCSF)

fn v2(findings: Vec<Value>) -> Value {
    json!({"version": "0", "id": "evt-v2-1", "detail-type": "Findings Imported V2", "source": "aws.securityhub",
        "account": "193043430472", "time": "2026-11-26T12:00:00Z", "region": "us-east-1",
        "resources": ["e51603d1054aad9d9f498d82d6e81acf4cf6bc88140e8ad2273123c73b81084"],
        "detail": {"findings": findings}})
}

/// The SSH brute force finding as the newer Security Hub sends it (OCSF 1.x
/// Detection Finding, as documented for Security Hub's OCSF findings).
fn v2_guardduty() -> Value {
    json!({
        "activity_id": 1, "activity_name": "Create", "category_name": "Findings", "category_uid": 2,
        "class_name": "Detection Finding", "class_uid": 2004, "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity": "Medium", "severity_id": 3, "status": "New", "status_id": 1,
        "time": 1601468040206u64, "time_dt": "2020-09-30T12:14:00.206Z", "count": 74,
        "confidence_score": 80,
        "metadata": {"version": "1.1.0", "product": {"name": "GuardDuty", "vendor_name": "AWS",
            "uid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"},
            "uid": "arn:aws:guardduty:us-east-1:193043430472:detector/d4b040365221be2b54a6264dc9a4bc64/finding/46ba0ac2845071e23ccdeb2ae03bfdea"},
        "cloud": {"provider": "AWS", "region": "us-east-1", "account": {"uid": "193043430472", "type": "AWS Account"}},
        "finding_info": {
            "uid": "arn:aws:guardduty:us-east-1:193043430472:detector/d4b040365221be2b54a6264dc9a4bc64/finding/46ba0ac2845071e23ccdeb2ae03bfdea",
            "title": "199.241.229.197 is performing SSH brute force attacks against i-0c10c2c7863d1a356.",
            "desc": "199.241.229.197 is performing SSH brute force attacks against i-0c10c2c7863d1a356.",
            "types": ["UnauthorizedAccess:EC2/SSHBruteForce"],
            "created_time_dt": "2020-08-22T09:34:34.146Z", "first_seen_time_dt": "2020-08-22T09:15:57.000Z",
            "last_seen_time_dt": "2020-09-30T11:56:49.000Z", "modified_time_dt": "2020-09-30T12:14:00.206Z",
            "src_url": "https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?macros=current&fId=46ba0ac2845071e23ccdeb2ae03bfdea"},
        "resources": [{"type": "AwsEc2Instance", "uid": "arn:aws:ec2:us-east-1:193043430472:instance/i-0c10c2c7863d1a356",
            "region": "us-east-1", "cloud_partition": "aws", "owner": {"account": {"uid": "193043430472"}},
            "tags": [{"name": "Name", "value": "kubectl"}]}],
        "attacks": [{"tactic": {"name": "Initial Access", "uid": "TA0001"},
            "technique": {"name": "Brute Force", "uid": "T1110"}, "version": "15"}],
        "evidences": [{"connection_info": {"direction": "Inbound", "protocol_name": "TCP"},
            "src_endpoint": {"ip": "199.241.229.197", "port": 46717,
                "location": {"country": "US", "city": "Dubuque"},
                "autonomous_system": {"number": 209, "name": "CENTURYLINK-US-LEGACY-QWEST"}},
            "dst_endpoint": {"ip": "172.31.43.6", "port": 22}}],
        "vendor_attributes": {"severity": "Medium", "severity_id": 3}
    })
}

#[test]
fn a_v2_guardduty_finding_matches_the_direct_and_asff_fingerprints() {
    let f = enriched(parse_event(&v2(vec![v2_guardduty()])).remove(0));
    let direct = enriched(guardduty::parse(&direct_ssh_brute_force(), None).unwrap());
    assert_eq!(f.source, Source::SecurityHub);
    assert_eq!(f.product, "GuardDuty");
    assert_eq!(f.id, "46ba0ac2845071e23ccdeb2ae03bfdea");
    assert_eq!(f.finding_type, "UnauthorizedAccess:EC2/SSHBruteForce");
    assert_eq!(f.fingerprint, direct.fingerprint);
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.count, 74);
    assert_eq!(f.tactics, vec![Tactic::InitialAccess]);
    assert_eq!(f.techniques[0].id, "T1110");
    assert_eq!(f.network.remote_ip.as_deref(), Some("199.241.229.197"));
    assert_eq!(f.network.local_port, Some(22));
    assert_eq!(f.network.asn.as_deref(), Some("209"));
    assert_eq!(f.resources[0].tags["Name"], "kubectl");
    assert_eq!(
        f.first_seen.unwrap().to_rfc3339(),
        "2020-08-22T09:15:57+00:00"
    );
    assert_eq!(f.time.to_rfc3339(), "2020-09-30T12:14:00.206+00:00");
    assert!(f
        .links
        .console
        .as_deref()
        .unwrap()
        .contains("fId=46ba0ac2845071e23ccdeb2ae03bfdea"));
    assert_eq!(f.event_id.as_deref(), Some("evt-v2-1"));
    assert_eq!(f.status, FindingStatus::Active);
    assert_eq!(securityhub::forwarded_from(&f), Some(Source::GuardDuty));
    if let Some(asff) = sample("awsdocs-gdguide__securityhub-integration__block0.json") {
        let copy = enriched(securityhub::parse_asff(&asff, None).unwrap());
        assert_eq!(copy.fingerprint, f.fingerprint);
    }
}

#[test]
fn v2_compliance_and_vulnerability_findings() {
    let control = json!({
        "class_name": "Compliance Finding", "class_uid": 2003, "category_uid": 2, "activity_id": 2,
        "severity": "High", "severity_id": 4, "status": "Resolved", "status_id": 4,
        "time_dt": "2026-11-26T11:05:35.219Z",
        "metadata": {"version": "1.1.0", "product": {"name": "Security Hub", "vendor_name": "AWS",
            "uid": "arn:aws:securityhub:eu-west-1::productv2/aws/securityhub"}},
        "cloud": {"provider": "AWS", "region": "eu-west-1", "account": {"uid": "111122223333"}},
        "finding_info": {"uid": "arn:aws:securityhub:eu-west-1:111122223333:security-control/S3.8/finding/0e5d7a3b",
            "title": "S3 general purpose buckets should block public access",
            "desc": "This control checks whether an Amazon S3 general purpose bucket blocks public access.",
            "types": ["Software and Configuration Checks/Industry and Regulatory Standards"]},
        "compliance": {"control": "S3.8", "status": "Fail", "status_id": 3,
            "standards": ["standards/aws-foundational-security-best-practices/v/1.0.0"]},
        "remediation": {"desc": "Turn on Block Public Access for the bucket.",
            "references": ["https://docs.aws.amazon.com/console/securityhub/S3.8/remediation"]},
        "resources": [{"type": "AwsS3Bucket", "uid": "arn:aws:s3:::example-analytics-exports", "region": "eu-west-1"}]
    });
    let vuln = json!({
        "class_name": "Vulnerability Finding", "class_uid": 2002, "category_uid": 2, "activity_id": 1,
        "severity": "Critical", "severity_id": 5, "status": "New", "status_id": 1,
        "time": 1795679898114u64,
        "metadata": {"version": "1.1.0", "product": {"name": "Inspector", "vendor_name": "AWS"}},
        "cloud": {"provider": "AWS", "region": "us-east-1", "account": {"uid": "111122223333"}},
        "finding_info": {"uid": "arn:aws:inspector2:us-east-1:111122223333:finding/6b1f0e9d",
            "title": "CVE-2021-44228 - org.apache.logging.log4j:log4j-core",
            "types": ["Software and Configuration Checks/Vulnerabilities/CVE"]},
        "vulnerabilities": [{"cve": {"uid": "CVE-2021-44228"},
            "affected_packages": [{"name": "org.apache.logging.log4j:log4j-core", "version": "2.14.1"}]}],
        "resources": [{"type": "AwsEc2Instance", "uid": "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60718"}]
    });
    let findings = parse_event(&v2(vec![control, vuln]));
    assert_eq!(findings.len(), 2);
    let c = &findings[0];
    assert_eq!(c.finding_type, "S3.8");
    assert_eq!(c.product, "Security Hub");
    assert_eq!(c.severity, Severity::High);
    assert_eq!(c.status, FindingStatus::Resolved);
    assert_eq!(c.evidence["compliance_status"], "Fail");
    assert_eq!(
        c.remediation.as_deref(),
        Some("Turn on Block Public Access for the bucket.")
    );
    assert!(c.links.remediation.as_deref().unwrap().contains("S3.8"));
    assert_eq!(c.region, "eu-west-1");
    assert!(c.actor.is_none());
    let v = &findings[1];
    assert_eq!(v.finding_type, "CVE-2021-44228");
    assert_eq!(v.severity, Severity::Critical);
    assert_eq!(v.status, FindingStatus::Active);
    // Not a GuardDuty finding: the instance keeps its ARN.
    assert!(v.resources[0].id.starts_with("arn:aws:ec2:"));
    assert!(v.evidence["vulnerable_packages"].contains("log4j-core 2.14.1"));
    assert_eq!(v.time.timestamp_millis(), 1795679898114);
    assert!(v
        .links
        .console
        .as_deref()
        .unwrap()
        .starts_with("https://us-east-1.console.aws.amazon.com/securityhub/"));
}

#[test]
fn v2_statuses_and_missing_ids() {
    let mut f = v2_guardduty();
    for (id, status) in [
        (3, FindingStatus::Suppressed),
        (4, FindingStatus::Resolved),
        (5, FindingStatus::Archived),
        (2, FindingStatus::Active),
    ] {
        f["status_id"] = json!(id);
        assert_eq!(securityhub::parse_ocsf(&f, None).unwrap().status, status);
    }
    f["finding_info"].as_object_mut().unwrap().remove("uid");
    f["metadata"].as_object_mut().unwrap().remove("uid");
    assert!(securityhub::parse_ocsf(&f, None).is_err());
    let env = Envelope {
        detail_type: "Findings Imported V2".into(),
        ..Envelope::default()
    };
    assert!(securityhub::parse(&json!({"findings": [f]}), &env).is_err());
}

// ---------------------------------------------------------------- template.yaml

/// The securityhub function's EventBridge patterns in `template.yaml`.
fn template_patterns() -> Option<Vec<(String, vigil::detect::eventbridge::EventPattern)>> {
    let path = project_root().join("template.yaml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("note: no template.yaml; skipping the pattern checks");
        return None;
    };
    let template: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let events = template["Resources"]["SecurityHubFunction"]["Properties"]["Events"]
        .as_mapping()
        .expect("SecurityHubFunction has Events");
    Some(
        events
            .iter()
            .map(|(name, e)| {
                let pattern: Value = serde_json::to_value(&e["Properties"]["Pattern"]).unwrap();
                let name = name.as_str().unwrap().to_string();
                let parsed = vigil::detect::eventbridge::EventPattern::parse(&pattern)
                    .unwrap_or_else(|err| panic!("{name}: {err}"));
                (name, parsed)
            })
            .collect(),
    )
}

#[test]
fn template_patterns_deliver_active_findings_and_drop_finished_ones() {
    let Some(patterns) = template_patterns() else {
        return;
    };
    let delivered = |event: &Value| patterns.iter().any(|(_, p)| p.matches(event));
    for (name, event) in own_examples() {
        assert!(delivered(&event), "{name} is not delivered");
    }
    let (_, control) = own_examples()
        .into_iter()
        .find(|(n, _)| n.starts_with("control"))
        .unwrap();
    for (pointer, value) in [
        ("/detail/findings/0/Workflow/Status", "RESOLVED"),
        ("/detail/findings/0/Workflow/Status", "SUPPRESSED"),
        ("/detail/findings/0/RecordState", "ARCHIVED"),
        ("/detail/findings/0/Compliance/Status", "PASSED"),
    ] {
        let mut e = control.clone();
        *e.pointer_mut(pointer).unwrap() = json!(value);
        assert!(!delivered(&e), "{pointer} = {value} is delivered");
    }
    let mut e = control.clone();
    e["detail"]["findings"][0]
        .as_object_mut()
        .unwrap()
        .remove("Compliance");
    assert!(delivered(&e), "a finding without compliance is dropped");
    e["detail"]["findings"][0]["Compliance"] = json!({"Status": "WARNING"});
    assert!(delivered(&e));

    let mut event = v2(vec![v2_guardduty()]);
    assert!(delivered(&event));
    for (status, expected) in [(2, true), (3, false), (4, false), (5, false)] {
        event["detail"]["findings"][0]["status_id"] = json!(status);
        assert_eq!(delivered(&event), expected, "V2 status_id {status}");
    }
    assert!(delivered(&macie_policy_event(false, false)));
    // Not this function's business.
    let gd = json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {}});
    assert!(!delivered(&gd));

    if let Some(samples) = shared_samples() {
        for (name, v) in samples {
            let imported = v["detail-type"] == "Security Hub Findings - Imported";
            let active = v["detail"]["findings"][0]["RecordState"] == "ACTIVE"
                && v["detail"]["findings"][0]["Workflow"]["Status"] == "NEW";
            if imported && active {
                assert!(delivered(&v), "{name}");
            }
        }
    }
}

// ---------------------------------------------------------------- robustness and configuration

/// Every value in `v`, replaced in turn with each of a few wrong types.
fn mutations(v: &Value) -> Vec<Value> {
    fn walk(root: &Value, path: &mut Vec<PathStep>, node: &Value, out: &mut Vec<Value>) {
        for wrong in [
            Value::Null,
            json!(-1),
            json!("null"),
            json!([]),
            json!({}),
            json!(1e300),
        ] {
            let mut copy = root.clone();
            *at(&mut copy, path) = wrong;
            out.push(copy);
        }
        match node {
            Value::Object(m) => {
                for (k, child) in m {
                    path.push(PathStep::Key(k.clone()));
                    walk(root, path, child, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate().take(3) {
                    path.push(PathStep::Index(i));
                    walk(root, path, child, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), v, &mut out);
    out
}

enum PathStep {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |cur, step| match step {
        PathStep::Key(k) => &mut cur[k.as_str()],
        PathStep::Index(i) => &mut cur[*i],
    })
}

#[test]
fn no_input_shape_panics_any_parser() {
    let mut events: Vec<Value> = own_examples().into_iter().map(|(_, v)| v).collect();
    events.push(v2(vec![v2_guardduty()]));
    events.push(macie_policy_event(false, false));
    if let Some(samples) = shared_samples() {
        for name in [
            "awsdocs-gdguide__securityhub-integration__block0.json",
            "cloud-custodian__event-securityhub-iamkey-finding-action.json",
            "panther__Decoy.IAM.Assumed__Suspicious_activity_detected_accessing_private_decoy_IAM_role_arn_aws_iam_123456789012_role_Dummy-Test-InfoRole-ab21cde5__d0c714cf7f.json",
        ] {
            let v = samples.iter().find(|(n, _)| n == name).unwrap().1.clone();
            events.push(if v.get("detail-type").is_some() {
                v
            } else {
                imported(vec![v])
            });
        }
    }
    let mut tried = 0;
    for event in &events {
        for mutated in mutations(event) {
            tried += 1;
            // Errors are fine; panics are not.
            if let Ok(parsed) = classify(&mutated) {
                match parsed {
                    SourceEvent::SecurityHub { detail, envelope } => {
                        let _ = securityhub::parse(detail, &envelope);
                    }
                    SourceEvent::Macie { finding, envelope } => {
                        let _ = macie::parse(finding, Some(&envelope));
                    }
                    _ => {}
                }
            }
            if let Some(detail) = mutated.get("detail") {
                let _ = macie::parse(detail, None);
                for f in detail["findings"].as_array().into_iter().flatten() {
                    let _ = securityhub::parse_asff(f, None);
                    let _ = securityhub::parse_ocsf(f, None);
                }
            }
        }
    }
    assert!(tried > 1000, "{tried}");
}

#[test]
fn skip_flags_default_on_and_fail_loudly_when_malformed() {
    let cfg = |pairs: &[(&str, &str)]| {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    };
    let c = cfg(&[]).unwrap();
    assert!(c.securityhub_skip_guardduty && c.securityhub_skip_macie);
    let direct = [Source::Inspector, Source::AccessAnalyzer, Source::Config];
    let mut all = vec![Source::GuardDuty, Source::Macie];
    all.extend(direct);
    assert_eq!(c.securityhub_skip_sources(), all);
    let c = cfg(&[("VIGIL_SECURITYHUB_SKIP_GUARDDUTY", "false")]).unwrap();
    assert!(!c.securityhub_skip_guardduty && c.securityhub_skip_macie);
    assert_eq!(c.securityhub_skip_sources()[0], Source::Macie);
    let c = cfg(&[
        ("VIGIL_SECURITYHUB_SKIP_INSPECTOR", "false"),
        ("VIGIL_SECURITYHUB_SKIP_ACCESS_ANALYZER", "false"),
        ("VIGIL_SECURITYHUB_SKIP_CONFIG", "false"),
    ])
    .unwrap();
    assert_eq!(
        c.securityhub_skip_sources(),
        vec![Source::GuardDuty, Source::Macie]
    );
    let err = cfg(&[("VIGIL_SECURITYHUB_SKIP_MACIE", "sometimes")]).unwrap_err();
    assert!(err.to_string().contains("VIGIL_SECURITYHUB_SKIP_MACIE"));
}

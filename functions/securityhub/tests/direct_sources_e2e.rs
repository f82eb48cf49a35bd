//! AWS Health, IAM Access Analyzer, Inspector and Config end to end: the real
//! `securityhub` function binary under cargo-lambda's emulator, publishing
//! through the AWS SDK to moto's SNS, read back from an SQS subscriber queue.
//! Each sample of `examples/events/{health,access-analyzer,inspector,config}/`
//! gives the alert its file name promises (`-critical`, `-high`, `-medium`),
//! a resolution (`-resolves`), or nothing (`-no-alert`).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vigil_e2e::{
    drain, events_in, moto_endpoint, project_root, sdk, topic_with_queue, unique, LambdaFunction,
};

fn start(endpoint: &str, topic_arn: &str) -> Option<LambdaFunction> {
    let binary = Path::new(env!("CARGO_BIN_EXE_securityhub"));
    LambdaFunction::start(
        binary,
        &[
            ("VIGIL_TOPIC_ARN", topic_arn),
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_REGION", "us-east-1"),
            ("VIGIL_MIN_SEVERITY", "MEDIUM"),
        ],
    )
}

/// What a sample's file name promises: the SNS severity attribute and
/// whether the OCSF body is a resolution; `None`: no message at all.
fn promised(file: &str) -> Option<(&'static str, bool)> {
    let stem = file.trim_end_matches(".json");
    if stem.ends_with("-no-alert") {
        None
    } else if stem.ends_with("-resolves") {
        Some(("", true))
    } else {
        ["critical", "high", "medium", "low"]
            .into_iter()
            .find(|s| stem.ends_with(&format!("-{s}")))
            .map(|s| {
                (
                    match s {
                        "critical" => "CRITICAL",
                        "high" => "HIGH",
                        "medium" => "MEDIUM",
                        _ => "LOW",
                    },
                    false,
                )
            })
            .or_else(|| panic!("{file}: name says neither a severity, -resolves nor -no-alert"))
    }
}

/// Runs every sample of `dir` (alerts first, so a resolution finds its alert)
/// and checks each message; returns the OCSF bodies, for the caller's checks.
async fn run_dir(dir: &str, source: &str) -> Vec<Value> {
    let Some(endpoint) = moto_endpoint() else {
        return Vec::new();
    };
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique(dir)).await.unwrap();
    let Some(function) = start(&endpoint, &topic_arn) else {
        return Vec::new();
    };
    let mut events = events_in(&project_root().join("examples/events").join(dir));
    events.sort_by_key(|(p, _)| p.to_string_lossy().ends_with("-resolves.json"));
    assert!(events.len() >= 2, "{dir}: {} samples", events.len());
    let mut bodies = Vec::new();
    for (path, event) in &events {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let out = function
            .invoke(event)
            .unwrap_or_else(|e| panic!("{file}: {e}\n{}", function.logs()));
        let want = promised(&file);
        assert_eq!(out["alerts"], usize::from(want.is_some()), "{file}: {out}");
        let messages = drain(
            &sdk,
            &queue_url,
            usize::from(want.is_some()),
            Duration::from_secs(15),
        )
        .await
        .unwrap();
        let Some((severity, resolution)) = want else {
            assert!(messages.is_empty(), "{file}: {messages:?}");
            continue;
        };
        assert_eq!(messages.len(), 1, "{file}");
        let m = &messages[0];
        let attrs = &m["MessageAttributes"];
        assert_eq!(attrs["source"]["Value"], source, "{file}: {attrs}");
        if !resolution {
            assert_eq!(attrs["severity"]["Value"], severity, "{file}: {attrs}");
        }
        let ocsf: Value = serde_json::from_str(m["Message"].as_str().unwrap()).unwrap();
        assert_eq!(ocsf["class_uid"], 2004, "{file}");
        assert_eq!(ocsf["status_id"] == 4, resolution, "{file}: {ocsf}");
        bodies.push(ocsf);
    }
    bodies
}

#[tokio::test]
async fn health_exposed_key_alerts_critical_naming_key_and_user_and_maintenance_does_not() {
    let bodies = run_dir("health", "Health").await;
    if bodies.is_empty() {
        return;
    }
    let critical = bodies
        .iter()
        .find(|b| b["severity_id"] == 5)
        .expect("a critical alert");
    let text = critical.to_string();
    assert!(
        text.contains("AKIAIOSFODNN7EXAMPLE") && text.contains("deploy-bot"),
        "{text}"
    );
    assert!(text.contains("Deactivate"), "rotation steps: {text}");
}

#[tokio::test]
async fn access_analyzer_active_external_access_alerts_and_archived_does_not() {
    let bodies = run_dir("access-analyzer", "AccessAnalyzer").await;
    if bodies.is_empty() {
        return;
    }
    assert!(bodies
        .iter()
        .any(|b| b.to_string().contains("999988887777")));
}

#[tokio::test]
async fn inspector_cve_alerts_with_fix_and_tags_and_closed_resolves() {
    let bodies = run_dir("inspector", "Inspector").await;
    if bodies.is_empty() {
        return;
    }
    let text = bodies[0].to_string();
    assert!(
        text.contains("CVE-2023-3609") && text.contains("0:5.15.0.1041.40~20.04.1"),
        "{text}"
    );
    assert!(text.contains("payments"), "resource tags: {text}");
    assert_eq!(bodies.len(), 2, "the alert and its resolution");
}

#[tokio::test]
async fn config_security_rule_alerts_once_resolves_and_other_rules_do_not() {
    let bodies = run_dir("config", "Config").await;
    if bodies.is_empty() {
        return;
    }
    assert_eq!(bodies.len(), 2, "restricted-ssh alert and its resolution");
    assert!(bodies
        .iter()
        .all(|b| b.to_string().contains("sg-0123456789abcdef0")));
}

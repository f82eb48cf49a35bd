//! GuardDuty end to end: every sample event through the guardduty function's
//! handler, the real SNS sink and the real AWS SDK, into moto's SNS, out of an
//! SQS subscriber queue. Asserts what a subscriber receives.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use vigil::model::Severity;
use vigil::{app, Config, Source};
use vigil_e2e::{drain, events_in, moto_endpoint, sample_dir, sdk, topic_with_queue, unique};

#[tokio::test]
async fn every_guardduty_sample_reaches_an_sqs_subscriber_as_a_well_formed_alert() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("gd-e2e")).await.unwrap();
    let config = Config {
        topic_arn: Some(topic_arn),
        // Every public sample is a GuardDuty-generated sample finding, and some are Low:
        // alert on all of them so each event must produce exactly one message.
        alert_samples: true,
        min_severity: Severity::Informational,
        ..Config::default()
    };
    let pipeline = app::function_pipeline(
        &config,
        &Default::default(),
        &sdk,
        &[Source::GuardDuty],
        None,
    );

    let events = events_in(&sample_dir("guardduty", "guardduty"));
    assert!(!events.is_empty(), "no GuardDuty samples found");
    let mut expected: HashMap<String, String> = HashMap::new();
    for (file, event) in &events {
        let out = app::handle_event(&pipeline, event.clone())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(out["alerts"], 1, "{}: {out}", file.display());
        let detail = event.get("detail").unwrap_or(event);
        let id = detail["id"].as_str().unwrap().to_string();
        let ftype = detail["type"].as_str().unwrap().to_string();
        expected.insert(id, ftype);
    }

    let messages = drain(&sdk, &queue_url, events.len(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), events.len(), "one SNS message per event");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for notification in &messages {
        // The SNS envelope an SQS subscriber receives.
        let subject = notification["Subject"].as_str().expect("subject");
        assert!(subject.is_ascii() && subject.len() <= 99, "{subject:?}");
        assert!(!subject.contains('\n') && !subject.contains('\r'));
        assert!(subject.starts_with('['), "severity first: {subject}");

        // The sqs key of the JSON message structure: the finding as OCSF.
        let ocsf: Value = serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap();
        assert!(vigil::ocsf::missing_required(&ocsf).is_empty(), "{ocsf}");
        assert_eq!(ocsf["class_uid"], 2004);
        let uid = ocsf["finding_info"]["uid"].as_str().unwrap();
        let ftype = expected
            .get(uid)
            .unwrap_or_else(|| panic!("unexpected finding {uid}"));
        assert_eq!(ocsf["finding_info"]["types"][0], ftype.as_str());

        let attrs = &notification["MessageAttributes"];
        let sev = attrs["severity"]["Value"].as_str().unwrap();
        assert!(
            subject.starts_with(&format!("[{sev}]")),
            "{subject} vs {sev}"
        );
        assert_eq!(ocsf["severity"].as_str().unwrap().to_ascii_uppercase(), sev);
        assert_eq!(attrs["source"]["Value"], "GuardDuty");
        assert_eq!(attrs["finding_type"]["Value"].as_str().unwrap(), ftype);
        assert!(attrs["account"]["Value"]
            .as_str()
            .is_some_and(|a| !a.is_empty()));
        *seen.entry(uid.to_string()).or_default() += 1;
    }
    // Some public samples share a finding id; every id must have arrived.
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen.values().sum::<usize>(), events.len());
}

#[tokio::test]
async fn severity_threshold_and_samples_gate_what_is_published() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("gd-gate")).await.unwrap();
    let config = Config {
        topic_arn: Some(topic_arn),
        min_severity: Severity::High,
        ..Config::default()
    };
    let pipeline = app::function_pipeline(
        &config,
        &Default::default(),
        &sdk,
        &[Source::GuardDuty],
        None,
    );
    // The project's own samples: one CRITICAL, four HIGH, one MEDIUM, one LOW, none a sample.
    let events = events_in(&vigil_e2e::project_root().join("examples/events/guardduty"));
    let mut alerts = 0;
    for (_, event) in events {
        alerts += app::handle_event(&pipeline, event).await.unwrap()["alerts"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(alerts, 5);
    let messages = drain(&sdk, &queue_url, 5, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), 5);
    for m in messages {
        let sev = m["MessageAttributes"]["severity"]["Value"]
            .as_str()
            .unwrap();
        assert!(sev == "HIGH" || sev == "CRITICAL", "{sev}");
    }
}

#[tokio::test]
async fn not_a_guardduty_event_fails_the_invocation_with_a_clear_error() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let pipeline = app::function_pipeline(
        &Config::default(),
        &Default::default(),
        &sdk,
        &[Source::GuardDuty],
        None,
    );
    let ec2 = serde_json::json!({"version":"0","id":"x","detail-type":"EC2 Instance State-change Notification",
        "source":"aws.ec2","account":"1","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{}});
    let err = app::handle_event(&pipeline, ec2).await.unwrap_err();
    assert!(err.to_string().contains("unsupported event"), "{err}");
}

//! The real `cloudtrail` binary under cargo-lambda's Lambda runtime emulator,
//! publishing to moto's SNS: the CloudTrail samples (the real public ones in
//! ../shared/events/cloudtrail when present, and the project's own) go through
//! the bundled rules, and exactly the alerts the function reports arrive at an
//! SQS subscriber. A benign call alerts nothing.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vigil::sources::{classify, SourceEvent};
use vigil_e2e::{
    drain, events_in, moto_endpoint, project_root, sdk, shared_events, topic_with_queue, unique,
    LambdaFunction,
};

fn is_cloudtrail(event: &Value) -> bool {
    matches!(classify(event), Ok(SourceEvent::CloudTrail { .. }))
}

#[tokio::test]
async fn cloudtrail_samples_alert_through_the_function_and_benign_calls_do_not() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("ct-lambda")).await.unwrap();
    let Some(function) = LambdaFunction::start(
        Path::new(env!("CARGO_BIN_EXE_cloudtrail")),
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("VIGIL_MIN_SEVERITY", "LOW"),
        ],
    ) else {
        return;
    };

    let own = project_root().join("examples/events/cloudtrail");
    let mut events = events_in(&own);
    if let Some(public) = shared_events("cloudtrail") {
        events.extend(events_in(&public));
    }
    let mut alerts = 0;
    let mut alerted_files = HashSet::new();
    for (file, event) in events.iter().filter(|(_, e)| is_cloudtrail(e)) {
        let out = function
            .invoke(event)
            .unwrap_or_else(|e| panic!("{}: {e}\nlogs:\n{}", file.display(), function.logs()));
        let n = out["alerts"].as_u64().unwrap();
        if n > 0 {
            alerted_files.insert(file.file_name().unwrap().to_string_lossy().to_string());
        }
        alerts += n;
    }
    // The project's own attack samples each alert; its benign call does not.
    for expected in [
        "cloudtrail-stop-logging.json",
        "iam-access-key-for-another-user.json",
        "console-login-without-mfa.json",
    ] {
        assert!(
            alerted_files.contains(expected),
            "{expected} did not alert: {alerted_files:?}"
        );
    }
    assert!(!alerted_files.contains("benign-describe-instances.json"));

    let messages = drain(&sdk, &queue_url, alerts as usize, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        messages.len() as u64,
        alerts,
        "every reported alert arrived, no more"
    );
    let mut titles = Vec::new();
    for m in &messages {
        let subject = m["Subject"].as_str().unwrap();
        assert!(
            subject.is_ascii() && subject.len() <= 99 && subject.starts_with('['),
            "{subject}"
        );
        assert_eq!(m["MessageAttributes"]["source"]["Value"], "CloudTrail");
        let ocsf: Value = serde_json::from_str(m["Message"].as_str().unwrap()).unwrap();
        let rule = &ocsf["finding_info"]["analytic"];
        assert_eq!(
            m["MessageAttributes"]["finding_type"]["Value"], rule["uid"],
            "the finding type attribute is the rule id"
        );
        assert!(
            ocsf["evidences"][0]["actor"]["user"].is_object(),
            "who did it: {ocsf}"
        );
        titles.push(rule["name"].as_str().unwrap().to_string());
    }
    assert!(
        titles.iter().any(|t| t == "CloudTrail logging stopped"),
        "{titles:?}"
    );

    // Not a CloudTrail event: the invocation fails, so Lambda retries and dead-letters it.
    let gd = serde_json::json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "id": "x", "detail": {"type": "t", "id": "i"}});
    assert!(function.invoke(&gd).is_err());
}

//! The real `guardduty` binary under cargo-lambda's Lambda runtime emulator,
//! publishing to moto's SNS: what `sam deploy` ships, minus AWS.

use std::time::Duration;

use vigil_e2e::{
    drain, moto_endpoint, project_root, sdk, topic_with_queue, unique, LambdaFunction,
};

#[tokio::test]
async fn the_function_binary_publishes_alerts_and_fails_on_bad_input() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("gd-lambda")).await.unwrap();
    let Some(function) = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_guardduty")),
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
        ],
    ) else {
        return;
    };

    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            project_root().join("examples/events/guardduty/attack-sequence-s3-critical.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let out = function
        .invoke(&event)
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    assert_eq!(out["alerts"], 1, "{out}");

    let messages = drain(&sdk, &queue_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert!(messages[0]["Subject"]
        .as_str()
        .unwrap()
        .starts_with("[CRITICAL] GuardDuty: "));

    // Input that is not a GuardDuty event: the invocation fails (so Lambda
    // retries and then dead-letters it) with a clear error, and the process lives on.
    let bad =
        serde_json::json!({"detail-type": "Something Else", "source": "aws.ec2", "detail": {}});
    let err = function.invoke(&bad).unwrap_err();
    assert!(err.0.contains("unsupported event"), "{err}");
    let again = function.invoke(&event).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again["alerts"], 1);
}

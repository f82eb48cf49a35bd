//! The AWS SDK configuration every layer shares. A leaf, so telemetry, the
//! notifier and the document loaders need not import the app.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

/// Most time to open a connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most time one attempt of a call may take until its response begins (a
/// streamed body, such as a log file from S3, is read after this).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// Most time a call may take with all its retries. The SDK sets no limit of
/// its own, so an endpoint that accepts the connection and never answers
/// would hold the invocation until Lambda kills it (30 s for the EventBridge
/// functions), losing every alert of the event instead of failing one call
/// that the pipeline reports and retries.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(12);

/// The timeouts every client gets.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The loader [`sdk_config`] uses, for callers that must add to it (tests
/// point it at a local endpoint).
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts())
}

/// Loads the AWS SDK configuration once per cold start. Honours
/// `AWS_ENDPOINT_URL` (moto in tests) and the Lambda's credentials.
pub async fn sdk_config() -> SdkConfig {
    loader().load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endpoint that accepts connections and never answers: the call fails
    /// by the operation timeout instead of hanging (the guard is far longer).
    #[tokio::test]
    async fn a_silent_endpoint_fails_the_call_instead_of_hanging() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let sdk = loader()
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sns::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .load()
            .await;
        let publish = aws_sdk_sns::Client::new(&sdk)
            .publish()
            .topic_arn("arn:aws:sns:us-east-1:123456789012:vigil-alerts")
            .message("m")
            .send();
        let outcome = tokio::time::timeout(OPERATION_TIMEOUT * 4, publish)
            .await
            .expect("the SDK call hung past its operation timeout");
        let err = outcome.expect_err("a silent endpoint cannot answer");
        assert!(
            matches!(err, aws_sdk_sns::error::SdkError::TimeoutError(_))
                || format!("{err:?}").to_lowercase().contains("timeout"),
            "expected a timeout, got {err:?}"
        );
        held.abort();
    }
}

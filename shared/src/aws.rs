//! The AWS SDK configuration every layer shares. A leaf, so telemetry, the
//! notifier and the document loaders need not import the app.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the AWS SDK configuration once per cold start. Honours
/// `AWS_ENDPOINT_URL` (moto in tests) and the Lambda's credentials.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

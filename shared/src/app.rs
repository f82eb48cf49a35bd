//! Wiring shared by every function and the CLI: AWS clients, the pipeline for a
//! set of sources, and the EventBridge handler. Functions stay a few lines.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use serde_json::{json, Value};

use crate::config::{Config, ConfigError};
use crate::detect::Detector;
use crate::model::Source;
use crate::pipeline::{Pipeline, PipelineBuilder, PipelineError};
use crate::sinks::SnsSink;

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("detection rules: {0}")]
    Rules(String),
}

/// Loads the AWS SDK configuration once per cold start. Honours
/// `AWS_ENDPOINT_URL` (moto in tests) and the Lambda's credentials.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A pipeline builder with the SNS sink when a topic is configured.
pub fn pipeline_builder(config: &Config, sdk: Option<&SdkConfig>) -> PipelineBuilder {
    let mut builder = Pipeline::builder(config);
    if let (Some(topic), Some(sdk)) = (&config.topic_arn, sdk) {
        builder = builder.sink(Box::new(SnsSink::new(
            aws_sdk_sns::Client::new(sdk),
            topic.clone(),
        )));
    }
    builder
}

/// The pipeline a function runs: only `accepted` sources, SNS when configured,
/// the detection rules when CloudTrail is among the sources.
pub fn function_pipeline(
    config: &Config,
    sdk: &SdkConfig,
    accepted: &[Source],
    detector: Option<Arc<dyn Detector>>,
) -> Pipeline {
    let mut builder = pipeline_builder(config, Some(sdk)).accept(accepted);
    if let Some(d) = detector {
        builder = builder.detector(d);
    }
    builder.build()
}

/// Why an invocation failed. Returned to the Lambda runtime, which reports it
/// so the event is retried and, in the end, kept in the dead-letter queue.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvocationError(pub String);

/// Handles one EventBridge event: runs the pipeline, logs the outcome, and
/// fails the invocation on any error so nothing is lost.
pub async fn handle_event(pipeline: &Pipeline, event: Value) -> Result<Value, InvocationError> {
    match pipeline.process_event(&event).await {
        Ok(report) => Ok(json!({
            "source": report.source.as_str(),
            "findings": report.findings.len(),
            "alerts": report.alerts(),
        })),
        Err(err) => {
            let kind = match &err {
                PipelineError::Source(_) | PipelineError::NotAccepted { .. } => "bad_input",
                PipelineError::Delivery { .. } => "delivery",
            };
            let event_id = event.get("id").and_then(|v| v.as_str()).unwrap_or_default();
            tracing::error!(error = %err, error_kind = kind, event_id, "event failed");
            Err(InvocationError(err.to_string()))
        }
    }
}

/// What a function is: its name and the sources it takes.
pub struct FunctionSpec {
    pub name: &'static str,
    pub sources: &'static [Source],
}

/// Runs an EventBridge-triggered function: reads configuration, builds the
/// clients and the pipeline once per cold start, then serves invocations.
/// `detector` builds the CloudTrail rules when the function needs them.
pub async fn run_eventbridge_function(
    spec: FunctionSpec,
    detector: impl FnOnce(&Config) -> Result<Option<Arc<dyn Detector>>, StartupError>,
) -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    if config.topic_arn.is_none() {
        // A function without a topic would drop every alert: refuse to start.
        return Err(StartupError::Config(ConfigError::Invalid {
            name: "VIGIL_TOPIC_ARN",
            message: "not set: alerts would go nowhere".into(),
        })
        .into());
    }
    let detector = detector(&config)?;
    let sdk = sdk_config().await;
    let pipeline = function_pipeline(&config, &sdk, spec.sources, detector);
    tracing::info!(function = spec.name, "ready");
    let pipeline = &pipeline;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            handle_event(pipeline, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

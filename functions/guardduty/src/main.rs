//! Lambda: GuardDuty findings from EventBridge (`aws.guardduty` /
//! `GuardDuty Finding`) through Vigil's pipeline to the SNS alert topic.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use vigil::{app, Config, Source};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    let sdk = app::sdk_config().await;
    let pipeline = app::function_pipeline(&config, &sdk, &[Source::GuardDuty], None);
    let pipeline = &pipeline;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        app::handle_event(pipeline, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}

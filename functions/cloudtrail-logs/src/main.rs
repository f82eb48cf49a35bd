//! Lambda: CloudTrail log files (an organization trail's S3 bucket) through
//! the detection rules and Vigil's pipeline to the SNS alert topic.
//!
//! Triggered by an SQS queue fed with the bucket's object-created
//! notifications (direct, through SNS, or through EventBridge: see
//! the README section "CloudTrail log files"). Each file is streamed from S3 and decoded one
//! record at a time (`vigil::sources::log_file`); a message whose file fails is
//! reported in `batchItemFailures`, alone.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use vigil::app::{self, FunctionSpec};
use vigil::detect::Detector;
use vigil::logfiles::{self, S3LogFiles};
use vigil::Source;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let spec = FunctionSpec {
        name: "cloudtrail-logs",
        sources: &[Source::CloudTrail],
    };
    let function = app::start_function(&spec, |config| {
        let rules = app::detection_rules(config)?;
        Ok(Some(Arc::new(rules) as Arc<dyn Detector>))
    })
    .await?;
    let files = S3LogFiles::new(aws_sdk_s3::Client::new(&function.sdk));
    let (function, files) = (&function, &files);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        logfiles::handle_invocation(&function.telemetry, &function.pipeline, files, event)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}

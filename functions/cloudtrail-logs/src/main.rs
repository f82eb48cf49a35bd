//! Lambda: CloudTrail log files (an organization trail's S3 bucket) through
//! the detection rules and Vigil's pipeline to the SNS alert topic.
//!
//! Triggered by an SQS queue fed with the bucket's object-created
//! notifications (direct, through SNS, or through EventBridge: see
//! the README section "CloudTrail log files"). Each file is streamed from S3 and decoded one
//! record at a time (`vigil::sources::log_file`); a message whose file fails is
//! reported in `batchItemFailures`, alone. Files are read within
//! `VIGIL_LOG_FILE_MAX_BYTES` and `VIGIL_LOG_RECORD_MAX_BYTES`, and a batch
//! stops `VIGIL_LOG_FILE_DEADLINE_MARGIN_SECONDS` before the invocation's
//! deadline (`vigil::logfiles::LogFileSettings`).

// The handler's future (SQS batch, files, records, the pipeline, and the
// correlations at each file's end) nests deeper than the default 128.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use vigil::app::{self, FunctionSpec};
use vigil::detect::{Detector, Prefilter};
use vigil::logfiles::{self, LogFileSettings, S3LogFiles};
use vigil::Source;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let spec = FunctionSpec {
        name: "cloudtrail-logs",
        sources: &[Source::CloudTrail],
    };
    // Built from the very rules the detector runs (silent ones included):
    // records none of them may match are never parsed.
    let mut prefilter = None;
    let function = app::start_function(&spec, |config| {
        let rules = app::detection_rules(config)?;
        prefilter = Some(Arc::new(Prefilter::new(rules.rules())));
        Ok(Some(Arc::new(rules) as Arc<dyn Detector>))
    })
    .await?;
    let settings = LogFileSettings::from_env()?;
    let mut files =
        S3LogFiles::new(aws_sdk_s3::Client::new(&function.sdk)).with_limits(settings.limits);
    if let Some(prefilter) = prefilter {
        files = files.with_prefilter(prefilter);
    }
    let (function, files, settings) = (&function, &files, &settings);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let (telemetry, pipeline) = (&function.telemetry, &function.pipeline);
        logfiles::handle_invocation_with(telemetry, pipeline, files, settings, event)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}

//! Lambda: GuardDuty findings from EventBridge (`aws.guardduty` /
//! `GuardDuty Finding`) through Vigil's pipeline to the SNS alert topic.

use vigil::app::{self, FunctionSpec};
use vigil::Source;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    app::run_eventbridge_function(
        FunctionSpec {
            name: "guardduty",
            sources: &[Source::GuardDuty],
        },
        |_| Ok(None),
    )
    .await
}

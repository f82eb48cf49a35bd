//! Lambda: GuardDuty findings from EventBridge (`aws.guardduty` /
//! `GuardDuty Finding`) and GuardDuty Malware Protection for S3 scan results
//! (`GuardDuty Malware Protection Object Scan Result`) through Vigil's
//! pipeline to the SNS alert topic; and
//! the storm sweep, when the `rate(5 minutes)` schedule invokes it
//! (`aws.events` / `Scheduled Event`): the final summary of every closed
//! storm that still owes one.

use vigil::app::{self, FunctionSpec};
use vigil::Source;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    app::run_sweeping_function(
        FunctionSpec {
            name: "guardduty",
            sources: &[Source::GuardDuty, Source::MalwareProtection],
        },
        |_| Ok(None),
    )
    .await
}

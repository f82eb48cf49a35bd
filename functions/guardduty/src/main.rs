//! Lambda: GuardDuty findings from EventBridge (`aws.guardduty` /
//! `GuardDuty Finding`) and GuardDuty Malware Protection for S3 scan results
//! (`GuardDuty Malware Protection Object Scan Result`) through Vigil's
//! pipeline to the SNS alert topic; and
//! the storm sweep, when the `rate(5 minutes)` schedule invokes it
//! (`aws.events` / `Scheduled Event`): the final summary of every closed
//! storm that still owes one.
//!
//! Findings also feed the correlation rules that reference GuardDuty rules
//! (`logsource: {product: aws, service: guardduty}`): the detection rules
//! load here as in the cloudtrail function, their windows on the same state
//! table, but GuardDuty rules never alert on their own.

use std::sync::Arc;

use vigil::app::{self, FunctionSpec};
use vigil::detect::Detector;
use vigil::Source;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    app::run_sweeping_function(
        FunctionSpec {
            name: "guardduty",
            sources: &[Source::GuardDuty, Source::MalwareProtection],
        },
        |config| {
            let rules = app::detection_rules(config)?;
            Ok(Some(Arc::new(rules) as Arc<dyn Detector>))
        },
    )
    .await
}

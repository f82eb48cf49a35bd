//! Lambda: CloudTrail events from EventBridge (`AWS API Call via CloudTrail`,
//! `AWS Console Sign In via CloudTrail`) through the Sigma detection rules
//! (bundled, plus `VIGIL_RULES_DIR`) and Vigil's pipeline to the SNS alert
//! topic. `vigil rules pattern --sam` prints the EventBridge rules it needs.

use std::sync::Arc;

use vigil::app::{self, FunctionSpec};
use vigil::detect::Detector;
use vigil::Source;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    app::run_eventbridge_function(
        FunctionSpec {
            name: "cloudtrail",
            sources: &[Source::CloudTrail],
        },
        |config| {
            let rules = app::detection_rules(config)?;
            Ok(Some(Arc::new(rules) as Arc<dyn Detector>))
        },
    )
    .await
}

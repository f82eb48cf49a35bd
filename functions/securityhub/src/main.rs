//! Lambda: Security Hub findings (`aws.securityhub`: `Security Hub Findings -
//! Imported` in ASFF, `Findings Imported V2` in OCSF, custom actions) and
//! Macie's own findings (`aws.macie` / `Macie Finding`), and the direct
//! events of AWS Health (security notifications), IAM Access Analyzer,
//! Amazon Inspector and AWS Config (compliance changes of security rules)
//! through Vigil's pipeline to the SNS alert topic.
//!
//! GuardDuty and Macie findings that Security Hub forwards are kept without
//! alerting while `VIGIL_SECURITYHUB_SKIP_GUARDDUTY` / `VIGIL_SECURITYHUB_SKIP_MACIE`
//! are true (the default): their direct events alert instead. The same holds
//! for Inspector, Access Analyzer and Config copies
//! (`VIGIL_SECURITYHUB_SKIP_INSPECTOR`, `..._ACCESS_ANALYZER`, `..._CONFIG`).

use vigil::app::{self, FunctionSpec};
use vigil::Source;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    app::run_eventbridge_function(
        FunctionSpec {
            name: "securityhub",
            sources: &[
                Source::SecurityHub,
                Source::Macie,
                Source::Health,
                Source::AccessAnalyzer,
                Source::Inspector,
                Source::Config,
            ],
        },
        |_| Ok(None),
    )
    .await
}

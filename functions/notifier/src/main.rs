//! Lambda: Vigil's alerts, subscribed to the SNS alert topic (protocol
//! `lambda`), posted to Slack and PagerDuty. Everything it does lives in
//! `vigil::notify`; configuration is `VIGIL_SLACK_BOT_TOKEN_SECRET_ARN` or
//! `VIGIL_SLACK_WEBHOOK_SECRET_ARN`, `VIGIL_SLACK_CHANNEL`,
//! `VIGIL_SLACK_API_URL`, `VIGIL_STATE_TABLE` (Slack threads),
//! `VIGIL_SLACK_MIN_SEVERITY`, `VIGIL_PAGERDUTY_SECRET_ARN`,
//! `VIGIL_PAGERDUTY_MIN_SEVERITY` and `VIGIL_PAGERDUTY_URL`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vigil::notify::run_function().await
}

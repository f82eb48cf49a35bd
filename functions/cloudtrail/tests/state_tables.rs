//! The real `cloudtrail` binary with its DynamoDB state as the template
//! gives it (`VIGIL_STATE_TABLE` = `VIGIL_IDEMPOTENCY_TABLE` = a moto table
//! shaped as `StateTable`): a duplicate EventBridge delivery of a CloudTrail
//! event alerts once and leaves its idempotency and fingerprint records.

use std::path::Path;

use vigil_e2e::{assert_duplicate_delivery_alerts_once, own_sample_event};

#[tokio::test]
async fn a_duplicate_delivery_alerts_once_and_leaves_its_records() {
    let event = own_sample_event("cloudtrail", "cloudtrail-stop-logging.json");
    let binary = Path::new(env!("CARGO_BIN_EXE_cloudtrail"));
    assert_duplicate_delivery_alerts_once(binary, &event).await;
}

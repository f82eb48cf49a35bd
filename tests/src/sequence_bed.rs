//! A bundled correlation's test sequence through the real functions on
//! moto: the function under test ([`FunctionBed`]: its own state table and
//! topic) and, when the sequence holds GuardDuty findings, the guardduty
//! function on the same table and topic, as the template deploys both.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::sequences::{bundled_cases, Case, Sequence};
use crate::{function_env, moto_endpoint, FunctionBed, LambdaFunction};

/// Whether a sequence event is a GuardDuty finding (an EventBridge event
/// from `aws.guardduty`), for the guardduty function; else it is a
/// CloudTrail record.
pub fn is_finding(event: &Value) -> bool {
    event["source"] == "aws.guardduty"
}

/// The binary `bin` built beside `own` (a test's `CARGO_BIN_EXE_*`): a
/// test of one function package finds another package's binary there
/// after `cargo test --workspace` (or `cargo build -p <package>`).
pub fn sibling_binary(own: &Path, bin: &str) -> PathBuf {
    let path = own.with_file_name(bin);
    assert!(
        path.exists(),
        "{} is not built: run the workspace's tests (cargo test --workspace) or cargo build --bin {bin}",
        path.display()
    );
    path
}

/// The function under test, and the guardduty function beside it.
pub struct SequenceBed {
    pub bed: FunctionBed,
    guardduty: Option<LambdaFunction>,
}

impl SequenceBed {
    /// Starts `binary`, and the guardduty function (found beside it) when
    /// `seq` holds findings. `None` without moto or cargo-lambda.
    pub async fn start(binary: &Path, seq: &Sequence) -> Option<SequenceBed> {
        let bed = FunctionBed::start(binary, &[]).await?;
        let guardduty = match seq.events.iter().any(is_finding) {
            true => {
                let endpoint = moto_endpoint()?;
                let env = function_env(&endpoint, &bed.topic_arn, &bed.table);
                Some(LambdaFunction::start(
                    &sibling_binary(binary, "guardduty"),
                    &env,
                )?)
            }
            false => None,
        };
        Some(SequenceBed { bed, guardduty })
    }

    /// Sends `finding` (an EventBridge event) to the guardduty function,
    /// with event id `id`.
    pub fn send_finding(&self, finding: &Value, id: &str) -> Result<(), String> {
        let gd = self.guardduty.as_ref().ok_or("no guardduty function")?;
        let mut event = finding.clone();
        event["id"] = id.into();
        gd.invoke(&event)
            .map(|_| ())
            .map_err(|e| format!("{e}\nlogs:\n{}", gd.logs()))
    }

    /// Both functions' logs.
    pub fn logs(&self) -> String {
        let gd = self.guardduty.as_ref().map(LambdaFunction::logs);
        format!(
            "{}\nguardduty:\n{}",
            self.bed.function.logs(),
            gd.unwrap_or_default()
        )
    }
}

/// Runs `run` on every sequence of every bundled correlation (one per file
/// of rules/correlations/, each with a sequence that fires and a near
/// miss) and fails with every wrong verdict at once.
pub async fn check_every_sequence<F, Fut>(run: F)
where
    F: Fn(Case, usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let cases = bundled_cases();
    let files = std::fs::read_dir(crate::project_root().join("rules/correlations"))
        .expect("rules/correlations")
        .count();
    assert_eq!(
        cases.len(),
        files,
        "one loaded correlation per file: {cases:?}"
    );
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in cases {
        assert!(
            case.sequences.iter().any(|s| s.fires) && case.sequences.iter().any(|s| !s.fires),
            "{}: a firing sequence and a near miss",
            case.file
        );
        for index in 0..case.sequences.len() {
            ran += 1;
            if let Err(e) = run(case.clone(), index).await {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} sequences:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

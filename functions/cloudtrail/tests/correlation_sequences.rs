//! Every bundled correlation through the real `cloudtrail` binary on moto,
//! driven by its own test sequences (`vigil_tests.sequences` in
//! rules/correlations/*.yml): each sequence, one EventBridge event per
//! record, alerts exactly once naming the correlation when it `fires`, and
//! not at all when it must not. GuardDuty findings of a sequence go to the
//! guardduty binary on the same state table (a cross-source correlation).
//! Each sequence gets its own functions, state table and topic, so no case
//! sees another's windows, dedup or deliveries.

use std::path::Path;

use vigil_e2e::sequence_bed::{check_every_sequence, is_finding, SequenceBed};
use vigil_e2e::sequences::{eventbridge, verdict, Case};
use vigil_e2e::{moto_endpoint, unique};

/// Runs sequence `index` of `case`, in its order; its verdict.
async fn run(case: &Case, index: usize) -> Result<(), String> {
    let binary = Path::new(env!("CARGO_BIN_EXE_cloudtrail"));
    let seq = &case.sequences[index];
    let Some(bed) = SequenceBed::start(binary, seq).await else {
        return Ok(());
    };
    let run = unique(&case.file);
    for (i, event) in seq.events.iter().enumerate() {
        let id = format!("{run}-{i}");
        match is_finding(event) {
            true => bed.send_finding(event, &id)?,
            false => bed.bed.invoke(&eventbridge(event, &id)).map(|_| ())?,
        }
    }
    let received = bed.bed.received(usize::from(seq.fires)).await;
    verdict(case, index, &received, &|| bed.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bundled_correlation_alerts_on_its_sequences_and_never_on_its_near_misses() {
    if moto_endpoint().is_none() {
        return;
    }
    check_every_sequence(|case, index| async move { run(&case, index).await }).await;
}

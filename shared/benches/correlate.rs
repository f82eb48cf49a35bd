//! CPU cost of correlations per CloudTrail record: `Detector::correlate`
//! (the counted rules only, with their observations) on the generated
//! corpus (`cloudtrail_data`, 20,000 records), beside `Detector::detect` for
//! scale. The DynamoDB writes per 1,000 records are measured on moto by
//! `tests/tests/correlation_state.rs` (`writes_per_thousand_records`).
//!
//! Run: `cargo bench -p vigil --bench correlate`.

mod cloudtrail_data;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use vigil::detect::{Detector, RuleMeta, RuleSet};

const RECORDS: usize = 20_000;
const SEED: u64 = 0x5eed_c10d_7a11;

fn correlate_all(rules: &RuleSet, records: &[Value]) -> usize {
    let mut out = Vec::new();
    for r in records {
        rules.correlate(r, &mut out);
    }
    out.len()
}

fn detect_all(rules: &RuleSet, records: &[Value]) -> usize {
    let mut hits: Vec<&RuleMeta> = Vec::new();
    let mut n = 0;
    for r in records {
        hits.clear();
        rules.detect(r, &mut hits);
        n += hits.len();
    }
    n
}

fn bench(c: &mut Criterion) {
    let rules = RuleSet::bundled().expect("bundled rules");
    let records = cloudtrail_data::records(SEED, RECORDS);
    eprintln!(
        "correlate: {} observations from {RECORDS} records, {} correlations",
        correlate_all(&rules, &records),
        rules.correlations().len()
    );
    let mut g = c.benchmark_group("correlate");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("correlate_bundled", |b| {
        b.iter(|| black_box(correlate_all(&rules, &records)))
    });
    g.bench_function("detect_bundled", |b| {
        b.iter(|| black_box(detect_all(&rules, &records)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

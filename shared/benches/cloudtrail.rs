//! Detection speed on realistic CloudTrail traffic, against the floor of
//! merely parsing the same bytes.
//!
//! The data are generated in memory (`cloudtrail_data`: a deterministic mix
//! of role assumptions, S3 object calls, KMS, describes, rare IAM changes and
//! tampering, about 1.3 KB a record). Each benchmark handles all
//! [`RECORDS`] records, so criterion's throughput is in records per second:
//!
//! - `parse_floor`: `serde_json::from_slice::<Value>` on each record's bytes.
//! - `detect_bundled`: `RuleSet::bundled()` and `Detector::detect` on records
//!   already parsed (the rules' own cost).
//! - `parse_detect_bundled`: both, from the bytes (what a record costs).
//! - `parse_detect_bundled_sigmahq`: the same with SigmaHQ's public AWS
//!   rules loaded beside the bundled ones (`../shared/events/sigma/aws_cloudtrail`,
//!   when present).
//! - `stream_detect_log_file` / `stream_detect_log_file_gzip`: the whole log
//!   file through `vigil::sources::log_file::stream_events` (the streaming reader the
//!   Lambda and `vigil replay` use) and the rules, plain and gzip.
//!
//!
//! Then, for each mix (`cloudtrail_data::Mix`: the default organization-trail
//! mix, its read-only calls only, records some rule matches only), in group
//! `cloudtrail_<mix>`, all in the same run:
//!
//! - `parse_floor`: as above, on that mix.
//! - `parse_detect`: parse, rules and attempts on every record.
//! - `prefilter_detect`: `Prefilter::screen` on each record's bytes, then
//!   parse, rules and attempts on those it admits.
//! - `log_file_gzip_full`: the gzip log file through the slice reader with
//!   no prefilter, then rules and attempts.
//! - `log_file_gzip_fast`: the same with the prefilter (what the
//!   cloudtrail-logs function and `vigil replay` run).
//!
//! Run: `cargo bench -p vigil --bench cloudtrail` (one group:
//! `-- cloudtrail_read-only`).

mod cloudtrail_data;

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use cloudtrail_data::Mix;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use vigil::detect::{Detector, Prefilter, RuleMeta, RuleSet, RuleSource, Screen};
use vigil::sources::log_file::{stream_events, stream_filtered, stream_records, ReadLimits};

const RECORDS: usize = 20_000;
const SEED: u64 = 0x5eed_c10d_7a11;

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

fn parse_detect(rules: &RuleSet, slices: &[Vec<u8>]) -> usize {
    let mut hits: Vec<&RuleMeta> = Vec::new();
    let mut n = 0;
    for s in slices {
        let Ok(v) = serde_json::from_slice::<Value>(s) else {
            continue;
        };
        hits.clear();
        rules.detect(&v, &mut hits);
        n += hits.len();
    }
    n
}

fn stream_detect(rules: &RuleSet, bytes: &[u8]) -> usize {
    let mut hits: Vec<&RuleMeta> = Vec::new();
    let mut n = 0;
    let stats = stream_events(bytes, &mut |v| {
        hits.clear();
        rules.detect(&v, &mut hits);
        n += hits.len();
        true
    });
    assert!(stats.is_ok());
    n
}

fn bench(c: &mut Criterion) {
    let file = cloudtrail_data::log_file(SEED, RECORDS);
    let records = cloudtrail_data::records(SEED, RECORDS);
    let slices: Vec<Vec<u8>> = records
        .iter()
        .map(|r| serde_json::to_vec(r).expect("serializes"))
        .collect();
    let gzip = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&file).expect("in memory");
        gz.finish().expect("in memory")
    };
    let bundled = RuleSet::bundled().expect("the bundled rules load");
    let sigma_dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/events/sigma/aws_cloudtrail");
    let with_sigma = sigma_dir.is_dir().then(|| {
        let extra = RuleSource::dir(&sigma_dir).expect("SigmaHQ rules readable");
        RuleSet::layered(&RuleSource::bundled(), &extra).expect("SigmaHQ rules load")
    });
    eprintln!(
        "data: {RECORDS} records, {:.0} bytes per record, {:.1} MB ({:.1} MB gzip); bundled rules: {}, matches: {}; \
         with SigmaHQ: {}",
        file.len() as f64 / RECORDS as f64,
        file.len() as f64 / 1e6,
        gzip.len() as f64 / 1e6,
        bundled.rule_count(),
        detect_all(&bundled, &records),
        with_sigma
            .as_ref()
            .map(|s| format!("{} rules, {} matches", s.rule_count(), detect_all(s, &records)))
            .unwrap_or_else(|| "not present".into()),
    );

    let mut group = c.benchmark_group("cloudtrail");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("parse_floor", |b| {
        b.iter(|| {
            for s in &slices {
                black_box(serde_json::from_slice::<Value>(black_box(s)).ok());
            }
        })
    });
    group.bench_function("detect_bundled", |b| {
        b.iter(|| black_box(detect_all(&bundled, black_box(&records))))
    });
    group.bench_function("parse_detect_bundled", |b| {
        b.iter(|| black_box(parse_detect(&bundled, black_box(&slices))))
    });
    if let Some(sigma) = &with_sigma {
        group.bench_function("parse_detect_bundled_sigmahq", |b| {
            b.iter(|| black_box(parse_detect(sigma, black_box(&slices))))
        });
    }
    group.bench_function("stream_detect_log_file", |b| {
        b.iter(|| black_box(stream_detect(&bundled, black_box(&file))))
    });
    group.bench_function("stream_detect_log_file_gzip", |b| {
        b.iter(|| black_box(stream_detect(&bundled, black_box(&gzip))))
    });
    group.finish();
}

/// Rules and attempts on one parsed record: findings (at most one).
fn judge(rules: &RuleSet, record: &Value) -> usize {
    let mut hits: Vec<&RuleMeta> = Vec::new();
    rules.detect(record, &mut hits);
    let mut attempts: Vec<&RuleMeta> = Vec::new();
    rules.attempts(record, &hits, &mut attempts);
    usize::from(!hits.is_empty() || !attempts.is_empty())
}

fn prefilter_detect(rules: &RuleSet, filter: &Prefilter, slices: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for s in slices {
        if filter.screen(s) == Screen::Skip {
            continue;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(s) {
            n += judge(rules, &v);
        }
    }
    n
}

fn log_file_detect(rules: &RuleSet, filter: Option<&Prefilter>, gzip: &[u8]) -> usize {
    let mut n = 0;
    let mut emit = |r: vigil::sources::log_file::Record, _: usize| {
        if let Ok(v) = r {
            n += judge(rules, &v);
        }
        true
    };
    let stats = match filter {
        Some(f) => stream_filtered(gzip, ReadLimits::default(), f, &mut emit),
        None => stream_records(gzip, ReadLimits::default(), &mut emit),
    };
    assert!(stats.is_ok());
    n
}

/// The floor and every reading path on one mix, in one group.
fn bench_mix(c: &mut Criterion, rules: &RuleSet, mix: Mix) {
    let matches = |r: &Value| {
        let mut hits = Vec::new();
        rules.detect(r, &mut hits);
        !hits.is_empty()
    };
    let records = cloudtrail_data::mix_records(SEED, RECORDS, mix, &matches);
    let slices: Vec<Vec<u8>> = records
        .iter()
        .map(|r| serde_json::to_vec(r).expect("serializes"))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&cloudtrail_data::log_file_of(&records))
        .expect("in memory");
    let gzip = gz.finish().expect("in memory");
    let filter = Prefilter::new(rules.rules());
    let admitted = slices
        .iter()
        .filter(|s| filter.screen(s) == Screen::Parse)
        .count();
    eprintln!(
        "{}: {} records, {admitted} admitted by the prefilter, {} with a finding",
        mix.name(),
        records.len(),
        prefilter_detect(rules, &filter, &slices)
    );
    let mut group = c.benchmark_group(format!("cloudtrail_{}", mix.name()));
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("parse_floor", |b| {
        b.iter(|| {
            for s in &slices {
                black_box(serde_json::from_slice::<Value>(black_box(s)).ok());
            }
        })
    });
    group.bench_function("parse_detect", |b| {
        b.iter(|| {
            let parsed = slices.iter().filter_map(|s| serde_json::from_slice(s).ok());
            black_box(parsed.map(|v: Value| judge(rules, &v)).sum::<usize>())
        })
    });
    group.bench_function("prefilter_detect", |b| {
        b.iter(|| black_box(prefilter_detect(rules, &filter, black_box(&slices))))
    });
    group.bench_function("log_file_gzip_full", |b| {
        b.iter(|| black_box(log_file_detect(rules, None, black_box(&gzip))))
    });
    group.bench_function("log_file_gzip_fast", |b| {
        b.iter(|| black_box(log_file_detect(rules, Some(&filter), black_box(&gzip))))
    });
    group.finish();
}

fn mixes(c: &mut Criterion) {
    let rules = RuleSet::bundled().expect("the bundled rules load");
    for mix in Mix::ALL {
        bench_mix(c, &rules, mix);
    }
}

criterion_group!(benches, bench, mixes);
criterion_main!(benches);

//! The fast path finds what the full path finds: every sample file (the
//! project's `examples/events`, the public samples in `../shared/events`
//! when present) and the generated corpus, read whole with serde
//! (`input::parse_events`, every record parsed) and through the log-file
//! reader with the prefilter (records split into slices, only those some
//! rule may match parsed), give the same findings (ids), the same attempt
//! findings, and the same correlation observations.

#[path = "../benches/cloudtrail_data/mod.rs"]
mod cloudtrail_data;
#[path = "../../tests/src/samples.rs"]
mod samples;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;
use vigil::detect::{Detector, Prefilter, RuleSet};
use vigil::sources::log_file::{input, stream_filtered, ReadLimits};
use vigil::sources::{classify, findings, SourceEvent};

/// What the records give: finding ids (sorted) and correlation observations.
#[derive(Debug, Default, PartialEq)]
struct Found {
    findings: Vec<String>,
    observations: usize,
}

fn found(rules: &RuleSet, records: impl IntoIterator<Item = Value>) -> Found {
    let mut out = Found::default();
    for record in records {
        let Ok(event) = classify(&record) else {
            continue;
        };
        if let SourceEvent::CloudTrail { record, .. } = &event {
            let mut observed = Vec::new();
            rules.correlate(record, &mut observed);
            out.observations += observed.len();
        }
        if let Ok(parsed) = findings(event, Some(rules)) {
            out.findings
                .extend(parsed.findings.into_iter().map(|f| f.id));
        }
    }
    out.findings.sort();
    out
}

/// The records the prefiltered reader hands over, and how many it left out.
fn fast_records(bytes: &[u8], filter: &Prefilter) -> (Vec<Value>, u64) {
    let mut out = Vec::new();
    let stats = stream_filtered(bytes, ReadLimits::default(), filter, &mut |r, _| {
        if let Ok(v) = r {
            out.push(v);
        }
        true
    });
    (out, stats.map(|s| s.filtered).unwrap_or(0))
}

/// Compares the full path on `plain` (decompressed) with the fast path on
/// `bytes` (the same, perhaps gzip): the findings, and the records the fast
/// path left out.
fn same(
    rules: &RuleSet,
    filter: &Prefilter,
    plain: &[u8],
    bytes: &[u8],
    name: &str,
) -> (usize, u64) {
    let Ok(whole) = input::parse_events(plain) else {
        return (0, 0);
    };
    let full = found(rules, whole);
    let (records, filtered) = fast_records(bytes, filter);
    assert_eq!(found(rules, records), full, "{name}");
    (full.findings.len(), filtered)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".json") || n.ends_with(".jsonl") || n.ends_with(".gz"))
        {
            out.push(p);
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn every_sample_gives_the_same_findings_both_ways() {
    let rules = RuleSet::bundled().unwrap();
    let filter = Prefilter::new(rules.rules());
    let mut paths = Vec::new();
    files(&samples::own_events(""), &mut paths);
    let public = samples::shared_events("");
    if let Some(shared) = &public {
        files(shared, &mut paths);
    }
    assert!(paths.len() > 10, "only {} sample files", paths.len());
    let (mut found, mut filtered) = (0, 0);
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        let bytes = match p.extension().is_some_and(|x| x == "gz") {
            true => input::read_events(p)
                .map(|v| serde_json::to_vec(&v).unwrap())
                .unwrap_or_default(),
            false => bytes,
        };
        // As a log file too: the slice path.
        let Ok(records) = input::parse_events(&bytes) else {
            continue;
        };
        let log = serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap();
        for (form, b) in [("as is", &bytes), ("log file", &log)] {
            let (f, n) = same(&rules, &filter, b, b, &format!("{} ({form})", p.display()));
            found += f;
            filtered += n;
        }
    }
    assert!(found > 20, "{found} findings");
    // The project's samples are nearly all events some rule matches; the
    // public ones are not.
    assert!(
        public.is_none() || filtered > 0,
        "the prefilter left nothing out"
    );
    eprintln!(
        "{} files: {found} findings, {filtered} records left out",
        paths.len()
    );
}

#[test]
fn the_generated_corpus_gives_the_same_findings_both_ways() {
    let rules = RuleSet::bundled().unwrap();
    let filter = Prefilter::new(rules.rules());
    let plain = cloudtrail_data::log_file(0x5eed_c10d_7a11, 5_000);
    let (found, filtered) = same(&rules, &filter, &plain, &plain, "generated");
    assert!(found > 10, "{found} findings");
    assert!(filtered > 2_500, "{filtered} of 5000 left out");
    // gzip, split across reads at every point of the records.
    let (_, again) = same(&rules, &filter, &plain, &gzip(&plain), "generated, gzip");
    assert_eq!(again, filtered);
}

//! The benign benchmark (issue #14): every CloudTrail record under
//! `examples/benign/` (public documentation examples and open-source test
//! fixtures of routine activity, see `examples/benign/PROVENANCE.md`) through
//! the pipeline with the bundled rules. The false-alert rate is computed from
//! what the rules do, printed, and bounded: a rule that starts alerting on
//! routine activity fails this test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil::detect::RuleSet;
use vigil::model::Severity;
use vigil::sinks::MemorySink;
use vigil::sources::log_file::input;
use vigil::sources::{classify, SourceEvent};

/// Issue #14's target: a corpus big enough for a rate per 1,000 to mean
/// something, and fewer than 5 alerts per 1,000 at MEDIUM+. Not met yet (see
/// `docs/detections.md`, "Benign benchmark"): `benign_corpus_meets_the_issue_14_target`
/// asserts it and is ignored until it passes; run it with `--ignored`.
const TARGET_RECORDS: usize = 500;
const TARGET_ALERTS_PER_1000: f64 = 5.0;

/// What the corpus is today, as a regression floor and ceiling: records can
/// be added but not lost, and the rate at MEDIUM+ must stay below a ceiling just
/// above today's (539 records, 8 alerts: 14.84 per 1,000). Lower the ceiling when a
/// rule change or more records bring the rate down.
const MIN_RECORDS: usize = 539;
const MAX_ALERTS_PER_1000: f64 = 15.0;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/benign")
}

/// What the corpus produced: records read, and per severity floor the rules
/// that fired with the eventNames they fired on.
#[derive(Default)]
struct Tally {
    records: usize,
    medium: BTreeMap<String, Vec<String>>,
    low: BTreeMap<String, Vec<String>>,
}

impl Tally {
    fn count(map: &BTreeMap<String, Vec<String>>) -> usize {
        map.values().map(Vec::len).sum()
    }

    fn per_1000(&self, map: &BTreeMap<String, Vec<String>>) -> f64 {
        Self::count(map) as f64 * 1000.0 / self.records.max(1) as f64
    }

    fn print(&self) {
        println!(
            "benign benchmark: {} records; {} alerts at MEDIUM+ ({:.2} per 1,000); {} findings at LOW+ ({:.2} per 1,000)",
            self.records,
            Self::count(&self.medium),
            self.per_1000(&self.medium),
            Self::count(&self.low),
            self.per_1000(&self.low),
        );
        for (label, map) in [("MEDIUM+", &self.medium), ("LOW+", &self.low)] {
            for (rule, names) in map {
                println!("  {label} {rule}: {}", names.join(", "));
            }
        }
    }
}

async fn replay_corpus() -> Tally {
    let sink = MemorySink::new();
    let pipeline = vigil::Pipeline::builder(&vigil::Config::default())
        .detector(Arc::new(RuleSet::bundled().expect("bundled rules")))
        .sink(Box::new(sink))
        .build();
    let mut tally = Tally::default();
    let files = input::files(&[corpus_dir()]).expect("list examples/benign");
    for file in files {
        for event in input::read_events(&file).expect("read a corpus file") {
            let Ok(SourceEvent::CloudTrail { record, .. }) = classify(&event) else {
                panic!("{}: not a CloudTrail record", file.display());
            };
            let name = record["eventName"].as_str().unwrap_or("?").to_string();
            tally.records += 1;
            let report = pipeline.process_event(&event).await.expect("replay");
            for p in &report.findings {
                let rule = p.finding.rule.as_ref().map_or("?", |r| r.title.as_str());
                let entry = format!("{name} ({})", file.file_name().unwrap().to_string_lossy());
                if p.finding.severity >= Severity::Medium {
                    tally
                        .medium
                        .entry(rule.to_string())
                        .or_default()
                        .push(entry.clone());
                }
                tally.low.entry(rule.to_string()).or_default().push(entry);
            }
        }
    }
    tally
}

fn assert_bounds(tally: &Tally, min_records: usize, max_per_1000: f64) {
    assert!(
        tally.records >= min_records,
        "{} benign records, want at least {min_records}",
        tally.records
    );
    let rate = tally.per_1000(&tally.medium);
    assert!(
        rate < max_per_1000,
        "{rate:.2} alerts per 1,000 benign records at MEDIUM+ (want below {max_per_1000})"
    );
}

#[tokio::test]
async fn benign_corpus_alert_rate_does_not_rise() {
    let tally = replay_corpus().await;
    tally.print();
    assert_bounds(&tally, MIN_RECORDS, MAX_ALERTS_PER_1000);
}

#[tokio::test]
#[ignore = "issue #14 target (500 records, < 5 alerts per 1,000) not met yet"]
async fn benign_corpus_meets_the_issue_14_target() {
    let tally = replay_corpus().await;
    tally.print();
    assert_bounds(&tally, TARGET_RECORDS, TARGET_ALERTS_PER_1000);
}

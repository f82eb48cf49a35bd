//! The prefilter never refuses a record some loaded rule matches: every
//! record of every sample (the project's `examples/events` and the public
//! samples in `../shared/events`, SigmaHQ's rules loaded beside the bundled
//! ones when present), as it is and with its name and source swapped for
//! each name the rules pin.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vigil_detect::{Detector, Prefilter, RuleSet, RuleSource, Screen};

#[path = "../../tests/src/samples.rs"]
mod samples;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
            out.push(p);
        }
    }
}

/// Records of a file: log files' `Records`, arrays, JSON lines, and the
/// `detail` of EventBridge envelopes beside the envelope itself.
fn records(text: &str) -> Vec<Value> {
    let values: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(v) => vec![v],
        Err(_) => text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    };
    let mut out = Vec::new();
    let mut push = |v: Value| {
        if let Some(d) = v.get("detail").filter(|d| d.is_object()) {
            out.push(d.clone());
        }
        out.push(v);
    };
    for v in values {
        match v {
            Value::Array(a) => a.into_iter().for_each(&mut push),
            Value::Object(ref o) if o.get("Records").is_some_and(Value::is_array) => {
                if let Some(Value::Array(a)) = o.get("Records") {
                    a.iter().cloned().for_each(&mut push);
                }
            }
            v => push(v),
        }
    }
    out
}

fn rule_sets() -> Vec<RuleSet> {
    let mut sets = vec![RuleSet::bundled().expect("bundled rules load")];
    if let Some(dir) = samples::shared_events("sigma/aws_cloudtrail") {
        let extra = RuleSource::dir(&dir).expect("SigmaHQ rules readable");
        sets.push(RuleSet::layered(&RuleSource::bundled_runtime(), &extra).expect("load"));
    }
    sets
}

/// Checks one record; true when the prefilter skipped it.
fn check(set: &RuleSet, filter: &Prefilter, record: &Value, origin: &Path) -> bool {
    let bytes = serde_json::to_vec(record).expect("serializes");
    let skipped = filter.screen(&bytes) == Screen::Skip;
    if skipped {
        // Every loaded rule counts: silent ones (counted by correlations),
        // and attempts (the rules a failed call would have met).
        let hits: Vec<&str> = set.matching(record).iter().map(|r| r.id()).collect();
        let attempts: Vec<&str> = set.attempted(record).iter().map(|r| r.id()).collect();
        let mut observed = Vec::new();
        set.correlate(record, &mut observed);
        assert!(
            hits.is_empty() && attempts.is_empty() && observed.is_empty(),
            "{}: skipped a record rules {hits:?} match, attempts {attempts:?}, \
             correlations {}: {record}",
            origin.display(),
            observed.len()
        );
    }
    skipped
}

#[test]
fn no_sample_record_a_rule_matches_is_skipped() {
    let mut paths = Vec::new();
    files(&samples::own_events(""), &mut paths);
    if let Some(shared) = samples::shared_events("") {
        files(&shared, &mut paths);
    }
    let corpus: Vec<(PathBuf, Value)> = paths
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            records(&text).into_iter().map(move |r| (p.clone(), r))
        })
        .collect();
    assert!(corpus.len() > 20, "only {} sample records", corpus.len());
    // The names and sources the rules pin, to make matching records of the samples.
    let names = [
        "StopLogging",
        "ConsoleLogin",
        "PutBucketPolicy",
        "CreateAccessKey",
    ];
    for (i, set) in rule_sets().into_iter().enumerate() {
        let filter = Prefilter::new(set.rules());
        // The bundled rules all pin a name, a source, an error code or an
        // identity type; SigmaHQ's may not (then every record is parsed).
        assert!(
            i > 0 || !filter.admits_all(),
            "the rules leave nothing to skip"
        );
        let (mut seen, mut skipped, mut matched) = (0, 0, 0);
        for (origin, record) in &corpus {
            let mut variants = vec![record.clone()];
            for n in names {
                if record.get("eventName").is_some() {
                    let mut v = record.clone();
                    v["eventName"] = json!(n);
                    variants.push(v);
                }
            }
            for v in &variants {
                seen += 1;
                matched += usize::from(!set.matching(v).is_empty());
                skipped += usize::from(check(&set, &filter, v, origin));
            }
        }
        assert!(matched > 0, "{seen} {skipped} {matched}");
        assert!(
            filter.admits_all() || skipped > 0,
            "{seen} {skipped} {matched}"
        );
        eprintln!("{seen} records: {skipped} skipped, {matched} matched by some rule");
    }
}

#[test]
fn bundled_rules_skip_the_common_reads() {
    let set = RuleSet::bundled().unwrap();
    let filter = Prefilter::new(set.rules());
    let record = |source: &str, name: &str| {
        serde_json::to_vec(&json!({"eventSource": source, "eventName": name,
            "userIdentity": {"type": "AssumedRole"}, "readOnly": true}))
        .unwrap()
    };
    assert_eq!(
        filter.screen(&record("s3.amazonaws.com", "GetObject")),
        Screen::Skip
    );
    assert_eq!(
        filter.screen(&record("cloudtrail.amazonaws.com", "StopLogging")),
        Screen::Parse
    );
}

#[test]
fn a_failed_call_a_rule_names_is_parsed_for_its_attempt() {
    let set = RuleSet::bundled().unwrap();
    let filter = Prefilter::new(set.rules());
    let failed = json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
        "errorCode": "AccessDenied", "errorMessage": "User is not authorized",
        "userIdentity": {"type": "IAMUser"}, "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:00:00Z"});
    // The full path makes an attempt finding of it ...
    assert!(!set.attempted(&failed).is_empty() || !set.matching(&failed).is_empty());
    // ... so the fast path must parse it.
    let bytes = serde_json::to_vec(&failed).unwrap();
    assert_eq!(filter.screen(&bytes), Screen::Parse);
}

#[test]
fn rules_counted_only_by_correlations_are_prefiltered_too() {
    let set = RuleSet::bundled().unwrap();
    assert!(!set.correlations().is_empty(), "no bundled correlations");
    let filter = Prefilter::new(set.rules());
    let mut fed = 0;
    // Every rule the set holds, silent ones included, is in the prefilter:
    // each rule's own test records (the ones it matches) are admitted.
    for src in RuleSource::bundled() {
        // Files with correlations are several documents: their counted
        // rules are tested through the plain rule files they name.
        let Ok(parsed) = vigil_detect::Rule::parse_full(&src.origin, &src.text) else {
            continue;
        };
        for record in parsed.tests.iter().flat_map(|t| &t.matching) {
            let mut observed = Vec::new();
            set.correlate(record, &mut observed);
            fed += usize::from(!observed.is_empty());
            let bytes = serde_json::to_vec(record).unwrap();
            assert_eq!(
                filter.screen(&bytes),
                Screen::Parse,
                "{}: {record}",
                src.origin
            );
        }
    }
    assert!(fed > 0, "no test record feeds a correlation");
}

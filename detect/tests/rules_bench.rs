//! Throughput of the whole rule set (bundled + SigmaHQ's AWS rules when
//! `../shared` is present) against the cost of parsing the same bytes.
//! DESIGN.md's target: at least half the parse rate, >= 100k events/s/core.
//!
//! `cargo test --release -p vigil-detect --test rules_bench -- --ignored --nocapture`

use std::time::Instant;

use serde_json::Value;
use vigil_detect::{Detector, Rule, RuleSet, RuleSource};

#[path = "../../tests/src/samples.rs"]
mod samples;

fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for src in vigil_detect::correlation::check::flatten(&RuleSource::bundled()) {
        let p = Rule::parse_full(&src.origin, &src.text).unwrap();
        for r in p
            .tests
            .iter()
            .flat_map(|t| t.matching.iter().chain(&t.not_matching))
        {
            out.push(serde_json::to_vec(r).unwrap());
        }
    }
    out
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn rule_set_throughput() {
    let mut sources = RuleSource::bundled();
    if let Some(sigma) = samples::shared_events("sigma/aws_cloudtrail") {
        sources.extend(RuleSource::dir(&sigma).unwrap());
    }
    let t0 = Instant::now();
    let set = RuleSet::strict(&sources).unwrap();
    let compile = t0.elapsed();
    let bundled_only = Instant::now();
    let _ = RuleSet::bundled().unwrap();
    let bundled_compile = bundled_only.elapsed();

    // Where cold start goes: YAML parsing of the rule texts alone.
    let texts: Vec<String> = RuleSource::bundled()
        .iter()
        .map(|s| {
            let t: &str = &s.text;
            t.split("\nvigil_tests:").next().unwrap_or(t).to_string()
        })
        .collect();
    let t = Instant::now();
    for t in &texts {
        let _: serde_yaml::Value = serde_yaml::from_str(t).unwrap();
    }
    println!(
        "YAML parsing of the bundled rules alone: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let mut per_rule: Vec<(f64, String)> =
        vigil_detect::correlation::check::flatten(&RuleSource::bundled())
            .iter()
            .map(|s| {
                let t = Instant::now();
                Rule::parse(&s.origin, &s.text).unwrap();
                (t.elapsed().as_secs_f64() * 1e3, s.origin.clone())
            })
            .collect();
    per_rule.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, origin) in per_rule.iter().take(6) {
        println!("  {ms:.2} ms  {origin}");
    }

    let bytes = corpus();
    let avg = bytes.iter().map(Vec::len).sum::<usize>() / bytes.len();
    let rounds = (400_000 / bytes.len()).max(1);
    let n = rounds * bytes.len();

    let t = Instant::now();
    let mut parsed: Vec<Value> = Vec::with_capacity(bytes.len());
    for _ in 0..rounds {
        parsed.clear();
        for b in &bytes {
            parsed.push(serde_json::from_slice(b).unwrap());
        }
    }
    let parse = n as f64 / t.elapsed().as_secs_f64();

    let mut hits = Vec::new();
    let mut total = 0usize;
    let t = Instant::now();
    for _ in 0..rounds {
        for r in &parsed {
            hits.clear();
            set.detect(r, &mut hits);
            total += hits.len();
        }
    }
    let detect = n as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    for _ in 0..rounds {
        for b in &bytes {
            let v: Value = serde_json::from_slice(b).unwrap();
            hits.clear();
            set.detect(&v, &mut hits);
        }
    }
    let both = n as f64 / t.elapsed().as_secs_f64();

    println!(
        "{} rules (compiled in {:.1} ms; bundled alone {:.1} ms), {} distinct records of {avg} bytes on average, {n} evaluations, {} hits",
        set.rule_count(),
        compile.as_secs_f64() * 1e3,
        bundled_compile.as_secs_f64() * 1e3,
        bytes.len(),
        total
    );
    println!("parse only:    {parse:>10.0} events/s");
    println!("detect only:   {detect:>10.0} events/s");
    println!(
        "parse+detect:  {both:>10.0} events/s ({:.0}% of parse)",
        100.0 * both / parse
    );
    if !cfg!(debug_assertions) {
        assert!(detect >= 100_000.0, "rule evaluation below 100k events/s");
        assert!(
            both >= parse / 2.0,
            "parse+detect below half the parse rate"
        );
    }
}

//! Writes a synthetic CloudTrail log file, gzip, with the benchmarks'
//! realistic mix of records (`benches/cloudtrail_data`), for
//! `scripts/bench.sh` and for trying `vigil replay` on a large file:
//!
//! `cargo run --release -p vigil --example cloudtrail_log -- OUT.json.gz RECORDS [SEED [MIX [spread]]]`
//!
//! MIX: `default` (the organization-trail mix), `read-only` (its read-only
//! calls only) or `all-matching` (records some bundled rule matches).
//! `spread` (default mix only): event times run on, 7 records a second from
//! midnight, instead of cycling through one hour, as a real trail's do, so
//! correlation windows close as the replay goes (memory figures).

#[path = "../benches/cloudtrail_data/mod.rs"]
mod cloudtrail_data;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(Ok(count))) = (args.first(), args.get(1).map(|n| n.parse::<usize>()))
    else {
        eprintln!(
            "usage: cloudtrail_log OUT.json.gz RECORDS [SEED [default|read-only|all-matching [spread]]]"
        );
        return ExitCode::from(2);
    };
    let seed = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c10d_7a11);
    let Some(mix) = cloudtrail_data::Mix::parse(args.get(3).map_or("default", String::as_str))
    else {
        eprintln!("cloudtrail_log: unknown mix");
        return ExitCode::from(2);
    };
    let spread = args.get(4).map(String::as_str) == Some("spread");
    let result = match mix {
        cloudtrail_data::Mix::Default => write(path, count, seed, spread),
        mix => write_mix(path, count, seed, mix),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudtrail_log: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes record by record, so a file of any size takes no memory.
fn write(path: &str, count: usize, seed: u64, spread: bool) -> std::io::Result<()> {
    let file = BufWriter::new(std::fs::File::create(path)?);
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut generator = cloudtrail_data::Generator::new(seed);
    gz.write_all(b"{\"Records\":[")?;
    for i in 0..count {
        if i > 0 {
            gz.write_all(b",")?;
        }
        let mut record = generator.record();
        if spread {
            record["eventTime"] = spread_time(i).into();
        }
        serde_json::to_writer(&mut gz, &record)?;
    }
    gz.write_all(b"]}")?;
    gz.finish()?.flush()
}

/// The `i`th record's time when times run on: 7 a second from midnight.
fn spread_time(i: usize) -> String {
    let secs = i / 7;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    format!(
        "2024-05-{:02}T{:02}:{:02}:{:02}Z",
        1 + days % 28,
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// A mix other than the default, generated in memory first.
fn write_mix(
    path: &str,
    count: usize,
    seed: u64,
    mix: cloudtrail_data::Mix,
) -> std::io::Result<()> {
    use vigil::detect::{Detector, RuleSet};
    let rules = RuleSet::bundled().map_err(std::io::Error::other)?;
    let matches = |r: &serde_json::Value| {
        let mut hits = Vec::new();
        rules.detect(r, &mut hits);
        !hits.is_empty()
    };
    let records = cloudtrail_data::mix_records(seed, count, mix, &matches);
    let file = BufWriter::new(std::fs::File::create(path)?);
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(&cloudtrail_data::log_file_of(&records))?;
    gz.finish()?.flush()
}

//! Writes a synthetic CloudTrail log file, gzip, with the benchmarks'
//! realistic mix of records (`benches/cloudtrail_data`), for
//! `scripts/bench.sh` and for trying `vigil replay` on a large file:
//!
//! `cargo run --release -p vigil --example cloudtrail_log -- OUT.json.gz RECORDS [SEED [MIX]]`
//!
//! MIX: `default` (the organization-trail mix), `read-only` (its read-only
//! calls only) or `all-matching` (records some bundled rule matches).

#[path = "../benches/cloudtrail_data/mod.rs"]
mod cloudtrail_data;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(Ok(count))) = (args.first(), args.get(1).map(|n| n.parse::<usize>()))
    else {
        eprintln!(
            "usage: cloudtrail_log OUT.json.gz RECORDS [SEED [default|read-only|all-matching]]"
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
    let result = match mix {
        cloudtrail_data::Mix::Default => write(path, count, seed),
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
fn write(path: &str, count: usize, seed: u64) -> std::io::Result<()> {
    let file = BufWriter::new(std::fs::File::create(path)?);
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut generator = cloudtrail_data::Generator::new(seed);
    gz.write_all(b"{\"Records\":[")?;
    for i in 0..count {
        if i > 0 {
            gz.write_all(b",")?;
        }
        serde_json::to_writer(&mut gz, &generator.record())?;
    }
    gz.write_all(b"]}")?;
    gz.finish()?.flush()
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

//! Writes a synthetic CloudTrail log file, gzip, with the benchmarks'
//! realistic mix of records (`benches/cloudtrail_data`), for
//! `scripts/bench.sh` and for trying `vigil replay` on a large file:
//!
//! `cargo run --release -p vigil --example cloudtrail_log -- OUT.json.gz RECORDS [SEED]`

#[path = "../benches/cloudtrail_data/mod.rs"]
mod cloudtrail_data;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(Ok(count))) = (args.first(), args.get(1).map(|n| n.parse::<usize>()))
    else {
        eprintln!("usage: cloudtrail_log OUT.json.gz RECORDS [SEED]");
        return ExitCode::from(2);
    };
    let seed = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c10d_7a11);
    match write(path, count, seed) {
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

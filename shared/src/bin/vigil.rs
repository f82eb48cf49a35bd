//! `vigil`: run Vigil's pipeline locally.
//!
//! `vigil replay PATH...` replays EventBridge events (and bare findings or
//! CloudTrail records) through the pipeline the Lambdas run, printing readable
//! alerts and a summary; with `--sns-topic-arn` it publishes for real.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vigil::model::Severity;
use vigil::sinks::{ConsoleSink, MemorySink};
use vigil::{app, replay, Config};

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: event-driven security observability for AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay event files or folders through the pipeline.
    Replay {
        /// Files or folders: JSON objects, arrays, JSON lines, CloudTrail log files (plain or gzip).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Publish alerts to this SNS topic (uses the usual AWS credentials and AWS_ENDPOINT_URL).
        #[arg(long)]
        sns_topic_arn: Option<String>,
        /// Minimum severity that alerts (default: VIGIL_MIN_SEVERITY or MEDIUM).
        #[arg(long)]
        min_severity: Option<Severity>,
        /// Alert on sample findings the sources generate (default: off).
        #[arg(long)]
        include_samples: bool,
        /// Print only the summary, not each alert.
        #[arg(long, short)]
        quiet: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay {
            paths,
            sns_topic_arn,
            min_severity,
            include_samples,
            quiet,
        } => {
            let mut config = Config::from_env().context("reading VIGIL_* settings")?;
            if let Some(s) = min_severity {
                config.min_severity = s;
            }
            config.alert_samples |= include_samples;
            config.topic_arn = sns_topic_arn;
            let sdk = match config.topic_arn {
                Some(_) => Some(app::sdk_config().await),
                None => None,
            };
            let mut builder = app::pipeline_builder(&config, sdk.as_ref());
            builder = if quiet {
                builder.sink(Box::new(MemorySink::new()))
            } else {
                builder.sink(Box::new(ConsoleSink::stdout()))
            };
            let pipeline = builder.build();
            let summary = replay::replay(&pipeline, &paths, |_| {}).await;
            println!("{}", summary.render());
            Ok(if summary.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

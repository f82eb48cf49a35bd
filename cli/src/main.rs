//! `vigil`: run Vigil's pipeline locally.
//!
//! `vigil replay PATH...` replays EventBridge events (and bare findings or
//! CloudTrail records) through the pipeline the Lambdas run: readable alerts
//! and a summary for people, JSON or OCSF lines for machines, an HTML report
//! for a responder; with `--sns-topic-arn` it publishes for real. Exit codes:
//! [`exit::Exit`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backfill;
mod coverage;
mod exit;
mod output;
mod progress;
mod replay;
mod report;
mod rule_args;

use exit::Exit;
use output::out;
use rule_args::{RuleFiles, RulesArgs};

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
    Replay(replay::ReplayArgs),
    /// Send a trail bucket's log files for a time range to the deployed cloudtrail-logs queue.
    Backfill(backfill::BackfillArgs),
    /// Detection rules: list, test, lint, and the EventBridge pattern they need.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// One line per rule: id, level, title, ATT&CK tactics.
    List(RulesArgs),
    /// Run every rule's own test records (`vigil_tests`); exit 1 on a failure.
    Test(RulesArgs),
    /// Check rules: missing id, level, tags or tests, unknown modifiers, duplicate ids.
    Lint(RulesArgs),
    /// Which MITRE ATT&CK tactics and techniques the rules cover.
    Coverage {
        #[command(flatten)]
        rules: RulesArgs,
        /// Also write an ATT&CK Navigator layer (JSON) to this file.
        #[arg(long, value_name = "FILE")]
        navigator: Option<std::path::PathBuf>,
        /// As a Markdown table by tactic (the README's).
        #[arg(long)]
        markdown: bool,
    },
    /// Print the EventBridge patterns that deliver every event the rules can match.
    Pattern {
        #[command(flatten)]
        rules: RulesArgs,
        /// As the SAM `Events:` entries of the CloudTrail function in template.yaml.
        #[arg(long, conflicts_with = "json")]
        sam: bool,
        /// As JSON: `{"state": ..., "patterns": [...]}`.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr (warn unless VIGIL_LOG_LEVEL says otherwise): stdout
    // is the human output. Traces are exported when OTEL_* says so.
    let telemetry = match vigil::telemetry::init(vigil::telemetry::TelemetryOptions::cli()) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("vigil: telemetry disabled: {e}");
            None
        }
    };
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {}", error_chain(e.as_ref()));
            Exit::Setup.into()
        }
    };
    if let Some(t) = telemetry {
        t.flush().await;
    }
    code
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Rules { command } => rules(command),
        Command::Replay(args) => Ok(replay::run(args).await?.into()),
        Command::Backfill(args) => backfill::run(args).await,
    }
}

/// `vigil rules ...`: the work is in `vigil::detect::{ruletest, pattern}`.
fn rules(command: RulesCommand) -> anyhow::Result<ExitCode> {
    use vigil::detect::{pattern, ruletest, RuleSet, RuleSource};
    let args = match &command {
        RulesCommand::List(a) | RulesCommand::Test(a) | RulesCommand::Lint(a) => a,
        RulesCommand::Pattern { rules, .. } | RulesCommand::Coverage { rules, .. } => rules,
    };
    let RuleFiles { base, extra } = args.files()?;
    let all: Vec<RuleSource> = base.iter().chain(&extra).cloned().collect();
    let values = args.placeholders()?;
    let ok = |good: bool| {
        if good {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    };
    Ok(match command {
        RulesCommand::List(_) => {
            let set = RuleSet::layered_with(&base, &extra, &values)?;
            out(&ruletest::render_list(&set));
            ExitCode::SUCCESS
        }
        RulesCommand::Test(_) => {
            let report = ruletest::run(&all, &values);
            out(&report.render());
            ok(report.ok())
        }
        RulesCommand::Lint(_) => {
            let issues = ruletest::lint(&all, &values);
            out(&ruletest::render_lint(&issues));
            ok(!issues.iter().any(|i| i.level == ruletest::LintLevel::Error))
        }
        RulesCommand::Coverage {
            navigator,
            markdown,
            ..
        } => {
            let set = RuleSet::layered_with(&base, &extra, &values)?;
            let coverage = coverage::Coverage::of(set.rules().iter().map(|r| r.meta()));
            if let Some(path) = navigator {
                let layer = coverage::layer(&coverage, "Vigil detection coverage");
                std::fs::write(&path, serde_json::to_string_pretty(&layer)? + "\n")
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            }
            out(&if markdown {
                coverage.markdown()
            } else {
                coverage.render()
            });
            ExitCode::SUCCESS
        }
        RulesCommand::Pattern { sam, json, .. } => {
            let set = RuleSet::layered_with(&base, &extra, &values)?;
            let delivery = pattern::derive(set.rules());
            if sam {
                out(&delivery.sam_events());
            } else if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&delivery.to_json())?
                ));
            } else {
                out(&delivery.render());
            }
            ExitCode::SUCCESS
        }
    })
}

/// The error and its causes, `a: b: c`, each cause once: some errors repeat
/// their source in their own message.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.ends_with(&message) {
            text = format!("{text}: {message}");
        }
        source = cause.source();
    }
    text
}

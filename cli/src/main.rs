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
use vigil::{app, aws, Config};

mod replay;

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
        /// Alert on every finding: no suppression window and no storm
        /// aggregation (default: both, in memory or in VIGIL_STATE_TABLE when
        /// set, as deployed). Suppression rules still apply.
        #[arg(long)]
        no_dedup: bool,
        /// Values of the rules' |expand placeholders, a JSON or YAML file
        /// (default: VIGIL_SIGMA_PLACEHOLDERS or VIGIL_SIGMA_PLACEHOLDERS_FILE).
        #[arg(long, value_name = "FILE")]
        placeholders: Option<PathBuf>,
    },
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

#[derive(clap::Args)]
struct RulesArgs {
    /// A folder of Sigma rules beside the bundled ones (default: VIGIL_RULES_DIR).
    #[arg(long)]
    rules_dir: Option<PathBuf>,
    /// Leave the bundled rules out.
    #[arg(long)]
    no_bundled: bool,
    /// Values of the rules' |expand placeholders, a JSON or YAML file
    /// (default: VIGIL_SIGMA_PLACEHOLDERS or VIGIL_SIGMA_PLACEHOLDERS_FILE).
    #[arg(long, value_name = "FILE")]
    placeholders: Option<PathBuf>,
}

/// The placeholder values: from `file` when given, else as a function reads
/// them from its environment.
fn placeholders(file: Option<&std::path::Path>) -> anyhow::Result<vigil::detect::Placeholders> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            vigil::detect::Placeholders::parse(&text)
                .with_context(|| format!("placeholders in {}", path.display()))
        }
        None => Ok(vigil::config::sigma_placeholders_from_env()?),
    }
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
            eprintln!("vigil: {e:#}");
            ExitCode::from(2)
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
        Command::Replay {
            paths,
            sns_topic_arn,
            min_severity,
            include_samples,
            quiet,
            no_dedup,
            placeholders: placeholders_file,
        } => {
            let mut config = Config::from_env().context("reading VIGIL_* settings")?;
            if placeholders_file.is_some() {
                config.sigma_placeholders = placeholders(placeholders_file.as_deref())?;
            }
            if let Some(s) = min_severity {
                config.min_severity = s;
            }
            config.alert_samples |= include_samples;
            config.topic_arn = sns_topic_arn;
            let needs_aws = config.topic_arn.is_some()
                || config.dedup.state_table.is_some()
                || config.dedup.suppressions_ssm_parameter.is_some()
                || config.routes_ssm_parameter.is_some()
                || config.organizations_lookup;
            let sdk = match needs_aws {
                true => Some(aws::sdk_config().await),
                false => None,
            };
            let loaded = app::Loaded::load(&config, sdk.as_ref())
                .await
                .context("loading the suppression rules and the routing table")?;
            // Replay never uses idempotency: a replayed event should run.
            config.dedup.idempotency_table = None;
            let dedup = match (&sdk, no_dedup) {
                (_, true) => vigil::dedup::Dedup::new(&config.dedup, None, None),
                (Some(sdk), false) if config.dedup.state_table.is_some() => {
                    vigil::dedup::Dedup::from_settings(&config.dedup, sdk)
                }
                _ => vigil::dedup::Dedup::in_memory(&config.dedup),
            }
            .with_suppressions(loaded.suppressions.clone());
            // CloudTrail records meet the same rules as in the functions
            // (bundled, plus VIGIL_RULES_DIR, with their placeholders).
            let rules = app::detection_rules(&config).context("loading detection rules")?;
            let mut builder = app::pipeline_builder(&config, &loaded, sdk.as_ref())
                .dedup(dedup)
                .detector(std::sync::Arc::new(rules));
            if let Some(directory) = sdk
                .as_ref()
                .and_then(|s| loaded.account_directory(&config, s))
            {
                builder = builder.accounts(directory);
            }
            builder = if quiet {
                builder.sink(Box::new(MemorySink::new()))
            } else {
                builder.sink(Box::new(ConsoleSink::stdout()))
            };
            let pipeline = builder.build();
            // Progress on a terminal, unless alerts print to the same one.
            let mut status = replay::StatusLine::stderr(
                quiet || !std::io::IsTerminal::is_terminal(&std::io::stdout()),
            );
            let summary = replay::replay(&pipeline, &paths, |s| status.update(s)).await;
            status.clear();
            out(&format!("{}\n", summary.render()));
            Ok(if summary.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// `vigil rules ...`: the work is in `vigil::detect::{ruletest, pattern}`.
fn rules(command: RulesCommand) -> anyhow::Result<ExitCode> {
    use vigil::detect::{pattern, ruletest, RuleSet, RuleSource};
    let args = match &command {
        RulesCommand::List(a) | RulesCommand::Test(a) | RulesCommand::Lint(a) => a,
        RulesCommand::Pattern { rules, .. } => rules,
    };
    let base = if args.no_bundled {
        Vec::new()
    } else {
        RuleSource::bundled()
    };
    let dir = args
        .rules_dir
        .clone()
        .or_else(|| std::env::var_os("VIGIL_RULES_DIR").map(PathBuf::from));
    let extra = match &dir {
        Some(d) => RuleSource::dir(d).with_context(|| format!("reading {}", d.display()))?,
        None => Vec::new(),
    };
    let all: Vec<RuleSource> = base.iter().chain(&extra).cloned().collect();
    let values = placeholders(args.placeholders.as_deref())?;
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

/// Writes to stdout, ignoring a closed pipe (`vigil replay ... | head`) instead
/// of panicking as `print!` does.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
}

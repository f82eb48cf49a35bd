//! `vigil replay`: sample or captured events through the same pipeline the
//! Lambdas run. People get each alert as its email reads and a summary;
//! machines get JSON or OCSF lines (the summary then goes to stderr); a
//! responder gets an HTML report. The exit code says how it went
//! ([`crate::exit::Exit`]).

pub(crate) mod s3;
pub(crate) mod summary;
pub(crate) mod walk;

use std::path::PathBuf;
use std::sync::Arc;

use vigil::detect::Prefilter;
use vigil::logfiles::LogFileSettings;
use vigil::model::Severity;
use vigil::pipeline::Pipeline;
use vigil::sinks::ConsoleSink;
use vigil::{app, aws, Config};

use crate::exit::Exit;
use crate::output::{out, FailOn, JsonLines, OcsfSink, OutputFormat};
use crate::report::{ReportData, ReportFacts, ReportFile};
use crate::rule_args::{RulesArgs, RulesLoadError};
use summary::StatusLine;
use walk::Seen;

#[derive(clap::Args, Debug)]
pub(crate) struct ReplayArgs {
    /// Files or folders: JSON objects, arrays, JSON lines, CloudTrail log files (plain or gzip);
    /// or S3 locations, `s3://bucket/prefix/`, streamed from S3.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// What stdout gets: alerts as text, one JSON object a line per finding,
    /// or the OCSF finding of each alert (the SNS `sqs` body). With json
    /// and ocsf the summary goes to stderr.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Also write a self-contained HTML report to this file.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// Exit with 3 when a finding at or above this severity appears
    /// (samples, inactive and rule-suppressed findings do not count).
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    #[command(flatten)]
    rules: RulesArgs,
    /// Publish alerts to this SNS topic (uses the usual AWS credentials and AWS_ENDPOINT_URL).
    #[arg(long)]
    sns_topic_arn: Option<String>,
    /// Minimum severity that alerts (default: VIGIL_MIN_SEVERITY or MEDIUM).
    #[arg(long)]
    min_severity: Option<Severity>,
    /// Alert on sample findings the sources generate (default: off).
    #[arg(long)]
    include_samples: bool,
    /// Print only the summary: no alert text, no JSON or OCSF lines.
    #[arg(long, short)]
    quiet: bool,
    /// Alert on every finding: no suppression window and no storm
    /// aggregation (default: both, in memory or in VIGIL_STATE_TABLE when
    /// set, as deployed). Suppression rules still apply.
    #[arg(long)]
    no_dedup: bool,
}

/// Why a replay could not start (exit 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("reading VIGIL_* settings")]
    Settings(#[from] vigil::config::ConfigError),
    #[error("loading suppression rules")]
    Suppressions(#[from] vigil::dedup::RulesError),
    #[error("loading the routing table")]
    Routes(#[from] vigil::app::StartupError),
    #[error(transparent)]
    Rules(#[from] RulesLoadError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    S3(#[from] s3::S3UrlError),
}

/// Runs the replay the arguments describe.
pub(crate) async fn run(args: ReplayArgs) -> Result<Exit, SetupError> {
    // The report file is created first: a bad path fails before a long replay.
    let report_file = args.report.as_deref().map(ReportFile::create).transpose()?;
    let s3_urls = s3::urls(&args.paths)?;
    let (pipeline, prefilter) = pipeline(&args).await?;
    let mut json = (args.output == OutputFormat::Json && !args.quiet).then(JsonLines::default);
    let mut report = report_file.as_ref().map(|_| ReportData::default());
    let mut fail_on = FailOn::new(args.fail_on);
    // Progress on a terminal, unless findings print to the same one.
    let prints_findings = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut status = StatusLine::stderr(!prints_findings);
    let see = |seen: Seen<'_>| {
        if let Some(j) = json.as_mut() {
            j.write(&seen);
        }
        if let Some(r) = report.as_mut() {
            r.add(&seen);
        }
        fail_on.see(&seen);
    };
    let limits = LogFileSettings::from_env()?.limits;
    let prefilter = Arc::new(prefilter);
    let summary = match &s3_urls {
        Some(urls) => {
            let reading = s3::S3Reading { limits, prefilter };
            s3::replay(&pipeline, urls, reading, !prints_findings, see).await
        }
        None => {
            let reading = walk::Reading {
                limits,
                prefilter: Some(prefilter),
            };
            walk::replay(&pipeline, &args.paths, &reading, |s| status.update(s), see).await
        }
    };
    status.clear();
    let text = format!("{}\n", summary.render());
    match args.output.is_machine() {
        true => eprint!("{text}"),
        false => out(&text),
    }
    if let (Some(file), Some(data)) = (report_file, report) {
        file.write(&data, &ReportFacts::new(&summary, &args.paths))?;
    }
    let output_failed = json.and_then(|j| j.failed);
    if let Some(e) = &output_failed {
        eprintln!("vigil: writing the JSON lines failed: {e}");
    }
    let failed = !summary.errors.is_empty() || output_failed.is_some();
    if fail_on.matched > 0 {
        eprintln!(
            "vigil: --fail-on: {} findings at {} or above",
            fail_on.matched,
            args.fail_on.map_or("", |s| s.as_str())
        );
    }
    Ok(Exit::of_replay(failed, fail_on.matched > 0))
}

/// The pipeline the functions run, set up from VIGIL_* and the arguments,
/// with the sinks the output wants, and the prefilter of its rules.
async fn pipeline(args: &ReplayArgs) -> Result<(Pipeline, Prefilter), SetupError> {
    let mut config = Config::from_env()?;
    if let Some(s) = args.min_severity {
        config.min_severity = s;
    }
    config.alert_samples |= args.include_samples;
    config.topic_arn = args.sns_topic_arn.clone();
    let needs_aws = config.topic_arn.is_some()
        || config.dedup.state_table.is_some()
        || config.dedup.suppressions_ssm_parameter.is_some()
        || config.routes_ssm_parameter.is_some()
        || config.organizations_lookup;
    let sdk = match needs_aws {
        true => Some(aws::sdk_config().await),
        false => None,
    };
    let loaded = app::Loaded::load(&config, sdk.as_ref()).await?;
    // Replay never uses idempotency: a replayed event should run.
    config.dedup.idempotency_table = None;
    let dedup = match (&sdk, args.no_dedup) {
        (_, true) => vigil::dedup::Dedup::new(&config.dedup, None, None),
        (Some(sdk), false) if config.dedup.state_table.is_some() => {
            vigil::dedup::Dedup::from_settings(&config.dedup, sdk)
        }
        _ => vigil::dedup::Dedup::in_memory(&config.dedup),
    }
    .with_suppressions(loaded.suppressions.clone());
    // CloudTrail records meet the rules the functions run (bundled, plus
    // --rules-dir or VIGIL_RULES_DIR).
    let rules = args.rules.runtime_set()?;
    let prefilter = Prefilter::new(rules.rules());
    let mut builder = app::pipeline_builder(&config, &loaded, sdk.as_ref())
        .dedup(dedup)
        .detector(Arc::new(rules))
        // Correlations over the replayed events, in this process's memory.
        .correlations(Arc::new(vigil::correlate::MemoryCorrelations::new()));
    if let Some(directory) = sdk
        .as_ref()
        .and_then(|s| loaded.account_directory(&config, s))
    {
        builder = builder.accounts(directory);
    }
    // After SNS (added by pipeline_builder): a line means every sink delivered.
    builder = match (args.output, args.quiet) {
        (_, true) | (OutputFormat::Json, false) => builder,
        (OutputFormat::Text, false) => builder.sink(Box::new(ConsoleSink::stdout())),
        (OutputFormat::Ocsf, false) => builder.sink(Box::new(OcsfSink::stdout())),
    };
    Ok((builder.build(), prefilter))
}

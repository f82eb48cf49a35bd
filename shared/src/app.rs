//! Wiring shared by every function and the CLI: AWS clients, the pipeline for a
//! set of sources, and the EventBridge handler. Functions stay a few lines.

use std::path::Path;
use std::sync::Arc;

use aws_config::SdkConfig;
use serde_json::{json, Value};

use crate::accounts::{AccountDirectory, LookupWants, Organizations};
use crate::aws::sdk_config;
use crate::config::Config;
use crate::dedup::Suppressions;
use crate::detect::{Detector, RuleSet};
use crate::env::ConfigError;
use crate::model::Source;
use crate::pipeline::{Pipeline, PipelineBuilder};
use crate::route::RoutingTable;
use crate::sinks::SnsSink;
use crate::telemetry::{InvocationInfo, Telemetry, TelemetryOptions, Trigger};

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("detection rules: {0}")]
    Rules(String),
    #[error(transparent)]
    Suppressions(#[from] crate::dedup::RulesError),
    #[error(transparent)]
    Routes(#[from] crate::route::RoutesError),
}

/// The CloudTrail detection rules the configuration says: the bundled rules,
/// the folder `VIGIL_RULES_DIR` and the values of their `|expand`
/// placeholders (`VIGIL_SIGMA_PLACEHOLDERS`). A rule that is wrong, or names
/// a placeholder nobody configured, stops the start.
pub fn detection_rules(config: &Config) -> Result<RuleSet, StartupError> {
    RuleSet::load_with(
        config.rules_dir.as_deref().map(Path::new),
        &config.sigma_placeholders,
    )
    .map_err(|e| {
        let hint = match e.kind {
            crate::detect::RuleErrorKind::UnknownPlaceholder { .. } => {
                " (give it values in VIGIL_SIGMA_PLACEHOLDERS or VIGIL_SIGMA_PLACEHOLDERS_FILE)"
            }
            _ => "",
        };
        StartupError::Rules(format!("{e}{hint}"))
    })
}

/// What a function loads at its cold start beside its settings: the
/// documents its configuration names (files or SSM parameters). Kept apart
/// from [`Config`], which is only what the environment says.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub routes: RoutingTable,
    pub suppressions: Suppressions,
}

impl Loaded {
    /// Loads every document the configuration names; a malformed one stops
    /// the start (a silent fallback could send alerts to the wrong people).
    pub async fn load(config: &Config, sdk: Option<&SdkConfig>) -> Result<Loaded, StartupError> {
        let routes = RoutingTable::load(
            config.routes_file.as_deref(),
            config.routes_ssm_parameter.as_deref(),
            sdk,
        )
        .await?;
        let suppressions = crate::dedup::rules::load(&config.dedup, sdk).await?;
        Ok(Loaded {
            routes,
            suppressions,
        })
    }

    /// The account directory the configuration asks for: AWS Organizations
    /// for names when `VIGIL_ORGANIZATIONS_LOOKUP` is on, and for OUs when
    /// the routing table routes by OU. None: configuration names only.
    pub fn account_directory(
        &self,
        config: &Config,
        sdk: &SdkConfig,
    ) -> Option<Arc<dyn AccountDirectory>> {
        let wants = LookupWants {
            names: config.organizations_lookup,
            units: self.routes.uses_units(),
        };
        (wants.names || wants.units)
            .then(|| Arc::new(Organizations::new(sdk, wants)) as Arc<dyn AccountDirectory>)
    }
}

/// A pipeline builder with the routing table, the SNS sink when a topic is
/// configured, and telemetry (trace context, metrics) when
/// [`crate::telemetry::init`] ran.
pub fn pipeline_builder(
    config: &Config,
    loaded: &Loaded,
    sdk: Option<&SdkConfig>,
) -> PipelineBuilder {
    let mut builder = Pipeline::builder(config).routes(loaded.routes.clone());
    if let Some(telemetry) = crate::telemetry::installed() {
        builder = telemetry.instrument(builder);
    }
    if let (Some(topic), Some(sdk)) = (&config.topic_arn, sdk) {
        builder = builder.sink(Box::new(SnsSink::new(
            aws_sdk_sns::Client::new(sdk),
            topic.clone(),
        )));
    }
    builder
}

/// The pipeline a function runs: only `accepted` sources, SNS when configured,
/// the detection rules when CloudTrail is among the sources.
pub fn function_pipeline(
    config: &Config,
    loaded: &Loaded,
    sdk: &SdkConfig,
    accepted: &[Source],
    detector: Option<Arc<dyn Detector>>,
) -> Pipeline {
    let mut builder = pipeline_builder(config, loaded, Some(sdk))
        .accept(accepted)
        .dedup(
            crate::dedup::Dedup::from_settings(&config.dedup, sdk)
                .with_suppressions(loaded.suppressions.clone()),
        );
    if let Some(directory) = loaded.account_directory(config, sdk) {
        builder = builder.accounts(directory);
    }
    if let Some(d) = detector {
        builder = builder.detector(d);
        // Correlation windows on the state table, shared by every instance.
        if let Some(table) = &config.dedup.state_table {
            let store = crate::correlate::DynamoCorrelations::from_sdk(sdk, table.clone());
            builder = builder.correlations(Arc::new(store));
        }
    }
    builder.build()
}

/// Why an invocation failed. Returned to the Lambda runtime, which reports it
/// so the event is retried and, in the end, kept in the dead-letter queue.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvocationError(pub String);

/// Handles one EventBridge event: runs the pipeline, logs the outcome, and
/// fails the invocation on any error so nothing is lost.
pub async fn handle_event(pipeline: &Pipeline, event: Value) -> Result<Value, InvocationError> {
    handle_event_until(pipeline, event, None).await
}

/// [`handle_event`], with the invocation's deadline (epoch ms) bounding how
/// long the event is recorded as in progress for idempotency. An event id
/// already processed returns the stored result and alerts nothing; one being
/// processed elsewhere fails this invocation so it is retried later.
pub(crate) async fn handle_event_until(
    pipeline: &Pipeline,
    event: Value,
    deadline_ms: Option<i64>,
) -> Result<Value, InvocationError> {
    use crate::dedup::Begin;
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or_default();
    let mut idempotency_errors = 0u32;
    let guard = match pipeline.dedup().idempotency() {
        Some(idem) if !event_id.is_empty() => match idem.begin(event_id, deadline_ms).await {
            Ok(Begin::Proceed(guard)) => Some(guard),
            Ok(Begin::Duplicate(stored)) => {
                tracing::info!(event_id, "duplicate delivery: returning the stored result");
                return Ok(stored);
            }
            Ok(Begin::InProgress) => {
                tracing::warn!(event_id, "event in progress in another invocation");
                return Err(InvocationError(format!(
                    "event {event_id} is being processed by another invocation: retry later"
                )));
            }
            Err(e) => {
                idempotency_errors += 1;
                tracing::error!(error = %e, event_id, "idempotency store failed: processing anyway (fail open)");
                None
            }
        },
        _ => None,
    };
    match pipeline.process_event(&event).await {
        Ok(report) => {
            let out = json!({
                "source": report.source.as_str(),
                "findings": report.findings.len(),
                "alerts": report.alerts(),
                "storm_summaries": report.summaries.len(),
                "state_store_errors": report.state_store_errors + idempotency_errors,
            });
            if let Some(guard) = guard {
                if let Err(e) = guard.complete(&out).await {
                    // The alerts went out; a duplicate may alert again.
                    tracing::error!(error = %e, event_id, "idempotency record not completed");
                }
            }
            Ok(out)
        }
        Err(err) if err.is_refusal() => {
            // Retrying cannot make a forged event real: the invocation
            // succeeds (no Lambda retry, no dead-letter queue), the refusal is
            // logged with the sending account and counted (`EventsRefused`).
            tracing::error!(error = %err, error_kind = err.kind(), event_id, "event refused");
            let out = json!({ "refused": err.to_string(), "findings": 0, "alerts": 0 });
            if let Some(guard) = guard {
                if let Err(e) = guard.complete(&out).await {
                    tracing::error!(error = %e, event_id, "idempotency record not completed");
                }
            }
            Ok(out)
        }
        Err(err) => {
            if let Some(guard) = guard {
                if let Err(e) = guard.release().await {
                    // The record expires at the invocation's deadline anyway.
                    tracing::error!(error = %e, event_id, "idempotency record not released");
                }
            }
            let event_id = event.get("id").and_then(|v| v.as_str()).unwrap_or_default();
            tracing::error!(error = %err, error_kind = err.kind(), event_id, "event failed");
            Err(InvocationError(err.to_string()))
        }
    }
}

/// Handles one Lambda invocation of an EventBridge function with telemetry:
/// the invocation span (X-Ray parent, `faas.*` attributes, the event id as
/// correlation id), [`handle_event`] inside it, then spans and metrics
/// flushed before returning. The result is [`handle_event`]'s.
pub async fn handle_invocation(
    telemetry: &Telemetry,
    pipeline: &Pipeline,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, InvocationError> {
    let lambda_runtime::LambdaEvent { payload, context } = event;
    let invocation = invocation(telemetry, &payload, &context, Trigger::PubSub);
    let deadline = i64::try_from(context.deadline).ok();
    invocation
        .run(handle_event_until(pipeline, payload, deadline))
        .await
}

/// What a function is: its name and the sources it takes.
pub struct FunctionSpec {
    pub name: &'static str,
    pub sources: &'static [Source],
}

/// A function after its cold start: what its invocations share.
pub struct Started {
    pub config: Config,
    pub loaded: Loaded,
    pub sdk: SdkConfig,
    pub pipeline: Pipeline,
    pub telemetry: Telemetry,
}

/// The cold start every pipeline function shares, whatever triggers it:
/// telemetry, configuration, the rules (`detector`, when the function needs
/// them), the AWS SDK and the pipeline, built once.
pub async fn start_function(
    spec: &FunctionSpec,
    detector: impl FnOnce(&Config) -> Result<Option<Arc<dyn Detector>>, StartupError>,
) -> Result<Started, lambda_runtime::Error> {
    // First, so start-up errors are logged as JSON lines too.
    let telemetry = crate::telemetry::init(TelemetryOptions::lambda(spec.name))?;
    let config = Config::from_env()?;
    if config.topic_arn.is_none() {
        // A function without a topic would drop every alert: refuse to start.
        return Err(StartupError::Config(ConfigError::Invalid {
            name: "VIGIL_TOPIC_ARN",
            message: "not set: alerts would go nowhere".into(),
        })
        .into());
    }
    let detector = detector(&config)?;
    let sdk = sdk_config().await;
    let loaded = Loaded::load(&config, Some(&sdk)).await?;
    let pipeline = function_pipeline(&config, &loaded, &sdk, spec.sources, detector);
    tracing::info!(function = spec.name, "ready");
    Ok(Started {
        config,
        loaded,
        sdk,
        pipeline,
        telemetry,
    })
}

/// Whether `event` is the schedule asking for a storm sweep: an EventBridge
/// schedule's `Scheduled Event` from `aws.events` (only AWS can send an
/// `aws.*` source, and a sweep sends only what is due anyway).
pub fn is_storm_sweep(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// Runs the storm sweep ([`Pipeline::sweep_storms`]) in an invocation span,
/// logs and counts it (`StormSummariesFailed` for summaries not delivered or
/// a sweep that failed), flushes telemetry, and succeeds either way: a
/// summary not sent was given back, and the next scheduled sweep sends it,
/// so a Lambda retry would only add noise.
pub async fn handle_sweep(
    telemetry: &Telemetry,
    pipeline: &Pipeline,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, InvocationError> {
    let lambda_runtime::LambdaEvent { payload, context } = event;
    invocation(telemetry, &payload, &context, Trigger::Timer)
        .run(sweep(telemetry, pipeline))
        .await
}

/// The invocation span of an EventBridge event, its id as correlation id.
fn invocation(
    telemetry: &Telemetry,
    payload: &Value,
    context: &lambda_runtime::Context,
    trigger: Trigger,
) -> crate::telemetry::Invocation {
    let invocation = telemetry.invocation(InvocationInfo::new(context, trigger));
    match payload.get("id").and_then(Value::as_str) {
        Some(id) => invocation.correlation_id(id),
        None => invocation,
    }
}

async fn sweep(telemetry: &Telemetry, pipeline: &Pipeline) -> Result<Value, InvocationError> {
    let (report, _) = pipeline.sweep_storms().await;
    let recorder = crate::telemetry::Recorder {
        service: telemetry.config().service.clone(),
        by_account: false,
    };
    telemetry.metrics().record(recorder.storm_sweep(
        report.sent,
        report.failed,
        report.error.is_some(),
    ));
    if report.ok() {
        tracing::info!(
            storms_checked = report.storms_checked,
            summaries_sent = report.sent,
            "storm sweep done"
        );
    } else {
        tracing::error!(
            storms_checked = report.storms_checked,
            summaries_sent = report.sent,
            summaries_failed = report.failed,
            error = report.error.as_deref().unwrap_or(""),
            "storm sweep incomplete: the next sweep retries"
        );
    }
    Ok(json!({"storm_sweep": {
        "storms_checked": report.storms_checked,
        "summaries_sent": report.sent,
        "summaries_failed": report.failed,
        "error": report.error,
    }}))
}

/// Runs an EventBridge-triggered function: [`start_function`] once per cold
/// start, then serves invocations.
pub async fn run_eventbridge_function(
    spec: FunctionSpec,
    detector: impl FnOnce(&Config) -> Result<Option<Arc<dyn Detector>>, StartupError>,
) -> Result<(), lambda_runtime::Error> {
    serve(spec, detector, false).await
}

/// [`run_eventbridge_function`] for the function the storm-sweep schedule
/// invokes: a `Scheduled Event` ([`is_storm_sweep`]) runs [`handle_sweep`],
/// every other event the pipeline.
pub async fn run_sweeping_function(
    spec: FunctionSpec,
    detector: impl FnOnce(&Config) -> Result<Option<Arc<dyn Detector>>, StartupError>,
) -> Result<(), lambda_runtime::Error> {
    serve(spec, detector, true).await
}

async fn serve(
    spec: FunctionSpec,
    detector: impl FnOnce(&Config) -> Result<Option<Arc<dyn Detector>>, StartupError>,
    sweeps: bool,
) -> Result<(), lambda_runtime::Error> {
    let Started {
        pipeline,
        telemetry,
        ..
    } = start_function(&spec, detector).await?;
    let pipeline = &pipeline;
    let telemetry = &telemetry;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            if sweeps && is_storm_sweep(&event.payload) {
                return handle_sweep(telemetry, pipeline, event)
                    .await
                    .map_err(lambda_runtime::Error::from);
            }
            handle_invocation(telemetry, pipeline, event)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_rules_take_the_configured_placeholders() {
        let dir = std::env::temp_dir().join(format!("vigil-app-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("outside_corp.yml"),
            "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    eventName: ConsoleLogin\n  corp:\n    sourceIPAddress|expand|cidr: '%corporate_networks%'\n  condition: s and not corp\n",
        )
        .unwrap();
        let mut config = Config {
            rules_dir: Some(dir.to_string_lossy().into()),
            ..Config::default()
        };
        let e = detection_rules(&config).unwrap_err().to_string();
        assert!(
            e.contains("%corporate_networks%") && e.contains("VIGIL_SIGMA_PLACEHOLDERS"),
            "{e}"
        );
        config.sigma_placeholders =
            crate::detect::Placeholders::parse(r#"{"corporate_networks": ["192.0.2.0/24"]}"#)
                .unwrap();
        let rules = detection_rules(&config);
        std::fs::remove_dir_all(&dir).unwrap();
        let login = |ip: &str| json!({"eventName": "ConsoleLogin", "sourceIPAddress": ip});
        let rules = rules.unwrap();
        let extra = |ip: &str| {
            rules
                .matching(&login(ip))
                .iter()
                .any(|r| r.origin().ends_with("outside_corp.yml"))
        };
        assert!(extra("203.0.113.7"));
        assert!(!extra("192.0.2.7"));
    }
}

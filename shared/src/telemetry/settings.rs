//! Telemetry settings from the environment: what the OpenTelemetry SDK does
//! not read itself, the Lambda's own variables, and Vigil's
//! `VIGIL_LOG_LEVEL`, `VIGIL_METRICS`, `VIGIL_METRICS_NAMESPACE`,
//! `VIGIL_METRICS_BY_ACCOUNT`. Malformed values are problems to log, never a
//! reason not to start.
//!
//! The SDK reads the rest of the standard variables on its own, from the
//! process environment: `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`
//! (`opentelemetry_sdk`'s tracer configuration), the exporter's endpoint,
//! headers, protocol and compression (`opentelemetry-otlp`'s builder),
//! `OTEL_RESOURCE_ATTRIBUTES` and the span limits. Vigil only looks at them
//! where it has to decide something the SDK does not: whether to export at
//! all, which HTTP connector to build, how long to wait, and which sampler is
//! the default.

use std::time::Duration;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::EnvFilter;

use super::logs::Output;
use super::metrics::{self, MetricsMode};
use super::traces::{ExportSettings, Sampling};
use super::TelemetryError;
use crate::env::Env;

/// The export timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is not set. The
/// OpenTelemetry default (10 s) would hold a Lambda invocation far too long
/// when the backend is unreachable.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings from the environment (see the module documentation for what
/// the SDK reads itself).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `OTEL_SERVICE_NAME`, else the Lambda function name, else the default.
    pub service: String,
    /// `AWS_LAMBDA_FUNCTION_NAME`, else the service.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub function_version: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub function_memory_mb: Option<u64>,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`: the execution environment.
    pub log_stream: Option<String>,
    pub region: Option<String>,
    /// `VIGIL_LOG_LEVEL`, else `AWS_LAMBDA_LOG_LEVEL`: a level or
    /// `tracing` filter directives. None: the process kind's default.
    pub log_level: Option<String>,
    /// `VIGIL_METRICS`. None: the process kind's default.
    pub metrics: Option<MetricsMode>,
    pub namespace: String,
    pub by_account: bool,
    /// None: spans get ids but are not exported.
    pub export: Option<ExportSettings>,
    /// Which sampler decides what is exported.
    pub sampling: Sampling,
}

impl TelemetryConfig {
    /// Reads the process environment.
    pub fn from_env(default_service: &str) -> (TelemetryConfig, Vec<TelemetryError>) {
        TelemetryConfig::from_settings(default_service, &Env::process())
    }

    /// Reads settings through `lookup`. Malformed values are returned as
    /// problems (to be logged) and replaced by their defaults: telemetry must
    /// not stop a function from alerting.
    ///
    /// What the SDK reads itself (the exporter's endpoint and headers, the
    /// sampler's argument) it still reads from the process environment: a
    /// test that exports to a receiver of its own sets
    /// [`TelemetryConfig::export`] to [`ExportSettings::to`].
    pub fn from_lookup(
        default_service: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> (TelemetryConfig, Vec<TelemetryError>) {
        TelemetryConfig::from_settings(default_service, &Env::new(lookup))
    }

    pub fn from_settings(
        default_service: &str,
        env: &Env,
    ) -> (TelemetryConfig, Vec<TelemetryError>) {
        let mut problems = Vec::new();
        let function = env.get("AWS_LAMBDA_FUNCTION_NAME");
        let service = env
            .get("OTEL_SERVICE_NAME")
            .or_else(|| function.clone())
            .unwrap_or_else(|| default_service.to_string());
        let config = TelemetryConfig {
            function_name: function.unwrap_or_else(|| service.clone()),
            service,
            function_version: env.get("AWS_LAMBDA_FUNCTION_VERSION"),
            function_memory_mb: read_memory(env, &mut problems),
            log_stream: env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
            region: env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION")),
            log_level: read_log_level(env, &mut problems),
            metrics: read_metrics_mode(env, &mut problems),
            namespace: read_namespace(env, &mut problems),
            by_account: read_by_account(env, &mut problems),
            export: export_settings(env, &mut problems),
            sampling: read_sampling(env, &mut problems),
        };
        (config, problems)
    }
}

/// Whether the SDK's sampler decides. The SDK reads `OTEL_TRACES_SAMPLER`
/// and `OTEL_TRACES_SAMPLER_ARG` itself, and replaces a value it cannot use
/// by its default without a word (its warnings need a feature Vigil does
/// not build): the values are only checked here, so a typo is logged.
fn read_sampling(env: &Env, problems: &mut Vec<TelemetryError>) -> Sampling {
    let Some(sampler) = env.get("OTEL_TRACES_SAMPLER") else {
        return Sampling::All;
    };
    const KNOWN: [&str; 6] = [
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ];
    if !KNOWN.contains(&sampler.as_str()) {
        problems.push(config_problem(
            "OTEL_TRACES_SAMPLER",
            format!("{sampler:?} is not a sampler the SDK has; it uses parentbased_always_on"),
        ));
    } else if sampler.ends_with("traceidratio") {
        let arg = env.get("OTEL_TRACES_SAMPLER_ARG");
        let ratio = arg.as_deref().and_then(|a| a.parse::<f64>().ok());
        if !ratio.is_some_and(|r| (0.0..=1.0).contains(&r)) {
            problems.push(config_problem(
                "OTEL_TRACES_SAMPLER_ARG",
                format!("{arg:?} is not a ratio from 0 to 1; the SDK uses 1.0"),
            ));
        }
    }
    Sampling::FromEnvironment
}

fn read_memory(env: &Env, problems: &mut Vec<TelemetryError>) -> Option<u64> {
    let v = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?;
    match v.parse::<u64>() {
        // Lambda allows 128 MB to 10 GB.
        Ok(mb) if (1..=1 << 20).contains(&mb) => Some(mb),
        _ => {
            problems.push(config_problem(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                format!("{v:?} is not a number of MB"),
            ));
            None
        }
    }
}

fn read_log_level(env: &Env, problems: &mut Vec<TelemetryError>) -> Option<String> {
    let v = env
        .get("VIGIL_LOG_LEVEL")
        .or_else(|| env.get("AWS_LAMBDA_LOG_LEVEL"))?;
    log_directives(&v)
        .map_err(|message| problems.push(config_problem("VIGIL_LOG_LEVEL", message)))
        .ok()
}

fn read_metrics_mode(env: &Env, problems: &mut Vec<TelemetryError>) -> Option<MetricsMode> {
    env.get("VIGIL_METRICS")?
        .parse()
        .map_err(|message| problems.push(config_problem("VIGIL_METRICS", message)))
        .ok()
}

fn read_namespace(env: &Env, problems: &mut Vec<TelemetryError>) -> String {
    match env.get("VIGIL_METRICS_NAMESPACE") {
        Some(ns) if ns.len() <= 255 && ns.is_ascii() && !ns.starts_with("AWS/") => ns,
        Some(ns) => {
            problems.push(config_problem(
                "VIGIL_METRICS_NAMESPACE",
                format!("{ns:?} is not a usable namespace"),
            ));
            metrics::NAMESPACE.to_string()
        }
        None => metrics::NAMESPACE.to_string(),
    }
}

/// On unless switched off; a malformed value keeps the default (on).
fn read_by_account(env: &Env, problems: &mut Vec<TelemetryError>) -> bool {
    env.flag("VIGIL_METRICS_BY_ACCOUNT", true)
        .map_err(|e| {
            let crate::env::ConfigError::Invalid { name, message } = e;
            problems.push(config_problem(name, message))
        })
        .unwrap_or(true)
}

fn config_problem(name: &'static str, message: impl Into<String>) -> TelemetryError {
    TelemetryError::Config {
        name,
        message: message.into(),
    }
}

/// A level name (`info`, AWS's `FATAL`, ...) as a filter directive, or
/// `tracing` directives as they are (`info,vigil=debug`).
fn log_directives(v: &str) -> Result<String, String> {
    let lower = v.to_ascii_lowercase();
    let directive = match lower.as_str() {
        "fatal" | "critical" => "error".to_string(),
        "warning" => "warn".to_string(),
        "trace" | "debug" | "info" | "warn" | "error" | "off" => lower,
        _ => v.to_string(),
    };
    EnvFilter::builder()
        .parse(&directive)
        .map(|_| directive)
        .map_err(|e| format!("{v:?}: {e}"))
}

/// Whether and how to export. The SDK has no switch for "no endpoint
/// configured" (it falls back to `localhost:4318`), nor reads
/// `OTEL_SDK_DISABLED` or `OTEL_TRACES_EXPORTER`: those stay here. The
/// endpoint's value itself is the exporter's to resolve; Vigil only looks at
/// its scheme, to build a TLS connector or not.
fn export_settings(env: &Env, problems: &mut Vec<TelemetryError>) -> Option<ExportSettings> {
    if env
        .get("OTEL_SDK_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    match env
        .get("OTEL_TRACES_EXPORTER")
        .map(|v| v.to_ascii_lowercase())
    {
        Some(v) if v == "none" => return None,
        Some(v) if v != "otlp" => problems.push(config_problem(
            "OTEL_TRACES_EXPORTER",
            format!("{v:?} is not supported; using otlp"),
        )),
        _ => {}
    }
    let (name, endpoint) = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find_map(|name| env.get(name).map(|v| (name, v)))?;
    let tls = if endpoint.starts_with("https://") {
        true
    } else if endpoint.starts_with("http://") {
        false
    } else {
        problems.push(config_problem(
            name,
            format!("{endpoint:?} is not an http(s) URL; traces are not exported"),
        ));
        return None;
    };
    check_unbuilt(env, problems);
    Some(ExportSettings {
        endpoint: None,
        tls,
        timeout: export_timeout(env, problems),
    })
}

/// The exporter ignores a protocol or a compression it was not built with,
/// silently (its warnings need a feature Vigil does not build): report them.
fn check_unbuilt(env: &Env, problems: &mut Vec<TelemetryError>) {
    let first = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| env.get(name).map(|v| (name, v.to_ascii_lowercase())))
    };
    let protocol = first([
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]);
    if let Some((name, p)) = protocol.filter(|(_, p)| p != "http/protobuf") {
        problems.push(config_problem(
            name,
            format!("{p:?} is not built in; the exporter uses http/protobuf"),
        ));
    }
    let compression = first([
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    ]);
    if let Some((name, c)) = compression.filter(|(_, c)| c != "none") {
        problems.push(config_problem(
            name,
            format!("{c:?} is not built in; spans are sent uncompressed"),
        ));
    }
}

/// The exporter's deadline. Read here although the exporter reads it too:
/// Vigil's HTTP client and its flush deadline need the value, and the
/// default differs ([`DEFAULT_EXPORT_TIMEOUT`]).
fn export_timeout(env: &Env, problems: &mut Vec<TelemetryError>) -> Duration {
    let Some((name, ms)) = [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .into_iter()
    .find_map(|name| env.get(name).map(|v| (name, v))) else {
        return DEFAULT_EXPORT_TIMEOUT;
    };
    match ms.parse::<u64>() {
        Ok(ms) if ms > 0 => Duration::from_millis(ms),
        _ => {
            problems.push(config_problem(
                name,
                format!("{ms:?} is not a positive number of milliseconds"),
            ));
            DEFAULT_EXPORT_TIMEOUT
        }
    }
}

/// How the process runs, which decides the defaults.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// The service name when neither `OTEL_SERVICE_NAME` nor
    /// `AWS_LAMBDA_FUNCTION_NAME` is set.
    pub default_service: String,
    /// Where log lines go.
    pub logs: Output,
    /// Where EMF lines go.
    pub emf: Output,
    /// The log level when none is configured.
    pub default_log_level: LevelFilter,
    /// The metrics sink when `VIGIL_METRICS` is not set.
    pub default_metrics: MetricsMode,
    /// Whether this is a Lambda function (the `cloud.platform` resource).
    pub lambda: bool,
}

impl TelemetryOptions {
    /// A Lambda function: logs and EMF on stdout, info, EMF metrics.
    pub fn lambda(function: &str) -> TelemetryOptions {
        TelemetryOptions {
            default_service: function.to_string(),
            logs: Output::Stdout,
            emf: Output::Stdout,
            default_log_level: LevelFilter::INFO,
            default_metrics: MetricsMode::Emf,
            lambda: true,
        }
    }

    /// The CLI: stdout is for its human output, so logs (and EMF, when asked
    /// for) go to stderr; warn; no metrics unless `VIGIL_METRICS` says so.
    pub fn cli() -> TelemetryOptions {
        TelemetryOptions {
            default_service: "vigil-cli".to_string(),
            logs: Output::Stderr,
            emf: Output::Stderr,
            default_log_level: LevelFilter::WARN,
            default_metrics: MetricsMode::Off,
            lambda: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> (TelemetryConfig, Vec<TelemetryError>) {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup("vigil-test", |k| map.get(k).cloned())
    }

    #[test]
    fn nothing_configured_exports_nothing_and_fails_nothing() {
        let (c, problems) = cfg(&[]);
        assert!(problems.is_empty());
        assert_eq!(c.service, "vigil-test");
        assert_eq!(c.function_name, "vigil-test");
        assert!(c.export.is_none());
        assert_eq!(c.sampling, Sampling::All);
        assert_eq!(c.namespace, "Vigil");
        assert!(c.by_account);
        assert_eq!(c.metrics, None);
        assert_eq!(c.function_memory_mb, None);
    }

    #[test]
    fn an_endpoint_turns_export_on_and_the_exporter_resolves_it() {
        let (c, problems) = cfg(&[
            ("OTEL_SERVICE_NAME", "vigil-guardduty"),
            ("AWS_LAMBDA_FUNCTION_NAME", "vigil-GuardDuty-abc"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[7]abc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io/"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.service, "vigil-guardduty");
        assert_eq!(c.function_name, "vigil-GuardDuty-abc");
        assert_eq!(c.function_memory_mb, Some(256));
        assert_eq!(c.log_stream.as_deref(), Some("2026/01/01/[7]abc"));
        let e = c.export.unwrap();
        // The URL is the exporter's to resolve (it appends /v1/traces).
        assert_eq!(e.endpoint, None);
        assert!(e.tls);
        assert_eq!(e.timeout, DEFAULT_EXPORT_TIMEOUT);

        let (c, _) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://wrong"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318/custom",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "250"),
        ]);
        let e = c.export.unwrap();
        assert!(!e.tls, "the signal's own endpoint wins");
        assert_eq!(e.timeout, Duration::from_millis(250));

        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let (c, _) = cfg(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io"),
                off,
            ]);
            assert!(c.export.is_none(), "{off:?}");
        }
    }

    #[test]
    fn a_configured_sampler_is_left_to_the_sdk_and_a_bad_one_reported() {
        let (c, problems) = cfg(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.sampling, Sampling::FromEnvironment);
        for bad in [
            &[("OTEL_TRACES_SAMPLER", "sometimes")][..],
            &[("OTEL_TRACES_SAMPLER", "traceidratio")],
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ],
            &[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "half"),
            ],
        ] {
            let (c, problems) = cfg(bad);
            assert_eq!(problems.len(), 1, "{bad:?}: {problems:?}");
            assert_eq!(
                c.sampling,
                Sampling::FromEnvironment,
                "the SDK still decides"
            );
        }
    }

    #[test]
    fn malformed_values_are_reported_and_replaced_by_defaults() {
        let (c, problems) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "api.honeycomb.io"),
            ("VIGIL_LOG_LEVEL", "loud=="),
            ("VIGIL_METRICS", "statsd"),
            ("VIGIL_METRICS_BY_ACCOUNT", "maybe"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
        ]);
        assert!(c.export.is_none());
        assert_eq!(c.log_level, None);
        assert_eq!(c.metrics, None);
        assert!(c.by_account);
        assert_eq!(c.function_memory_mb, None);
        assert_eq!(problems.len(), 5, "{problems:?}");

        let (c, problems) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-3"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ]);
        assert_eq!(c.export.unwrap().timeout, DEFAULT_EXPORT_TIMEOUT);
        assert_eq!(problems.len(), 3, "{problems:?}");
        let (_, problems) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn log_levels_accept_aws_names_and_directives() {
        assert_eq!(
            cfg(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")])
                .0
                .log_level
                .as_deref(),
            Some("error")
        );
        assert_eq!(
            cfg(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")])
                .0
                .log_level
                .as_deref(),
            Some("warn")
        );
        assert_eq!(
            cfg(&[
                ("VIGIL_LOG_LEVEL", "debug"),
                ("AWS_LAMBDA_LOG_LEVEL", "ERROR")
            ])
            .0
            .log_level
            .as_deref(),
            Some("debug")
        );
        assert_eq!(
            cfg(&[("VIGIL_LOG_LEVEL", "info,vigil=debug")])
                .0
                .log_level
                .as_deref(),
            Some("info,vigil=debug")
        );
    }
}

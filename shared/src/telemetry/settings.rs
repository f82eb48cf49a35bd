//! Telemetry settings from the environment: the standard `OTEL_*`
//! variables, the Lambda's own, and Vigil's `VIGIL_LOG_LEVEL`,
//! `VIGIL_METRICS`, `VIGIL_METRICS_NAMESPACE`, `VIGIL_METRICS_BY_ACCOUNT`.
//! Malformed values are problems to log, never a reason not to start.

use std::collections::HashMap;
use std::time::Duration;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::EnvFilter;

use super::logs::Output;
use super::metrics::{self, MetricsMode};
use super::traces::ExportSettings;
use super::TelemetryError;
use crate::env::Env;

/// The export timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is not set. The
/// OpenTelemetry default (10 s) would hold a Lambda invocation far too long
/// when the backend is unreachable.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings from the environment: the standard `OTEL_*` variables, the
/// Lambda's own, and Vigil's `VIGIL_LOG_LEVEL`, `VIGIL_METRICS`,
/// `VIGIL_METRICS_NAMESPACE`, `VIGIL_METRICS_BY_ACCOUNT`.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `OTEL_SERVICE_NAME`, else the Lambda function name, else the default.
    pub service: String,
    /// `AWS_LAMBDA_FUNCTION_NAME`, else the service.
    pub function_name: String,
    pub function_version: Option<String>,
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
}

impl TelemetryConfig {
    /// Reads the process environment.
    pub fn from_env(default_service: &str) -> (TelemetryConfig, Vec<TelemetryError>) {
        TelemetryConfig::from_settings(default_service, &Env::process())
    }

    /// Reads settings through `lookup`. Malformed values are returned as
    /// problems (to be logged) and replaced by their defaults: telemetry must
    /// not stop a function from alerting.
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
            region: env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION")),
            log_level: read_log_level(env, &mut problems),
            metrics: read_metrics_mode(env, &mut problems),
            namespace: read_namespace(env, &mut problems),
            by_account: read_by_account(env, &mut problems),
            export: export_settings(&|name| env.get(name), &mut problems),
        };
        (config, problems)
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

/// The exporter settings, per the OpenTelemetry specification's variables.
fn export_settings(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<TelemetryError>,
) -> Option<ExportSettings> {
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return None;
    }
    let endpoint = export_endpoint(get, problems)?;
    check_protocol(get, problems);
    Some(ExportSettings {
        endpoint,
        headers: export_headers(get, problems),
        timeout: export_timeout(get, problems),
    })
}

/// The traces URL: the signal-specific variable as it is, or the base URL
/// with the signal's path. None: not set, or not an http(s) URL.
fn export_endpoint(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<TelemetryError>,
) -> Option<String> {
    let (name, endpoint) = if let Some(e) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", e)
    } else {
        let e = get("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{}/v1/traces", e.trim_end_matches('/')),
        )
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        || endpoint.parse::<http::Uri>().is_err()
    {
        problems.push(config_problem(
            name,
            format!("{endpoint:?} is not an http(s) URL; traces are not exported"),
        ));
        return None;
    }
    Some(endpoint)
}

/// Only http/protobuf is spoken; another protocol is reported, not refused.
fn check_protocol(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<TelemetryError>) {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(p) = get(name) {
            if p != "http/protobuf" {
                problems.push(config_problem(
                    name,
                    format!("{p:?} is not supported; using http/protobuf"),
                ));
            }
            break;
        }
    }
}

fn export_headers(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<TelemetryError>,
) -> HashMap<String, String> {
    let mut headers = HashMap::new();
    let Some(h) =
        get("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| get("OTEL_EXPORTER_OTLP_HEADERS"))
    else {
        return headers;
    };
    for pair in h.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                headers.insert(k.trim().to_string(), percent_decode(v.trim()));
            }
            // Never echo the value: it is usually an API key.
            _ => problems.push(config_problem(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "expected key=value pairs separated by commas",
            )),
        }
    }
    headers
}

fn export_timeout(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<TelemetryError>,
) -> Duration {
    let Some(ms) =
        get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").or_else(|| get("OTEL_EXPORTER_OTLP_TIMEOUT"))
    else {
        return DEFAULT_EXPORT_TIMEOUT;
    };
    match ms.parse::<u64>() {
        Ok(ms) if ms > 0 => Duration::from_millis(ms),
        _ => {
            problems.push(config_problem(
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                format!("{ms:?} is not a positive number of milliseconds"),
            ));
            DEFAULT_EXPORT_TIMEOUT
        }
    }
}

/// `%XX` decoding for header values, as the specification asks.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
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
        assert_eq!(c.namespace, "Vigil");
        assert!(c.by_account);
        assert_eq!(c.metrics, None);
    }

    #[test]
    fn the_standard_variables_configure_the_exporter() {
        let (c, problems) = cfg(&[
            ("OTEL_SERVICE_NAME", "vigil-guardduty"),
            ("AWS_LAMBDA_FUNCTION_NAME", "vigil-GuardDuty-abc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io/"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-honeycomb-team=abc%3D%3D, x-other = 1",
            ),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.service, "vigil-guardduty");
        assert_eq!(c.function_name, "vigil-GuardDuty-abc");
        let e = c.export.unwrap();
        assert_eq!(e.endpoint, "https://api.honeycomb.io/v1/traces");
        assert_eq!(e.headers["x-honeycomb-team"], "abc==");
        assert_eq!(e.headers["x-other"], "1");
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
        assert_eq!(e.endpoint, "http://127.0.0.1:4318/custom");
        assert_eq!(e.timeout, Duration::from_millis(250));

        let (c, _) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert!(c.export.is_none());
    }

    #[test]
    fn malformed_values_are_reported_and_replaced_by_defaults() {
        let (c, problems) = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "api.honeycomb.io"),
            ("VIGIL_LOG_LEVEL", "loud=="),
            ("VIGIL_METRICS", "statsd"),
            ("VIGIL_METRICS_BY_ACCOUNT", "maybe"),
        ]);
        assert!(c.export.is_none());
        assert_eq!(c.log_level, None);
        assert_eq!(c.metrics, None);
        assert!(c.by_account);
        assert_eq!(problems.len(), 4, "{problems:?}");
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

    #[test]
    fn percent_decoding_leaves_malformed_escapes_alone() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

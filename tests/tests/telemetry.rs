//! Trace-linked telemetry end to end: an OTLP/HTTP receiver on loopback
//! decodes what the exporter sends with the official protobuf types, and the
//! tests check that spans, log lines, EMF lines and the alert all carry the
//! same X-Ray-compatible trace id, and that spans follow the semantic
//! conventions (FaaS, AWS Lambda, messaging). The moto tests check
//! PutMetricData and the producer span and trace attributes of a real SNS
//! publish.
//!
//! What the OpenTelemetry SDK reads from the process environment itself (the
//! sampler, the exporter's endpoint and headers) is tested in child
//! processes of this binary, each started with exactly the variables it
//! tests: the tests of one binary share one environment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use vigil::model::{Finding, Severity, TraceIds};
use vigil::pipeline::Pipeline;
use vigil::render::{self, Alert};
use vigil::sinks::{AlertSink, Delivery, SinkError, SinkFuture};
use vigil::telemetry::{
    self, Capture, MetricsSink, Output, Telemetry, TelemetryConfig, TelemetryOptions, LOG_KEYS,
};
use vigil::{app, Config, Source};
use vigil_e2e::{drain, moto_endpoint, sdk, topic_with_queue, unique};

// ---------------------------------------------------------------------------
// A minimal OTLP/HTTP receiver: HTTP/1.1 with keep-alive, Content-Length
// bodies (what the exporter's hyper client sends), 200 with an empty body.

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

impl Receiver {
    async fn start() -> (String, Receiver) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver::default();
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, r).await;
                });
            }
        });
        (format!("http://{addr}"), receiver)
    }

    fn requests(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    /// Every span received, decoded.
    fn spans(&self) -> Vec<Span> {
        self.requests()
            .iter()
            .flat_map(|r| {
                ExportTraceServiceRequest::decode(r.body.as_slice())
                    .expect("an OTLP ExportTraceServiceRequest")
                    .resource_spans
            })
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }

    /// The resource attributes of every request.
    fn resources(&self) -> Vec<Vec<KeyValue>> {
        self.requests()
            .iter()
            .flat_map(|r| {
                ExportTraceServiceRequest::decode(r.body.as_slice())
                    .unwrap()
                    .resource_spans
            })
            .filter_map(|rs| rs.resource.map(|r| r.attributes))
            .collect()
    }
}

async fn serve(stream: TcpStream, received: Receiver) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await?;
        received.0.lock().unwrap().push(Received {
            path,
            headers,
            body,
        });
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
            .await?;
    }
}

// ---------------------------------------------------------------------------
// Helpers.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(&span.attributes, key) {
        Some(AnyValue::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found = by_name(spans, name);
    assert_eq!(
        found.len(),
        1,
        "exactly one {name:?} span in {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A GuardDuty finding event (High unless told otherwise).
fn gd_event(id: &str, severity: f64) -> Value {
    json!({
        "version": "0", "id": id, "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
        "account": "111122223333", "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "resources": [],
        "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
            "id": format!("finding-{id}"), "type": "UnauthorizedAccess:EC2/TorClient", "severity": severity,
            "title": "Tor client", "description": "An EC2 instance talks to Tor.",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1"}},
            "service": {"serviceName": "guardduty", "count": 1, "additionalInfo": {"sample": false}}}
    })
}

/// The ARN the test invocations are invoked by: through an alias.
const INVOKED_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:vigil-guardduty:live";

/// A Lambda invocation with the runtime's context.
fn lambda_event(
    payload: Value,
    request_id: &str,
    xray: Option<&str>,
) -> lambda_runtime::LambdaEvent<Value> {
    let mut ctx = lambda_runtime::Context::default();
    ctx.request_id = request_id.to_string();
    ctx.invoked_function_arn = INVOKED_ARN.into();
    ctx.xray_trace_id = xray.map(str::to_string);
    lambda_runtime::LambdaEvent::new(payload, ctx)
}

/// An X-Ray header as Lambda sets it, with a current timestamp.
fn xray_header(sampled: u8) -> (String, String, String) {
    let root = format!("1-{:08x}-{}", epoch_now(), "bd862e3fe1be46a994272793");
    let parent = "53995c3f42cd8ad8".to_string();
    (
        format!("Root={root};Parent={parent};Sampled={sampled};Lineage=a87bd80c:1|68fd508a:5"),
        root,
        parent,
    )
}

/// What an alert sink saw, including the trace headers SNS would carry.
#[derive(Debug, Clone)]
struct SeenAlert {
    finding: Finding,
    traceparent: Option<String>,
    aws_trace_header: Option<String>,
    email: String,
}

#[derive(Clone, Default)]
struct TraceSink {
    seen: Arc<Mutex<Vec<SeenAlert>>>,
    fail: bool,
}

impl AlertSink for TraceSink {
    fn name(&self) -> &'static str {
        "trace-capture"
    }

    fn send<'a>(&'a self, alert: &'a Alert<'a>) -> SinkFuture<'a> {
        self.seen.lock().unwrap().push(SeenAlert {
            finding: alert.finding.clone(),
            traceparent: alert.traceparent.clone(),
            aws_trace_header: alert.aws_trace_header.clone(),
            email: render::email_body(alert),
        });
        let fail = self.fail;
        Box::pin(async move {
            if fail {
                Err(SinkError::Transient {
                    sink: "trace-capture",
                    message: "down".into(),
                })
            } else {
                Ok(Delivery {
                    sink: "trace-capture",
                    message_id: None,
                })
            }
        })
    }
}

/// Telemetry with captured logs and EMF, configured by `env` as the process
/// environment would.
struct Setup {
    telemetry: Telemetry,
    dispatch: tracing::Dispatch,
    logs: Capture,
    emf: Capture,
}

fn setup(env: &[(&str, &str)], metrics: Option<Arc<dyn MetricsSink>>) -> Setup {
    let map: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (mut config, problems) = TelemetryConfig::from_lookup("guardduty", |k| map.get(k).cloned());
    assert!(problems.is_empty(), "{problems:?}");
    // The exporter reads its endpoint from the process environment, which
    // the tests of this binary share: each hands its own receiver's URL in
    // code instead (the exporter's programmatic endpoint, used as is).
    if let (Some(export), Some(base)) = (&mut config.export, map.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    {
        export.endpoint = Some(format!("{base}/v1/traces"));
    }
    let logs = Capture::new();
    let emf = Capture::new();
    let options = TelemetryOptions {
        logs: Output::Capture(logs.clone()),
        emf: Output::Capture(emf.clone()),
        ..TelemetryOptions::lambda("guardduty")
    };
    let (telemetry, dispatch) = Telemetry::build(config, options, metrics).unwrap();
    Setup {
        telemetry,
        dispatch,
        logs,
        emf,
    }
}

fn pipeline(telemetry: &Telemetry, sink: TraceSink, trace_url: Option<&str>) -> Pipeline {
    let config = Config {
        trace_url_template: trace_url.map(str::to_string),
        ..Config::default()
    };
    telemetry
        .instrument(Pipeline::builder(&config).sink(Box::new(sink)))
        .accept(&[Source::GuardDuty])
        .build()
}

// ---------------------------------------------------------------------------
// The EMF rules (CONVENTIONS.md "Metrics"), checked on every line.

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

fn validate_emf(line: &str) -> Result<(), String> {
    if line.len() >= 256 * 1024 {
        return Err(format!("line of {} bytes", line.len()));
    }
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let root = v.as_object().ok_or("not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    let ts = aws.get("Timestamp").ok_or("no Timestamp")?;
    let ts = ts.as_i64().ok_or("Timestamp is not an integer")?;
    let now_ms = (epoch_now() * 1000) as i64;
    if ts < now_ms - 14 * 24 * 3600 * 1000 || ts > now_ms + 2 * 3600 * 1000 {
        return Err(format!("Timestamp {ts} is not milliseconds near now"));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("no CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("empty CloudWatchMetrics".into());
    }
    for d in directives {
        let ns = d
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("no Namespace")?;
        if ns.is_empty() || ns.len() > 255 || !ns.is_ascii() {
            return Err(format!("bad Namespace {ns:?}"));
        }
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("no Dimensions array")?;
        for set in sets {
            let keys = set.as_array().ok_or("a dimension set is not an array")?;
            if keys.len() > 30 {
                return Err(format!("{} keys in a dimension set", keys.len()));
            }
            let mut seen = std::collections::HashSet::new();
            for k in keys {
                let k = k.as_str().ok_or("a dimension key is not a string")?;
                if !seen.insert(k) {
                    return Err(format!("dimension {k} twice in a set"));
                }
                let value = root
                    .get(k)
                    .ok_or(format!("dimension {k} is not a root member"))?
                    .as_str()
                    .ok_or(format!("dimension {k} is not a string"))?;
                if value.is_empty() || value.chars().count() > 1024 {
                    return Err(format!("dimension {k} value of bad length"));
                }
                if !value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
                    return Err(format!(
                        "dimension {k} value {value:?} is not printable ASCII"
                    ));
                }
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("no Metrics array")?;
        if metrics.is_empty() || metrics.len() > 100 {
            return Err(format!("{} metrics in a directive", metrics.len()));
        }
        for m in metrics {
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("metric without Name")?;
            if name.is_empty() || name.len() > 255 {
                return Err(format!("bad metric name {name:?}"));
            }
            if let Some(unit) = m.get("Unit") {
                let unit = unit.as_str().ok_or("Unit is not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("unknown unit {unit}"));
                }
            }
            if let Some(sr) = m.get("StorageResolution") {
                if sr != 1 && sr != 60 {
                    return Err(format!("StorageResolution {sr}"));
                }
            }
            let value = root
                .get(name)
                .ok_or(format!("metric {name} is not a root member"))?;
            let values: Vec<&Value> = match value {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            if values.is_empty() || values.len() > 100 {
                return Err(format!("metric {name} has {} values", values.len()));
            }
            for x in values {
                let x = x
                    .as_f64()
                    .ok_or(format!("metric {name} value is not a number"))?;
                if !x.is_finite() {
                    return Err(format!("metric {name} is not finite"));
                }
            }
        }
    }
    Ok(())
}

/// The EMF lines, each validated, with the metric names each defines.
fn emf_lines(capture: &Capture) -> Vec<(Value, Vec<String>)> {
    capture
        .lines()
        .iter()
        .map(|l| {
            if let Err(e) = validate_emf(l) {
                panic!("invalid EMF line ({e}): {l}");
            }
            let v: Value = serde_json::from_str(l).unwrap();
            let names = v["_aws"]["CloudWatchMetrics"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|d| d["Metrics"].as_array().unwrap().iter())
                .map(|m| m["Name"].as_str().unwrap().to_string())
                .collect();
            (v, names)
        })
        .collect()
}

#[test]
fn the_emf_validator_rejects_what_cloudwatch_rejects() {
    let now = epoch_now() * 1000;
    let ok = json!({"_aws": {"Timestamp": now, "CloudWatchMetrics": [{"Namespace": "Vigil",
        "Dimensions": [["Service"]], "Metrics": [{"Name": "Errors", "Unit": "Count"}]}]},
        "Service": "gd", "Errors": 0});
    assert_eq!(validate_emf(&ok.to_string()), Ok(()));
    let mut bad = Vec::new();
    let mut v = ok.clone();
    v["_aws"].as_object_mut().unwrap().remove("Timestamp");
    bad.push(v);
    let mut v = ok.clone();
    v["_aws"]["Timestamp"] = json!(now / 1000); // seconds, not ms
    bad.push(v);
    let mut v = ok.clone();
    v.as_object_mut().unwrap().remove("Service");
    bad.push(v);
    let mut v = ok.clone();
    v["Service"] = json!(3);
    bad.push(v);
    let mut v = ok.clone();
    v["Errors"] = json!("zero");
    bad.push(v);
    let mut v = ok.clone();
    v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Apples");
    bad.push(v);
    let mut v = ok.clone();
    v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
        json!([(0..31).map(|i| format!("D{i}")).collect::<Vec<_>>()]);
    bad.push(v);
    let mut v = ok.clone();
    v["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!((0..101)
        .map(|i| json!({"Name": format!("M{i}")}))
        .collect::<Vec<_>>());
    bad.push(v);
    let mut v = ok.clone();
    v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"] = json!(5);
    bad.push(v);
    for b in bad {
        assert!(validate_emf(&b.to_string()).is_err(), "accepted {b}");
    }
    let huge =
        json!({"_aws": ok["_aws"], "Service": "gd", "Errors": 0, "pad": "x".repeat(300_000)});
    assert!(validate_emf(&huge.to_string()).is_err());
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn spans_logs_metrics_and_the_alert_share_the_lambda_trace() {
    let (url, receiver) = Receiver::start().await;
    let s = setup(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_SERVICE_NAME", "vigil-guardduty"),
            ("AWS_LAMBDA_FUNCTION_NAME", "vigil-GuardDuty-Fn"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[7]0123abcd"),
            ("AWS_REGION", "us-east-1"),
        ],
        None,
    );
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let sink = TraceSink::default();
    let p = pipeline(
        &s.telemetry,
        sink.clone(),
        Some("https://ui.honeycomb.io/vigil/environments/prod/trace?trace_id={trace_id}"),
    );
    let (header, root, parent) = xray_header(0);
    let event_id = unique("evt");
    let out = app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(gd_event(&event_id, 8.0), "req-1", Some(&header)),
    )
    .await
    .unwrap();
    assert_eq!(out["alerts"], 1);

    // The trace is the Lambda's X-Ray trace, whatever its Sampled flag said.
    let trace_hex = root.strip_prefix("1-").unwrap().replace('-', "");
    assert_eq!(trace_hex.len(), 32);

    // What the exporter sent: OTLP/HTTP protobuf to /v1/traces.
    let requests = receiver.requests();
    assert!(!requests.is_empty(), "nothing exported");
    for r in &requests {
        assert_eq!(r.path, "/v1/traces");
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/x-protobuf")
        );
    }
    // The resource, as the AWS Lambda resource detector and the FaaS
    // resource conventions describe it.
    let resources = receiver.resources();
    assert!(!resources.is_empty());
    for attrs in &resources {
        let s = |k: &str| match attr(attrs, k) {
            Some(AnyValue::StringValue(s)) => Some(s.as_str()),
            _ => None,
        };
        assert_eq!(s("service.name"), Some("vigil-guardduty"));
        assert_eq!(s("cloud.provider"), Some("aws"));
        assert_eq!(s("cloud.platform"), Some("aws_lambda"));
        assert_eq!(s("cloud.region"), Some("us-east-1"));
        assert_eq!(s("faas.name"), Some("vigil-GuardDuty-Fn"));
        assert_eq!(s("faas.version"), Some("7"));
        assert_eq!(s("faas.instance"), Some("2026/01/01/[7]0123abcd"));
        assert!(matches!(
            attr(attrs, "faas.max_memory"),
            Some(AnyValue::IntValue(268_435_456))
        ));
    }

    let spans = receiver.spans();
    for sp in &spans {
        assert_eq!(hex(&sp.trace_id), trace_hex, "{} in another trace", sp.name);
    }
    let ids: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    let parent_name = |s: &Span| ids.get(&hex(&s.parent_span_id)).map(|p| p.name.clone());

    // The invocation: a SERVER span (the AWS Lambda conventions' kind for
    // every trigger but SQS), child of the Lambda's X-Ray segment, with the
    // FaaS and cloud attributes.
    let inv = one(&spans, "vigil-GuardDuty-Fn");
    assert_eq!(hex(&inv.parent_span_id), parent);
    assert_eq!(inv.kind, SpanKind::Server as i32);
    assert_eq!(attr_str(inv, "aws.lambda.invoked_arn"), Some(INVOKED_ARN));
    // The function ARN with the version that runs, not the alias invoked.
    assert_eq!(
        attr_str(inv, "cloud.resource_id"),
        Some("arn:aws:lambda:us-east-1:123456789012:function:vigil-guardduty:7")
    );
    assert_eq!(attr_str(inv, "vigil.xray_trace_id"), Some(root.as_str()));
    assert_eq!(attr_str(inv, "faas.invocation_id"), Some("req-1"));
    assert_eq!(attr_str(inv, "faas.name"), Some("vigil-GuardDuty-Fn"));
    assert_eq!(attr_str(inv, "faas.trigger"), Some("pubsub"));
    assert!(matches!(
        attr(&inv.attributes, "faas.coldstart"),
        Some(AnyValue::BoolValue(true))
    ));
    assert_eq!(attr_str(inv, "cloud.provider"), Some("aws"));
    assert_eq!(attr_str(inv, "cloud.region"), Some("us-east-1"));
    assert_eq!(attr_str(inv, "cloud.account.id"), Some("123456789012"));
    assert_eq!(
        attr_str(inv, "vigil.correlation_id"),
        Some(event_id.as_str())
    );
    assert_ne!(
        inv.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );

    // One event span under it, a span per stage under that.
    let ev = one(&spans, "vigil.event");
    assert_eq!(parent_name(ev).as_deref(), Some("vigil-GuardDuty-Fn"));
    assert_eq!(attr_str(ev, "vigil.source"), Some("GuardDuty"));
    assert_eq!(attr_str(ev, "vigil.event_id"), Some(event_id.as_str()));
    assert_eq!(
        attr_str(ev, "vigil.finding_id"),
        Some(format!("finding-{event_id}").as_str())
    );
    assert_eq!(
        attr_str(ev, "vigil.finding_type"),
        Some("UnauthorizedAccess:EC2/TorClient")
    );
    assert_eq!(attr_str(ev, "vigil.severity"), Some("HIGH"));
    assert_eq!(attr_str(ev, "vigil.account"), Some("111122223333"));
    for stage in ["parse", "enrich", "dedup", "alert", "metrics"] {
        let st = one(&spans, stage);
        assert_eq!(parent_name(st).as_deref(), Some("vigil.event"), "{stage}");
        assert!(
            st.start_time_unix_nano >= ev.start_time_unix_nano,
            "{stage}"
        );
        assert!(st.end_time_unix_nano <= ev.end_time_unix_nano, "{stage}");
    }
    assert_eq!(
        attr_str(one(&spans, "enrich"), "vigil.severity"),
        Some("HIGH")
    );
    assert!(
        ev.start_time_unix_nano >= inv.start_time_unix_nano
            && ev.end_time_unix_nano <= inv.end_time_unix_nano
    );

    // The alert carries the same trace: ids, link, and the headers for SNS.
    let seen = sink.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let a = &seen[0];
    assert_eq!(
        a.finding.trace,
        Some(TraceIds {
            trace_id: trace_hex.clone(),
            xray_trace_id: root.clone()
        })
    );
    let link =
        format!("https://ui.honeycomb.io/vigil/environments/prod/trace?trace_id={trace_hex}");
    assert_eq!(a.finding.links.trace.as_deref(), Some(link.as_str()));
    assert!(
        a.email.contains(&link) && a.email.contains(&trace_hex) && a.email.contains(&root),
        "{}",
        a.email
    );
    let tp = a.traceparent.as_deref().unwrap();
    assert!(
        tp.starts_with(&format!("00-{trace_hex}-")) && tp.ends_with("-01"),
        "{tp}"
    );
    let tp_span = &tp[36..52];
    assert_eq!(
        ids.get(tp_span).map(|s| s.name.as_str()),
        Some("vigil.event")
    );
    assert_eq!(
        a.aws_trace_header.as_deref(),
        Some(format!("Root={root};Parent={tp_span};Sampled=1").as_str())
    );

    // Log lines: every key, and the finding line in the same trace. Inside
    // the invocation: the Powertools context keys and the sampled flag.
    let logs = s.logs.json();
    assert!(!logs.is_empty());
    for l in &logs {
        for k in LOG_KEYS {
            assert!(l.get(k).is_some(), "{k} missing from {l}");
        }
        assert_eq!(l["service"], "vigil-guardduty");
        assert_eq!(l["function_name"], "vigil-GuardDuty-Fn");
        assert_eq!(l["function_memory_size"], 256, "{l}");
        let ts = l["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
            "{ts}"
        );
        if l["function_request_id"] == "req-1" {
            assert_eq!(l["function_arn"], INVOKED_ARN, "{l}");
            assert_eq!(l["trace_flags"], "01", "{l}");
            assert_eq!(l["xray_trace_id"], root.as_str(), "{l}");
        }
    }
    let finding_line = logs
        .iter()
        .find(|l| l["finding_id"] == format!("finding-{event_id}"))
        .expect("a finding summary line");
    assert_eq!(finding_line["level"], "INFO");
    assert_eq!(finding_line["trace_id"], trace_hex.as_str());
    assert_eq!(finding_line["xray_trace_id"], root.as_str());
    assert_eq!(finding_line["function_request_id"], "req-1");
    assert_eq!(finding_line["correlation_id"], event_id.as_str());
    assert_eq!(finding_line["cold_start"], true);
    assert_eq!(finding_line["severity"], "HIGH");
    assert_eq!(finding_line["decision"], "alerted");
    assert_eq!(finding_line["account"], "111122223333");
    let span_id = finding_line["span_id"].as_str().unwrap();
    assert_eq!(
        ids.get(span_id).map(|s| s.name.as_str()),
        Some("vigil.event")
    );

    // EMF: every line valid, in the same trace, the expected metrics.
    let emf = emf_lines(&s.emf);
    let all: Vec<String> = emf.iter().flat_map(|(_, n)| n.clone()).collect();
    for m in [
        "ColdStart",
        "Findings",
        "FindingsByType",
        "FindingsByAccount",
        "AlertsSent",
        "ProcessingLatency",
        "Errors",
    ] {
        assert!(all.iter().any(|n| n == m), "{m} not in {all:?}");
    }
    for (v, _) in &emf {
        assert_eq!(v["trace_id"], trace_hex.as_str(), "{v}");
        assert_eq!(v["xray_trace_id"], root.as_str(), "{v}");
    }
    let (findings, _) = emf
        .iter()
        .find(|(_, n)| n.iter().any(|x| x == "Findings"))
        .unwrap();
    assert_eq!(findings["Severity"], "HIGH");
    assert_eq!(findings["Source"], "GuardDuty");
    assert_eq!(findings["Type"], "UnauthorizedAccess:EC2/TorClient");
    assert_eq!(findings["Account"], "111122223333");
    assert_eq!(findings["Findings"], 1.0);
    let (event, _) = emf
        .iter()
        .find(|(_, n)| n.iter().any(|x| x == "ProcessingLatency"))
        .unwrap();
    assert_eq!(event["Errors"], 0.0);
    assert!(event["ProcessingLatency"].as_f64().unwrap() >= 0.0);
    // ColdStart as Powertools' single metric: a line of its own, one
    // dimension set [function_name, service].
    let cold: Vec<_> = emf
        .iter()
        .filter(|(_, n)| n.iter().any(|x| x == "ColdStart"))
        .collect();
    assert_eq!(cold.len(), 1);
    let (cold, names) = cold[0];
    assert_eq!(names, &["ColdStart"]);
    let directive = &cold["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(
        directive["Dimensions"],
        json!([["function_name", "service"]])
    );
    assert_eq!(
        directive["Metrics"],
        json!([{"Name": "ColdStart", "Unit": "Count"}])
    );
    assert_eq!(cold["function_name"], "vigil-GuardDuty-Fn");
    assert_eq!(cold["service"], "vigil-guardduty");
    assert_eq!(cold["ColdStart"], 1.0);

    // A second invocation: not a cold start, a new trace from its own header.
    s.emf.take();
    let (header2, root2, _) = xray_header(1);
    let root2 = root2.replace("bd862e3fe1be46a994272793", "aaaaaaaaaaaaaaaaaaaaaaaa");
    let header2 = header2.replace("bd862e3fe1be46a994272793", "aaaaaaaaaaaaaaaaaaaaaaaa");
    app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(gd_event(&unique("evt"), 8.0), "req-2", Some(&header2)),
    )
    .await
    .unwrap();
    let emf = emf_lines(&s.emf);
    assert!(
        emf.iter().all(|(_, n)| !n.iter().any(|x| x == "ColdStart")),
        "ColdStart twice"
    );
    let spans = receiver.spans();
    let inv2: Vec<_> = by_name(&spans, "vigil-GuardDuty-Fn")
        .into_iter()
        .filter(|s| attr_str(s, "faas.invocation_id") == Some("req-2"))
        .collect();
    assert_eq!(inv2.len(), 1);
    assert!(matches!(
        attr(&inv2[0].attributes, "faas.coldstart"),
        Some(AnyValue::BoolValue(false))
    ));
    let t2 = hex(&inv2[0].trace_id);
    assert_eq!(format!("1-{}-{}", &t2[..8], &t2[8..]), root2);
}

#[tokio::test]
async fn without_an_xray_context_trace_ids_are_new_and_xray_compatible() {
    let (url, receiver) = Receiver::start().await;
    let s = setup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)], None);
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let sink = TraceSink::default();
    let p = pipeline(&s.telemetry, sink.clone(), None);
    let before = epoch_now();
    app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(gd_event(&unique("evt"), 8.0), "req-x", None),
    )
    .await
    .unwrap();
    let after = epoch_now();

    let spans = receiver.spans();
    let inv = one(&spans, "guardduty");
    assert!(inv.parent_span_id.is_empty(), "a root span");
    let trace = hex(&inv.trace_id);
    let secs = u64::from_str_radix(&trace[..8], 16).unwrap();
    assert!(
        before <= secs && secs <= after,
        "first 8 hex digits {secs} are not epoch seconds in [{before}, {after}]"
    );
    assert!(spans.iter().all(|s| hex(&s.trace_id) == trace));
    let xray = sink.seen.lock().unwrap()[0]
        .finding
        .trace
        .clone()
        .unwrap()
        .xray_trace_id;
    assert_eq!(xray, format!("1-{}-{}", &trace[..8], &trace[8..]));
    // `xray_trace_id` is the invocation's own X-Ray root, as Powertools logs
    // it: without `_X_AMZN_TRACE_ID` there is none.
    let logs = s.logs.json();
    assert!(logs.iter().any(|l| l["trace_id"] == trace.as_str()));
    assert!(
        logs.iter().all(|l| l["xray_trace_id"].is_null()),
        "{logs:?}"
    );
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_ids_still_flow() {
    let s = setup(&[], None);
    assert!(!s.telemetry.exporting());
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let sink = TraceSink::default();
    let p = pipeline(&s.telemetry, sink.clone(), None);
    let (header, root, _) = xray_header(1);
    let out = app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(gd_event(&unique("evt"), 8.0), "req-n", Some(&header)),
    )
    .await
    .unwrap();
    assert_eq!(out["alerts"], 1);
    let seen = sink.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0]
            .finding
            .trace
            .as_ref()
            .map(|t| t.xray_trace_id.as_str()),
        Some(root.as_str())
    );
    let trace_hex = root.strip_prefix("1-").unwrap().replace('-', "");
    let finding_line = s
        .logs
        .json()
        .into_iter()
        .find(|l| l.get("finding_id").is_some())
        .expect("a finding line");
    assert_eq!(finding_line["xray_trace_id"], root.as_str());
    assert_eq!(finding_line["trace_id"], trace_hex.as_str());
    // Not recorded, and the line says so.
    assert_eq!(finding_line["trace_flags"], "00");
    assert!(
        s.logs
            .json()
            .iter()
            .all(|l| l["level"] != "WARN" && l["level"] != "ERROR"),
        "{:?}",
        s.logs.lines()
    );
    assert!(!emf_lines(&s.emf).is_empty());
}

#[tokio::test]
async fn an_unreachable_endpoint_does_not_stop_the_alert() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = setup(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{closed}")),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
        ],
        None,
    );
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let sink = TraceSink::default();
    let p = pipeline(&s.telemetry, sink.clone(), None);
    let out = app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(gd_event(&unique("evt"), 8.0), "req-u", None),
    )
    .await
    .expect("the invocation succeeds although export fails");
    assert_eq!(out["alerts"], 1);
    assert_eq!(sink.seen.lock().unwrap().len(), 1, "the alert went out");
    let warned = s
        .logs
        .json()
        .into_iter()
        .find(|l| l["message"] == "trace export failed")
        .expect("the export failure is logged");
    assert_eq!(warned["level"], "WARN");
    // And the next flush has nothing left over from the failed one.
    assert_eq!(s.telemetry.flush().await.spans, 0);
}

#[tokio::test]
async fn failures_mark_spans_and_count_errors() {
    let (url, receiver) = Receiver::start().await;
    let s = setup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)], None);
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let sink = TraceSink {
        fail: true,
        ..TraceSink::default()
    };
    let p = pipeline(&s.telemetry, sink, None);
    let err = app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(gd_event(&unique("evt"), 8.0), "req-f", None),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not delivered"), "{err}");

    let spans = receiver.spans();
    for name in ["vigil.event", "guardduty"] {
        let sp = one(&spans, name);
        let status = sp.status.as_ref().expect("a status");
        assert_eq!(status.code, StatusCode::Error as i32, "{name}");
        assert!(
            sp.events.iter().any(|e| e.name == "exception"
                && matches!(attr(&e.attributes, "exception.message"), Some(AnyValue::StringValue(m)) if m.contains("not delivered"))),
            "{name} has no exception event: {:?}",
            sp.events
        );
    }
    assert_eq!(
        one(&spans, "alert").status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );

    let emf = emf_lines(&s.emf);
    let failed = emf
        .iter()
        .find(|(_, n)| n.iter().any(|x| x == "AlertsFailed"))
        .expect("AlertsFailed");
    assert_eq!(failed.0["AlertsFailed"], 1.0);
    let event = emf
        .iter()
        .find(|(_, n)| n.iter().any(|x| x == "Errors"))
        .unwrap();
    assert_eq!(event.0["Errors"], 1.0);
    assert_eq!(event.0["error_kind"], "delivery");

    // A malformed event: an error, no findings, still counted.
    s.emf.take();
    let err = app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(json!({"hello": "world"}), "req-g", None),
    )
    .await;
    assert!(err.is_err());
    let emf = emf_lines(&s.emf);
    assert_eq!(emf.len(), 1, "one event line, no finding lines");
    assert_eq!(emf[0].0["Errors"], 1.0);
    assert_eq!(emf[0].0["error_kind"], "bad_input");
    let logged = s
        .logs
        .json()
        .into_iter()
        .find(|l| l["function_request_id"] == "req-g" && l["level"] == "ERROR");
    assert!(
        logged.is_some(),
        "the failure is logged with the request id"
    );
}

#[tokio::test]
async fn a_subscriber_of_the_alert_continues_its_trace() {
    let (url, receiver) = Receiver::start().await;
    let s = setup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)], None);
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let sink = TraceSink::default();
    let p = pipeline(&s.telemetry, sink.clone(), None);
    app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(gd_event(&unique("evt"), 8.0), "req-1", None),
    )
    .await
    .unwrap();
    let alert = sink.seen.lock().unwrap()[0].clone();

    // The notifier's side: SNS message attributes in, the same trace out,
    // with its own Lambda X-Ray context beside.
    let (own_header, own_root, _) = xray_header(1);
    let own_header = own_header.replace("bd862e3fe1be46a994272793", "cccccccccccccccccccccccc");
    let own_root = own_root.replace("bd862e3fe1be46a994272793", "cccccccccccccccccccccccc");
    for (key, value) in [
        ("traceparent", alert.traceparent.clone().unwrap()),
        ("AWSTraceHeader", alert.aws_trace_header.clone().unwrap()),
    ] {
        let attrs: HashMap<&str, String> = HashMap::from([(key, value)]);
        let parent =
            telemetry::xray::parent_from_carrier(|k| attrs.get(k).map(String::as_str)).unwrap();
        let info = telemetry::InvocationInfo {
            request_id: format!("notifier-{key}"),
            function_name: Some("vigil-notifier".into()),
            xray_trace_id: Some(own_header.clone()),
            ..telemetry::InvocationInfo::default()
        };
        let result: Result<(), String> = s
            .telemetry
            .invocation(info)
            .continue_trace(parent)
            .run(async {
                let _post = tracing::info_span!("slack.post").entered();
                tracing::info!("posted");
                Ok(())
            })
            .await;
        assert!(result.is_ok());
    }
    // Its lines: the alert's trace, but the notifier's own X-Ray root.
    let alert_trace = alert.finding.trace.clone().unwrap();
    let posted: Vec<Value> = s
        .logs
        .json()
        .into_iter()
        .filter(|l| l["message"] == "posted")
        .collect();
    assert_eq!(posted.len(), 2);
    for l in &posted {
        assert_eq!(l["trace_id"], alert_trace.trace_id.as_str(), "{l}");
        assert_eq!(l["xray_trace_id"], own_root.as_str(), "{l}");
    }
    let spans = receiver.spans();
    let event = one(&spans, "vigil.event");
    let notifier = by_name(&spans, "vigil-notifier");
    assert_eq!(notifier.len(), 2);
    for n in notifier {
        assert_eq!(n.trace_id, event.trace_id, "same trace");
        assert_eq!(
            n.parent_span_id, event.span_id,
            "child of the span that sent the alert"
        );
    }
}

// ---------------------------------------------------------------------------
// moto: PutMetricData and the SNS publish.

#[tokio::test]
async fn putmetricdata_at_the_end_of_each_invocation_lands_in_cloudwatch() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let namespace = unique("VigilTest");
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let sink: Arc<dyn MetricsSink> =
        Arc::new(telemetry::CloudWatchSink::new(cw.clone(), &namespace));
    let s = setup(&[("OTEL_SERVICE_NAME", "vigil-cw-test")], Some(sink));
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let p = pipeline(&s.telemetry, TraceSink::default(), None);
    for (i, sev) in [8.0, 8.5, 2.0].into_iter().enumerate() {
        app::handle_invocation(
            &s.telemetry,
            &p,
            lambda_event(gd_event(&unique("evt"), sev), &format!("req-{i}"), None),
        )
        .await
        .unwrap();
    }
    assert!(s.emf.lines().is_empty(), "no EMF with PutMetricData");
    assert!(
        s.logs
            .json()
            .iter()
            .all(|l| l["message"] != "metrics flush failed"),
        "{:?}",
        s.logs.lines()
    );

    let listed = cw
        .list_metrics()
        .namespace(&namespace)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    for m in [
        "Findings",
        "FindingsByType",
        "FindingsByAccount",
        "AlertsSent",
        "AlertsSuppressed",
        "ProcessingLatency",
        "Errors",
        "ColdStart",
    ] {
        assert!(names.contains(&m), "{m} not in {names:?}");
    }
    let stat = |metric: &'static str, dims: Vec<(&'static str, &'static str)>| {
        let cw = cw.clone();
        let namespace = namespace.clone();
        async move {
            let now = aws_sdk_cloudwatch::primitives::DateTime::from_secs(epoch_now() as i64);
            let start =
                aws_sdk_cloudwatch::primitives::DateTime::from_secs(epoch_now() as i64 - 3600);
            let mut req = cw
                .get_metric_statistics()
                .namespace(namespace)
                .metric_name(metric)
                .start_time(start)
                .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    now.secs() + 3600,
                ))
                .period(60)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
                .statistics(aws_sdk_cloudwatch::types::Statistic::SampleCount);
            for (k, v) in dims {
                req = req.dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name(k)
                        .value(v)
                        .build(),
                );
            }
            let out = req.send().await.unwrap();
            let sum: f64 = out.datapoints().iter().filter_map(|d| d.sum()).sum();
            let count: f64 = out
                .datapoints()
                .iter()
                .filter_map(|d| d.sample_count())
                .sum();
            (sum, count)
        }
    };
    assert_eq!(
        stat(
            "Findings",
            vec![("Severity", "HIGH"), ("Source", "GuardDuty")]
        )
        .await
        .0,
        2.0
    );
    assert_eq!(
        stat(
            "Findings",
            vec![("Severity", "LOW"), ("Source", "GuardDuty")]
        )
        .await
        .0,
        1.0
    );
    assert_eq!(
        stat("AlertsSent", vec![("Service", "vigil-cw-test")])
            .await
            .0,
        2.0
    );
    assert_eq!(
        stat("AlertsSuppressed", vec![("Service", "vigil-cw-test")])
            .await
            .0,
        1.0
    );
    assert_eq!(
        stat(
            "ColdStart",
            vec![
                ("function_name", "vigil-cw-test"),
                ("service", "vigil-cw-test")
            ]
        )
        .await
        .0,
        1.0
    );
    assert_eq!(
        stat("ProcessingLatency", vec![("Service", "vigil-cw-test")])
            .await
            .1,
        3.0
    );
}

#[tokio::test]
async fn the_sns_alert_carries_the_trace_to_its_subscribers() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("telemetry")).await.unwrap();
    let (url, receiver) = Receiver::start().await;
    let s = setup(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)], None);
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let config = Config {
        topic_arn: Some(topic_arn.clone()),
        min_severity: Severity::Medium,
        trace_url_template: Some("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#xray:traces/{xray_trace_id}".into()),
        ..Config::default()
    };
    let p = s
        .telemetry
        .instrument(app::pipeline_builder(
            &config,
            &Default::default(),
            Some(&sdk),
        ))
        .accept(&[Source::GuardDuty])
        .build();
    let (header, root, _) = xray_header(1);
    app::handle_invocation(
        &s.telemetry,
        &p,
        lambda_event(gd_event(&unique("evt"), 8.0), "req-sns", Some(&header)),
    )
    .await
    .unwrap();

    let messages = drain(&sdk, &queue_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    let n = &messages[0];
    let trace_hex = root.strip_prefix("1-").unwrap().replace('-', "");
    let attrs = &n["MessageAttributes"];
    let tp = attrs["traceparent"]["Value"]
        .as_str()
        .expect("traceparent attribute");
    assert!(tp.starts_with(&format!("00-{trace_hex}-")), "{tp}");
    let h = attrs["AWSTraceHeader"]["Value"]
        .as_str()
        .expect("AWSTraceHeader attribute");
    assert!(
        h.starts_with(&format!("Root={root};Parent=")) && h.ends_with(";Sampled=1"),
        "{h}"
    );

    let ocsf: Value = serde_json::from_str(n["Message"].as_str().unwrap()).unwrap();
    assert_eq!(ocsf["unmapped"]["trace_id"], trace_hex.as_str());
    assert_eq!(ocsf["unmapped"]["xray_trace_id"], root.as_str());
    let link = format!("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#xray:traces/{root}");
    assert_eq!(ocsf["unmapped"]["trace_url"], link.as_str());

    // The publish: a PRODUCER span inside the exported alert span of that
    // trace, as the messaging and AWS SNS conventions describe a send.
    let spans = receiver.spans();
    let alert = one(&spans, "alert");
    assert_eq!(hex(&alert.trace_id), trace_hex);
    let topic_name = topic_arn.rsplit(':').next().unwrap();
    let send = one(&spans, &format!("send {topic_name}"));
    assert_eq!(send.kind, SpanKind::Producer as i32);
    assert_eq!(send.parent_span_id, alert.span_id);
    assert_eq!(attr_str(send, "messaging.system"), Some("aws.sns"));
    assert_eq!(attr_str(send, "messaging.operation.type"), Some("send"));
    assert_eq!(attr_str(send, "messaging.operation.name"), Some("send"));
    assert_eq!(
        attr_str(send, "messaging.destination.name"),
        Some(topic_name)
    );
    assert_eq!(
        attr_str(send, "aws.sns.topic.arn"),
        Some(topic_arn.as_str())
    );
    assert_eq!(
        attr_str(send, "messaging.message.id"),
        n["MessageId"].as_str(),
        "the id SNS gave the message"
    );
    assert!(attr_str(send, "aws.request_id").is_some_and(|id| !id.is_empty()));
    assert_ne!(
        send.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    // The send span is the message's creation context: the subscriber links
    // (or is parented) to it.
    let send_id = hex(&send.span_id);
    assert_eq!(tp, format!("00-{trace_hex}-{send_id}-01"));
    assert_eq!(h, format!("Root={root};Parent={send_id};Sampled=1"));
}

// ---------------------------------------------------------------------------
// The SQS-triggered function (`cloudtrail-logs`): the semantic conventions'
// "Instrumenting AWS Lambda", section SQS.

/// Log files from memory, by key.
struct MemoryFiles(HashMap<String, Vec<u8>>);

impl vigil::logfiles::LogFiles for MemoryFiles {
    async fn open(
        &self,
        object: &vigil::sources::s3_notifications::ObjectRef,
    ) -> Result<vigil::sources::log_file::EventStream, vigil::logfiles::LogFileError> {
        let bytes = self.0.get(&object.key).cloned().unwrap_or_default();
        Ok(vigil::sources::log_file::EventStream::from_async(
            std::io::Cursor::new(bytes),
        ))
    }
}

/// A message of the function's queue as the event source mapping delivers
/// it: an S3 notification naming `key`, the producer's X-Ray header (when
/// any) in the `AWSTraceHeader` system attribute.
fn sqs_record(id: &str, queue_arn: &str, key: &str, trace_header: Option<&str>) -> Value {
    let body = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "org-trail"}, "object": {"key": key, "size": 100}}}]});
    let mut attributes = json!({"ApproximateReceiveCount": "1", "SentTimestamp": "1714557600000",
        "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1714557600001"});
    if let Some(h) = trace_header {
        attributes["AWSTraceHeader"] = json!(h);
    }
    json!({"messageId": id, "receiptHandle": "rh", "body": body.to_string(),
        "attributes": attributes, "messageAttributes": {}, "md5OfBody": "x",
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"})
}

fn links_of(span: &Span) -> Vec<(String, String)> {
    span.links
        .iter()
        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
        .collect()
}

#[tokio::test]
async fn an_sqs_batch_is_a_consumer_span_with_a_process_span_per_message() {
    let (url, receiver) = Receiver::start().await;
    let s = setup(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("AWS_LAMBDA_FUNCTION_NAME", "vigil-CloudTrailLogs-Fn"),
            ("AWS_REGION", "us-east-1"),
        ],
        None,
    );
    let _guard = tracing::dispatcher::set_default(&s.dispatch);
    let rules = vigil::detect::RuleSet::bundled().unwrap();
    let p = s
        .telemetry
        .instrument(Pipeline::builder(&Config::default()).sink(Box::new(TraceSink::default())))
        .accept(&[Source::CloudTrail])
        .detector(Arc::new(rules))
        .build();
    let stop_logging = json!({"eventVersion": "1.09", "eventTime": "2026-03-03T14:21:07Z",
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
        "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice",
            "accountId": "111122223333", "userName": "alice"},
        "eventID": unique("evt"), "eventType": "AwsApiCall", "recipientAccountId": "111122223333"});
    let file = json!({"Records": [stop_logging]}).to_string().into_bytes();
    let files = MemoryFiles(HashMap::from([
        ("a.json".to_string(), file.clone()),
        ("b.json".to_string(), file.clone()),
        ("c.json".to_string(), file),
    ]));

    // Two producers in traces of their own; a third message without one,
    // whose sender wrote an AWSTraceHeader *message* attribute (ignored:
    // only the system attribute carries the producer).
    let queue_arn = "arn:aws:sqs:us-east-1:111122223333:vigil-logfiles";
    let producer = |t: &str, p: &str| {
        (
            format!("Root=1-{:08x}-{t};Parent={p};Sampled=1", epoch_now()),
            format!("{:08x}{t}", epoch_now()),
            p.to_string(),
        )
    };
    let p1 = producer("111111111111111111111111", "1111111111111111");
    let p2 = producer("222222222222222222222222", "2222222222222222");
    let mut spoofed = sqs_record("m3", queue_arn, "c.json", None);
    spoofed["messageAttributes"] = json!({"AWSTraceHeader": {"stringValue": p1.0,
        "dataType": "String", "stringListValues": [], "binaryListValues": []}});
    let event = json!({"Records": [
        sqs_record("m1", queue_arn, "a.json", Some(&p1.0)),
        sqs_record("m2", queue_arn, "b.json", Some(&p2.0)),
        spoofed,
    ]});
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(event).unwrap();
    let (header, _root, lambda_parent) = xray_header(1);
    let mut ctx = lambda_runtime::Context::default();
    ctx.request_id = "req-sqs".into();
    ctx.invoked_function_arn =
        "arn:aws:lambda:us-east-1:123456789012:function:vigil-CloudTrailLogs-Fn".into();
    ctx.xray_trace_id = Some(header);
    let response = vigil::logfiles::handle_invocation(
        &s.telemetry,
        &p,
        &files,
        lambda_runtime::LambdaEvent::new(event, ctx),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());

    let spans = receiver.spans();
    let process = by_name(&spans, "process vigil-logfiles");
    assert_eq!(process.len(), 4, "the batch's span and one per message");
    let messaging = |sp: &Span| {
        assert_eq!(sp.kind, SpanKind::Consumer as i32, "{}", sp.name);
        assert_eq!(attr_str(sp, "faas.trigger"), Some("pubsub"));
        assert_eq!(attr_str(sp, "messaging.system"), Some("aws_sqs"));
        assert_eq!(attr_str(sp, "messaging.operation.type"), Some("process"));
        assert_eq!(attr_str(sp, "messaging.operation.name"), Some("process"));
        assert_eq!(
            attr_str(sp, "messaging.destination.name"),
            Some("vigil-logfiles")
        );
    };

    // The invocation is the SQS event's span: child of the Lambda's X-Ray
    // segment, linked to every message's producer.
    let (batch, messages): (Vec<&Span>, Vec<&Span>) = process
        .into_iter()
        .partition(|sp| attr_str(sp, "faas.invocation_id").is_some());
    let [batch] = batch.as_slice() else {
        panic!("one batch span: {batch:?}")
    };
    messaging(batch);
    assert_eq!(hex(&batch.parent_span_id), lambda_parent);
    assert_eq!(attr_str(batch, "faas.invocation_id"), Some("req-sqs"));
    assert!(
        matches!(
            attr(&batch.attributes, "messaging.batch.message_count"),
            Some(AnyValue::IntValue(3))
        ),
        "{:?}",
        batch.attributes
    );
    let producers = vec![(p1.1.clone(), p1.2.clone()), (p2.1.clone(), p2.2.clone())];
    assert_eq!(links_of(batch), producers);

    // A span per message under it, each linked to its own producer.
    let mut messages = messages;
    messages.sort_by_key(|sp| attr_str(sp, "messaging.message.id").map(str::to_string));
    let ids: Vec<Option<&str>> = messages
        .iter()
        .map(|sp| attr_str(sp, "messaging.message.id"))
        .collect();
    assert_eq!(ids, [Some("m1"), Some("m2"), Some("m3")]);
    for (i, m) in messages.iter().enumerate() {
        messaging(m);
        assert_eq!(m.parent_span_id, batch.span_id);
        assert_eq!(m.trace_id, batch.trace_id);
        let expected: Vec<(String, String)> = producers.get(i).cloned().into_iter().collect();
        assert_eq!(links_of(m), expected, "message {i}");
    }
    // Each file's span, and its event's, under its message's span.
    for file in by_name(&spans, "vigil.logfile") {
        assert!(messages.iter().any(|m| m.span_id == file.parent_span_id));
    }
    assert_eq!(by_name(&spans, "vigil.event").len(), 3);

    // The lines about a message carry its id as correlation id.
    let processed: Vec<Value> = s
        .logs
        .json()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("log file processed"))
        })
        .collect();
    let correlation: Vec<&Value> = processed.iter().map(|l| &l["correlation_id"]).collect();
    assert_eq!(correlation, [&json!("m1"), &json!("m2"), &json!("m3")]);
}

// ---------------------------------------------------------------------------
// What the SDK reads from the process environment, in child processes.

/// The variable that makes [`child_invocations`] run: a JSON list of
/// `[request id, X-Ray header or null]`, one per invocation.
const CHILD_PLAN: &str = "VIGIL_TELEMETRY_CHILD_PLAN";

/// Runs [`child_invocations`] in a process of its own whose environment is
/// exactly `env`, and returns the JSON lines it printed (its log and EMF
/// lines, and one `{"alert": ...}` line per alert).
async fn run_child(env: &[(&str, &str)], plan: &[(String, Option<String>)]) -> Vec<Value> {
    let exe = std::env::current_exe().unwrap();
    let mut command = std::process::Command::new(exe);
    command
        .args(["child_invocations", "--exact", "--ignored", "--nocapture"])
        .env_clear()
        .envs(env.iter().copied())
        .env(CHILD_PLAN, serde_json::to_string(plan).unwrap());
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The test harness may write its own words before a line's JSON.
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(&l[l.find('{')?..]).ok())
        .collect()
}

/// Invocations as the deployed function runs them: telemetry configured by
/// the process environment (`TelemetryConfig::from_env`), logs and EMF on
/// stdout. Run by [`run_child`] only.
#[tokio::test]
#[ignore = "run by the tests of the SDK's environment, in a process of its own"]
async fn child_invocations() {
    let Ok(plan) = std::env::var(CHILD_PLAN) else {
        return;
    };
    let plan: Vec<(String, Option<String>)> = serde_json::from_str(&plan).unwrap();
    let (config, problems) = TelemetryConfig::from_env("guardduty");
    let (telemetry, dispatch) =
        Telemetry::build(config, TelemetryOptions::lambda("guardduty"), None).unwrap();
    let _guard = tracing::dispatcher::set_default(&dispatch);
    // As `telemetry::init` logs them.
    for p in problems {
        tracing::error!(error = %p, "telemetry configuration ignored");
    }
    let sink = TraceSink::default();
    let p = pipeline(&telemetry, sink.clone(), None);
    for (request_id, header) in &plan {
        let event = lambda_event(gd_event(&unique("evt"), 8.0), request_id, header.as_deref());
        app::handle_invocation(&telemetry, &p, event).await.unwrap();
    }
    for a in sink.seen.lock().unwrap().iter() {
        let line = json!({"alert": {"traceparent": a.traceparent,
            "aws_trace_header": a.aws_trace_header, "trace": a.finding.trace}});
        println!("{line}");
    }
}

/// The finding lines a child logged, by request id.
fn finding_lines(lines: &[Value]) -> HashMap<String, Value> {
    lines
        .iter()
        .filter(|l| l.get("level").is_some() && l.get("finding_id").is_some())
        .map(|l| {
            (
                l["function_request_id"].as_str().unwrap().to_string(),
                l.clone(),
            )
        })
        .collect()
}

/// The configuration problems a child logged.
fn problems(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["message"] == "telemetry configuration ignored")
        .collect()
}

/// The trace ids of the exported invocation spans.
fn exported_traces(receiver: &Receiver) -> std::collections::HashSet<String> {
    receiver
        .spans()
        .iter()
        .filter(|s| attr_str(s, "faas.invocation_id").is_some())
        .map(|s| hex(&s.trace_id))
        .collect()
}

/// An X-Ray header with a root of its own (`tag`: 24 hex digits).
fn header_tagged(tag: &str, sampled: u8) -> (String, String) {
    let (header, root, _) = xray_header(sampled);
    (
        header.replace("bd862e3fe1be46a994272793", tag),
        root.replace("bd862e3fe1be46a994272793", tag),
    )
}

#[tokio::test]
async fn the_exporter_reads_its_endpoint_and_headers_from_the_environment() {
    let (url, receiver) = Receiver::start().await;
    let plan = vec![("req-env".to_string(), None)];
    let lines = run_child(
        &[
            // A base URL: the exporter appends /v1/traces.
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("{url}/")),
            // %-encoded values, decoded by the exporter.
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-honeycomb-team=abc%3D%3D, x-other = 1",
            ),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=test",
            ),
            ("OTEL_SERVICE_NAME", "vigil-child"),
        ],
        &plan,
    )
    .await;
    assert_eq!(finding_lines(&lines).len(), 1, "{lines:?}");
    assert!(problems(&lines).is_empty(), "{lines:?}");
    let requests = receiver.requests();
    assert!(!requests.is_empty(), "nothing exported");
    for r in &requests {
        assert_eq!(r.path, "/v1/traces");
        assert_eq!(
            r.headers.get("x-honeycomb-team").map(String::as_str),
            Some("abc==")
        );
        assert_eq!(r.headers.get("x-other").map(String::as_str), Some("1"));
    }
    for attrs in receiver.resources() {
        assert!(matches!(attr(&attrs, "deployment.environment.name"),
            Some(AnyValue::StringValue(v)) if v == "test"));
        assert!(matches!(attr(&attrs, "service.name"),
            Some(AnyValue::StringValue(v)) if v == "vigil-child"));
    }
}

#[tokio::test]
async fn always_off_exports_nothing_and_the_ids_still_flow() {
    let (url, receiver) = Receiver::start().await;
    let (h1, root1) = header_tagged("aaaaaaaaaaaaaaaaaaaaaaaa", 1);
    let (h2, root2) = header_tagged("bbbbbbbbbbbbbbbbbbbbbbbb", 1);
    let plan = vec![
        ("req-1".to_string(), Some(h1)),
        ("req-2".to_string(), Some(h2)),
    ];
    let lines = run_child(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ],
        &plan,
    )
    .await;
    assert!(problems(&lines).is_empty(), "{lines:?}");
    assert!(receiver.requests().is_empty(), "always_off exported spans");
    // The trace ids are still the invocations' X-Ray roots, in the logs and
    // in the alerts, marked not sampled.
    let findings = finding_lines(&lines);
    let alerts: Vec<&Value> = lines.iter().filter_map(|l| l.get("alert")).collect();
    assert_eq!(alerts.len(), 2);
    for (request, root) in [("req-1", &root1), ("req-2", &root2)] {
        let trace_hex = root.strip_prefix("1-").unwrap().replace('-', "");
        let l = &findings[request];
        assert_eq!(l["trace_id"], trace_hex.as_str(), "{l}");
        assert_eq!(l["xray_trace_id"], root.as_str(), "{l}");
        assert_eq!(l["trace_flags"], "00", "{l}");
        let alert = alerts
            .iter()
            .find(|a| a["trace"]["trace_id"] == trace_hex.as_str())
            .unwrap_or_else(|| panic!("no alert in trace {trace_hex}: {alerts:?}"));
        let tp = alert["traceparent"].as_str().unwrap();
        assert!(
            tp.starts_with(&format!("00-{trace_hex}-")) && tp.ends_with("-00"),
            "{tp}"
        );
    }
}

#[tokio::test]
async fn a_trace_id_ratio_is_honoured() {
    let (url, receiver) = Receiver::start().await;
    let n = 200;
    let plan: Vec<(String, Option<String>)> = (0..n).map(|i| (format!("req-{i}"), None)).collect();
    let lines = run_child(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ],
        &plan,
    )
    .await;
    assert!(problems(&lines).is_empty(), "{lines:?}");
    let findings = finding_lines(&lines);
    assert_eq!(findings.len(), n);
    let exported = exported_traces(&receiver);
    // 50 expected; the bounds are five standard deviations either side.
    assert!(
        (20..=80).contains(&exported.len()),
        "{} of {n} traces exported at a ratio of 0.25",
        exported.len()
    );
    // Exactly the traces the logs say were sampled, each exported whole.
    let sampled: std::collections::HashSet<String> = findings
        .values()
        .filter(|l| l["trace_flags"] == "01")
        .map(|l| l["trace_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(exported, sampled);
    let events: std::collections::HashSet<String> = by_name(&receiver.spans(), "vigil.event")
        .iter()
        .map(|s| hex(&s.trace_id))
        .collect();
    assert_eq!(events, exported);
}

#[tokio::test]
async fn parent_based_sampling_follows_the_lambda_header() {
    let (url, receiver) = Receiver::start().await;
    let (sampled, sampled_root) = header_tagged("dddddddddddddddddddddddd", 1);
    let (unsampled, unsampled_root) = header_tagged("eeeeeeeeeeeeeeeeeeeeeeee", 0);
    let plan = vec![
        ("req-in".to_string(), Some(sampled)),
        ("req-out".to_string(), Some(unsampled)),
    ];
    let lines = run_child(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
        ],
        &plan,
    )
    .await;
    assert!(problems(&lines).is_empty(), "{lines:?}");
    let hex_of = |root: &str| root.strip_prefix("1-").unwrap().replace('-', "");
    let exported = exported_traces(&receiver);
    assert_eq!(
        exported,
        std::collections::HashSet::from([hex_of(&sampled_root)]),
        "only the invocation X-Ray sampled"
    );
    let findings = finding_lines(&lines);
    assert_eq!(findings["req-in"]["trace_flags"], "01");
    assert_eq!(findings["req-out"]["trace_flags"], "00");
    assert_eq!(
        findings["req-out"]["trace_id"],
        hex_of(&unsampled_root).as_str()
    );
}

#[tokio::test]
async fn a_sampler_the_sdk_does_not_have_is_logged_and_left_to_its_default() {
    let (url, receiver) = Receiver::start().await;
    let plan = vec![("req-bad".to_string(), None)];
    let lines = run_child(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
        ],
        &plan,
    )
    .await;
    let logged = problems(&lines);
    assert_eq!(logged.len(), 1, "{lines:?}");
    assert_eq!(logged[0]["level"], "ERROR");
    let error = logged[0]["error"].as_str().unwrap();
    assert!(
        error.contains("OTEL_TRACES_SAMPLER") && error.contains("sometimes"),
        "{error}"
    );
    // The SDK's own fallback, parentbased_always_on: a root invocation is
    // sampled and exported.
    assert_eq!(exported_traces(&receiver).len(), 1);
    assert_eq!(finding_lines(&lines)["req-bad"]["trace_flags"], "01");
}

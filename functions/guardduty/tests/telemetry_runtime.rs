//! Telemetry as the deployed binary does it: `telemetry::init` at cold start,
//! the real Lambda runtime loop (cargo-lambda's emulator), stdout read back.
//! Checks that every line is a JSON log line or a valid EMF line, that they
//! share the invocation's trace id and carry the Powertools context keys,
//! that `ColdStart` has Powertools' dimensions, that each invocation exports
//! its spans to the OTLP endpoint before returning, and that the SDK's
//! sampler follows `OTEL_TRACES_SAMPLER` from the process environment.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use vigil_e2e::{moto_endpoint, project_root, sdk, topic_with_queue, unique, LambdaFunction};

/// Counts OTLP/HTTP requests to `/v1/traces` (answering 200), on a thread.
fn receiver() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let c = c.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let is_traces = line.starts_with("POST /v1/traces ");
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if is_traces && !body.is_empty() {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn the_binary_logs_json_emits_emf_and_exports_spans_per_invocation() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, _queue_url) = topic_with_queue(&sdk, &unique("gd-telemetry"))
        .await
        .unwrap();
    let (otlp, exported) = receiver();
    let Some(function) = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_guardduty")),
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("OTEL_SERVICE_NAME", "vigil-guardduty-test"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp),
        ],
    ) else {
        return;
    };
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(
            project_root().join("examples/events/guardduty/attack-sequence-s3-critical.json"),
        )
        .unwrap(),
    )
    .unwrap();

    for round in 1..=2 {
        let out = function
            .invoke(&event)
            .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
        assert_eq!(out["alerts"], 1, "{out}");
        // The spans were exported before the invocation returned.
        assert!(
            exported.load(Ordering::SeqCst) >= round,
            "{} exports after {round} invocations\n{}",
            exported.load(Ordering::SeqCst),
            function.logs()
        );
    }

    let logs = function.logs();
    let mut finding_traces = Vec::new();
    let mut emf_traces = HashSet::new();
    let mut cold_starts = 0;
    let mut invocation_lines = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if let Some(aws) = v.get("_aws") {
            assert!(aws["Timestamp"].is_i64(), "{line}");
            for d in aws["CloudWatchMetrics"].as_array().expect("directives") {
                assert_eq!(d["Namespace"], "Vigil");
                for set in d["Dimensions"].as_array().unwrap() {
                    for k in set.as_array().unwrap() {
                        assert!(
                            v[k.as_str().unwrap()].is_string(),
                            "dimension {k} in {line}"
                        );
                    }
                }
                for m in d["Metrics"].as_array().unwrap() {
                    let name = m["Name"].as_str().unwrap();
                    assert!(v[name].is_number(), "metric {name} in {line}");
                    if name == "ColdStart" {
                        cold_starts += 1;
                        // As Powertools' add_cold_start_metric emits it.
                        assert_eq!(
                            d["Dimensions"],
                            serde_json::json!([["function_name", "service"]]),
                            "{line}"
                        );
                        assert_eq!(v["function_name"], "_", "{line}");
                        assert_eq!(v["service"], "vigil-guardduty-test", "{line}");
                    }
                }
            }
            if let Some(t) = v["trace_id"].as_str() {
                emf_traces.insert(t.to_string());
            }
            continue;
        }
        for k in vigil::telemetry::LOG_KEYS {
            assert!(v.get(k).is_some(), "{k} missing: {line}");
        }
        assert_eq!(v["service"], "vigil-guardduty-test", "{line}");
        // AWS_LAMBDA_FUNCTION_MEMORY_SIZE, as Powertools' number.
        assert_eq!(v["function_memory_size"], 128, "{line}");
        if v["function_request_id"].is_string() {
            invocation_lines += 1;
            assert_invocation_keys(&v, "01");
        }
        if v.get("finding_id").is_some() {
            let trace = v["trace_id"].as_str().expect("trace id").to_string();
            let xray = v["xray_trace_id"].as_str().expect("xray id");
            assert_eq!(xray, format!("1-{}-{}", &trace[..8], &trace[8..]));
            assert!(v["function_request_id"].is_string(), "{line}");
            assert_eq!(v["correlation_id"], event["id"], "{line}");
            finding_traces.push((trace, v["cold_start"].as_bool()));
        }
    }
    assert_eq!(cold_starts, 1, "ColdStart once per process:\n{logs}");
    assert!(invocation_lines >= 2, "{logs}");
    assert_eq!(finding_traces.len(), 2, "{logs}");
    assert_eq!(finding_traces[0].1, Some(true));
    assert_eq!(finding_traces[1].1, Some(false));
    assert_ne!(
        finding_traces[0].0, finding_traces[1].0,
        "a trace per invocation"
    );
    for (t, _) in &finding_traces {
        assert!(emf_traces.contains(t), "no EMF line in trace {t}");
    }
}

/// The keys a line logged inside an invocation carries beside the ids: the
/// invoked ARN (the emulator's `Lambda-Runtime-Invoked-Function-Arn`, a
/// placeholder), the W3C trace flags, and the invocation's own X-Ray root
/// (the emulator's `Lambda-Runtime-Trace-Id`, when it sends one).
fn assert_invocation_keys(line: &Value, trace_flags: &str) {
    let arn = line["function_arn"].as_str().unwrap_or_default();
    assert!(!arn.is_empty(), "{line}");
    assert_eq!(line["trace_flags"], trace_flags, "{line}");
    let trace = line["trace_id"].as_str().expect("a trace id");
    match line["xray_trace_id"].as_str() {
        Some(xray) => assert_eq!(xray, format!("1-{}-{}", &trace[..8], &trace[8..])),
        None => assert!(line["xray_trace_id"].is_null(), "{line}"),
    }
}

#[tokio::test]
async fn the_binary_honours_otel_traces_sampler() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, _queue_url) = topic_with_queue(&sdk, &unique("gd-sampler")).await.unwrap();
    let (otlp, exported) = receiver();
    let Some(function) = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_guardduty")),
        &[
            ("VIGIL_TOPIC_ARN", &topic_arn),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("OTEL_SERVICE_NAME", "vigil-guardduty-test"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ],
    ) else {
        return;
    };
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(
            project_root().join("examples/events/guardduty/attack-sequence-s3-critical.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let out = function
        .invoke(&event)
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", function.logs()));
    assert_eq!(out["alerts"], 1, "{out}");
    assert_eq!(
        exported.load(Ordering::SeqCst),
        0,
        "always_off exported spans\n{}",
        function.logs()
    );
    // The ids still reach the logs, marked not sampled.
    let logs = function.logs();
    let finding = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("level").is_some() && v.get("finding_id").is_some())
        .unwrap_or_else(|| panic!("no finding line:\n{logs}"));
    assert_invocation_keys(&finding, "00");
}

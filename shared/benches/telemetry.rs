//! What telemetry costs per event: one GuardDuty finding through a whole
//! Lambda invocation (`app::handle_invocation`: invocation span, pipeline with
//! its stage spans, the finding log line, EMF lines, flush) against the bare
//! pipeline.
//!
//! - `pipeline_only`: `app::handle_event`, no subscriber, no telemetry.
//! - `telemetry_no_export`: every span, log line and EMF line is built (lines
//!   formatted, then discarded rather than written), no OTLP endpoint.
//! - `spans_only`, `spans_and_logs`, `spans_and_emf`: the same with log lines
//!   and/or EMF lines switched off, to see what each part costs.
//! - `telemetry_otlp_loopback`: everything, and each invocation's spans are
//!   exported over OTLP/HTTP protobuf to a receiver on 127.0.0.1 (one request
//!   per invocation, as on Lambda).
//!
//! Run: `cargo bench -p vigil --bench telemetry`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use vigil::pipeline::Pipeline;
use vigil::sinks::MemorySink;
use vigil::telemetry::{Output, Telemetry, TelemetryConfig, TelemetryOptions};
use vigil::{app, Config, Source};

fn event() -> Value {
    json!({
        "version": "0", "id": "bench-event", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
        "account": "111122223333", "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "resources": [],
        "detail": {"schemaVersion": "2.0", "accountId": "111122223333", "region": "us-east-1",
            "id": "f1", "type": "UnauthorizedAccess:EC2/TorClient", "severity": 8.0,
            "title": "Tor client", "description": "An EC2 instance talks to Tor.",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1"}},
            "service": {"serviceName": "guardduty", "count": 1, "additionalInfo": {"sample": false}}}
    })
}

fn lambda_event() -> lambda_runtime::LambdaEvent<Value> {
    let mut ctx = lambda_runtime::Context::default();
    ctx.request_id = "bench-request".into();
    ctx.invoked_function_arn =
        "arn:aws:lambda:us-east-1:123456789012:function:vigil-guardduty".into();
    ctx.xray_trace_id = Some(format!(
        "Root=1-{:08x}-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    ));
    lambda_runtime::LambdaEvent::new(event(), ctx)
}

/// An OTLP/HTTP receiver that reads each request, counts it and answers 200.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let _ = serve(stream, c).await;
            });
        }
    });
    (format!("http://{addr}"), count)
}

async fn serve(stream: TcpStream, count: Arc<AtomicUsize>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await?;
        count.fetch_add(1, Ordering::Relaxed);
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await?;
    }
}

fn telemetry(env: &[(&str, String)]) -> (Telemetry, tracing::Dispatch) {
    let map: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let (mut config, _) = TelemetryConfig::from_lookup("guardduty", |k| map.get(k).cloned());
    // The exporter reads the endpoint from the process environment; the
    // benchmark's receiver is handed over in code.
    if let (Some(export), Some(base)) = (&mut config.export, map.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    {
        export.endpoint = Some(format!("{base}/v1/traces"));
    }
    let options = TelemetryOptions {
        logs: Output::Discard,
        emf: Output::Discard,
        ..TelemetryOptions::lambda("guardduty")
    };
    Telemetry::build(config, options, None).expect("telemetry")
}

fn pipeline(telemetry: Option<&Telemetry>) -> Pipeline {
    let config = Config {
        trace_url_template: Some("https://ui.honeycomb.io/t/trace?trace_id={trace_id}".into()),
        ..Config::default()
    };
    let builder = Pipeline::builder(&config)
        .sink(Box::new(MemorySink::new()))
        .accept(&[Source::GuardDuty]);
    match telemetry {
        Some(t) => t.instrument(builder).build(),
        None => builder.build(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("telemetry_per_event");
    group.measurement_time(Duration::from_secs(5));
    // Every variant clones the same prebuilt invocation, so input costs match.
    let input = lambda_event();

    let bare = pipeline(None);
    group.bench_function("pipeline_only", |b| {
        b.to_async(&rt).iter(|| async {
            app::handle_event(&bare, input.payload.clone())
                .await
                .expect("handled");
        })
    });

    // Telemetry without an exporter, then with parts switched off to see
    // what each costs (VIGIL_LOG_LEVEL=off disables the log layer,
    // VIGIL_METRICS=off the EMF lines).
    let variants: [(&str, &[(&str, &str)]); 4] = [
        ("telemetry_no_export", &[]),
        (
            "spans_only",
            &[("VIGIL_LOG_LEVEL", "off"), ("VIGIL_METRICS", "off")],
        ),
        ("spans_and_logs", &[("VIGIL_METRICS", "off")]),
        ("spans_and_emf", &[("VIGIL_LOG_LEVEL", "off")]),
    ];
    for (name, extra) in variants {
        let mut env = vec![("AWS_REGION", "us-east-1".to_string())];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let (t, dispatch) = telemetry(&env);
        let p = pipeline(Some(&t));
        let _guard = tracing::dispatcher::set_default(&dispatch);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                app::handle_invocation(&t, &p, input.clone())
                    .await
                    .expect("handled");
            })
        });
    }

    let (url, received) = rt.block_on(receiver());
    let (t, dispatch) = telemetry(&[
        ("AWS_REGION", "us-east-1".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url),
    ]);
    let p = pipeline(Some(&t));
    {
        let _guard = tracing::dispatcher::set_default(&dispatch);
        // Each invocation must reach the receiver: a benchmark of failing
        // exports would measure the wrong thing.
        let before = received.load(Ordering::Relaxed);
        rt.block_on(app::handle_invocation(&t, &p, input.clone()))
            .expect("handled");
        assert_eq!(
            received.load(Ordering::Relaxed),
            before + 1,
            "one export per invocation"
        );
        group.bench_function("telemetry_otlp_loopback", |b| {
            b.to_async(&rt).iter(|| async {
                app::handle_invocation(&t, &p, input.clone())
                    .await
                    .expect("handled");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! What one GuardDuty finding costs, network excluded, on the project's own
//! samples (`examples/events/guardduty`, EventBridge events of every kind):
//!
//! - `normalize`: `sources::guardduty::parse`, finding JSON to the model.
//! - `pipeline`: `Pipeline::process_event` end to end (classify, parse,
//!   enrich, gate, render the alert for every protocol) into a sink that
//!   drops it; no telemetry subscriber (the telemetry bench measures that).
//!
//! Throughput is in findings per second; the time per finding is the CPU a
//! finding costs on one core. Run: `cargo bench -p vigil --bench guardduty`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use vigil::render::{self, Alert};
use vigil::sinks::{AlertSink, Delivery, SinkFuture};
use vigil::sources::log_file::input;
use vigil::sources::{guardduty, Envelope};
use vigil::{Config, Pipeline, Severity, Source};

/// Renders the SNS message (as the SNS sink does) and drops it.
struct Discard;

impl AlertSink for Discard {
    fn name(&self) -> &'static str {
        "discard"
    }

    fn send<'a>(&'a self, alert: &'a Alert<'a>) -> SinkFuture<'a> {
        black_box(render::sns_message(alert));
        Box::pin(async {
            Ok(Delivery {
                sink: "discard",
                message_id: None,
            })
        })
    }
}

fn samples() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events/guardduty");
    let files = input::files(&[dir]).expect("samples readable");
    files
        .iter()
        .flat_map(|f| input::read_events(f).expect("samples parse"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = samples();
    let parts: Vec<(&Value, Option<Envelope>)> = events
        .iter()
        .map(|e| (&e["detail"], Envelope::read(e)))
        .collect();
    let config = Config {
        // Every sample alerts, so the whole path (render included) is measured.
        min_severity: Severity::Informational,
        alert_samples: true,
        ..Config::default()
    };
    let pipeline = Pipeline::builder(&config)
        .accept(&[Source::GuardDuty])
        .sink(Box::new(Discard))
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");

    let mut group = c.benchmark_group("guardduty");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("normalize", |b| {
        b.iter(|| {
            for (finding, envelope) in &parts {
                black_box(guardduty::parse(black_box(finding), envelope.as_ref()).ok());
            }
        })
    });
    group.bench_function("pipeline", |b| {
        b.to_async(&rt).iter(|| async {
            for e in &events {
                black_box(pipeline.process_event(black_box(e)).await.ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

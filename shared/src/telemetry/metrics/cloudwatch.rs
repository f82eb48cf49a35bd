//! `PutMetricData`: the alternative to EMF for accounts that would rather not
//! parse metrics out of logs (`VIGIL_METRICS=cloudwatch`).
//!
//! Records are aggregated in memory during an invocation and sent in one call
//! at its end (more only past the API's limits: 1000 metrics or 1 MB per
//! request, 150 values per datum), after the alert went out, so a slow or
//! failing CloudWatch never delays or loses an alert.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatch::Client;
use tokio::sync::OnceCell;

use super::{FlushFuture, MetricRecord, MetricsError, MetricsSink, Unit};

/// At most this many metrics per request.
pub(crate) const MAX_DATUMS_PER_REQUEST: usize = 1000;
/// Requests are kept under this many bytes (the API allows 1 MB; the margin
/// covers the estimate's error).
pub(crate) const MAX_REQUEST_BYTES: usize = 900 * 1024;
/// At most this many distinct values per datum.
pub(crate) const MAX_VALUES_PER_DATUM: usize = 150;

/// One metric series: name, unit and dimension values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    name: &'static str,
    unit: Unit,
    dimensions: Vec<(&'static str, String)>,
}

/// The values seen for a series: value (as bits, exact) → count.
#[derive(Debug, Default)]
struct Series {
    timestamp_ms: i64,
    values: BTreeMap<u64, u32>,
}

/// Aggregated records waiting for the next flush.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    series: HashMap<SeriesKey, Series>,
}

impl Batch {
    pub fn add(&mut self, record: &MetricRecord) {
        for m in &record.metrics {
            let Some(dimensions) = m
                .dimensions
                .iter()
                .map(|k| record.dimension_value(k).map(|v| (*k, v.to_string())))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let key = SeriesKey {
                name: m.name,
                unit: m.unit,
                dimensions,
            };
            let series = self.series.entry(key).or_insert_with(|| Series {
                timestamp_ms: record.timestamp_ms,
                ..Series::default()
            });
            *series.values.entry(m.value.to_bits()).or_default() += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The batch as `PutMetricData` requests, each within the API's limits.
    /// Returns the requests' datums and how many values they carry.
    pub(crate) fn into_requests(self) -> (Vec<Vec<MetricDatum>>, usize) {
        let mut keys: Vec<_> = self.series.into_iter().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let mut requests: Vec<Vec<MetricDatum>> = Vec::new();
        let mut current: Vec<MetricDatum> = Vec::new();
        let mut current_bytes = 0usize;
        let mut total_values = 0usize;
        for (key, series) in keys {
            let pairs: Vec<(f64, u32)> = series
                .values
                .into_iter()
                .map(|(bits, n)| (f64::from_bits(bits), n))
                .collect();
            for chunk in pairs.chunks(MAX_VALUES_PER_DATUM) {
                let size = estimate_bytes(&key, chunk.len());
                if !current.is_empty()
                    && (current.len() >= MAX_DATUMS_PER_REQUEST
                        || current_bytes + size > MAX_REQUEST_BYTES)
                {
                    requests.push(std::mem::take(&mut current));
                    current_bytes = 0;
                }
                total_values += chunk.iter().map(|(_, n)| *n as usize).sum::<usize>();
                current.push(datum(&key, series.timestamp_ms, chunk));
                current_bytes += size;
            }
        }
        if !current.is_empty() {
            requests.push(current);
        }
        (requests, total_values)
    }
}

/// A generous estimate of a datum's encoded size.
fn estimate_bytes(key: &SeriesKey, values: usize) -> usize {
    let dims: usize = key
        .dimensions
        .iter()
        .map(|(k, v)| k.len() + v.len() + 64)
        .sum();
    128 + key.name.len() + dims + values * 48
}

fn datum(key: &SeriesKey, timestamp_ms: i64, values: &[(f64, u32)]) -> MetricDatum {
    let dims = key
        .dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(*k).value(v).build())
        .collect();
    MetricDatum::builder()
        .metric_name(key.name)
        .set_dimensions(Some(dims))
        .set_values(Some(values.iter().map(|(v, _)| *v).collect()))
        .set_counts(Some(values.iter().map(|(_, n)| f64::from(*n)).collect()))
        .unit(match key.unit {
            Unit::Count => StandardUnit::Count,
            Unit::Milliseconds => StandardUnit::Milliseconds,
        })
        .timestamp(DateTime::from_millis(timestamp_ms))
        .build()
}

/// Sends metrics with `PutMetricData`.
pub struct CloudWatchSink {
    namespace: String,
    client: OnceCell<Client>,
    batch: Mutex<Batch>,
}

impl std::fmt::Debug for CloudWatchSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchSink")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl CloudWatchSink {
    /// A sink with its client.
    pub fn new(client: Client, namespace: impl Into<String>) -> CloudWatchSink {
        CloudWatchSink {
            namespace: namespace.into(),
            client: OnceCell::new_with(Some(client)),
            batch: Mutex::new(Batch::default()),
        }
    }

    /// A sink that builds its client from the default AWS configuration at
    /// its first flush, so telemetry can start before the SDK is configured.
    pub(crate) fn lazy(namespace: impl Into<String>) -> CloudWatchSink {
        CloudWatchSink {
            namespace: namespace.into(),
            client: OnceCell::new(),
            batch: Mutex::new(Batch::default()),
        }
    }

    async fn send(&self) -> Result<usize, MetricsError> {
        let batch = std::mem::take(&mut *self.batch.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return Ok(0);
        }
        let client = self
            .client
            .get_or_init(|| async { Client::new(&crate::aws::sdk_config().await) })
            .await;
        let (requests, values) = batch.into_requests();
        for datums in requests {
            client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(datums))
                .send()
                .await
                .map_err(|e| {
                    MetricsError::CloudWatch(
                        aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string(),
                    )
                })?;
        }
        Ok(values)
    }
}

impl MetricsSink for CloudWatchSink {
    fn name(&self) -> &'static str {
        "cloudwatch"
    }

    fn record(&self, record: MetricRecord) {
        self.batch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(&record);
    }

    fn flush(&self) -> FlushFuture<'_> {
        Box::pin(self.send())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BY_SERVICE, BY_SEVERITY_SOURCE};
    use super::*;

    fn record(sev: &str, latency: f64) -> MetricRecord {
        MetricRecord::new(1_700_000_000_000)
            .dimension("Service", "gd")
            .dimension("Severity", sev)
            .dimension("Source", "GuardDuty")
            .metric("Findings", Unit::Count, 1.0, BY_SEVERITY_SOURCE)
            .metric("ProcessingLatency", Unit::Milliseconds, latency, BY_SERVICE)
    }

    #[test]
    fn repeated_values_aggregate_into_values_and_counts() {
        let mut b = Batch::default();
        for _ in 0..3 {
            b.add(&record("HIGH", 2.0));
        }
        b.add(&record("LOW", 3.0));
        let (requests, values) = b.into_requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(values, 8);
        let findings: Vec<_> = requests[0]
            .iter()
            .filter(|d| d.metric_name() == Some("Findings"))
            .collect();
        assert_eq!(findings.len(), 2, "one series per severity");
        let high = findings
            .iter()
            .find(|d| d.dimensions().iter().any(|x| x.value() == Some("HIGH")))
            .unwrap();
        assert_eq!(high.values(), &[1.0]);
        assert_eq!(high.counts(), &[3.0]);
        let latency = requests[0]
            .iter()
            .find(|d| d.metric_name() == Some("ProcessingLatency"))
            .unwrap();
        assert_eq!(latency.values(), &[2.0, 3.0]);
        assert_eq!(latency.counts(), &[3.0, 1.0]);
    }

    #[test]
    fn requests_respect_the_api_limits() {
        let mut b = Batch::default();
        // 2000 series of one value, and one series of 400 distinct values.
        for i in 0..2000 {
            let r = MetricRecord::new(1)
                .dimension("Service", &format!("s{i}"))
                .metric("Errors", Unit::Count, 0.0, BY_SERVICE);
            b.add(&r);
        }
        for i in 0..400 {
            let r = MetricRecord::new(1).dimension("Service", "one").metric(
                "ProcessingLatency",
                Unit::Milliseconds,
                i as f64,
                BY_SERVICE,
            );
            b.add(&r);
        }
        let (requests, values) = b.into_requests();
        assert_eq!(values, 2400);
        let datums: usize = requests.iter().map(Vec::len).sum();
        assert_eq!(datums, 2000 + 3, "400 values make 3 datums of at most 150");
        for r in &requests {
            assert!(r.len() <= MAX_DATUMS_PER_REQUEST);
            for d in r {
                assert!(d.values().len() <= MAX_VALUES_PER_DATUM);
                assert_eq!(d.values().len(), d.counts().len());
            }
        }
        assert!(requests.len() >= 3);
    }
}

//! Embedded Metric Format: one JSON line per [`MetricRecord`], written to
//! stdout where the Lambda log stream hands it to CloudWatch, which extracts
//! the metrics. No API call, no batching, nothing to flush.
//!
//! The rules the encoder keeps (CloudWatch drops a line that breaks one):
//! `_aws.Timestamp` (ms) and `_aws.CloudWatchMetrics` present; at most 100
//! metrics per directive and 30 keys per dimension set; every dimension key a
//! root-level string of at most 1024 characters; every metric a root-level
//! number; no NaN or infinity; the line under 256 KB.

use std::fmt::Write as _;

use super::{Metric, MetricRecord, MetricsSink};
use crate::telemetry::jsonw;
use crate::telemetry::logs::Output;

/// At most this many metrics per directive.
pub(crate) const MAX_METRICS_PER_DIRECTIVE: usize = 100;
/// At most this many keys per dimension set.
pub(crate) const MAX_DIMENSION_KEYS: usize = 30;
/// Lines at or above this size are dropped by CloudWatch.
pub(crate) const MAX_LINE_BYTES: usize = 256 * 1024;

/// Writes EMF lines.
#[derive(Debug, Clone)]
pub struct EmfSink {
    namespace: String,
    output: Output,
}

impl EmfSink {
    pub fn new(namespace: impl Into<String>, output: Output) -> EmfSink {
        EmfSink {
            namespace: namespace.into(),
            output,
        }
    }
}

impl MetricsSink for EmfSink {
    fn name(&self) -> &'static str {
        "emf"
    }

    fn record(&self, record: MetricRecord) {
        for line in encode(&self.namespace, &record) {
            self.output.write_line(&line);
        }
    }
}

/// The EMF lines for one record: usually one; more only when a record has
/// more than 100 metrics under one dimension set. A metric whose dimension
/// keys are not all among the record's dimensions is left out, rather than
/// sending a line CloudWatch would reject.
pub fn encode(namespace: &str, record: &MetricRecord) -> Vec<String> {
    // Group metrics by dimension set, keeping first-seen order. A metric name
    // appears once per line (the first wins): a second value under the same
    // root key would be ambiguous.
    let mut groups: Vec<(&'static [&'static str], Vec<&Metric>)> = Vec::new();
    for (i, m) in record.metrics.iter().enumerate() {
        let dims_ok = m.dimensions.len() <= MAX_DIMENSION_KEYS
            && m.dimensions
                .iter()
                .all(|k| record.dimension_value(k).is_some());
        let repeated = record.metrics[..i].iter().any(|o| o.name == m.name);
        if !dims_ok || !m.value.is_finite() || repeated {
            continue;
        }
        match groups.iter_mut().find(|(d, _)| *d == m.dimensions) {
            Some((_, ms)) => ms.push(m),
            None => groups.push((m.dimensions, vec![m])),
        }
    }
    let chunks = groups
        .iter()
        .map(|(_, ms)| ms.len().div_ceil(MAX_METRICS_PER_DIRECTIVE))
        .max()
        .unwrap_or(0);
    let mut lines = Vec::with_capacity(chunks);
    for chunk in 0..chunks {
        let line = line(namespace, record, &groups, chunk, true);
        if line.len() < MAX_LINE_BYTES {
            lines.push(line);
            continue;
        }
        // Only properties can make a line this large: drop them.
        let line = self::line(namespace, record, &groups, chunk, false);
        if line.len() < MAX_LINE_BYTES {
            lines.push(line);
        }
    }
    lines
}

/// One line: the directives for the `chunk`-th slice of each group, the
/// dimension values and metric values they name, and (optionally) the
/// properties that do not collide with either.
fn line(
    namespace: &str,
    record: &MetricRecord,
    groups: &[(&'static [&'static str], Vec<&Metric>)],
    chunk: usize,
    with_properties: bool,
) -> String {
    let slice = |ms: &'_ [&'_ Metric]| -> std::ops::Range<usize> {
        let start = (chunk * MAX_METRICS_PER_DIRECTIVE).min(ms.len());
        start..(start + MAX_METRICS_PER_DIRECTIVE).min(ms.len())
    };
    let mut out = String::with_capacity(512);
    out.push_str("{\"_aws\":{\"Timestamp\":");
    let _ = write!(out, "{}", record.timestamp_ms);
    out.push_str(",\"CloudWatchMetrics\":[");
    let mut first = true;
    let mut root_dims: Vec<&str> = Vec::new();
    for (dims, ms) in groups {
        let range = slice(ms);
        if range.is_empty() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str("{\"Namespace\":");
        jsonw::push_str(&mut out, namespace);
        out.push_str(",\"Dimensions\":[[");
        for (i, k) in dims.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            jsonw::push_str(&mut out, k);
            if !root_dims.contains(k) {
                root_dims.push(k);
            }
        }
        out.push_str("]],\"Metrics\":[");
        for (i, m) in ms[range].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"Name\":");
            jsonw::push_str(&mut out, m.name);
            out.push_str(",\"Unit\":");
            jsonw::push_str(&mut out, m.unit.as_str());
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    for k in &root_dims {
        if let Some(v) = record.dimension_value(k) {
            jsonw::push_key(&mut out, k);
            jsonw::push_str(&mut out, v);
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for (_, ms) in groups {
        for m in &ms[slice(ms)] {
            jsonw::push_key(&mut out, m.name);
            jsonw::push_f64(&mut out, m.value);
            names.push(m.name);
        }
    }
    if with_properties {
        for (k, v) in &record.properties {
            // Properties never shadow a dimension, a metric or `_aws`.
            if *k == "_aws" || root_dims.contains(k) || names.contains(k) {
                continue;
            }
            jsonw::push_key(&mut out, k);
            jsonw::push_value(&mut out, v);
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Unit, BY_SERVICE, BY_SEVERITY_SOURCE};
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_record_becomes_one_line_with_a_directive_per_dimension_set() {
        let r = MetricRecord::new(1_700_000_000_000)
            .dimension("Service", "guardduty")
            .dimension("Severity", "HIGH")
            .dimension("Source", "GuardDuty")
            .metric("Findings", Unit::Count, 1.0, BY_SEVERITY_SOURCE)
            .metric("AlertsSent", Unit::Count, 1.0, BY_SERVICE)
            .property("trace_id", "abc");
        let lines = encode("Vigil", &r);
        assert_eq!(lines.len(), 1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let d = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0]["Dimensions"],
            serde_json::json!([["Severity", "Source"]])
        );
        assert_eq!(d[0]["Metrics"][0]["Name"], "Findings");
        assert_eq!(v["Severity"], "HIGH");
        assert_eq!(v["Findings"], 1.0);
        assert_eq!(v["trace_id"], "abc");
        // "Service" is only a root member because a directive uses it.
        assert_eq!(v["Service"], "guardduty");
    }

    #[test]
    fn metrics_with_missing_dimensions_are_left_out() {
        let r = MetricRecord::new(1).metric("Findings", Unit::Count, 1.0, BY_SEVERITY_SOURCE);
        assert!(encode("Vigil", &r).is_empty());
    }

    #[test]
    fn more_than_100_metrics_split_into_lines() {
        let mut r = MetricRecord::new(1).dimension("Service", "s");
        // 250 distinct names: metric names are &'static, so leak them (test only).
        let names: Vec<&'static str> = (0..250)
            .map(|i| &*Box::leak(format!("M{i}").into_boxed_str()))
            .collect();
        for n in &names {
            r = r.metric(n, Unit::Count, 1.0, BY_SERVICE);
        }
        let lines = encode("Vigil", &r);
        assert_eq!(lines.len(), 3);
        for l in &lines {
            let v: Value = serde_json::from_str(l).unwrap();
            let n = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len();
            assert!(n <= MAX_METRICS_PER_DIRECTIVE);
        }
    }
}

//! `vigil replay`: sample or captured events through the same pipeline the
//! Lambdas run, with a summary at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::input;
use crate::model::Severity;
use crate::pipeline::{decision_name, EventReport, Pipeline, PipelineError};

/// Counts over a whole replay.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub files: usize,
    pub events: usize,
    pub findings: usize,
    pub alerts: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    pub by_type: BTreeMap<String, usize>,
    pub by_decision: BTreeMap<&'static str, usize>,
    /// Events that failed, with the reason (file: error).
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn add(&mut self, report: &EventReport) {
        for p in &report.findings {
            self.findings += 1;
            *self.by_severity.entry(p.finding.severity).or_default() += 1;
            *self
                .by_type
                .entry(p.finding.type_or_rule().to_string())
                .or_default() += 1;
            *self
                .by_decision
                .entry(decision_name(&p.decision))
                .or_default() += 1;
            if p.decision.alerted() {
                self.alerts += 1;
            }
        }
    }

    /// The summary as people read it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "Replayed {} events from {} files: {} findings, {} alerts, {} errors ({:.0} events/s)",
            self.events,
            self.files,
            self.findings,
            self.alerts,
            self.errors.len(),
            self.events as f64 / secs
        );
        if !self.by_severity.is_empty() {
            let parts: Vec<String> = self
                .by_severity
                .iter()
                .rev()
                .map(|(sev, n)| format!("{}={n}", sev.as_str()))
                .collect();
            let _ = writeln!(s, "By severity: {}", parts.join(" "));
        }
        if !self.by_decision.is_empty() {
            let parts: Vec<String> = self
                .by_decision
                .iter()
                .map(|(d, n)| format!("{d}={n}"))
                .collect();
            let _ = writeln!(s, "By outcome:  {}", parts.join(" "));
        }
        if !self.by_type.is_empty() {
            let _ = writeln!(s, "By type:");
            let mut types: Vec<(&String, &usize)> = self.by_type.iter().collect();
            types.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (t, n) in types.iter().take(25) {
                let _ = writeln!(s, "  {n:>5}  {t}");
            }
            if types.len() > 25 {
                let _ = writeln!(s, "  ... and {} more types", types.len() - 25);
            }
        }
        for e in self.errors.iter().take(20) {
            let _ = writeln!(s, "error: {e}");
        }
        s
    }
}

/// Replays every event under `paths`. An event that fails is counted and
/// reported; the replay goes on. `progress` is told after each file.
pub async fn replay(
    pipeline: &Pipeline,
    paths: &[PathBuf],
    mut progress: impl FnMut(&Summary),
) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    let files = match input::files(paths) {
        Ok(f) => f,
        Err(e) => {
            summary.errors.push(e.to_string());
            return summary;
        }
    };
    for file in files {
        summary.files += 1;
        let events = match input::read_events(&file) {
            Ok(e) => e,
            Err(e) => {
                summary.errors.push(e.to_string());
                continue;
            }
        };
        for event in events {
            summary.events += 1;
            match pipeline.process_event(&event).await {
                Ok(report) => summary.add(&report),
                Err(PipelineError::Delivery { report, first, .. }) => {
                    summary.add(&report);
                    summary.errors.push(format!("{}: {first}", file.display()));
                }
                Err(e) => summary.errors.push(format!("{}: {e}", file.display())),
            }
        }
        summary.elapsed = started.elapsed();
        progress(&summary);
    }
    summary.elapsed = started.elapsed();
    summary
}

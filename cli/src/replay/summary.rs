//! The counts of a whole replay, as people read them at its end, and the
//! progress line a long replay draws on a terminal meanwhile.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use vigil::model::Severity;
use vigil::pipeline::{decision_name, EventReport, Processed};

/// Counts over a whole replay.
#[derive(Debug, Default, Clone)]
pub(crate) struct Summary {
    pub(crate) files: usize,
    pub(crate) events: usize,
    pub(crate) findings: usize,
    pub(crate) alerts: usize,
    /// Storm summary alerts sent (each replacing many alerts).
    pub(crate) storm_summaries: usize,
    by_severity: BTreeMap<Severity, usize>,
    by_type: BTreeMap<String, usize>,
    by_decision: BTreeMap<&'static str, usize>,
    /// Events that failed, with the reason (file: error).
    pub(crate) errors: Vec<String>,
    pub(crate) elapsed: Duration,
    /// Bytes read from the files so far (as stored: compressed when gzip).
    pub(crate) bytes: u64,
    /// Size of all the files to replay.
    pub(crate) total_bytes: u64,
}

impl Summary {
    pub(crate) fn add(&mut self, report: &EventReport) {
        self.add_summaries(&report.summaries);
        for p in &report.findings {
            self.findings += 1;
            *self.by_severity.entry(p.finding.severity).or_default() += 1;
            // Rule ids are UUIDs: show the rule's title beside them.
            let kind = match &p.finding.rule {
                Some(rule) => format!("{} ({})", rule.title, rule.id),
                None => p.finding.finding_type.clone(),
            };
            *self.by_type.entry(kind).or_default() += 1;
            *self
                .by_decision
                .entry(decision_name(&p.decision))
                .or_default() += 1;
            if p.decision.alerted() {
                self.alerts += 1;
            }
        }
    }

    /// Counts storm summary alerts.
    pub(crate) fn add_summaries(&mut self, summaries: &[Processed]) {
        self.storm_summaries += summaries.iter().filter(|p| p.decision.alerted()).count();
    }

    /// Throughput: events per second, and MB per second read from files.
    fn rate(&self, secs: f64) -> String {
        let events = format!("{:.0} events/s", self.events as f64 / secs);
        match self.bytes {
            0 => events,
            b => format!("{events}, {:.1} MB/s", b as f64 / 1e6 / secs),
        }
    }

    /// One line of progress for a terminal: how far, how fast, what so far.
    fn progress_line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let done = match self.total_bytes {
            0 => String::new(),
            t => format!(
                "{:>3.0}% ",
                (self.bytes as f64 / t as f64 * 100.0).min(100.0)
            ),
        };
        format!(
            "{done}{} events, {:.1}/{:.1} MB, {}: {} findings, {} alerts, {} errors",
            self.events,
            self.bytes as f64 / 1e6,
            self.total_bytes as f64 / 1e6,
            self.rate(secs),
            self.findings,
            self.alerts,
            self.errors.len()
        )
    }

    /// The summary as people read it.
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "Replayed {} events from {} files: {} findings, {} alerts, {} errors ({})",
            self.events,
            self.files,
            self.findings,
            self.alerts,
            self.errors.len(),
            self.rate(secs)
        );
        if self.storm_summaries > 0 {
            let _ = writeln!(
                s,
                "Storm summaries: {} (each replacing many alerts; see decision \"aggregated\")",
                self.storm_summaries
            );
        }
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

/// A progress line on stderr, redrawn in place at most ten times a second,
/// and only when stderr is a terminal: piped or redirected output stays clean.
#[derive(Debug)]
pub(crate) struct StatusLine {
    enabled: bool,
    drawn: Option<Instant>,
}

impl StatusLine {
    /// Shows progress when `wanted` and stderr is a terminal. Callers pass
    /// false while alerts print to the same terminal, which the redrawn line
    /// would garble.
    pub(crate) fn stderr(wanted: bool) -> StatusLine {
        use std::io::IsTerminal;
        StatusLine {
            enabled: wanted && std::io::stderr().is_terminal(),
            drawn: None,
        }
    }

    pub(crate) fn update(&mut self, summary: &Summary) {
        if !self.enabled
            || self
                .drawn
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}\x1b[K", summary.progress_line());
        let _ = err.flush();
        self.drawn = Some(Instant::now());
    }

    /// Erases the line, if one was drawn, before the summary prints.
    pub(crate) fn clear(&mut self) {
        if self.drawn.take().is_some() {
            use std::io::Write;
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

//! What the HTML report shows, gathered finding by finding during the
//! replay: counts, the findings per minute by severity, ATT&CK, the top
//! rules, actors, accounts and regions, storm summaries, and the alerts
//! themselves. Memory stays bounded on a week of log files: distinct
//! values and alert rows are capped, and what is cut is counted and shown.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use vigil::model::{Finding, Severity, Tactic};
use vigil::pipeline::{decision_name, Decision};

use super::escape::{lines, one_line};
use crate::replay::walk::{Kind, Seen};

/// Alerts kept for the timeline table; later ones are counted, not shown.
pub(crate) const MAX_ROWS: usize = 10_000;
/// Distinct values one count keeps (an attacker can spray source IPs).
const MAX_KEYS: usize = 50_000;
/// Longest label in a count or a table cell; longest evidence value.
const MAX_LABEL: usize = 200;
const MAX_TEXT: usize = 2_000;
/// Evidence entries kept per alert.
const MAX_EVIDENCE: usize = 40;
/// Storm summaries listed.
const MAX_STORMS: usize = 1_000;
/// Text the alert rows may hold in all, so the page stays one a browser opens.
const MAX_ROW_BYTES: usize = 64 << 20;
/// Distinct minutes the chart keeps (attacker-written times can be any).
const MAX_MINUTES: usize = 200_000;

/// Counts by value, capped at [`MAX_KEYS`] distinct values.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counter {
    counts: BTreeMap<String, u64>,
    /// Counts of values past the cap.
    pub(crate) other: u64,
}

impl Counter {
    pub(crate) fn add(&mut self, key: &str) {
        let key = one_line(key, MAX_LABEL);
        if let Some(n) = self.counts.get_mut(&key) {
            *n += 1;
        } else if self.counts.len() < MAX_KEYS {
            self.counts.insert(key, 1);
        } else {
            self.other += 1;
        }
    }

    /// The `n` largest, largest first (ties by value).
    pub(crate) fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }

    pub(crate) fn distinct(&self) -> usize {
        self.counts.len()
    }
}

/// Counts per severity, indexed by [`sev_index`].
pub(crate) type BySeverity = [u64; 5];

pub(crate) fn sev_index(s: Severity) -> usize {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// One alert as the timeline table shows it (the JSON the page reads).
/// Every string is event text: the page sets it with `textContent` only.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlertRow {
    pub(crate) time: String,
    pub(crate) severity: &'static str,
    pub(crate) title: String,
    pub(crate) rule: String,
    pub(crate) rule_id: String,
    pub(crate) actor: String,
    pub(crate) access_key: String,
    pub(crate) source_ip: String,
    pub(crate) user_agent: String,
    pub(crate) account: String,
    pub(crate) region: String,
    pub(crate) source: &'static str,
    pub(crate) resource: String,
    pub(crate) description: String,
    pub(crate) evidence: Vec<(String, String)>,
    pub(crate) console_url: Option<String>,
    pub(crate) trace_id: String,
    pub(crate) xray_trace_id: String,
    pub(crate) finding_id: String,
    pub(crate) fingerprint: String,
    pub(crate) event_id: String,
}

impl AlertRow {
    /// The length of its text, roughly what it adds to the page.
    fn text_len(&self) -> usize {
        let fields = [
            &self.title,
            &self.rule,
            &self.rule_id,
            &self.actor,
            &self.access_key,
            &self.source_ip,
            &self.user_agent,
            &self.account,
            &self.region,
            &self.resource,
            &self.description,
            &self.trace_id,
            &self.xray_trace_id,
            &self.finding_id,
            &self.fingerprint,
            &self.event_id,
        ];
        let evidence: usize = self.evidence.iter().map(|(k, v)| k.len() + v.len()).sum();
        fields.iter().map(|f| f.len()).sum::<usize>() + evidence
    }
}

/// A storm summary alert: how many alerts it replaced, over which window.
#[derive(Debug, Clone)]
pub(crate) struct StormRow {
    pub(crate) title: String,
    pub(crate) severity: Severity,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) replaced: u64,
    pub(crate) decision: &'static str,
}

/// Everything the report shows about the findings.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReportData {
    pub(crate) findings: u64,
    pub(crate) alerts: u64,
    pub(crate) by_severity: BySeverity,
    pub(crate) alerts_by_severity: BySeverity,
    pub(crate) by_source: BTreeMap<&'static str, u64>,
    pub(crate) by_decision: BTreeMap<&'static str, u64>,
    pub(crate) suppression_rules: Counter,
    pub(crate) first: Option<DateTime<Utc>>,
    pub(crate) last: Option<DateTime<Utc>>,
    /// Findings per minute (epoch minute) by severity.
    pub(crate) per_minute: BTreeMap<i64, BySeverity>,
    pub(crate) tactics: BTreeMap<Tactic, u64>,
    /// Technique id under each tactic of the findings that carried it.
    pub(crate) techniques: BTreeMap<(Tactic, String), u64>,
    pub(crate) technique_names: BTreeMap<String, String>,
    /// Findings with a technique but no tactic.
    pub(crate) untactical: Counter,
    pub(crate) rules: Counter,
    pub(crate) principals: Counter,
    pub(crate) access_keys: Counter,
    pub(crate) source_ips: Counter,
    pub(crate) accounts: Counter,
    pub(crate) regions: Counter,
    pub(crate) storms: Vec<StormRow>,
    pub(crate) storms_alerted: u64,
    pub(crate) rows: Vec<AlertRow>,
    /// Text held by the rows, against [`MAX_ROW_BYTES`].
    row_bytes: usize,
    /// Alerts past [`MAX_ROWS`] or [`MAX_ROW_BYTES`].
    pub(crate) rows_cut: u64,
    /// Findings whose minute came past [`MAX_MINUTES`]: counted, not drawn.
    pub(crate) undrawn: u64,
}

impl ReportData {
    pub(crate) fn add(&mut self, seen: &Seen<'_>) {
        match seen.kind {
            Kind::Finding => self.add_finding(&seen.processed.finding, &seen.processed.decision),
            Kind::StormSummary => self.add_storm(&seen.processed.finding, &seen.processed.decision),
        }
    }

    fn add_finding(&mut self, f: &Finding, d: &Decision) {
        self.findings += 1;
        self.by_severity[sev_index(f.severity)] += 1;
        *self.by_source.entry(f.source.as_str()).or_default() += 1;
        *self.by_decision.entry(decision_name(d)).or_default() += 1;
        if let Decision::SuppressedByRule { rule, .. } = d {
            self.suppression_rules.add(rule);
        }
        self.first = Some(self.first.map_or(f.time, |t| t.min(f.time)));
        self.last = Some(self.last.map_or(f.time, |t| t.max(f.time)));
        let minute = f.time.timestamp().div_euclid(60);
        if self.per_minute.len() < MAX_MINUTES || self.per_minute.contains_key(&minute) {
            self.per_minute.entry(minute).or_default()[sev_index(f.severity)] += 1;
        } else {
            self.undrawn += 1;
        }
        self.add_attack(f);
        self.add_tops(f);
        if d.alerted() {
            self.alerts += 1;
            self.alerts_by_severity[sev_index(f.severity)] += 1;
            self.add_row(f);
        }
    }

    fn add_row(&mut self, f: &Finding) {
        if self.rows.len() >= MAX_ROWS || self.row_bytes >= MAX_ROW_BYTES {
            self.rows_cut += 1;
            return;
        }
        let row = alert_row(f);
        self.row_bytes += row.text_len();
        self.rows.push(row);
    }

    fn add_attack(&mut self, f: &Finding) {
        for t in &f.tactics {
            *self.tactics.entry(*t).or_default() += 1;
        }
        for tech in &f.techniques {
            let id = one_line(&tech.id, 40);
            if self.technique_names.len() < MAX_KEYS && !self.technique_names.contains_key(&id) {
                let name = tech
                    .name
                    .as_deref()
                    .map_or(String::new(), |n| one_line(n, 100));
                self.technique_names.insert(id.clone(), name);
            }
            if f.tactics.is_empty() {
                self.untactical.add(&id);
            }
            for t in &f.tactics {
                if self.techniques.len() < MAX_KEYS {
                    *self.techniques.entry((*t, id.clone())).or_default() += 1;
                }
            }
        }
    }

    fn add_tops(&mut self, f: &Finding) {
        self.rules.add(&rule_label(f));
        self.accounts.add(&f.account_label());
        if !f.region.is_empty() {
            self.regions.add(&f.region);
        }
        let actor = f.actor.as_ref();
        // The name the alert table shows, so a top entry is found there.
        if let Some(name) = actor.and_then(|a| a.display_name()) {
            self.principals.add(name);
        }
        if let Some(key) = actor.and_then(|a| a.access_key_id.as_deref()) {
            self.access_keys.add(key);
        }
        if let Some(ip) = source_ip(f) {
            self.source_ips.add(ip);
        }
    }

    fn add_storm(&mut self, f: &Finding, d: &Decision) {
        if d.alerted() {
            self.storms_alerted += 1;
        }
        if self.storms.len() < MAX_STORMS {
            self.storms.push(StormRow {
                title: one_line(&f.title, MAX_LABEL),
                severity: f.severity,
                from: f.first_seen.map(rfc3339).unwrap_or_default(),
                to: f.last_seen.map(rfc3339).unwrap_or_default(),
                replaced: f.count,
                decision: decision_name(d),
            });
        }
    }
}

/// The rule's title, or the source's finding type.
fn rule_label(f: &Finding) -> String {
    match &f.rule {
        Some(rule) => rule.title.clone(),
        None => f.finding_type.clone(),
    }
}

fn source_ip(f: &Finding) -> Option<&str> {
    f.actor
        .as_ref()
        .and_then(|a| a.source_ip.as_deref())
        .or(f.network.remote_ip.as_deref())
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Text for a table cell: one line, no controls, bounded.
fn cell(s: &str) -> String {
    one_line(s, MAX_LABEL)
}

/// Text for the detail view: lines kept, controls (bidi overrides too) gone.
fn text(s: &str) -> String {
    lines(s, MAX_TEXT)
}

fn alert_row(f: &Finding) -> AlertRow {
    let actor = f.actor.as_ref();
    let trace = f.trace.clone().unwrap_or_default();
    AlertRow {
        time: rfc3339(f.time),
        severity: f.severity.as_str(),
        title: cell(&f.title),
        rule: cell(&rule_label(f)),
        rule_id: cell(f.type_or_rule()),
        actor: cell(actor.and_then(|a| a.display_name()).unwrap_or("")),
        access_key: cell(actor.and_then(|a| a.access_key_id.as_deref()).unwrap_or("")),
        source_ip: cell(source_ip(f).unwrap_or("")),
        user_agent: cell(actor.and_then(|a| a.user_agent.as_deref()).unwrap_or("")),
        account: cell(&f.account_label()),
        region: cell(&f.region),
        source: f.source.as_str(),
        resource: f
            .primary_resource()
            .map(|r| cell(&format!("{} ({})", r.id, r.resource_type)))
            .unwrap_or_default(),
        description: text(&f.description),
        evidence: f
            .evidence
            .iter()
            .take(MAX_EVIDENCE)
            .map(|(k, v)| (cell(k), text(v)))
            .collect(),
        console_url: f
            .links
            .console
            .as_deref()
            .and_then(console_link)
            .map(str::to_string),
        trace_id: cell(&trace.trace_id),
        xray_trace_id: cell(&trace.xray_trace_id),
        finding_id: cell(&f.id),
        fingerprint: cell(&f.fingerprint),
        event_id: cell(f.event_id.as_deref().unwrap_or("")),
    }
}

/// Console hosts Vigil builds links to (CONVENTIONS: links in alerts).
const CONSOLE_HOSTS: [&str; 3] = [
    "console.aws.amazon.com",
    "console.amazonaws.cn",
    "console.amazonaws-us-gov.com",
];

/// `url` when it is an https link to an AWS console host (a region label
/// before it allowed), else None: the page makes live links of these only.
pub(crate) fn console_link(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let ok = CONSOLE_HOSTS.iter().any(|h| {
        host == *h
            || host
                .strip_suffix(h)
                .and_then(|p| p.strip_suffix('.'))
                .is_some_and(label_ok)
    });
    (ok && !url.chars().any(|c| c.is_control() || c.is_whitespace())).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil::model::{Actor, Source, Technique};
    use vigil::pipeline::Processed;

    fn see(data: &mut ReportData, f: Finding, decision: Decision) {
        let processed = Processed {
            finding: f,
            decision,
        };
        data.add(&Seen {
            processed: &processed,
            kind: Kind::Finding,
            file: None,
        });
    }

    fn finding(severity: Severity, minute: i64) -> Finding {
        let mut f = Finding::new(Source::CloudTrail, format!("f-{minute}"), "rule-1");
        f.severity = severity;
        f.time = DateTime::from_timestamp(minute * 60, 0).unwrap();
        f.account_id = "111122223333".into();
        f.region = "us-east-1".into();
        f.tactics = vec![Tactic::DefenseEvasion, Tactic::Impact];
        f.techniques = vec![Technique {
            id: "T1562.008".into(),
            name: None,
        }];
        f.actor = Some(Actor {
            user_name: Some("mallory".into()),
            ..Actor::default()
        });
        f
    }

    #[test]
    fn counts_alerts_apart_from_findings_and_times_by_minute() {
        let mut data = ReportData::default();
        see(
            &mut data,
            finding(Severity::High, 10),
            Decision::Alerted(vec![]),
        );
        see(&mut data, finding(Severity::High, 10), Decision::Sample);
        see(
            &mut data,
            finding(Severity::Low, 12),
            Decision::BelowThreshold,
        );
        assert_eq!((data.findings, data.alerts, data.rows.len()), (3, 1, 1));
        assert_eq!(data.by_severity[sev_index(Severity::High)], 2);
        assert_eq!(data.alerts_by_severity[sev_index(Severity::High)], 1);
        assert_eq!(data.per_minute[&10][sev_index(Severity::High)], 2);
        assert_eq!(data.by_decision["sample"], 1);
        assert_eq!(data.first.unwrap().timestamp(), 600);
        assert_eq!(data.last.unwrap().timestamp(), 720);
        // A technique sits under each tactic of its finding.
        assert_eq!(
            data.techniques[&(Tactic::Impact, "T1562.008".to_string())],
            3
        );
        assert_eq!(data.principals.top(1), vec![("mallory", 3)]);
    }

    #[test]
    fn rows_and_distinct_values_are_capped_and_what_is_cut_is_counted() {
        let mut c = Counter::default();
        for i in 0..MAX_KEYS + 5 {
            c.add(&format!("10.0.{i}"));
        }
        c.add("10.0.0");
        assert_eq!((c.distinct(), c.other), (MAX_KEYS, 5));
        assert_eq!(c.top(1), vec![("10.0.0", 2)]);
        let mut data = ReportData::default();
        for i in 0..MAX_ROWS as i64 + 3 {
            see(
                &mut data,
                finding(Severity::High, i),
                Decision::Alerted(vec![]),
            );
        }
        assert_eq!((data.rows.len(), data.rows_cut), (MAX_ROWS, 3));
    }

    #[test]
    fn alert_text_has_a_budget_too() {
        let mut data = ReportData::default();
        let mut f = finding(Severity::High, 1);
        for i in 0..MAX_EVIDENCE + 10 {
            f.evidence
                .insert(format!("field{i:02}"), "v".repeat(MAX_TEXT + 1_000));
        }
        let per_row = alert_row(&f).text_len();
        assert!(per_row <= MAX_EVIDENCE * (MAX_TEXT + MAX_LABEL) + 16 * MAX_LABEL + MAX_TEXT);
        let fit = MAX_ROW_BYTES.div_ceil(per_row);
        for _ in 0..fit + 5 {
            see(&mut data, f.clone(), Decision::Alerted(vec![]));
        }
        assert_eq!(data.rows.len(), fit);
        assert_eq!(data.rows_cut, 5);
        assert_eq!(data.alerts, fit as u64 + 5, "every alert is still counted");
    }

    #[test]
    fn only_aws_console_links_are_kept() {
        let ok =
            "https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings";
        assert_eq!(console_link(ok), Some(ok));
        assert!(console_link("https://console.amazonaws-us-gov.com/x").is_some());
        for bad in [
            "http://console.aws.amazon.com/",
            "javascript:alert(1)//https://console.aws.amazon.com",
            "https://console.aws.amazon.com.evil.example/",
            "https://evil.example/?console.aws.amazon.com",
            "https://x.y.console.aws.amazon.com/",
            "https://EVIL.console.aws.amazon.com/",
            "https://us-east-1.console.aws.amazon.com/a b",
        ] {
            assert_eq!(console_link(bad), None, "{bad}");
        }
    }

    #[test]
    fn table_text_is_one_bounded_line_without_controls() {
        let mut f = finding(Severity::High, 1);
        f.title = format!("a\u{202E}b\nc{}", "x".repeat(5000));
        f.description = "line 1\nline 2\u{2028}".into();
        let row = alert_row(&f);
        assert!(row.title.starts_with("ab c") && row.title.chars().count() <= MAX_LABEL);
        assert_eq!(row.description, "line 1\nline 2");
    }
}

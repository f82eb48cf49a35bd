//! What `vigil rules list|test|lint` do, as a library so tests and the CLI
//! share it: run every rule's own test records, check rules for what makes
//! them hard to trust (no id, no level, no ATT&CK tags, no tests, duplicate
//! ids), and list them.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::correlation::check;
use super::correlation::ParsedCorrelation;
use super::error::RuleError;
use super::matcher::MODIFIERS;
use super::placeholder::Placeholders;
use super::ruleset::{RuleSet, RuleSource};
use super::sigma::{ParsedRule, Rule, RuleTests};
use super::LogSource;
use vigil_model::Severity;

/// One test record that did not behave as its rule says.
#[derive(Debug, Clone)]
pub struct CaseFailure {
    pub origin: String,
    pub rule_id: String,
    pub title: String,
    /// `match[i]` or `no_match[i]`.
    pub case: String,
    pub reason: String,
}

/// The outcome of running every rule's test records.
#[derive(Debug, Default)]
pub struct TestReport {
    pub rules: usize,
    /// Correlation rules whose sequences ran.
    pub correlations: usize,
    pub cases: usize,
    pub failures: Vec<CaseFailure>,
    /// Rules with no `vigil_tests` (or no matching case).
    pub untested: Vec<String>,
    /// Rules that did not load (invalid).
    pub errors: Vec<RuleError>,
    /// Rules skipped because they need unsupported Sigma features.
    pub skipped: Vec<RuleError>,
}

impl TestReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.errors.is_empty()
    }

    /// The report as people read it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for f in &self.failures {
            let _ = writeln!(
                s,
                "FAIL {} [{}] {}: {}\n     {}",
                f.origin, f.rule_id, f.case, f.reason, f.title
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "ERROR {e}");
        }
        for e in &self.skipped {
            let _ = writeln!(s, "skipped {e}");
        }
        for u in &self.untested {
            let _ = writeln!(s, "untested {u}");
        }
        let _ = writeln!(
            s,
            "{} rules, {} correlations, {} test records and sequences: {} failed, {} rules not loadable, {} skipped, {} untested",
            self.rules,
            self.correlations,
            self.cases,
            self.failures.len(),
            self.errors.len(),
            self.skipped.len(),
            self.untested.len()
        );
        s
    }
}

/// Every source's rules (a file of several documents gives several, each
/// its own JSON source with the file's origin), its correlations, the
/// errors and the skipped.
struct Parsed {
    rules: Vec<(ParsedRule, RuleSource)>,
    correlations: Vec<ParsedCorrelation>,
    errors: Vec<RuleError>,
    skipped: Vec<RuleError>,
}

fn parse_all(sources: &[RuleSource], placeholders: &Placeholders) -> Parsed {
    let mut out = Parsed {
        rules: Vec::new(),
        correlations: Vec::new(),
        errors: Vec::new(),
        skipped: Vec::new(),
    };
    for src in sources {
        let split = match check::split(src) {
            None => vec![src.clone()],
            Some(Ok(s)) => {
                out.correlations.extend(s.correlations);
                s.rules
            }
            Some(Err(e)) => {
                out.errors.push(e);
                continue;
            }
        };
        for src in split {
            match Rule::parse_full_with(&src.origin, &src.text, placeholders) {
                Ok(p) => out.rules.push((p, src)),
                Err(e) if e.is_unsupported() => out.skipped.push(e),
                Err(e) => out.errors.push(e),
            }
        }
    }
    out
}

fn event_name(v: &Value) -> &str {
    v.get("eventName").and_then(Value::as_str).unwrap_or("?")
}

/// Runs the test records of every rule in `sources`, both on the rule alone
/// and through a [`RuleSet`] (so the index is tested too), with
/// `placeholders` for the rules' `|expand` values.
pub fn run(sources: &[RuleSource], placeholders: &Placeholders) -> TestReport {
    let Parsed {
        rules: parsed,
        correlations,
        errors,
        skipped,
    } = parse_all(sources, placeholders);
    let loadable: Vec<RuleSource> = parsed.iter().map(|(_, s)| s.clone()).collect();
    let set = RuleSet::layered_with(&loadable, &[], placeholders).ok();
    let mut report = TestReport {
        rules: parsed.len(),
        errors,
        skipped,
        ..TestReport::default()
    };
    run_correlations(sources, placeholders, &correlations, &mut report);
    for (p, _) in &parsed {
        let rule = &p.rule;
        let Some(tests) = p.tests.as_ref().filter(|t| !t.matching.is_empty()) else {
            report
                .untested
                .push(format!("{} [{}]", rule.origin(), rule.id()));
            continue;
        };
        let cases = tests
            .matching
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("match[{i}]"), r, true))
            .chain(
                tests
                    .not_matching
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("no_match[{i}]"), r, false)),
            );
        for (case, record, expected) in cases {
            report.cases += 1;
            let direct = rule.matches(record);
            let fail = |reason: String| CaseFailure {
                origin: rule.origin().to_string(),
                rule_id: rule.id().to_string(),
                title: rule.meta().title.clone(),
                case: case.clone(),
                reason,
            };
            if direct != expected {
                report.failures.push(fail(format!(
                    "{} {} but should {}",
                    event_name(record),
                    if direct { "matched" } else { "did not match" },
                    if expected { "match" } else { "not match" },
                )));
                continue;
            }
            if let Some(set) = &set {
                if set.rules().iter().any(|r| r.id() == rule.id()) {
                    let indexed = set.matching(record).iter().any(|r| r.id() == rule.id());
                    if indexed != direct {
                        report.failures.push(fail(format!(
                            "{}: the rule index disagrees with the rule (engine bug)",
                            event_name(record)
                        )));
                    }
                }
            }
        }
    }
    report
}

/// The correlations' test sequences, through a rule set of every source
/// that loads (correlations may reference rules of other files).
fn run_correlations(
    sources: &[RuleSource],
    placeholders: &Placeholders,
    correlations: &[ParsedCorrelation],
    report: &mut TestReport,
) {
    if correlations.is_empty() {
        return;
    }
    let loadable: Vec<RuleSource> = sources
        .iter()
        .filter(|s| RuleSet::layered_with(std::slice::from_ref(*s), &[], placeholders).is_ok())
        .cloned()
        .collect();
    let Ok(set) = RuleSet::layered_with(&loadable, &[], placeholders) else {
        return;
    };
    report.correlations += correlations.len();
    let (cases, failures) = check::run_sequences(&set, correlations);
    report.cases += cases;
    report
        .failures
        .extend(failures.into_iter().map(|f| CaseFailure {
            origin: f.origin,
            rule_id: f.correlation,
            title: f.title,
            case: f.case,
            reason: f.reason,
        }));
}

/// How serious a lint finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LintLevel {
    Warning,
    Error,
}

/// One lint finding.
#[derive(Debug, Clone)]
pub struct LintIssue {
    pub level: LintLevel,
    pub origin: String,
    pub message: String,
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-' || *c == b'/',
            _ => c.is_ascii_digit(),
        })
}

/// Checks `sources` for what makes a rule hard to trust (with
/// `placeholders` for their `|expand` values: one they lack is an error).
pub fn lint(sources: &[RuleSource], placeholders: &Placeholders) -> Vec<LintIssue> {
    let mut linter = Linter::default();
    let parsed = parse_all(sources, placeholders);
    for (p, src) in &parsed.rules {
        linter.rule(src, p);
    }
    for e in parsed.errors.iter().chain(&parsed.skipped) {
        linter.unparsable(&e.origin, e);
    }
    linter.correlations(sources, placeholders, &parsed.correlations);
    let mut out = linter.issues;
    out.sort_by(|a, b| a.origin.cmp(&b.origin).then(b.level.cmp(&a.level)));
    out
}

/// Lint findings so far, and the rule ids seen (to catch duplicates).
#[derive(Default)]
struct Linter {
    issues: Vec<LintIssue>,
    /// Rule id to the origin that first had it.
    ids: HashMap<String, String>,
}

impl Linter {
    fn issue(&mut self, level: LintLevel, origin: &str, message: String) {
        self.issues.push(LintIssue {
            level,
            origin: origin.to_string(),
            message,
        })
    }

    /// A rule that does not load: an error, or a warning when it only needs
    /// what the engine does not support.
    fn unparsable(&mut self, origin: &str, e: &RuleError) {
        let level = if e.is_unsupported() {
            LintLevel::Warning
        } else {
            LintLevel::Error
        };
        let mut msg = e.kind.to_string();
        if let super::error::RuleErrorKind::UnknownModifier { .. } = e.kind {
            msg.push_str(&format!(" (known: {})", MODIFIERS.join(", ")));
        }
        self.issue(level, origin, msg);
    }

    /// Correlations: their own checks, and references that do not resolve
    /// (against every source that loads).
    fn correlations(
        &mut self,
        sources: &[RuleSource],
        placeholders: &Placeholders,
        correlations: &[ParsedCorrelation],
    ) {
        for p in correlations {
            for (error, message) in check::lint_correlation(p) {
                let level = if error {
                    LintLevel::Error
                } else {
                    LintLevel::Warning
                };
                let message = format!("correlation {}: {message}", p.correlation.id);
                self.issue(level, &p.correlation.origin, message);
            }
        }
        let loadable: Vec<RuleSource> = sources
            .iter()
            .filter(|s| RuleSet::layered_with(std::slice::from_ref(*s), &[], placeholders).is_ok())
            .cloned()
            .collect();
        if let Ok(set) = RuleSet::layered_with(&loadable, &[], placeholders) {
            for e in check::reference_errors(&set) {
                self.issue(LintLevel::Error, &e.origin, e.kind.to_string());
            }
        }
    }

    /// Every check of one rule that loads, in the order they are reported.
    fn rule(&mut self, src: &RuleSource, p: &ParsedRule) {
        let o = &src.origin;
        let yaml: serde_yaml::Value = serde_yaml::from_str(&src.text).unwrap_or_default();
        for n in &p.notes {
            let level = if n.starts_with("missing `id`") || n.starts_with("missing `level`") {
                LintLevel::Error
            } else {
                LintLevel::Warning
            };
            self.issue(level, o, n.clone());
        }
        self.id(o, &p.rule, &yaml);
        self.attack_tags(o, &p.rule);
        self.metadata(o, &p.rule, &yaml);
        self.tests(o, p.tests.as_ref(), p.rule.logsource());
        self.catch_all(o, &p.rule);
    }

    /// A UUID, and not one another rule already has (a user's rule may
    /// replace a bundled one).
    fn id(&mut self, o: &str, rule: &Rule, yaml: &serde_yaml::Value) {
        if has(yaml, "id") && !is_uuid(rule.id()) {
            self.issue(
                LintLevel::Warning,
                o,
                format!("id {} is not a UUID", rule.id()),
            );
        }
        if let Some(other) = self.ids.insert(rule.id().to_string(), o.to_string()) {
            if other.starts_with("bundled:") && !o.starts_with("bundled:") {
                self.issue(
                    LintLevel::Warning,
                    o,
                    format!("replaces the bundled rule {other} (same id {})", rule.id()),
                );
            } else {
                self.issue(
                    LintLevel::Error,
                    o,
                    format!("duplicate id {} (also in {other})", rule.id()),
                );
            }
        }
    }

    fn attack_tags(&mut self, o: &str, rule: &Rule) {
        if rule.tags().is_empty() {
            self.issue(LintLevel::Error, o, "missing `tags`".into());
        } else if rule.meta().tactics.is_empty() {
            self.issue(
                LintLevel::Warning,
                o,
                "no ATT&CK tactic tag (e.g. attack.defense_evasion)".into(),
            );
        }
        if rule.meta().techniques.is_empty() {
            self.issue(
                LintLevel::Warning,
                o,
                "no ATT&CK technique tag (e.g. attack.t1562.008)".into(),
            );
        }
    }

    /// What responders read: description, status, author, date, false
    /// positives, and a title that fits an alert.
    fn metadata(&mut self, o: &str, rule: &Rule, yaml: &serde_yaml::Value) {
        for key in ["description", "status", "author", "date", "falsepositives"] {
            if !has(yaml, key) {
                self.issue(LintLevel::Warning, o, format!("missing `{key}`"));
            }
        }
        if let Some(d) = yaml.get("date").and_then(serde_yaml::Value::as_str) {
            if !is_date(d) {
                self.issue(LintLevel::Warning, o, format!("date {d} is not YYYY-MM-DD"));
            }
        }
        if rule.meta().title.chars().count() > 110 {
            self.issue(
                LintLevel::Warning,
                o,
                "title longer than 110 characters".into(),
            );
        }
    }

    /// `vigil_tests`: at least one record to match, one not to, and records
    /// that look like what the rule reads (CloudTrail records, GuardDuty
    /// findings).
    fn tests(&mut self, o: &str, tests: Option<&RuleTests>, source: LogSource) {
        let Some(t) = tests else {
            self.issue(LintLevel::Error, o, "missing `vigil_tests`".into());
            return;
        };
        if t.matching.is_empty() {
            self.issue(LintLevel::Error, o, "no `vigil_tests.match` record".into());
        }
        if t.not_matching.is_empty() {
            self.issue(
                LintLevel::Warning,
                o,
                "no `vigil_tests.no_match` record".into(),
            );
        }
        let fields: &[&str] = match source {
            LogSource::CloudTrail => &[
                "eventSource",
                "eventName",
                "eventTime",
                "awsRegion",
                "eventID",
            ],
            LogSource::GuardDuty => &["id", "type", "severity", "region", "createdAt"],
        };
        for (i, r) in t.matching.iter().chain(&t.not_matching).enumerate() {
            let missing: Vec<&str> = fields
                .iter()
                .copied()
                .filter(|k| r.get(*k).is_none())
                .collect();
            if !missing.is_empty() {
                self.issue(
                    LintLevel::Warning,
                    o,
                    format!("test record {i} lacks {}", missing.join(", ")),
                );
            }
        }
    }

    /// A rule of some weight that every event meets is often a mistake.
    fn catch_all(&mut self, o: &str, rule: &Rule) {
        if rule.meta().severity >= Severity::Medium
            && rule.required_exact("eventName").is_none()
            && rule.required_exact("eventSource").is_none()
        {
            self.issue(
                LintLevel::Warning,
                o,
                format!(
                    "level {} with no eventName/eventSource: runs on every event; make sure it is not a catch-all",
                    rule.meta().severity.label().to_lowercase()
                ),
            );
        }
    }
}

/// Whether the rule's YAML sets `key` (to anything but null).
fn has(yaml: &serde_yaml::Value, key: &str) -> bool {
    yaml.get(key).is_some_and(|v| !v.is_null())
}

/// Lint findings as people read them, with a summary line.
pub fn render_lint(issues: &[LintIssue]) -> String {
    let mut s = String::new();
    for i in issues {
        let level = match i.level {
            LintLevel::Error => "error",
            LintLevel::Warning => "warning",
        };
        let _ = writeln!(s, "{level}: {}: {}", i.origin, i.message);
    }
    let errors = issues
        .iter()
        .filter(|i| i.level == LintLevel::Error)
        .count();
    let _ = writeln!(s, "{errors} errors, {} warnings", issues.len() - errors);
    s
}

/// One line per rule: id, level, title, tactics.
pub fn render_list(set: &RuleSet) -> String {
    let mut s = String::new();
    for r in set.rules() {
        let m = r.meta();
        let tactics: Vec<&str> = m.tactics.iter().map(|t| t.name()).collect();
        let _ = writeln!(
            s,
            "{:<36}  {:<13}  {}  [{}]",
            m.id,
            m.severity.as_str(),
            m.title,
            tactics.join(", ")
        );
    }
    for e in set.skipped() {
        let _ = writeln!(s, "skipped {e}");
    }
    let _ = writeln!(
        s,
        "{} rules ({} skipped)",
        set.rules().len(),
        set.skipped().len()
    );
    s
}

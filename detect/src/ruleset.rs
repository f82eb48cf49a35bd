//! The compiled rule set: what the CloudTrail function builds once per cold
//! start and runs on every record.
//!
//! Most rules name the API calls they care about (`eventName`), so the set
//! keeps an index from lower-cased `eventName` (and, for rules that only pin
//! the service, `eventSource`) to rules; a record is tested only against the
//! rules its name or source can match, plus the few rules that could match
//! any call (unauthorized calls, root use).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use serde_json::Value;

use super::correlation::{self, CorrelationRef, Observation};
use super::error::{RuleError, RuleErrorKind, Unsupported};
use super::matcher::with_lowercase;
use super::placeholder::Placeholders;
use super::sigma::Rule;
use super::{Detector, LogSource, RuleMeta};

mod bundled {
    //! The rules under `rules/`, embedded by `build.rs`: a Lambda ships only
    //! its binary.
    include!(concat!(env!("OUT_DIR"), "/bundled_rules.rs"));
}

/// Rule text and where it came from.
#[derive(Debug, Clone)]
pub struct RuleSource {
    /// A file path, or `bundled:<path under rules/>`.
    pub origin: String,
    pub text: Cow<'static, str>,
}

impl RuleSource {
    /// The rule files embedded in the binary (YAML, with their
    /// `vigil_tests`), in path order: what `vigil rules test|lint` read.
    pub fn bundled() -> Vec<RuleSource> {
        bundled::RULES
            .iter()
            .map(|(path, yaml, _)| RuleSource {
                origin: format!("bundled:{path}"),
                text: Cow::Borrowed(yaml),
            })
            .collect()
    }

    /// The same rules as functions load them: without their tests and
    /// already converted to JSON by build.rs (JSON is YAML, and parses many
    /// times faster at every cold start).
    pub fn bundled_runtime() -> Vec<RuleSource> {
        bundled::RULES
            .iter()
            .map(|(path, _, json)| RuleSource {
                origin: format!("bundled:{path}"),
                text: Cow::Borrowed(json),
            })
            .collect()
    }

    /// Every `*.yml` / `*.yaml` file under `dir`, recursively, in path order
    /// (hidden files and folders skipped).
    pub fn dir(dir: &Path) -> Result<Vec<RuleSource>, RuleError> {
        let mut files = Vec::new();
        collect(dir, &mut files, 0)?;
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let origin = p.display().to_string();
                fs::read_to_string(&p)
                    .map(|text| RuleSource {
                        origin: origin.clone(),
                        text: Cow::Owned(text),
                    })
                    .map_err(|e| RuleError::new(origin, RuleErrorKind::Io(e)))
            })
            .collect()
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>, depth: usize) -> Result<(), RuleError> {
    const MAX_DEPTH: usize = 16;
    let io = |e| RuleError::new(dir.display().to_string(), RuleErrorKind::Io(e));
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, out, depth + 1)?;
        } else if name.ends_with(".yml") || name.ends_with(".yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The compiled rules and their index.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_name: HashMap<Box<str>, Vec<u32>>,
    by_source: HashMap<Box<str>, Vec<u32>>,
    always: Vec<u32>,
    /// GuardDuty rules (correlation inputs), tested on findings only.
    guardduty: Vec<u32>,
    /// Per rule: whether it may read `errorCode`/`errorMessage`, the only
    /// rules a failed call can be an attempt at.
    reads_errors: Vec<bool>,
    skipped: Vec<RuleError>,
    /// Correlation rules and which rules feed them ([`correlation::Links`]).
    links: correlation::Links,
}

/// The fields a failed call has and a successful one lacks: hidden to see
/// what the call would have matched had it worked.
const ERROR_FIELDS: [&str; 2] = ["errorCode", "errorMessage"];

/// `record` without [`ERROR_FIELDS`]. Only failed records whose candidate
/// rules read those fields pay for this copy.
fn without_errors(record: &Value) -> Value {
    match record {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !ERROR_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl RuleSet {
    /// The bundled rules. Every one of them must load (the tests make sure).
    pub fn bundled() -> Result<RuleSet, RuleError> {
        RuleSet::strict(&RuleSource::bundled_runtime())
    }

    /// Compiles `sources`; any rule that fails to load, for any reason, is an error.
    pub fn strict(sources: &[RuleSource]) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::layered(sources, &[])?;
        if set.skipped.is_empty() {
            return Ok(set);
        }
        Err(set.skipped.swap_remove(0))
    }

    /// [`RuleSet::load_with`] without placeholders.
    pub fn load(rules_dir: Option<&Path>) -> Result<RuleSet, RuleError> {
        RuleSet::load_with(rules_dir, &Placeholders::new())
    }

    /// What a function runs: the bundled rules plus the folder `rules_dir`
    /// (the functions pass `VIGIL_RULES_DIR`), whose rules replace bundled
    /// ones with the same id, with `placeholders` for their `|expand`
    /// values (`VIGIL_SIGMA_PLACEHOLDERS`). Rules that need unsupported Sigma
    /// features or are retired are skipped with a warning; a rule that is
    /// wrong, or names a placeholder `placeholders` lacks, fails start-up,
    /// because silently dropping it could hide every alert it exists for.
    pub fn load_with(
        rules_dir: Option<&Path>,
        placeholders: &Placeholders,
    ) -> Result<RuleSet, RuleError> {
        let extra = match rules_dir {
            Some(dir) => RuleSource::dir(dir)?,
            None => Vec::new(),
        };
        let set = RuleSet::layered_with(&RuleSource::bundled_runtime(), &extra, placeholders)?;
        for s in &set.skipped {
            tracing::warn!(rule = %s.origin, reason = %s.kind, "detection rule skipped");
        }
        let extra_dir = rules_dir.map(Path::to_string_lossy).unwrap_or_default();
        tracing::info!(
            rules = set.rules.len(),
            skipped = set.skipped.len(),
            extra_dir = &*extra_dir,
            placeholders = placeholders.len(),
            "detection rules loaded"
        );
        Ok(set)
    }

    /// [`RuleSet::layered_with`] without placeholders.
    pub fn layered(base: &[RuleSource], overrides: &[RuleSource]) -> Result<RuleSet, RuleError> {
        RuleSet::layered_with(base, overrides, &Placeholders::new())
    }

    /// Compiles `base` then `overrides` (same id: the override wins), with
    /// `placeholders` for `|expand` values. Unsupported and retired rules are
    /// kept in [`RuleSet::skipped`]; invalid rules, unconfigured placeholders
    /// and duplicate ids within one layer are errors.
    pub fn layered_with(
        base: &[RuleSource],
        overrides: &[RuleSource],
        placeholders: &Placeholders,
    ) -> Result<RuleSet, RuleError> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut skipped = Vec::new();
        let mut loaded = correlation::Loaded::default();
        for (layer, sources) in [base, overrides].into_iter().enumerate() {
            let mut seen: HashMap<String, String> = HashMap::new();
            for src in sources {
                let file_rules = match parse_source(src, placeholders, &mut loaded) {
                    Ok(r) => r,
                    Err(e) if e.is_unsupported() => {
                        skipped.push(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for rule in file_rules {
                    if let Some(other) = seen.insert(rule.id().to_string(), src.origin.clone()) {
                        return Err(RuleError::new(
                            &src.origin,
                            RuleErrorKind::DuplicateId {
                                id: rule.id().to_string(),
                                other,
                            },
                        ));
                    }
                    if layer > 0 {
                        if let Some(pos) = rules.iter().position(|r| r.id() == rule.id()) {
                            tracing::info!(rule = rule.id(), by = %src.origin, "bundled rule replaced");
                            rules.remove(pos);
                        }
                    }
                    if rule.is_retired() {
                        skipped.push(RuleError::new(
                            &src.origin,
                            RuleErrorKind::Unsupported(Unsupported::Status(
                                rule.status().unwrap_or_default().to_string(),
                            )),
                        ));
                        continue;
                    }
                    rules.push(rule);
                }
            }
        }
        let links = loaded.link(&rules, &mut skipped);
        let mut set = RuleSet::index(rules, skipped);
        set.links = links;
        Ok(set)
    }

    /// The correlation rules loaded (those whose references all resolved).
    pub fn correlations(&self) -> &[CorrelationRef] {
        self.links.correlations()
    }

    /// Whether the rule (by id) alerts on its own: false for a rule only
    /// correlations with `generate: false` reference.
    pub fn generates(&self, rule_id: &str) -> bool {
        self.rules
            .iter()
            .position(|r| r.id() == rule_id)
            .is_some_and(|i| !self.links.is_silent(i))
    }

    fn index(rules: Vec<Rule>, skipped: Vec<RuleError>) -> RuleSet {
        let mut set = RuleSet {
            skipped,
            ..RuleSet::default()
        };
        for (i, rule) in rules.iter().enumerate() {
            let i = i as u32;
            if !rule.logsource().is_cloudtrail() {
                set.guardduty.push(i);
            } else if let Some(names) = rule.required_exact("eventName") {
                for n in names {
                    set.by_name.entry(n).or_default().push(i);
                }
            } else if let Some(sources) = rule.required_exact("eventSource") {
                for s in sources {
                    set.by_source.entry(s).or_default().push(i);
                }
            } else {
                set.always.push(i);
            }
        }
        set.reads_errors = rules.iter().map(|r| r.may_read(&ERROR_FIELDS)).collect();
        set.rules = rules;
        set
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Rules left out, with the reason (unsupported features, retired).
    pub fn skipped(&self) -> &[RuleError] {
        &self.skipped
    }

    /// Rules evaluated against every record (no `eventName`/`eventSource`
    /// they are limited to): each one costs on every event.
    pub fn unindexed(&self) -> impl Iterator<Item = &Rule> {
        self.always.iter().map(|&i| &self.rules[i as usize])
    }

    /// The rules that match `record`, in the set's order.
    pub fn matching<'a>(&'a self, record: &Value) -> Vec<&'a Rule> {
        let mut out = Vec::new();
        self.each_candidate(record, |r| {
            if r.matches(record) {
                out.push(r);
            }
        });
        out.sort_by_key(|r| self.position(r));
        out
    }

    fn position(&self, r: &Rule) -> usize {
        self.rules
            .iter()
            .position(|x| std::ptr::eq(x, r))
            .unwrap_or(usize::MAX)
    }

    /// The rules of `record`'s log ([`LogSource::of_event`]) it may match.
    fn each_candidate<'a>(&'a self, record: &Value, mut f: impl FnMut(&'a Rule)) {
        match LogSource::of_event(record) {
            LogSource::CloudTrail => self.each_candidate_at(record, |_, r| f(r)),
            LogSource::GuardDuty => self.each_finding_rule(|_, r| f(r)),
        }
    }

    /// The GuardDuty rules, with each rule's index.
    fn each_finding_rule<'a>(&'a self, mut f: impl FnMut(usize, &'a Rule)) {
        for &i in &self.guardduty {
            f(i as usize, &self.rules[i as usize]);
        }
    }

    /// The CloudTrail rules `record` may match, with each rule's index.
    fn each_candidate_at<'a>(&'a self, record: &Value, mut f: impl FnMut(usize, &'a Rule)) {
        // The index reads string names; anything else (never seen from
        // CloudTrail, possible from a hand-made event) meets every rule, so
        // the answer never depends on the index.
        let odd = |k: &str| record.get(k).is_some_and(|v| !v.is_string());
        if odd("eventName") || odd("eventSource") {
            self.rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.logsource().is_cloudtrail())
                .for_each(|(i, r)| f(i, r));
            return;
        }
        let lookup = |map: &'a HashMap<Box<str>, Vec<u32>>, key: &str| -> &'a [u32] {
            record
                .get(key)
                .and_then(Value::as_str)
                .and_then(|v| with_lowercase(v, |l| map.get(l)))
                .map(Vec::as_slice)
                .unwrap_or(&[])
        };
        let by_name = lookup(&self.by_name, "eventName");
        let by_source = lookup(&self.by_source, "eventSource");
        for &i in by_name.iter().chain(by_source).chain(&self.always) {
            f(i as usize, &self.rules[i as usize]);
        }
    }

    /// The rules `record` is an attempt at (see [`Detector::attempts`]), in
    /// the set's order.
    pub fn attempted<'a>(&'a self, record: &Value) -> Vec<&'a Rule> {
        let mut metas = Vec::new();
        let hits: Vec<&RuleMeta> = self.matching(record).into_iter().map(Rule::meta).collect();
        self.attempts(record, &hits, &mut metas);
        let mut out: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| metas.iter().any(|m| std::ptr::eq(*m, r.meta())))
            .collect();
        out.sort_by_key(|r| self.position(r));
        out
    }

    /// Checks the index agrees with evaluating every rule (for tests).
    #[doc(hidden)]
    pub fn matching_unindexed<'a>(&'a self, record: &Value) -> Vec<&'a Rule> {
        let source = LogSource::of_event(record);
        self.rules
            .iter()
            .filter(|r| r.logsource() == source && r.matches(record))
            .collect()
    }

    /// Ids of the loaded rules.
    pub fn ids(&self) -> HashSet<&str> {
        self.rules.iter().map(Rule::id).collect()
    }
}

/// One source's rules: one for a plain rule file; for a file of several
/// documents or with correlations, its plain rules (its correlations go to
/// `loaded`).
fn parse_source(
    src: &RuleSource,
    placeholders: &Placeholders,
    loaded: &mut correlation::Loaded,
) -> Result<Vec<Rule>, RuleError> {
    match Rule::parse_with(&src.origin, &src.text, placeholders) {
        Ok(r) => Ok(vec![r]),
        Err(e) if correlation::is_multi_error(&e) => loaded.load_file(
            &src.origin,
            &super::sigma::strip_tests(&src.text),
            placeholders,
        ),
        Err(e) => Err(e),
    }
}

impl Detector for RuleSet {
    fn detect<'a>(&'a self, record: &Value, hits: &mut Vec<&'a RuleMeta>) {
        // CloudTrail rules only: GuardDuty rules feed correlations, never alert.
        if self.links.is_empty() {
            self.each_candidate_at(record, |_, r| {
                if r.matches(record) {
                    hits.push(r.meta());
                }
            });
            return;
        }
        self.each_candidate_at(record, |i, r| {
            if !self.links.is_silent(i) && r.matches(record) {
                hits.push(r.meta());
            }
        });
    }

    fn correlate(&self, record: &Value, out: &mut Vec<Observation>) {
        self.correlate_from(LogSource::CloudTrail, record, out);
    }

    fn correlate_from(&self, source: LogSource, event: &Value, out: &mut Vec<Observation>) {
        if self.links.is_empty() {
            return;
        }
        let mut observe = |i: usize, r: &Rule| {
            if self.links.feeds(i) && r.matches(event) {
                self.links.observe(i, r, event, out);
            }
        };
        match source {
            LogSource::CloudTrail => self.each_candidate_at(event, observe),
            LogSource::GuardDuty => self.each_finding_rule(&mut observe),
        }
    }

    fn attempts<'a>(&'a self, record: &Value, hits: &[&'a RuleMeta], out: &mut Vec<&'a RuleMeta>) {
        let failed = ERROR_FIELDS.iter().any(|k| record.get(*k).is_some());
        if !failed {
            return;
        }
        let mut hidden: Option<Value> = None;
        self.each_candidate_at(record, |i, r| {
            let reads_errors = self.reads_errors.get(i).copied().unwrap_or(true);
            if !reads_errors
                || self.links.is_silent(i)
                || hits.iter().any(|h| std::ptr::eq(*h, r.meta()))
            {
                return;
            }
            let view = hidden.get_or_insert_with(|| without_errors(record));
            if r.matches(view) {
                out.push(r.meta());
            }
        });
    }

    fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

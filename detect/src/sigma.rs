//! Sigma rules: YAML in, a compiled [`Rule`] out.
//!
//! A rule file is one SigmaHQ-format rule (`title`, `id`, `status`,
//! `description`, `references`, `author`, `date`, `tags`, `logsource`,
//! `detection`, `falsepositives`, `level`). Vigil adds two custom top-level
//! keys, which Sigma permits and other tools ignore: `vigil_join_only` (a
//! rule feeding correlations only joins windows others started, see
//! [`Rule::join_only`]) and `vigil_tests`, the rule's own CloudTrail records
//! (GuardDuty findings, for a GuardDuty rule) that must and must not match:
//!
//! ```yaml
//! vigil_tests:
//!   match:
//!     - {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging, ...}
//!   no_match:
//!     - {eventSource: cloudtrail.amazonaws.com, eventName: StartLogging, ...}
//! ```
//!
//! Test records are bare CloudTrail records (or EventBridge events, whose
//! `detail` is used).

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};

use super::condition::{self, Expr};
use super::error::{RuleError, RuleErrorKind, Unsupported};
use super::matcher::{compile_field, Constraint, FieldMatcher};
use super::placeholder::Placeholders;
use super::{LogSource, RuleKind, RuleMeta};
use vigil_model::{Severity, Tactic, Technique};

/// The top-level keys Sigma defines (plus Vigil's `vigil_tests`); anything
/// else is kept by Sigma tools but flagged by `vigil rules lint` as a likely typo.
pub(crate) const KNOWN_KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "related",
    "taxonomy",
    "status",
    "description",
    "license",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "logsource",
    "detection",
    "fields",
    "falsepositives",
    "level",
    "scope",
    "vigil_tests",
    "vigil_join_only",
];

/// One search identifier's compiled form.
#[derive(Debug, Clone)]
pub(crate) enum Selection {
    /// A map: every entry must match.
    All(Vec<FieldMatcher>),
    /// A list of maps: any map must match.
    Any(Vec<Vec<FieldMatcher>>),
}

impl Selection {
    fn matches(&self, record: &Value) -> bool {
        match self {
            Selection::All(fields) => fields.iter().all(|f| f.matches(record)),
            Selection::Any(groups) => groups
                .iter()
                .any(|fields| fields.iter().all(|f| f.matches(record))),
        }
    }

    fn groups(&self) -> Vec<&[FieldMatcher]> {
        match self {
            Selection::All(fields) => vec![fields],
            Selection::Any(groups) => groups.iter().map(Vec::as_slice).collect(),
        }
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    meta: RuleMeta,
    origin: String,
    status: Option<String>,
    tags: Vec<String>,
    selections: Vec<Selection>,
    condition: Expr,
    /// `vigil_join_only: true`: its correlation observations only join a
    /// window and group that an event of another rule started.
    join_only: bool,
    /// What it reads (`logsource`).
    logsource: LogSource,
}

/// A rule's own test records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleTests {
    /// Records the rule must match.
    pub matching: Vec<Value>,
    /// Records the rule must not match.
    pub not_matching: Vec<Value>,
}

/// A rule, its tests, and what lint should know about how it was written.
#[derive(Debug, Clone)]
pub struct ParsedRule {
    pub rule: Rule,
    /// `None` when the rule has no `vigil_tests`.
    pub tests: Option<RuleTests>,
    /// Problems that do not stop the rule from working (for `vigil rules lint`).
    pub notes: Vec<String>,
}

impl Rule {
    /// Parses and compiles one rule file, for running it: its `vigil_tests`
    /// are cut out before parsing (they are most of a bundled rule's text, and
    /// cold start pays for every byte parsed). No placeholders: a `%name%`
    /// under `|expand` is an error.
    pub fn parse(origin: &str, text: &str) -> Result<Rule, RuleError> {
        Rule::parse_with(origin, text, &Placeholders::new())
    }

    /// [`Rule::parse`], with values for the rule's `|expand` placeholders.
    pub fn parse_with(
        origin: &str,
        text: &str,
        placeholders: &Placeholders,
    ) -> Result<Rule, RuleError> {
        Ok(Rule::parse_full_with(origin, &strip_tests(text), placeholders)?.rule)
    }

    /// Parses a rule with its test records and lint notes.
    pub fn parse_full(origin: &str, text: &str) -> Result<ParsedRule, RuleError> {
        Rule::parse_full_with(origin, text, &Placeholders::new())
    }

    /// [`Rule::parse_full`], with values for the rule's `|expand` placeholders.
    pub fn parse_full_with(
        origin: &str,
        text: &str,
        placeholders: &Placeholders,
    ) -> Result<ParsedRule, RuleError> {
        parse_doc(origin, text, placeholders).map_err(|kind| RuleError::new(origin, kind))
    }

    pub fn meta(&self) -> &RuleMeta {
        &self.meta
    }

    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// Where the rule came from (file path, or `bundled:<path>`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    /// All Sigma tags as written (`attack.t1562.008`, `cis.4.5`...).
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// `vigil_join_only: true` (a Vigil extension): what the rule matches
    /// adds to a correlation window only when the window already holds an
    /// event of a rule without it, so a rule matching routine calls writes
    /// no state for them.
    pub fn join_only(&self) -> bool {
        self.join_only
    }

    /// The log the rule reads (its `logsource`).
    pub fn logsource(&self) -> LogSource {
        self.logsource
    }

    /// Retired rules (`status: deprecated` or `unsupported`) are not run.
    pub fn is_retired(&self) -> bool {
        matches!(
            self.status
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("deprecated" | "unsupported")
        )
    }

    /// Whether `record` (one CloudTrail record) matches.
    pub fn matches(&self, record: &Value) -> bool {
        self.condition
            .eval(&|i| self.selections.get(i).is_some_and(|s| s.matches(record)))
    }

    /// Whether the rule may read one of the top-level fields `keys` (see
    /// `FieldMatcher::may_read`): the rule set asks it once per rule, to
    /// know which rules a failed call's `errorCode` can change.
    pub(crate) fn may_read(&self, keys: &[&str]) -> bool {
        self.selections
            .iter()
            .flat_map(Selection::groups)
            .flatten()
            .any(|f| f.may_read(keys))
    }

    /// The exact values (lower-cased) `field` must have for this rule to
    /// match, when the condition pins them down; `None` when any value could.
    pub(crate) fn required_exact(&self, field: &str) -> Option<BTreeSet<Box<str>>> {
        self.required_in(&self.condition, field)
    }

    fn required_in(&self, e: &Expr, field: &str) -> Option<BTreeSet<Box<str>>> {
        match e {
            Expr::Sel(i) => {
                let groups = self.selections.get(*i)?.groups();
                let mut out = BTreeSet::new();
                for g in groups {
                    let set = g
                        .iter()
                        .filter(|f| f.path() == field)
                        .filter_map(|f| f.exact_values())
                        .map(|v| v.into_iter().collect::<BTreeSet<_>>())
                        .reduce(|a, b| a.intersection(&b).cloned().collect())?;
                    out.extend(set);
                }
                Some(out)
            }
            Expr::Not(_) => None,
            Expr::And(es) => es
                .iter()
                .filter_map(|x| self.required_in(x, field))
                .reduce(|a, b| a.intersection(&b).cloned().collect()),
            Expr::Or(es) => {
                let mut out = BTreeSet::new();
                for x in es {
                    out.extend(self.required_in(x, field)?);
                }
                Some(out)
            }
        }
    }

    /// A necessary condition for this rule to match, as alternatives (OR) of
    /// per-field constraints (AND), over `fields` only. An empty alternative
    /// means "any record". Used to derive EventBridge patterns.
    pub(crate) fn need(&self, fields: &[&str]) -> Vec<Need> {
        let mut alts = self.need_in(&self.condition, fields);
        prune(&mut alts);
        alts
    }

    fn need_in(&self, e: &Expr, fields: &[&str]) -> Vec<Need> {
        const MAX_ALTERNATIVES: usize = 256;
        match e {
            Expr::Sel(i) => match self.selections.get(*i) {
                Some(sel) => sel
                    .groups()
                    .into_iter()
                    .map(|g| {
                        let mut need = Need::new();
                        for f in g {
                            if !fields.contains(&f.path()) {
                                continue;
                            }
                            if let Some(c) = f.constraints() {
                                let set: BTreeSet<Constraint> = c.into_iter().collect();
                                need.entry(f.path().to_string())
                                    .and_modify(|old| *old = intersect(old, &set))
                                    .or_insert(set);
                            }
                        }
                        need
                    })
                    .collect(),
                None => vec![Need::new()],
            },
            Expr::Not(_) => vec![Need::new()],
            Expr::Or(es) => {
                let mut out = Vec::new();
                for x in es {
                    out.extend(self.need_in(x, fields));
                }
                if out.iter().any(Need::is_empty) || out.len() > MAX_ALTERNATIVES {
                    return vec![Need::new()];
                }
                out
            }
            Expr::And(es) => {
                let mut acc = vec![Need::new()];
                for x in es {
                    let rhs = self.need_in(x, fields);
                    if rhs.iter().any(Need::is_empty) {
                        continue;
                    }
                    if acc.len() * rhs.len() > MAX_ALTERNATIVES {
                        // Keep the weaker condition: still necessary.
                        if acc.iter().all(Need::is_empty) {
                            acc = rhs;
                        }
                        continue;
                    }
                    let mut next = Vec::new();
                    for a in &acc {
                        for b in &rhs {
                            let mut m = a.clone();
                            let mut possible = true;
                            for (k, v) in b {
                                let merged = match m.get(k) {
                                    Some(old) => intersect(old, v),
                                    None => v.clone(),
                                };
                                if merged.is_empty() {
                                    possible = false;
                                }
                                m.insert(k.clone(), merged);
                            }
                            if possible {
                                next.push(m);
                            }
                        }
                    }
                    acc = next;
                }
                acc
            }
        }
    }
}

/// Per-field constraints that must all hold (each field: any constraint).
pub(crate) type Need = std::collections::BTreeMap<String, BTreeSet<Constraint>>;

/// Both constraint sets must hold: exact values common to both; otherwise
/// keep the first (a weaker but still necessary condition). Empty means the
/// two cannot hold together.
fn intersect(a: &BTreeSet<Constraint>, b: &BTreeSet<Constraint>) -> BTreeSet<Constraint> {
    let exact = |s: &BTreeSet<Constraint>| s.iter().all(|c| matches!(c, Constraint::Exact(_)));
    if exact(a) && exact(b) {
        a.intersection(b).cloned().collect()
    } else if exact(b) {
        b.clone()
    } else {
        a.clone()
    }
}

/// Drops alternatives implied by a weaker one (`a` subsumes `b` when every
/// field `a` constrains is constrained in `b` to a subset).
pub(crate) fn prune(alts: &mut Vec<Need>) {
    alts.sort();
    alts.dedup();
    let subsumes = |a: &Need, b: &Need| {
        a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|bv| bv.is_subset(v)))
    };
    let mut keep = vec![true; alts.len()];
    for i in 0..alts.len() {
        for j in 0..alts.len() {
            if i != j && keep[j] && subsumes(&alts[j], &alts[i]) && (alts[i] != alts[j] || j < i) {
                keep[i] = false;
                break;
            }
        }
    }
    let mut k = keep.into_iter();
    alts.retain(|_| k.next().unwrap_or(true));
}

// ------------------------------------------------------------------ parsing

/// `text` without its top-level `vigil_tests` block: the key's line and every
/// line after it up to the next top-level key (a line starting with a
/// character other than space, tab, `#` or `-`) or document marker.
pub(crate) fn strip_tests(text: &str) -> std::borrow::Cow<'_, str> {
    let starts_block = |l: &str| {
        l.strip_prefix("vigil_tests")
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    };
    if !text.lines().any(starts_block) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if starts_block(line) {
            skipping = true;
            continue;
        }
        if skipping {
            let top_level = line
                .chars()
                .next()
                .is_some_and(|c| !matches!(c, ' ' | '\t' | '#' | '-' | '\n' | '\r'))
                || line.starts_with("---")
                || line.starts_with("...");
            if !top_level {
                continue;
            }
            skipping = false;
        }
        out.push_str(line);
    }
    std::borrow::Cow::Owned(out)
}

fn invalid(key: &str, reason: impl Into<String>) -> RuleErrorKind {
    RuleErrorKind::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Yaml> {
    map.get(key).filter(|v| !v.is_null())
}

fn string(map: &Mapping, key: &str) -> Result<Option<String>, RuleErrorKind> {
    match get(map, key) {
        None => Ok(None),
        Some(Yaml::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Yaml::Number(n)) => Ok(Some(n.to_string())),
        Some(Yaml::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(invalid(key, "expected a string")),
    }
}

fn strings(map: &Mapping, key: &str) -> Result<Vec<String>, RuleErrorKind> {
    match get(map, key) {
        None => Ok(Vec::new()),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Yaml::String(s) => Ok(s.trim().to_string()),
                Yaml::Number(n) => Ok(n.to_string()),
                Yaml::Bool(b) => Ok(b.to_string()),
                _ => Err(invalid(key, "expected a list of strings")),
            })
            .collect(),
        Some(Yaml::String(s)) => Ok(vec![s.trim().to_string()]),
        Some(_) => Err(invalid(key, "expected a list of strings")),
    }
}

fn key_str(k: &Yaml) -> Option<String> {
    match k {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads one YAML document; several documents are a Sigma rule collection.
/// JSON (a JSON object is a YAML document too) takes serde_json's faster path.
fn load_yaml(text: &str) -> Result<Yaml, RuleErrorKind> {
    if text.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<Yaml>(text) {
            return Ok(v);
        }
    }
    let mut docs = serde_yaml::Deserializer::from_str(text);
    let first = docs
        .next()
        .ok_or_else(|| RuleErrorKind::Yaml("empty file".into()))?;
    let value = Yaml::deserialize(first).map_err(|e| RuleErrorKind::Yaml(e.to_string()))?;
    if let Some(second) = docs.next() {
        if !Yaml::deserialize(second)
            .map(|v| v.is_null())
            .unwrap_or(false)
        {
            return Err(RuleErrorKind::Unsupported(Unsupported::MultiDocument));
        }
    }
    Ok(value)
}

fn parse_doc(
    origin: &str,
    text: &str,
    placeholders: &Placeholders,
) -> Result<ParsedRule, RuleErrorKind> {
    let map = single_rule(load_yaml(text)?)?;
    let mut notes = Vec::new();
    for k in map.keys() {
        let k = key_str(k).unwrap_or_default();
        if !KNOWN_KEYS.contains(&k.as_str()) {
            notes.push(format!("unknown top-level key `{k}`"));
        }
    }

    let title = string(&map, "title")?
        .filter(|t| !t.is_empty())
        .ok_or(RuleErrorKind::Missing("title"))?;
    let id = rule_id(&map, origin, &mut notes)?;
    let severity = level(&map, &mut notes)?;
    let tags = strings(&map, "tags")?;
    let (tactics, techniques) = attack_tags(&tags);
    let logsource = check_logsource(&map, &mut notes)?;

    let Some(Yaml::Mapping(detection)) = get(&map, "detection") else {
        return Err(RuleErrorKind::Missing("detection"));
    };
    let (selections, condition) = compile_detection(detection, placeholders)?;

    let meta = RuleMeta {
        id,
        title,
        description: string(&map, "description")?.unwrap_or_default(),
        severity,
        tactics,
        techniques,
        false_positives: strings(&map, "falsepositives")?,
        references: strings(&map, "references")?,
        kind: RuleKind::of(&tags, origin),
    };
    let tests = match get(&map, "vigil_tests") {
        None => None,
        Some(t) => Some(parse_tests(t)?),
    };
    Ok(ParsedRule {
        rule: Rule {
            meta,
            origin: origin.to_string(),
            status: string(&map, "status")?,
            tags,
            selections,
            condition,
            join_only: join_only(&map)?,
            logsource,
        },
        tests,
        notes,
    })
}

/// The document as one plain rule: a mapping, neither a correlation rule
/// nor part of a rule collection (`action: global`).
fn single_rule(doc: Yaml) -> Result<Mapping, RuleErrorKind> {
    let Yaml::Mapping(map) = doc else {
        return Err(RuleErrorKind::Yaml("a rule is a YAML mapping".into()));
    };
    if map.contains_key("correlation")
        || string(&map, "type").ok().flatten().as_deref() == Some("correlation")
    {
        return Err(RuleErrorKind::Unsupported(Unsupported::Correlation));
    }
    if map.contains_key("action") {
        return Err(RuleErrorKind::Unsupported(Unsupported::MultiDocument));
    }
    Ok(map)
}

/// `vigil_join_only`: a boolean, false when absent.
fn join_only(map: &Mapping) -> Result<bool, RuleErrorKind> {
    match get(map, "vigil_join_only") {
        None => Ok(false),
        Some(Yaml::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid("vigil_join_only", "expected true or false")),
    }
}

/// The rule's `id`, or (noted) its file stem.
fn rule_id(map: &Mapping, origin: &str, notes: &mut Vec<String>) -> Result<String, RuleErrorKind> {
    Ok(match string(map, "id")?.filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => {
            notes.push("missing `id`".into());
            std::path::Path::new(origin)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(origin)
                .to_string()
        }
    })
}

/// The rule's `level`, or (noted) medium.
fn level(map: &Mapping, notes: &mut Vec<String>) -> Result<Severity, RuleErrorKind> {
    Ok(match string(map, "level")? {
        Some(l) => l
            .parse::<Severity>()
            .map_err(|e| invalid("level", e.to_string()))?,
        None => {
            notes.push("missing `level` (read as medium)".into());
            Severity::Medium
        }
    })
}

/// AWS CloudTrail rules, and GuardDuty rules (correlation inputs), run
/// here; a rule without `logsource` is read as CloudTrail (noted).
fn check_logsource(map: &Mapping, notes: &mut Vec<String>) -> Result<LogSource, RuleErrorKind> {
    let Some(ls) = get(map, "logsource") else {
        notes.push("missing `logsource` (read as aws/cloudtrail)".into());
        return Ok(LogSource::CloudTrail);
    };
    let Yaml::Mapping(ls) = ls else {
        return Err(invalid("logsource", "expected a mapping"));
    };
    let product = string(ls, "product")?.map(|s| s.to_ascii_lowercase());
    let service = string(ls, "service")?.map(|s| s.to_ascii_lowercase());
    match LogSource::of_service(service.as_deref()) {
        Some(source) if product.as_deref() == Some("aws") => Ok(source),
        _ => Err(RuleErrorKind::Unsupported(Unsupported::LogSource(format!(
            "product {}, service {}",
            product.as_deref().unwrap_or("-"),
            service.as_deref().unwrap_or("-")
        )))),
    }
}

type Compiled = (Vec<Selection>, Expr);

fn compile_detection(
    detection: &Mapping,
    placeholders: &Placeholders,
) -> Result<Compiled, RuleErrorKind> {
    let mut names = Vec::new();
    let mut selections = Vec::new();
    let mut conditions = Vec::new();
    let mut timeframe = None;
    for (k, v) in detection {
        let name = key_str(k).ok_or_else(|| invalid("detection", "keys must be strings"))?;
        match name.as_str() {
            "condition" => match v {
                Yaml::String(s) => conditions.push(s.clone()),
                Yaml::Sequence(items) => {
                    for i in items {
                        match i {
                            Yaml::String(s) => conditions.push(s.clone()),
                            _ => return Err(invalid("condition", "expected strings")),
                        }
                    }
                }
                _ => return Err(invalid("condition", "expected a string or a list")),
            },
            "timeframe" => timeframe = Some(key_str(v).unwrap_or_default()),
            _ => {
                selections.push(compile_selection(v, placeholders).map_err(|e| match e {
                    RuleErrorKind::Invalid { reason, .. } => {
                        invalid(&format!("detection.{name}"), reason)
                    }
                    other => other,
                })?);
                names.push(name);
            }
        }
    }
    if conditions.is_empty() {
        return Err(RuleErrorKind::Missing("detection.condition"));
    }
    let mut exprs = conditions
        .iter()
        .map(|c| condition::resolve(&condition::parse(c)?, &names, c))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(t) = timeframe {
        return Err(RuleErrorKind::Unsupported(Unsupported::Timeframe(t)));
    }
    let expr = if exprs.len() == 1 {
        exprs.remove(0)
    } else {
        Expr::Or(exprs)
    };
    Ok((selections, expr))
}

/// Cheap and selective fields first: most records fail on `eventName`.
fn field_order(f: &FieldMatcher) -> u8 {
    match f.path() {
        "eventName" => 0,
        "eventSource" => 1,
        _ => 2,
    }
}

fn compile_map(
    map: &Mapping,
    placeholders: &Placeholders,
) -> Result<Vec<FieldMatcher>, RuleErrorKind> {
    if map.is_empty() {
        return Err(invalid("detection", "empty selection"));
    }
    let mut fields = map
        .iter()
        .map(|(k, v)| {
            let key =
                key_str(k).ok_or_else(|| invalid("detection", "field names must be strings"))?;
            compile_field(&key, v, false, placeholders)
        })
        .collect::<Result<Vec<_>, _>>()?;
    fields.sort_by_key(field_order);
    Ok(fields)
}

fn compile_selection(v: &Yaml, placeholders: &Placeholders) -> Result<Selection, RuleErrorKind> {
    let keywords = || compile_field("", v, true, placeholders);
    match v {
        Yaml::Mapping(m) => Ok(Selection::All(compile_map(m, placeholders)?)),
        Yaml::Sequence(items) if items.is_empty() => Err(invalid("detection", "empty list")),
        Yaml::Sequence(items) if items.iter().all(|i| matches!(i, Yaml::Mapping(_))) => {
            Ok(Selection::Any(
                items
                    .iter()
                    .filter_map(|i| match i {
                        Yaml::Mapping(m) => Some(compile_map(m, placeholders)),
                        _ => None,
                    })
                    .collect::<Result<_, _>>()?,
            ))
        }
        Yaml::Sequence(items)
            if items
                .iter()
                .all(|i| !matches!(i, Yaml::Mapping(_) | Yaml::Sequence(_))) =>
        {
            Ok(Selection::All(vec![keywords()?]))
        }
        Yaml::String(_) | Yaml::Number(_) => Ok(Selection::All(vec![keywords()?])),
        _ => Err(invalid(
            "detection",
            "a search is a mapping, a list of mappings, or a list of keywords",
        )),
    }
}

fn parse_tests(v: &Yaml) -> Result<RuleTests, RuleErrorKind> {
    let Yaml::Mapping(m) = v else {
        return Err(invalid(
            "vigil_tests",
            "expected `match` and `no_match` lists",
        ));
    };
    let list = |key: &str| -> Result<Vec<Value>, RuleErrorKind> {
        match get(m, key) {
            None => Ok(Vec::new()),
            Some(Yaml::Sequence(items)) => items
                .iter()
                .map(|i| {
                    let json: Value = serde_json::to_value(i)
                        .map_err(|e| invalid(&format!("vigil_tests.{key}"), e.to_string()))?;
                    if !json.is_object() {
                        return Err(invalid(
                            &format!("vigil_tests.{key}"),
                            "each test is a CloudTrail record (a mapping)",
                        ));
                    }
                    Ok(record_of(json))
                })
                .collect(),
            Some(_) => Err(invalid(&format!("vigil_tests.{key}"), "expected a list")),
        }
    };
    for k in m.keys() {
        let k = key_str(k).unwrap_or_default();
        if k != "match" && k != "no_match" {
            return Err(invalid("vigil_tests", format!("unknown key `{k}`")));
        }
    }
    Ok(RuleTests {
        matching: list("match")?,
        not_matching: list("no_match")?,
    })
}

/// The CloudTrail record inside an EventBridge event, or the record itself.
pub(crate) fn record_of(event: Value) -> Value {
    match event {
        Value::Object(mut m) if m.contains_key("detail-type") && m.contains_key("detail") => {
            m.remove("detail").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// ATT&CK tactics and techniques from Sigma tags (`attack.credential_access`,
/// `attack.t1552.005`). ATT&CK v18 split Defense Evasion; SigmaHQ already
/// tags `attack.stealth` and `attack.defense-impairment`, which Vigil reports
/// as Defense Evasion (TA0005) until its tactic list follows.
pub(crate) fn attack_tags(tags: &[String]) -> (Vec<Tactic>, Vec<Technique>) {
    let mut tactics = Vec::new();
    let mut techniques: Vec<Technique> = Vec::new();
    for tag in tags {
        let Some(rest) = tag
            .strip_prefix("attack.")
            .or_else(|| tag.strip_prefix("ATTACK."))
        else {
            continue;
        };
        // Bytes, not str slices: a tag may start with a multi-byte character.
        let b = rest.as_bytes();
        let is_technique = b.len() >= 5
            && b[0].eq_ignore_ascii_case(&b't')
            && b[1..5].iter().all(u8::is_ascii_digit);
        if is_technique {
            let id = rest.to_ascii_uppercase();
            if !techniques.iter().any(|t| t.id == id) {
                techniques.push(Technique { id, name: None });
            }
            continue;
        }
        let tactic = match rest.to_ascii_lowercase().replace('_', "-").as_str() {
            "stealth" | "defense-impairment" => Some(Tactic::DefenseEvasion),
            other => Tactic::parse(other),
        };
        if let Some(t) = tactic {
            if !tactics.contains(&t) {
                tactics.push(t);
            }
        }
    }
    (tactics, techniques)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_tactics_and_techniques() {
        let tags: Vec<String> = [
            "attack.defense_evasion",
            "attack.t1562.008",
            "attack.privilege-escalation",
            "attack.stealth",
            "attack.g0016",
            "cis.4.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (tactics, techniques) = attack_tags(&tags);
        assert_eq!(
            tactics,
            vec![Tactic::DefenseEvasion, Tactic::PrivilegeEscalation]
        );
        assert_eq!(techniques.len(), 1);
        assert_eq!(techniques[0].id, "T1562.008");
    }

    #[test]
    fn tests_are_cut_out_before_parsing() {
        let text = "title: t\nvigil_tests:\n  match:\n  - {a: 1}\n-   odd: indent\n# note\n\nlevel: high\nvigil_tests : {match: []}\n   more: x\nstatus: test\n";
        assert_eq!(strip_tests(text), "title: t\nlevel: high\nstatus: test\n");
        assert!(matches!(
            strip_tests("title: t\n"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(strip_tests("vigil_tests_x: 1\n"), "vigil_tests_x: 1\n");
    }

    #[test]
    fn subsumed_alternatives_are_pruned() {
        let c = |s: &str| BTreeSet::from([Constraint::Exact(s.into())]);
        let a: Need = [("eventName".to_string(), c("A"))].into_iter().collect();
        let ab: Need = [
            ("eventName".to_string(), c("A")),
            ("eventSource".to_string(), c("s")),
        ]
        .into_iter()
        .collect();
        let mut alts = vec![ab.clone(), a.clone(), a.clone()];
        prune(&mut alts);
        assert_eq!(alts, vec![a]);
    }
}

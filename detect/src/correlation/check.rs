//! What `vigil rules test` and `vigil rules lint` do with files of several
//! documents and with correlation rules: split the documents (each plain
//! rule is then tested and linted like a one-rule file), run each
//! correlation's test sequences through a rule set and a fresh
//! [`MemoryState`], and check its references.

use std::borrow::Cow;

use super::parse::{is_multi, parse_documents, Document, ParsedCorrelation};
use super::MemoryState;
use crate::error::{RuleError, RuleErrorKind, Unsupported};
use crate::ruleset::{RuleSet, RuleSource};
use crate::{Detector, LogSource};

/// A file split into its plain rules (each a source of its own, JSON text,
/// same origin) and its correlations. `None` for a plain one-rule file.
pub struct Split {
    pub rules: Vec<RuleSource>,
    pub correlations: Vec<ParsedCorrelation>,
}

/// Splits `src` when it holds several documents or a correlation.
pub fn split(src: &RuleSource) -> Option<Result<Split, RuleError>> {
    if !is_multi(&src.text) {
        return None;
    }
    let docs = match parse_documents(&src.origin, &src.text) {
        Ok(d) => d,
        Err(RuleErrorKind::Unsupported(Unsupported::MultiDocument)) => return None,
        Err(e) => return Some(Err(RuleError::new(&src.origin, e))),
    };
    let mut out = Split {
        rules: Vec::new(),
        correlations: Vec::new(),
    };
    for d in docs {
        match d {
            Document::Rule { text, .. } => out.rules.push(RuleSource {
                origin: src.origin.clone(),
                text: Cow::Owned(text),
            }),
            Document::Correlation(c) => out.correlations.push(*c),
        }
    }
    Some(Ok(out))
}

/// One sequence that did not fire (or fired) against its correlation's word.
#[derive(Debug, Clone)]
pub struct SequenceFailure {
    pub origin: String,
    pub correlation: String,
    pub title: String,
    /// `sequences[i]`.
    pub case: String,
    pub reason: String,
}

/// Runs every test sequence of `correlations` through `set` (which must
/// hold them and the rules they reference), each from empty state.
pub fn run_sequences(
    set: &RuleSet,
    correlations: &[ParsedCorrelation],
) -> (usize, Vec<SequenceFailure>) {
    let mut cases = 0;
    let mut failures = Vec::new();
    for p in correlations {
        let c = &p.correlation;
        let loaded = set.correlations().iter().any(|l| l.id == c.id);
        for (i, seq) in p.sequences.iter().enumerate() {
            cases += 1;
            let fail = |reason: String| SequenceFailure {
                origin: c.origin.clone(),
                correlation: c.id.clone(),
                title: c.title.clone(),
                case: format!("sequences[{i}]"),
                reason,
            };
            if !loaded {
                failures.push(fail("the correlation did not load (see lint)".into()));
                continue;
            }
            let mut state = MemoryState::new();
            let mut fired = 0;
            for e in &seq.events {
                let mut obs = Vec::new();
                set.correlate_from(LogSource::of_event(e), e, &mut obs);
                obs.retain(|o| o.correlation.id == c.id);
                fired += state.observe(&obs).len();
            }
            if (fired > 0) != seq.fires {
                failures.push(fail(format!(
                    "{} events {} but should {}",
                    seq.events.len(),
                    if fired > 0 { "fired" } else { "did not fire" },
                    if seq.fires { "fire" } else { "not fire" },
                )));
            }
        }
    }
    (cases, failures)
}

/// Lint of one correlation: its notes, a sequence that fires and one that
/// does not. `(is_error, message)`.
pub fn lint_correlation(p: &ParsedCorrelation) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = p
        .notes
        .iter()
        .map(|n| (n.starts_with("missing"), n.clone()))
        .collect();
    if !p.sequences.iter().any(|s| s.fires) {
        out.push((true, "no `vigil_tests.sequences` entry that fires".into()));
    }
    if !p.sequences.iter().any(|s| !s.fires) {
        out.push((false, "no near-miss sequence (`fires: false`)".into()));
    }
    if p.correlation.tags.is_empty() {
        out.push((false, "missing `tags`".into()));
    }
    out
}

/// The correlations of `set` skipped because a reference did not resolve
/// (a rule not loaded, or chaining).
pub fn reference_errors(set: &RuleSet) -> impl Iterator<Item = &RuleError> {
    set.skipped().iter().filter(|e| {
        matches!(
            e.kind,
            RuleErrorKind::Unsupported(Unsupported::MissingRule(_) | Unsupported::Chained(_))
        )
    })
}

/// The plain rules of `sources`, one source each: files of several
/// documents are split (their correlations left out). For tools and tests
/// that handle rules one at a time.
pub fn flatten(sources: &[RuleSource]) -> Vec<RuleSource> {
    sources
        .iter()
        .flat_map(|s| match split(s) {
            Some(Ok(split)) => split.rules,
            _ => vec![s.clone()],
        })
        .collect()
}

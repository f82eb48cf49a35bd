//! Correlations tied to the rules they reference, inside a [`crate::RuleSet`]:
//! which rule feeds which correlation at which position, and which rules are
//! silent (referenced only by correlations with `generate: false`, so they
//! feed observations but do not alert on their own).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::parse::{parse_documents, Document};
use super::{observe_match, Correlation, CorrelationRef, Observation};
use crate::error::{RuleError, RuleErrorKind, Unsupported};
use crate::placeholder::Placeholders;
use crate::sigma::Rule;

/// Whether a rule failed to parse only because its file holds several
/// documents or a correlation: then [`Loaded::load_file`] reads it.
pub(crate) fn is_multi_error(e: &RuleError) -> bool {
    matches!(
        e.kind,
        RuleErrorKind::Unsupported(Unsupported::Correlation | Unsupported::MultiDocument)
    )
}

/// Correlations and rule names read while a rule set loads.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    correlations: Vec<Correlation>,
    /// Rule id to Sigma `name`, for rules of multi-document files.
    names: HashMap<String, String>,
}

impl Loaded {
    /// The plain rules of a multi-document file; its correlations are kept.
    pub(crate) fn load_file(
        &mut self,
        origin: &str,
        text: &str,
        placeholders: &Placeholders,
    ) -> Result<Vec<Rule>, RuleError> {
        let docs = parse_documents(origin, text).map_err(|k| RuleError::new(origin, k))?;
        let mut rules = Vec::new();
        for doc in docs {
            match doc {
                Document::Rule { text, name, .. } => {
                    let rule = Rule::parse_with(origin, &text, placeholders)?;
                    if let Some(name) = name {
                        self.names.insert(rule.id().to_string(), name);
                    }
                    rules.push(rule);
                }
                Document::Correlation(p) => self.correlations.push(p.correlation),
            }
        }
        Ok(rules)
    }

    /// Resolves every correlation's references against `rules`. A
    /// correlation naming a rule that is not loaded, or another correlation
    /// (chaining), is skipped with the reason.
    pub(crate) fn link(self, rules: &[Rule], skipped: &mut Vec<RuleError>) -> Links {
        let mut links = Links {
            silent: vec![false; rules.len()],
            ..Links::default()
        };
        let mut generating = vec![false; rules.len()];
        let mut referenced = vec![false; rules.len()];
        // Same id twice (an override): the later one wins.
        let mut kept: Vec<Correlation> = Vec::new();
        for c in self.correlations {
            kept.retain(|k| k.id != c.id);
            kept.push(c);
        }
        let is_correlation = |r: &str| {
            kept.iter()
                .any(|c| c.id == r || c.name.as_deref() == Some(r))
        };
        for c in &kept {
            let mut feeds = Vec::new();
            let mut missing = None;
            for (pos, r) in c.rules.iter().enumerate() {
                let found: Vec<usize> = rules
                    .iter()
                    .enumerate()
                    .filter(|(_, rule)| {
                        rule.id() == r || self.names.get(rule.id()).is_some_and(|n| n == r)
                    })
                    .map(|(i, _)| i)
                    .collect();
                if found.is_empty() {
                    missing = Some(match is_correlation(r) {
                        true => Unsupported::Chained(r.clone()),
                        false => Unsupported::MissingRule(r.clone()),
                    });
                    break;
                }
                feeds.extend(found.into_iter().map(|i| (i, pos)));
            }
            if let Some(why) = missing {
                skipped.push(RuleError::new(&c.origin, RuleErrorKind::Unsupported(why)));
                continue;
            }
            let at = links.correlations.len();
            for (i, pos) in feeds {
                referenced[i] = true;
                generating[i] |= c.generate;
                links.feeds.entry(i).or_default().push((at, pos));
            }
            links.correlations.push(Arc::new(c.clone()));
        }
        for i in 0..rules.len() {
            links.silent[i] = referenced[i] && !generating[i];
        }
        links.names = self.names;
        links
    }
}

/// The correlations of a rule set and the rules that feed them.
#[derive(Debug, Default)]
pub(crate) struct Links {
    correlations: Vec<CorrelationRef>,
    /// Rule index to (correlation index, position in its `rules`).
    feeds: HashMap<usize, Vec<(usize, usize)>>,
    silent: Vec<bool>,
    names: HashMap<String, String>,
}

impl Links {
    pub(crate) fn is_empty(&self) -> bool {
        self.correlations.is_empty()
    }

    pub(crate) fn correlations(&self) -> &[CorrelationRef] {
        &self.correlations
    }

    pub(crate) fn is_silent(&self, rule: usize) -> bool {
        self.silent.get(rule).copied().unwrap_or(false)
    }

    pub(crate) fn feeds(&self, rule: usize) -> bool {
        self.feeds.contains_key(&rule)
    }

    /// The observations of rule `rule` (index in the set) matching `record`.
    pub(crate) fn observe(
        &self,
        rule: usize,
        matched: &Rule,
        record: &Value,
        out: &mut Vec<Observation>,
    ) {
        let rule_id = matched.id();
        let name = self.names.get(rule_id).map(String::as_str);
        let start = out.len();
        for &(c, pos) in self.feeds.get(&rule).into_iter().flatten() {
            out.extend(observe_match(
                &self.correlations[c],
                pos,
                rule_id,
                name,
                matched.logsource(),
                record,
            ));
        }
        if matched.join_only() {
            out[start..].iter_mut().for_each(|o| o.join_only = true);
        }
    }
}

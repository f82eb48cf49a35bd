//! `vigil rules coverage`: which MITRE ATT&CK tactics and techniques the
//! loaded rules cover, as text for a terminal, a Markdown table for the
//! README, or an ATT&CK Navigator layer for a picture.
//!
//! Sigma tags do not bind a technique to a tactic, so a rule tagged with two
//! tactics and one technique covers that technique under both: the same
//! reading the ATT&CK Navigator makes of it.

mod navigator;
mod techniques;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use vigil::detect::RuleMeta;
use vigil::model::{Severity, Tactic};

pub(crate) use navigator::layer;

/// Rules grouped by tactic (in ATT&CK's order) and technique.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    pub(crate) tactics: Vec<TacticCoverage>,
    /// Rules with no ATT&CK tactic tag (CIS controls tagged only `cis.*`).
    pub(crate) untagged: Vec<RuleLine>,
    pub(crate) rule_count: usize,
}

/// One tactic's rules, by technique id (`None`: tagged with the tactic only).
#[derive(Debug)]
pub(crate) struct TacticCoverage {
    pub(crate) tactic: Tactic,
    pub(crate) techniques: BTreeMap<Option<String>, Vec<RuleLine>>,
}

/// What a listing shows of one rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RuleLine {
    pub(crate) title: String,
    pub(crate) severity: Severity,
}

impl Coverage {
    pub(crate) fn of<'a>(rules: impl IntoIterator<Item = &'a RuleMeta>) -> Coverage {
        let mut by_tactic: BTreeMap<usize, TacticCoverage> = BTreeMap::new();
        let mut coverage = Coverage::default();
        for meta in rules {
            coverage.rule_count += 1;
            let line = RuleLine {
                title: meta.title.clone(),
                severity: meta.severity,
            };
            if meta.tactics.is_empty() {
                coverage.untagged.push(line);
                continue;
            }
            let techniques: Vec<Option<String>> = if meta.techniques.is_empty() {
                vec![None]
            } else {
                meta.techniques.iter().map(|t| Some(t.id.clone())).collect()
            };
            for &tactic in &meta.tactics {
                let order = Tactic::ALL.iter().position(|t| *t == tactic).unwrap_or(0);
                let entry = by_tactic.entry(order).or_insert_with(|| TacticCoverage {
                    tactic,
                    techniques: BTreeMap::new(),
                });
                for technique in &techniques {
                    let rules = entry.techniques.entry(technique.clone()).or_default();
                    if !rules.contains(&line) {
                        rules.push(line.clone());
                    }
                }
            }
        }
        coverage.tactics = by_tactic.into_values().collect();
        for t in &mut coverage.tactics {
            t.techniques.values_mut().for_each(|rules| rules.sort());
        }
        coverage.untagged.sort();
        coverage
    }

    /// Distinct technique ids across every tactic.
    pub(crate) fn technique_count(&self) -> usize {
        let mut ids: Vec<&str> = self
            .tactics
            .iter()
            .flat_map(|t| t.techniques.keys().flatten())
            .map(String::as_str)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    fn headline(&self) -> String {
        format!(
            "{} rules cover {} of {} ATT&CK tactics and {} techniques",
            self.rule_count,
            self.tactics.len(),
            Tactic::ALL.len(),
            self.technique_count()
        )
    }

    /// The terminal listing: tactic, technique, then each rule's level and title.
    pub(crate) fn render(&self) -> String {
        let mut s = format!("{}\n", self.headline());
        for t in &self.tactics {
            let _ = write!(s, "\n{} ({})\n", t.tactic.name(), t.tactic.id());
            for (technique, rules) in &t.techniques {
                let _ = writeln!(s, "  {}", technique_label(technique.as_deref()));
                for r in rules {
                    let _ = writeln!(s, "      {:<8} {}", r.severity.as_str(), r.title);
                }
            }
        }
        if !self.untagged.is_empty() {
            s.push_str("\nNo ATT&CK tactic (controls)\n");
            for r in &self.untagged {
                let _ = writeln!(s, "      {:<8} {}", r.severity.as_str(), r.title);
            }
        }
        s
    }

    /// A Markdown table by tactic: techniques and the rules' titles.
    pub(crate) fn markdown(&self) -> String {
        let mut s = format!(
            "{}.\n\n| Tactic | Techniques | Rules | What is detected |\n|---|---|---:|---|\n",
            self.headline()
        );
        for t in &self.tactics {
            let techniques: Vec<&str> = t.techniques.keys().flatten().map(String::as_str).collect();
            let mut titles: Vec<&str> = t
                .techniques
                .values()
                .flatten()
                .map(|r| r.title.as_str())
                .collect();
            titles.sort_unstable();
            titles.dedup();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                t.tactic.name(),
                techniques.join(", "),
                titles.len(),
                cell(&titles.join("; "))
            );
        }
        if !self.untagged.is_empty() {
            let titles: Vec<&str> = self.untagged.iter().map(|r| r.title.as_str()).collect();
            let _ = writeln!(
                s,
                "| (controls, no tactic) | | {} | {} |",
                titles.len(),
                cell(&titles.join("; "))
            );
        }
        s
    }
}

/// `T1562.008 Impair Defenses: Disable or Modify Cloud Logs`, or the tactic-only row.
fn technique_label(id: Option<&str>) -> String {
    match id {
        None => "(tactic only)".into(),
        Some(id) => match techniques::name(id) {
            Some(name) => format!("{id} {name}"),
            None => id.to_string(),
        },
    }
}

/// A table cell: a `|` in a title would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil::model::Technique;

    fn meta(title: &str, tactics: &[Tactic], techniques: &[&str]) -> RuleMeta {
        RuleMeta {
            id: title.into(),
            title: title.into(),
            description: String::new(),
            severity: Severity::High,
            tactics: tactics.to_vec(),
            techniques: techniques
                .iter()
                .map(|id| Technique {
                    id: (*id).into(),
                    name: None,
                })
                .collect(),
            false_positives: vec![],
            references: vec![],
            kind: vigil::detect::RuleKind::Attack,
        }
    }

    #[test]
    fn a_rule_covers_each_of_its_techniques_under_each_of_its_tactics() {
        let rules = [
            meta(
                "Trust policy opened",
                &[Tactic::Persistence, Tactic::PrivilegeEscalation],
                &["T1098"],
            ),
            meta("Logging stopped", &[Tactic::DefenseEvasion], &["T1562.008"]),
            meta("CIS 4.5", &[], &[]),
        ];
        let c = Coverage::of(&rules);
        let tactics: Vec<Tactic> = c.tactics.iter().map(|t| t.tactic).collect();
        // ATT&CK's order, not the rules' order.
        assert_eq!(
            tactics,
            [
                Tactic::Persistence,
                Tactic::PrivilegeEscalation,
                Tactic::DefenseEvasion
            ]
        );
        assert_eq!(c.technique_count(), 2);
        assert_eq!(c.untagged.len(), 1);
        let text = c.render();
        assert!(text.starts_with("3 rules cover 3 of 14 ATT&CK tactics and 2 techniques"));
        assert!(text.contains("T1562.008 Impair Defenses: Disable or Modify Cloud Logs"));
        let md = c.markdown();
        assert!(
            md.contains("| Persistence | T1098 | 1 | Trust policy opened |"),
            "{md}"
        );
        assert!(
            md.contains("| (controls, no tactic) | | 1 | CIS 4.5 |"),
            "{md}"
        );
    }

    #[test]
    fn a_pipe_in_a_title_stays_inside_its_cell() {
        let c = Coverage::of(&[meta("a | b", &[Tactic::Impact], &["T1485"])]);
        assert!(c.markdown().contains("| a \\| b |"));
    }
}

//! One alert per event: of the rules a record matched (and the rules it was
//! an attempt at), which one the finding is, and which are listed beside it.
//!
//! The winner is the highest level; at equal level an attack rule beats a
//! CIS control (a responder wants to read "CloudTrail logging stopped", not
//! the benchmark number), then a rule matched as the call was beats an
//! attempt, then the lower rule id, so the same record always gives the same
//! alert whatever order the rules were loaded in. An attempt counts at its
//! rule's level capped at LOW: a failed call did not take effect.

use std::cmp::Reverse;

use vigil_model::Severity;

use super::{RuleKind, RuleMeta};

/// The level an attempt at a rule counts at, at most.
pub const ATTEMPT_SEVERITY: Severity = Severity::Low;

/// A rule that matched a record: as it is, or only once its error was hidden.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit<'a> {
    pub rule: &'a RuleMeta,
    /// Matched only with `errorCode`/`errorMessage` hidden.
    pub attempt: bool,
}

impl Hit<'_> {
    /// The level this hit alerts at: the rule's, capped at
    /// [`ATTEMPT_SEVERITY`] for an attempt.
    pub fn severity(&self) -> Severity {
        if self.attempt {
            self.rule.severity.min(ATTEMPT_SEVERITY)
        } else {
            self.rule.severity
        }
    }

    /// Smaller sorts first: the better claim to be the event's one alert.
    fn rank(&self) -> (Reverse<Severity>, RuleKind, bool, &str) {
        (
            Reverse(self.severity()),
            self.rule.kind,
            self.attempt,
            self.rule.id.as_str(),
        )
    }
}

/// What one record's rules come to: the finding's rule and the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<'a> {
    pub winner: Hit<'a>,
    /// The other rules, best first.
    pub also: Vec<Hit<'a>>,
}

impl<'a> Verdict<'a> {
    /// Every rule in the verdict, the winner first.
    pub fn all(&self) -> impl Iterator<Item = &Hit<'a>> {
        std::iter::once(&self.winner).chain(&self.also)
    }
}

/// The verdict over `hits` (rules matched as the record is) and `attempts`
/// (rules matched only with its error hidden); `None` when both are empty.
/// Allocates only when something matched.
pub fn judge<'a>(hits: &[&'a RuleMeta], attempts: &[&'a RuleMeta]) -> Option<Verdict<'a>> {
    if hits.is_empty() && attempts.is_empty() {
        return None;
    }
    let mut all: Vec<Hit<'a>> = hits
        .iter()
        .map(|&rule| Hit {
            rule,
            attempt: false,
        })
        .chain(attempts.iter().map(|&rule| Hit {
            rule,
            attempt: true,
        }))
        .collect();
    all.sort_by(|a, b| a.rank().cmp(&b.rank()));
    // One rule loaded twice (never from a RuleSet, possible from another
    // detector) is listed once.
    all.dedup_by(|a, b| a.rule.id == b.rule.id);
    let winner = all.remove(0);
    Some(Verdict { winner, also: all })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, severity: Severity, kind: RuleKind) -> RuleMeta {
        RuleMeta {
            id: id.into(),
            title: id.into(),
            description: String::new(),
            severity,
            tactics: vec![],
            techniques: vec![],
            false_positives: vec![],
            references: vec![],
            kind,
        }
    }

    #[test]
    fn the_highest_level_wins_then_attack_over_control_then_id() {
        let cis = meta("cis", Severity::Medium, RuleKind::Control);
        let high = meta("z-high", Severity::High, RuleKind::Attack);
        let attack = meta("z-attack", Severity::Medium, RuleKind::Attack);
        let other = meta("a-attack", Severity::Medium, RuleKind::Attack);

        let v = judge(&[&cis, &high], &[]).unwrap();
        assert_eq!(v.winner.rule.id, "z-high");
        assert_eq!(v.also.len(), 1);
        assert_eq!(v.also[0].rule.id, "cis");

        let v = judge(&[&cis, &attack], &[]).unwrap();
        assert_eq!(v.winner.rule.id, "z-attack");
        let v = judge(&[&attack, &cis, &other], &[]).unwrap();
        assert_eq!(v.winner.rule.id, "a-attack");
        let ids: Vec<&str> = v.also.iter().map(|h| h.rule.id.as_str()).collect();
        assert_eq!(ids, ["z-attack", "cis"]);
        assert!(judge(&[], &[]).is_none());
    }

    #[test]
    fn a_rule_is_a_control_by_its_cis_tag_or_folder_and_odd_tags_do_not_panic() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            RuleKind::of(&tags(&["CIS.4.5"]), "x.yml"),
            RuleKind::Control
        );
        assert_eq!(RuleKind::of(&[], "bundled:cis/a.yml"), RuleKind::Control);
        assert_eq!(RuleKind::of(&[], "rules/cis/a.yml"), RuleKind::Control);
        assert_eq!(
            RuleKind::of(&tags(&["attack.t1530"]), "a.yml"),
            RuleKind::Attack
        );
        // Found by the fuzz test: a multi-byte character across byte 4.
        let odd = tags(&["at\u{0cb3}\u{1e05a}\u{a5}R\u{a5}.t1530", "ci\u{e9}.1"]);
        assert_eq!(RuleKind::of(&odd, "a.yml"), RuleKind::Attack);
    }

    #[test]
    fn attempts_count_at_low_at_most() {
        let high = meta("high", Severity::High, RuleKind::Attack);
        let info = meta("info", Severity::Informational, RuleKind::Attack);
        let cis_low = meta("cis-low", Severity::Low, RuleKind::Control);

        let v = judge(&[], &[&high]).unwrap();
        assert!(v.winner.attempt);
        assert_eq!(v.winner.severity(), Severity::Low);
        assert_eq!(
            Hit {
                rule: &info,
                attempt: true
            }
            .severity(),
            Severity::Informational
        );
        // A LOW control matched as is against an attempt at an attack rule:
        // both LOW, the attack rule's attempt says more.
        let v = judge(&[&cis_low], &[&high]).unwrap();
        assert_eq!(v.winner.rule.id, "high");
        assert!(v.winner.attempt);
        assert_eq!(v.also[0].rule.id, "cis-low");
        assert!(!v.also[0].attempt);
        // A real match beats an attempt of the same level and kind.
        let low = meta("b-low", Severity::Low, RuleKind::Attack);
        let v = judge(&[&low], &[&high]).unwrap();
        assert_eq!(v.winner.rule.id, "b-low");
    }
}

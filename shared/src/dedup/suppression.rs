//! One alert per fingerprint per window, as a pure function of the stored
//! state, so the DynamoDB and in-memory stores behave alike and every rule is
//! unit-tested without a store.
//!
//! The rules, in order, for a finding that passed the gate:
//! 1. No state: alert (the first occurrence always alerts at once).
//! 2. This same event already claimed the alert and did not deliver it (its
//!    previous attempt failed): alert again with the same count. This is what
//!    keeps a retry from being suppressed by its own failed attempt.
//! 3. Another event claimed it within the window and is delivering now:
//!    count a repeat (its alert goes out; a higher severity still alerts).
//!    A claim older than [`CLAIM_STALE_SECONDS`] was abandoned (the process
//!    died): it is treated as never sent, and its count is carried.
//! 4. Severity rose above what was alerted: alert.
//! 5. The same source finding again (GuardDuty re-sends a finding id with a
//!    higher `service.count`; the Security Hub copy of a GuardDuty finding):
//!    an update, counted, never a new alert, whatever the window.
//! 6. Window over: alert, carrying the repeats counted since the last alert.
//! 7. Otherwise: a repeat within the window, counted.

use serde::{Deserialize, Serialize};

use crate::model::Severity;

/// A claim not delivered after this long belongs to a process that died
/// (Lambda's longest timeout is 15 minutes).
pub(super) const CLAIM_STALE_SECONDS: i64 = 900;

/// What is remembered per fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct FingerprintState {
    /// No new alert for this fingerprint before this (epoch seconds).
    pub window_end: i64,
    /// Repeats suppressed since the last alert; the next alert carries them.
    pub suppressed: u64,
    /// Every occurrence seen while the record lived.
    pub seen: u64,
    pub last_alert_at: i64,
    pub last_seen_at: i64,
    /// Severity of the last alert (a higher one alerts within the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The source finding id last alerted (see [`super::keys::finding_key`]).
    #[serde(default)]
    pub finding_key: String,
    /// The source's own repeat count for that finding (GuardDuty `service.count`).
    #[serde(default)]
    pub source_count: u64,
    /// The alert in flight or last sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
}

/// Who is sending the alert for a fingerprint, and whether it went out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Claim {
    /// The event (and finding) that claimed it.
    pub owner: String,
    /// The repeat count the alert carries.
    pub reported: u64,
    /// When it was claimed (epoch seconds).
    pub at: i64,
    pub delivered: bool,
}

/// One occurrence of a fingerprint.
#[derive(Debug, Clone, Copy)]
pub(super) struct Observation<'a> {
    pub finding_key: &'a str,
    pub severity: Severity,
    pub source_count: u64,
    pub owner: &'a str,
}

/// Why a fingerprint alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AlertReason {
    First,
    Retry,
    Abandoned,
    SeverityRose,
    WindowEnded,
}

/// Why an occurrence did not alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatKind {
    /// The same fingerprint within the window.
    Repeat,
    /// The source sent the same finding again (an update).
    SourceUpdate,
}

impl RepeatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RepeatKind::Repeat => "repeat",
            RepeatKind::SourceUpdate => "source_update",
        }
    }
}

/// The outcome of [`observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Alert {
        suppressed_repeats: u64,
        reason: AlertReason,
    },
    /// `repeats`: suppressed since the last alert, this one included.
    Suppress { kind: RepeatKind, repeats: u64 },
}

/// Decides what `obs` does given the stored state, and returns the state to store.
pub(super) fn observe(
    old: Option<&FingerprintState>,
    obs: &Observation<'_>,
    now: i64,
    window: i64,
) -> (Verdict, FingerprintState) {
    let Some(s) = old else {
        return alert(
            &FingerprintState::default(),
            obs,
            now,
            window,
            0,
            AlertReason::First,
        );
    };
    let in_window = now < s.window_end;
    if let Some(c) = s.claim.as_ref().filter(|c| !c.delivered) {
        if c.owner == obs.owner {
            let (verdict, mut next) = alert(s, obs, now, window, c.reported, AlertReason::Retry);
            // Not a new occurrence: the first attempt counted it.
            next.seen = s.seen;
            return (verdict, next);
        }
        if now - c.at >= CLAIM_STALE_SECONDS {
            let carried = c.reported.saturating_add(s.suppressed);
            return alert(s, obs, now, window, carried, AlertReason::Abandoned);
        }
        if in_window && !rose(s, obs) {
            return suppress(s, obs, now, RepeatKind::Repeat);
        }
    }
    if rose(s, obs) {
        return alert(s, obs, now, window, s.suppressed, AlertReason::SeverityRose);
    }
    if !obs.finding_key.is_empty() && obs.finding_key == s.finding_key {
        return suppress(s, obs, now, RepeatKind::SourceUpdate);
    }
    if !in_window {
        return alert(s, obs, now, window, s.suppressed, AlertReason::WindowEnded);
    }
    suppress(s, obs, now, RepeatKind::Repeat)
}

fn rose(s: &FingerprintState, obs: &Observation<'_>) -> bool {
    s.severity.is_some_and(|alerted| obs.severity > alerted)
}

fn alert(
    s: &FingerprintState,
    obs: &Observation<'_>,
    now: i64,
    window: i64,
    reported: u64,
    reason: AlertReason,
) -> (Verdict, FingerprintState) {
    let next = FingerprintState {
        window_end: now.saturating_add(window),
        suppressed: 0,
        seen: s.seen.saturating_add(1),
        last_alert_at: now,
        last_seen_at: now,
        severity: Some(obs.severity),
        finding_key: obs.finding_key.to_string(),
        source_count: obs.source_count,
        claim: Some(Claim {
            owner: obs.owner.to_string(),
            reported,
            at: now,
            delivered: false,
        }),
    };
    (
        Verdict::Alert {
            suppressed_repeats: reported,
            reason,
        },
        next,
    )
}

fn suppress(
    s: &FingerprintState,
    obs: &Observation<'_>,
    now: i64,
    kind: RepeatKind,
) -> (Verdict, FingerprintState) {
    let mut next = s.clone();
    next.suppressed = s.suppressed.saturating_add(1);
    next.seen = s.seen.saturating_add(1);
    next.last_seen_at = now;
    if kind == RepeatKind::SourceUpdate {
        next.source_count = next.source_count.max(obs.source_count);
    }
    (
        Verdict::Suppress {
            kind,
            repeats: next.suppressed,
        },
        next,
    )
}

/// The state after `owner`'s alert was delivered (claim confirmed) or not
/// (claim given back: the previous window, severity and finding restored and
/// the carried count returned to the repeats, so the retry or the next
/// occurrence alerts with it). None: nothing to change (someone else's claim
/// by now).
pub(super) fn settle(
    current: &FingerprintState,
    owner: &str,
    delivered: bool,
    previous: Option<&FingerprintState>,
) -> Option<FingerprintState> {
    let claim = current.claim.as_ref()?;
    if claim.owner != owner || claim.delivered {
        return None;
    }
    let mut next = current.clone();
    if delivered {
        if let Some(c) = &mut next.claim {
            c.delivered = true;
        }
        return Some(next);
    }
    let before = previous.cloned().unwrap_or_default();
    next.window_end = before.window_end;
    next.severity = before.severity;
    next.finding_key = before.finding_key;
    next.source_count = before.source_count;
    next.last_alert_at = before.last_alert_at;
    next.claim = before.claim;
    next.suppressed = current.suppressed.saturating_add(claim.reported);
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(key: &'a str, sev: Severity, owner: &'a str) -> Observation<'a> {
        Observation {
            finding_key: key,
            severity: sev,
            source_count: 1,
            owner,
        }
    }

    fn delivered(mut s: FingerprintState) -> FingerprintState {
        if let Some(c) = &mut s.claim {
            c.delivered = true;
        }
        s
    }

    #[test]
    fn first_occurrence_alerts_and_repeats_are_counted_into_the_next_alert() {
        let (v, s) = observe(None, &obs("a", Severity::High, "e1"), 100, 60);
        assert_eq!(
            v,
            Verdict::Alert {
                suppressed_repeats: 0,
                reason: AlertReason::First
            }
        );
        let s = delivered(s);
        let (v, s) = observe(Some(&s), &obs("b", Severity::High, "e2"), 110, 60);
        assert_eq!(
            v,
            Verdict::Suppress {
                kind: RepeatKind::Repeat,
                repeats: 1
            }
        );
        let (_, s) = observe(Some(&s), &obs("c", Severity::High, "e3"), 120, 60);
        let (v, s) = observe(Some(&s), &obs("d", Severity::High, "e4"), 160, 60);
        assert_eq!(
            v,
            Verdict::Alert {
                suppressed_repeats: 2,
                reason: AlertReason::WindowEnded
            }
        );
        assert_eq!(s.suppressed, 0);
        assert_eq!(s.seen, 4);
    }

    #[test]
    fn the_same_source_finding_updates_whatever_the_window_unless_severity_rises() {
        let (_, s) = observe(None, &obs("gd-1", Severity::Medium, "e1"), 0, 60);
        let s = delivered(s);
        let mut o = obs("gd-1", Severity::Medium, "e2");
        o.source_count = 7;
        let (v, s) = observe(Some(&s), &o, 10_000, 60);
        assert_eq!(
            v,
            Verdict::Suppress {
                kind: RepeatKind::SourceUpdate,
                repeats: 1
            }
        );
        assert_eq!(s.source_count, 7);
        let (v, _) = observe(Some(&s), &obs("gd-1", Severity::High, "e3"), 10_001, 60);
        assert_eq!(
            v,
            Verdict::Alert {
                suppressed_repeats: 1,
                reason: AlertReason::SeverityRose
            }
        );
    }

    #[test]
    fn a_retry_of_the_claiming_event_alerts_again_with_the_same_count() {
        let (_, s) = observe(None, &obs("a", Severity::High, "e1"), 0, 60);
        let (_, s) = observe(Some(&delivered(s)), &obs("b", Severity::High, "e2"), 1, 60);
        let (v, s) = observe(Some(&s), &obs("c", Severity::High, "e3"), 100, 60);
        assert!(matches!(
            v,
            Verdict::Alert {
                suppressed_repeats: 1,
                ..
            }
        ));
        // e3's delivery failed and the release was lost: e3's retry still alerts.
        let (v, again) = observe(Some(&s), &obs("c", Severity::High, "e3"), 130, 60);
        assert_eq!(
            v,
            Verdict::Alert {
                suppressed_repeats: 1,
                reason: AlertReason::Retry
            }
        );
        assert_eq!(again.seen, s.seen);
        // Meanwhile another event is a repeat of e3's alert in flight.
        let (v, _) = observe(Some(&s), &obs("d", Severity::High, "e4"), 101, 60);
        assert!(matches!(v, Verdict::Suppress { .. }));
        // ...unless e3 died long ago.
        let (v, _) = observe(
            Some(&s),
            &obs("d", Severity::High, "e4"),
            100 + CLAIM_STALE_SECONDS,
            10_000,
        );
        assert_eq!(
            v,
            Verdict::Alert {
                suppressed_repeats: 1,
                reason: AlertReason::Abandoned
            }
        );
    }

    #[test]
    fn releasing_a_failed_claim_restores_the_window_and_the_count() {
        let (_, first) = observe(None, &obs("a", Severity::High, "e1"), 0, 60);
        let first = delivered(first);
        let (_, s) = observe(Some(&first), &obs("b", Severity::High, "e2"), 10, 60);
        let (_, s) = observe(Some(&s), &obs("c", Severity::High, "e3"), 20, 60);
        let (_, claimed) = observe(Some(&s), &obs("d", Severity::High, "e4"), 70, 60);
        let released = settle(&claimed, "e4", false, Some(&s)).unwrap();
        assert_eq!(released.window_end, first.window_end);
        assert_eq!(released.suppressed, 2);
        assert_eq!(released.claim, first.claim);
        // The next occurrence alerts with the count.
        let (v, _) = observe(Some(&released), &obs("e", Severity::High, "e5"), 71, 60);
        assert_eq!(
            v,
            Verdict::Alert {
                suppressed_repeats: 2,
                reason: AlertReason::WindowEnded
            }
        );
        // Confirming marks it delivered; someone else's claim is left alone.
        let confirmed = settle(&claimed, "e4", true, Some(&s)).unwrap();
        assert!(confirmed.claim.unwrap().delivered);
        assert!(settle(&claimed, "other", false, Some(&s)).is_none());
    }

    #[test]
    fn releasing_a_first_claim_forgets_the_fingerprint() {
        let (_, claimed) = observe(None, &obs("a", Severity::High, "e1"), 0, 60);
        let released = settle(&claimed, "e1", false, None).unwrap();
        let (v, _) = observe(Some(&released), &obs("b", Severity::Low, "e2"), 1, 60);
        assert!(matches!(v, Verdict::Alert { .. }));
    }
}

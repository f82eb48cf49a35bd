//! The dedup stage over the in-memory store, with a hand-driven clock.

use std::time::Duration;

use super::keys::finding_key;
use super::settings::DEFAULT_SUPPRESSION_WINDOW_SECONDS;
use super::suppression::FingerprintState;
use super::*;
use crate::model::{Finding, Resource, Severity, Source};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z in ms

fn settings() -> DedupSettings {
    DedupSettings {
        suppression_window_seconds: 60,
        storm_threshold: 5,
        storm_window_seconds: 300,
        ..DedupSettings::default()
    }
}

fn stage(settings: &DedupSettings) -> (Dedup, MemoryStore, Clock) {
    let store = MemoryStore::new();
    let clock = Clock::manual(T0);
    let d =
        Dedup::new(settings, Some(StateStores::new(store.clone())), None).with_clock(clock.clone());
    (d, store, clock)
}

fn finding(id: &str, resource: &str, severity: Severity) -> Finding {
    let mut f = Finding::new(Source::GuardDuty, id, "Recon:EC2/PortProbeUnprotectedPort");
    f.severity = severity;
    f.account_id = "111122223333".into();
    f.region = "us-east-1".into();
    f.event_id = Some(format!("evt-{id}"));
    f.resources.push(Resource::new("AwsEc2Instance", resource));
    f.fingerprint = crate::enrich::fingerprint(&f);
    f
}

/// Admits and, when it alerts, settles as delivered (or not).
async fn run(d: &Dedup, f: &Finding, delivered: bool) -> (Admission, Vec<Finding>) {
    let mut s = d.session();
    let a = s.admit(f).await;
    if let Admission::Alert { .. } = a {
        s.settle(f, delivered).await;
    }
    let summaries = s.finish().await;
    for summary in &summaries {
        s.summary_settled(summary, delivered).await;
    }
    (a, summaries)
}

#[tokio::test]
async fn one_alert_per_fingerprint_per_window_and_the_next_carries_the_count() {
    let (d, _, clock) = stage(&settings());
    let first = run(&d, &finding("a", "i-1", Severity::High), true).await.0;
    assert_eq!(
        first,
        Admission::Alert {
            suppressed_repeats: 0
        }
    );
    for (i, id) in ["b", "c", "d"].iter().enumerate() {
        clock.advance(Duration::from_secs(10));
        match run(&d, &finding(id, "i-1", Severity::High), true).await.0 {
            Admission::Skip(Skip::Suppressed { repeats, kind, .. }) => {
                assert_eq!(repeats, i as u64 + 1);
                assert_eq!(kind, RepeatKind::Repeat);
            }
            other => panic!("expected suppressed, got {other:?}"),
        }
    }
    // Another resource is another fingerprint.
    let other = run(&d, &finding("x", "i-2", Severity::High), true).await.0;
    assert_eq!(
        other,
        Admission::Alert {
            suppressed_repeats: 0
        }
    );
    clock.advance(Duration::from_secs(31));
    let next = run(&d, &finding("e", "i-1", Severity::High), true).await.0;
    assert_eq!(
        next,
        Admission::Alert {
            suppressed_repeats: 3
        }
    );
}

#[tokio::test]
async fn a_failed_delivery_gives_the_claim_back_so_the_retry_alerts() {
    let (d, _, clock) = stage(&settings());
    let f = finding("a", "i-1", Severity::High);
    assert!(matches!(
        run(&d, &f, false).await.0,
        Admission::Alert { .. }
    ));
    clock.advance(Duration::from_secs(1));
    // The retry of the same event, and it is delivered this time.
    assert!(matches!(run(&d, &f, true).await.0, Admission::Alert { .. }));
    // Now it is suppressed.
    assert!(matches!(
        run(&d, &f, true).await.0,
        Admission::Skip(Skip::Suppressed { .. })
    ));
}

#[tokio::test]
async fn a_retry_alerts_even_when_the_release_was_lost() {
    let (d, store, _) = stage(&settings());
    let f = finding("a", "i-1", Severity::High);
    let mut s = d.session();
    assert!(matches!(s.admit(&f).await, Admission::Alert { .. }));
    // The process dies before settling: no release. The retry of the same
    // event recognises its own claim.
    drop(s);
    assert!(store.state_of(&format!("fp#{}", f.fingerprint)).is_some());
    assert!(matches!(run(&d, &f, true).await.0, Admission::Alert { .. }));
}

#[tokio::test]
async fn guardduty_resending_a_finding_updates_instead_of_alerting_unless_severity_rises() {
    let (d, store, clock) = stage(&settings());
    let mut f = finding("gd-1", "i-1", Severity::Medium);
    assert!(matches!(run(&d, &f, true).await.0, Admission::Alert { .. }));
    // Six hours later GuardDuty sends the same finding with a higher count.
    clock.advance(Duration::from_secs(6 * 3600));
    f.count = 12;
    f.event_id = Some("evt-resend".into());
    match run(&d, &f, true).await.0 {
        Admission::Skip(Skip::Suppressed { kind, .. }) => {
            assert_eq!(kind, RepeatKind::SourceUpdate)
        }
        other => panic!("expected an update, got {other:?}"),
    }
    let state: FingerprintState =
        serde_json::from_str(&store.state_of(&format!("fp#{}", f.fingerprint)).unwrap()).unwrap();
    assert_eq!(state.source_count, 12);
    // The Security Hub copy (ARN id) of the same finding: same fingerprint, an update.
    let mut via_hub = f.clone();
    via_hub.id = "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/gd-1".into();
    via_hub.event_id = Some("evt-hub".into());
    assert!(matches!(
        run(&d, &via_hub, true).await.0,
        Admission::Skip(Skip::Suppressed { .. })
    ));
    f.severity = Severity::High;
    f.event_id = Some("evt-worse".into());
    assert_eq!(
        run(&d, &f, true).await.0,
        Admission::Alert {
            suppressed_repeats: 2
        }
    );
}

#[tokio::test]
async fn suppression_rules_skip_with_their_reason() {
    let rules = Suppressions::parse(
        "- {name: scanner, reason: nightly scan, expires: never, resource: 'i-scan*'}",
        "test",
        0,
    )
    .unwrap();
    let (d, _, _) = stage(&settings());
    let d = d.with_suppressions(rules);
    match run(&d, &finding("a", "i-scanner", Severity::High), true)
        .await
        .0
    {
        Admission::Skip(Skip::SuppressedByRule { rule, reason }) => {
            assert_eq!(
                (rule.as_str(), reason.as_str()),
                ("scanner", "nightly scan")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        run(&d, &finding("b", "i-other", Severity::High), true)
            .await
            .0,
        Admission::Alert { .. }
    ));
}

#[tokio::test]
async fn an_unavailable_store_fails_open_and_is_counted() {
    let (d, store, _) = stage(&settings());
    store.set_unavailable(true);
    let f = finding("a", "i-1", Severity::High);
    let mut s = d.session();
    assert_eq!(
        s.admit(&f).await,
        Admission::Alert {
            suppressed_repeats: 0
        }
    );
    s.settle(&f, true).await;
    // The second finding of the event does not wait on the dead store again.
    assert_eq!(
        s.admit(&finding("b", "i-1", Severity::High)).await,
        Admission::Alert {
            suppressed_repeats: 0
        }
    );
    assert!(s.finish().await.is_empty());
    assert_eq!(s.state_store_errors(), 1);
}

#[tokio::test]
async fn a_storm_alerts_up_to_the_threshold_then_summarizes_without_losing_counts() {
    let (d, _, clock) = stage(&settings());
    let mut alerted = 0;
    let mut aggregated = 0;
    let mut summaries = Vec::new();
    for i in 0..40 {
        let severity = if i == 20 {
            Severity::Critical
        } else {
            Severity::High
        };
        let (a, s) = run(
            &d,
            &finding(&format!("f{i}"), &format!("i-{i}"), severity),
            true,
        )
        .await;
        match a {
            Admission::Alert { .. } => alerted += 1,
            Admission::Skip(Skip::Aggregated { position, .. }) => {
                aggregated += 1;
                assert!(position > 5);
            }
            other => panic!("{other:?}"),
        }
        summaries.extend(s);
    }
    // Five individual alerts, plus the CRITICAL one, which always alerts.
    assert_eq!(alerted, 6);
    assert_eq!(aggregated, 34);
    assert_eq!(
        summaries.len(),
        1,
        "one summary when the threshold is crossed"
    );
    assert_eq!(summaries[0].count, 1);
    assert_eq!(summaries[0].evidence["storm_final"], "false");

    // The window closes; the next event (any) sends the final summary.
    clock.advance(Duration::from_secs(300));
    let (_, s) = run(&d, &finding("late", "i-late", Severity::Medium), true).await;
    assert_eq!(s.len(), 1);
    let last = &s[0];
    assert_eq!(last.count, 34);
    assert_eq!(last.evidence["storm_final"], "true");
    assert_eq!(last.evidence["storm_by_severity"], "HIGH=34");
    assert_eq!(last.severity, Severity::High);
    // Once only.
    let (_, s) = run(&d, &finding("later", "i-later", Severity::Medium), true).await;
    assert!(s.is_empty());
}

fn of_type(id: &str, finding_type: &str, severity: Severity) -> Finding {
    let mut f = finding(id, &format!("i-{id}"), severity);
    f.finding_type = finding_type.into();
    f.fingerprint = crate::enrich::fingerprint(&f);
    f
}

#[tokio::test]
async fn a_storm_of_one_kind_never_holds_back_another_kind_or_a_higher_severity() {
    let (d, _, _) = stage(&settings());
    for i in 0..60 {
        run(
            &d,
            &of_type(&format!("p{i}"), "Recon:EC2/Portscan", Severity::Medium),
            true,
        )
        .await;
    }
    let aggregated = |a: &Admission| matches!(a, Admission::Skip(Skip::Aggregated { .. }));
    let same = run(
        &d,
        &of_type("p-more", "Recon:EC2/Portscan", Severity::Medium),
        true,
    )
    .await;
    assert!(aggregated(&same.0), "{:?}", same.0);
    let other_type = of_type("t1", "UnauthorizedAccess:EC2/TorClient", Severity::Medium);
    assert!(!aggregated(&run(&d, &other_type, true).await.0));
    let higher = of_type("h1", "Recon:EC2/Portscan", Severity::High);
    assert!(!aggregated(&run(&d, &higher, true).await.0));
    let mut other_source = of_type("c1", "Recon:EC2/Portscan", Severity::Medium);
    other_source.source = Source::SecurityHub;
    other_source.fingerprint = crate::enrich::fingerprint(&other_source);
    assert!(!aggregated(&run(&d, &other_source, true).await.0));
}

#[tokio::test]
async fn a_new_process_sweeps_the_final_summary_of_a_storm_whose_processes_died() {
    let store = MemoryStore::new();
    let clock = Clock::manual(T0);
    let settings = settings();
    {
        let counting = Dedup::new(&settings, Some(StateStores::new(store.clone())), None)
            .with_clock(clock.clone());
        for i in 0..12 {
            run(
                &counting,
                &finding(&format!("f{i}"), &format!("i-{i}"), Severity::High),
                true,
            )
            .await;
        }
    }
    clock.advance(Duration::from_secs(300));
    let fresh = Dedup::new(&settings, Some(StateStores::new(store.clone())), None)
        .with_clock(clock.clone());
    let mut s = fresh.session();
    let due = s.sweep().await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].count, 7);
    assert_eq!(due[0].evidence["storm_final"], "true");
    s.summary_settled(&due[0], true).await;
    assert!(fresh.session().sweep().await.is_empty(), "once only");
}

#[tokio::test]
async fn an_undelivered_summary_is_sent_again_later() {
    let (d, _, clock) = stage(&settings());
    for i in 0..6 {
        let (_, s) = run(
            &d,
            &finding(&format!("f{i}"), &format!("i-{i}"), Severity::High),
            false,
        )
        .await;
        if i < 5 {
            assert!(s.is_empty());
        } else {
            assert_eq!(s.len(), 1, "the crossing summary, whose delivery fails");
        }
    }
    clock.advance(Duration::from_secs(300));
    let (_, s) = run(&d, &finding("late", "i-late", Severity::Medium), true).await;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].count, 1);
}

#[tokio::test]
async fn without_a_store_everything_alerts_and_rules_still_apply() {
    let d = Dedup::disabled();
    let f = finding("a", "i-1", Severity::High);
    for _ in 0..3 {
        assert_eq!(
            run(&d, &f, true).await.0,
            Admission::Alert {
                suppressed_repeats: 0
            }
        );
    }
}

#[test]
fn settings_read_the_environment_and_refuse_nonsense() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        crate::env::Env::new(move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    let s = DedupSettings::from_settings(&env(&[])).unwrap();
    assert_eq!(
        s.suppression_window_seconds,
        DEFAULT_SUPPRESSION_WINDOW_SECONDS
    );
    assert!(s.state_table.is_none() && s.idempotency_table.is_none());
    let s = DedupSettings::from_settings(&env(&[
        ("VIGIL_STATE_TABLE", "t"),
        ("VIGIL_IDEMPOTENCY_TABLE", "t"),
        ("VIGIL_SUPPRESSION_WINDOW_SECONDS", "1"),
        ("VIGIL_STORM_THRESHOLD", "0"),
    ]))
    .unwrap();
    assert_eq!(s.state_table.as_deref(), Some("t"));
    assert_eq!(s.suppression_window_seconds, 1);
    assert_eq!(s.storm_threshold, 0);
    assert!(DedupSettings::from_settings(&env(&[("VIGIL_STORM_WINDOW_SECONDS", "0")])).is_err());
    assert!(DedupSettings::from_settings(&env(&[("VIGIL_STORM_THRESHOLD", "lots")])).is_err());
}

#[test]
fn finding_keys_normalize_arns() {
    assert_eq!(
        finding_key("arn:aws:guardduty:us-east-1:1:detector/d/finding/abc"),
        "abc"
    );
    assert_eq!(
        finding_key("rule:event/with/slashes"),
        "rule:event/with/slashes"
    );
}

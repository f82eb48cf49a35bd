use serde_json::json;

use super::*;
use crate::ruleset::{RuleSet, RuleSource};
use crate::Detector;

const FILE: &str = r#"
title: Failed console sign-in
id: failed-login
name: failed_login
level: low
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: ConsoleLogin, responseElements.ConsoleLogin: Failure}
  condition: sel
---
title: Console brute force
id: brute
level: high
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [userIdentity.arn]
  timespan: 10m
  condition: {gte: 3}
"#;

fn login(user: &str, t: &str, result: &str) -> serde_json::Value {
    json!({"eventName": "ConsoleLogin", "eventTime": t, "eventID": format!("{user}-{t}"),
        "awsRegion": "us-east-1", "userIdentity": {"arn": format!("arn:aws:iam::1:user/{user}")},
        "responseElements": {"ConsoleLogin": result}})
}

fn set(text: &str) -> RuleSet {
    RuleSet::strict(&[RuleSource {
        origin: "t.yml".into(),
        text: text.to_string().into(),
    }])
    .unwrap()
}

fn run(set: &RuleSet, records: &[serde_json::Value]) -> Vec<Fired> {
    let mut state = MemoryState::new();
    let mut out = Vec::new();
    for r in records {
        let mut obs = Vec::new();
        set.correlate(r, &mut obs);
        out.extend(state.observe(&obs));
    }
    out
}

#[test]
fn a_file_of_a_rule_and_a_correlation_loads_and_silences_the_rule() {
    let set = set(FILE);
    assert_eq!(set.correlations().len(), 1);
    assert!(!set.generates("failed-login"));
    let mut hits = Vec::new();
    set.detect(&login("a", "2026-01-01T00:00:00Z", "Failure"), &mut hits);
    assert!(hits.is_empty(), "generate: false keeps the rule quiet");
    let generating = set_text_with("generate: true");
    assert!(generating.generates("failed-login"));
}

fn set_text_with(extra: &str) -> RuleSet {
    set(&FILE.replace(
        "  condition: {gte: 3}",
        &format!("  condition: {{gte: 3}}\n  {extra}"),
    ))
}

#[test]
fn three_failures_of_one_user_fire_once_per_window_set() {
    let set = set(FILE);
    let records: Vec<_> = (0..5)
        .map(|i| login("alice", &format!("2026-01-01T00:0{i}:10Z"), "Failure"))
        .collect();
    let fired = run(&set, &records);
    // 00:00-00:10 aligned, and 23:55-00:05 offset: both reach three.
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert!(fired.iter().all(|f| f.state.count == 3));
    assert_eq!(fired[0].group_values()[0].1, "arn:aws:iam::1:user/alice");
}

#[test]
fn other_users_successes_and_far_apart_failures_do_not_fire() {
    let set = set(FILE);
    let spread = [
        login("alice", "2026-01-01T00:00:00Z", "Failure"),
        login("bob", "2026-01-01T00:00:01Z", "Failure"),
        login("alice", "2026-01-01T00:00:02Z", "Success"),
        login("alice", "2026-01-01T00:30:00Z", "Failure"),
        login("alice", "2026-01-01T01:00:00Z", "Failure"),
    ];
    assert!(run(&set, &spread).is_empty());
}

#[test]
fn out_of_order_and_late_events_land_in_their_windows() {
    let set = set(FILE);
    // Arrival order reversed, the first ten minutes "late": event time decides.
    let records = [
        login("alice", "2026-01-01T00:04:00Z", "Failure"),
        login("alice", "2026-01-01T00:23:00Z", "Failure"),
        login("alice", "2026-01-01T00:02:00Z", "Failure"),
        login("alice", "2026-01-01T00:03:00Z", "Failure"),
    ];
    let fired = run(&set, &records);
    assert!(!fired.is_empty());
    assert!(fired.iter().all(|f| f.window.start <= 1_767_225_720));
}

#[test]
fn a_burst_across_the_aligned_boundary_is_caught_by_the_offset_set() {
    let set = set(FILE);
    // 00:09:00, 00:09:30, 00:10:30: split by the aligned boundary at 00:10.
    let records = [
        login("alice", "2026-01-01T00:09:00Z", "Failure"),
        login("alice", "2026-01-01T00:09:30Z", "Failure"),
        login("alice", "2026-01-01T00:10:30Z", "Failure"),
    ];
    let fired = run(&set, &records);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].window.phase, Phase::Offset);
}

#[test]
fn windows_cover_each_instant_twice() {
    for t in [-1_i64, 0, 299, 300, 599, 600, 1_767_225_600] {
        for w in windows_of(t, 600) {
            assert!(w.start <= t && t < w.end, "{t} {w:?}");
        }
    }
    let [a, o] = windows_of(0, 600);
    assert_eq!((a.start, o.start), (0, -300));
}

const CHAIN: &str = r#"
title: a
id: step-a
logsource: {product: aws}
detection: {s: {eventName: A}, condition: s}
---
title: b
id: step-b
logsource: {product: aws}
detection: {s: {eventName: B}, condition: s}
---
title: a then b
id: chain
level: high
correlation:
  type: temporal_ordered
  rules: [step-a, step-b]
  group-by: [actor]
  timespan: 30m
"#;

fn ev(name: &str, actor: &str, min: u32) -> serde_json::Value {
    json!({"eventName": name, "actor": actor, "eventTime": format!("2026-01-01T00:{min:02}:00Z")})
}

#[test]
fn temporal_ordered_needs_the_order() {
    let rules = set(CHAIN);
    assert_eq!(run(&rules, &[ev("B", "x", 1), ev("A", "x", 2)]).len(), 0);
    assert!(!run(&rules, &[ev("A", "x", 1), ev("B", "x", 2)]).is_empty());
    // Out of order arrival, right order in time.
    assert!(!run(&rules, &[ev("B", "x", 5), ev("A", "x", 2)]).is_empty());
    assert_eq!(run(&rules, &[ev("A", "x", 1), ev("B", "y", 2)]).len(), 0);
    let unordered = set(&CHAIN.replace("temporal_ordered", "temporal"));
    assert!(!run(&unordered, &[ev("B", "x", 1), ev("A", "x", 2)]).is_empty());
}

#[test]
fn value_count_with_aliases_groups_differently_named_fields() {
    let text = r#"
title: key made
id: made
logsource: {product: aws}
detection: {s: {eventName: CreateAccessKey}, condition: s}
---
title: key used
id: used
logsource: {product: aws}
detection: {s: {userIdentity.accessKeyId|startswith: AKIA}, condition: s}
---
title: new key, new IP
id: newkey
correlation:
  type: value_count
  rules: [made, used]
  group-by: [key]
  aliases:
    key: {made: responseElements.accessKey.accessKeyId, used: userIdentity.accessKeyId}
  timespan: 1h
  condition: {field: sourceIPAddress, gte: 2}
"#;
    let rules = set(text);
    let made = json!({"eventName": "CreateAccessKey", "eventTime": "2026-01-01T00:00:00Z",
        "sourceIPAddress": "1.1.1.1", "responseElements": {"accessKey": {"accessKeyId": "AKIA1"}}});
    let used = |ip: &str, key: &str| {
        json!({"eventName": "ListBuckets", "eventTime": "2026-01-01T00:10:00Z",
        "sourceIPAddress": ip, "userIdentity": {"accessKeyId": key}})
    };
    assert!(!run(&rules, &[made.clone(), used("2.2.2.2", "AKIA1")]).is_empty());
    assert!(run(&rules, &[made.clone(), used("1.1.1.1", "AKIA1")]).is_empty());
    assert!(run(&rules, &[made, used("2.2.2.2", "AKIA2")]).is_empty());
}

#[test]
fn bad_correlations_are_refused_with_reasons() {
    let err = |t: &str| {
        RuleSet::strict(&[RuleSource {
            origin: "t.yml".into(),
            text: t.to_string().into(),
        }])
        .unwrap_err()
        .to_string()
    };
    let missing = FILE.replace("rules: [failed_login]", "rules: [nope]");
    assert!(err(&missing).contains("`nope`, which is not loaded"));
    let chained = format!(
        "{FILE}---\ntitle: c\nid: c2\ncorrelation: {{type: event_count, rules: [brute], timespan: 1h, condition: {{gte: 2}}}}\n"
    );
    assert!(err(&chained).contains("chaining"), "{}", err(&chained));
    assert!(err(&FILE.replace("{gte: 3}", "{lt: 3}")).contains("no lower bound"));
    assert!(err(&FILE.replace("10m", "10 minutes")).contains("timespan"));
    assert!(err(&FILE.replace("event_count", "sum")).contains("unknown type"));
}

#[test]
fn hostile_group_values_stay_bounded_and_unambiguous() {
    let rules = set(FILE);
    let long = "x".repeat(10_000);
    let mut obs = Vec::new();
    rules.correlate(&login(&long, "2026-01-01T00:00:00Z", "Failure"), &mut obs);
    assert_eq!(obs.len(), 2);
    assert!(obs[0].group.len() < MAX_VALUE_CHARS + 10);
    // A value holding the separator of a naive join cannot forge another group.
    let a = json!({"eventName": "A", "actor": "x\",\"y", "eventTime": "2026-01-01T00:00:00Z"});
    let mut obs = Vec::new();
    set(CHAIN).correlate(&a, &mut obs);
    assert_eq!(obs[0].group, r#"["x\",\"y"]"#);
    // No time, no observation.
    let mut obs = Vec::new();
    rules.correlate(
        &json!({"eventName": "ConsoleLogin", "userIdentity": {"arn": "a"},
        "responseElements": {"ConsoleLogin": "Failure"}}),
        &mut obs,
    );
    assert!(obs.is_empty());
}

#[test]
fn rules_test_runs_sequences_and_reports_the_wrong_ones() {
    let with_tests = |fires_three: bool| {
        let events: Vec<String> = (0..3)
            .map(|i| {
                serde_json::to_string(&login("a", &format!("2026-01-01T00:0{i}:00Z"), "Failure"))
                    .unwrap()
            })
            .collect();
        format!(
            "{FILE}vigil_tests:\n  sequences:\n    - fires: {fires_three}\n      events: [{}]\n    - fires: false\n      events: [{}]\n",
            events.join(", "),
            events[0]
        )
    };
    let src = |t: String| {
        vec![RuleSource {
            origin: "t.yml".into(),
            text: t.into(),
        }]
    };
    let ok = crate::ruletest::run(&src(with_tests(true)), &crate::Placeholders::new());
    assert!(ok.ok(), "{}", ok.render());
    assert_eq!(ok.correlations, 1);
    let bad = crate::ruletest::run(&src(with_tests(false)), &crate::Placeholders::new());
    assert_eq!(bad.failures.len(), 1, "{}", bad.render());
    assert!(bad.render().contains("sequences[0]"), "{}", bad.render());
    // Lint: a reference that does not resolve is an error.
    let broken = with_tests(true).replace("rules: [failed_login]", "rules: [gone]");
    let issues = crate::ruletest::lint(&src(broken), &crate::Placeholders::new());
    assert!(
        issues
            .iter()
            .any(|i| i.level == crate::ruletest::LintLevel::Error && i.message.contains("`gone`")),
        "{issues:?}"
    );
}

const JOIN: &str = r#"
title: Key created
id: created
name: key_created
level: low
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: CreateAccessKey}
  condition: sel
---
title: Key used
id: used
name: key_used
level: low
vigil_join_only: true
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {userIdentity.type: IAMUser}
  condition: sel
---
title: New key used elsewhere
id: elsewhere
level: high
correlation:
  type: value_count
  rules: [key_created, key_used]
  group-by: [key]
  aliases:
    key:
      key_created: responseElements.accessKey.accessKeyId
      key_used: userIdentity.accessKeyId
  timespan: 1h
  condition: {field: sourceIPAddress, gte: 2}
"#;

fn key_event(name: &str, key: &str, ip: &str, min: u32) -> serde_json::Value {
    let mut e = json!({"eventName": name, "eventTime": format!("2026-01-01T00:{min:02}:00Z"),
        "sourceIPAddress": ip, "userIdentity": {"type": "IAMUser", "accessKeyId": format!("{key}-caller")}});
    match name {
        "CreateAccessKey" => e["responseElements"] = json!({"accessKey": {"accessKeyId": key}}),
        _ => e["userIdentity"]["accessKeyId"] = json!(key),
    }
    e
}

#[test]
fn a_join_only_rule_adds_to_a_group_its_partner_started_and_starts_none() {
    let set = set(JOIN);
    assert!(set
        .rules()
        .iter()
        .any(|r| r.id() == "used" && r.join_only()));
    let created = key_event("CreateAccessKey", "K1", "192.0.2.1", 0);
    let used = key_event("ListBuckets", "K1", "192.0.2.2", 10);
    assert_eq!(run(&set, &[created.clone(), used.clone()]).len(), 2);
    // Use alone (of any key) keeps no state at all.
    let mut state = MemoryState::new();
    let mut obs = Vec::new();
    set.correlate(&used, &mut obs);
    assert!(obs.iter().all(|o| o.join_only));
    assert!(state.observe(&obs).is_empty());
    assert!(state.is_empty(), "join-only observations start no window");
    // One at a time, a use delivered before the creation is lost...
    assert!(run(&set, &[used.clone(), created.clone()]).is_empty());
    // ...but in one batch (a log file) the creation anchors it.
    let mut batch = Vec::new();
    set.correlate(&used, &mut batch);
    set.correlate(&created, &mut batch);
    assert_eq!(MemoryState::new().observe(&batch).len(), 2);
}

#[test]
fn vigil_join_only_must_be_a_boolean() {
    let bad = JOIN.replace("vigil_join_only: true", "vigil_join_only: sometimes");
    let err = RuleSet::strict(&[RuleSource {
        origin: "t.yml".into(),
        text: bad.into(),
    }])
    .unwrap_err();
    assert!(err.to_string().contains("vigil_join_only"), "{err}");
}

const CROSS: &str = r#"
title: Finding on a key
id: gd-finding
name: gd_finding
level: low
logsource: {product: aws, service: guardduty}
detection:
  sel: {resource.resourceType: AccessKey, severity|gte: 4}
  condition: sel
---
title: Key created
id: ct-key
name: ct_key
level: low
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: CreateAccessKey}
  condition: sel
---
title: Finding then key
id: finding-then-key
level: high
correlation:
  type: temporal_ordered
  rules: [gd_finding, ct_key]
  group-by: [principal]
  aliases:
    principal:
      gd_finding: resource.accessKeyDetails.principalId
      ct_key: userIdentity.principalId
  timespan: 1h
"#;

fn gd_finding(first_seen: &str, severity: u32) -> serde_json::Value {
    json!({"id": "f1", "type": "UnauthorizedAccess:IAMUser/TorIPCaller", "region": "us-east-1",
        "arn": "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f1", "severity": severity,
        "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"principalId": "AIDA1"}},
        "service": {"serviceName": "guardduty", "eventFirstSeen": first_seen}, "createdAt": "2026-01-01T05:00:00Z"})
}

#[test]
fn guardduty_rules_see_only_findings_and_feed_cross_source_correlations() {
    let set = set(CROSS);
    let finding = gd_finding("2026-01-01T00:00:00Z", 5);
    let key = json!({"eventName": "CreateAccessKey", "eventTime": "2026-01-01T00:10:00Z",
        "userIdentity": {"principalId": "AIDA1"}});
    // A finding handed over as a CloudTrail record meets no rule, and the
    // GuardDuty rule never alerts.
    let mut obs = Vec::new();
    set.correlate(&finding, &mut obs);
    assert!(obs.is_empty());
    let mut hits = Vec::new();
    set.detect(&finding, &mut hits);
    assert!(hits.is_empty());
    let mut state = MemoryState::new();
    set.correlate_from(LogSource::GuardDuty, &finding, &mut obs);
    assert_eq!(
        obs[0].event.time, 1_767_225_600,
        "first seen, not createdAt"
    );
    assert_eq!(
        (obs[0].event.name.as_str(), obs[0].event.source),
        (
            "UnauthorizedAccess:IAMUser/TorIPCaller",
            LogSource::GuardDuty
        )
    );
    assert!(state.observe(&obs).is_empty());
    let mut obs = Vec::new();
    set.correlate(&key, &mut obs);
    assert_eq!(state.observe(&obs).len(), 2, "both window sets");
    // The key before the finding's activity, or a low finding: nothing.
    let mut state = MemoryState::new();
    let mut obs = Vec::new();
    set.correlate_from(
        LogSource::GuardDuty,
        &gd_finding("2026-01-01T00:20:00Z", 5),
        &mut obs,
    );
    set.correlate_from(
        LogSource::GuardDuty,
        &gd_finding("2026-01-01T00:00:00Z", 2),
        &mut obs,
    );
    set.correlate(&key, &mut obs);
    assert!(state.observe(&obs).is_empty());
}

#[test]
fn memory_keeps_only_recent_windows_and_a_late_event_within_the_grace_still_counts() {
    let set = set(FILE);
    let mut state = MemoryState::new();
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    // One failure a minute by a new user each time, for three days: every
    // event opens windows of its own.
    for minute in 0..(3 * 24 * 60) {
        let t = (start + chrono::Duration::minutes(minute)).to_rfc3339();
        let mut obs = Vec::new();
        set.correlate(&login(&format!("u{minute}"), &t, "Failure"), &mut obs);
        state.observe(&obs);
    }
    // Two windows per event; those closed over an hour before the newest go.
    assert!(
        state.len() < 1024 * 2 + 2 * 90,
        "{} windows kept",
        state.len()
    );
    // A user failing three times, the last one 20 minutes late, still fires.
    let late = |m: i64| (start + chrono::Duration::minutes(3 * 24 * 60 - 30 + m)).to_rfc3339();
    let records = [
        login("x", &late(0), "Failure"),
        login("x", &late(1), "Failure"),
    ];
    let mut obs = Vec::new();
    for r in &records {
        set.correlate(r, &mut obs);
    }
    assert!(state.observe(&obs).is_empty());
    let mut obs = Vec::new();
    set.correlate(&login("x", &late(2), "Failure"), &mut obs);
    assert!(!state.observe(&obs).is_empty(), "the window was kept");
}

//! The bundled rules (`rules/`, embedded in the binary): they all load, pass
//! their own test records, lint clean, and cover what DESIGN.md promises.

use std::collections::BTreeSet;

use vigil_detect::correlation::check;
use vigil_detect::pattern;
use vigil_detect::ruletest::{self, LintLevel};
use vigil_detect::{Detector, Placeholders, RuleSet, RuleSource};
use vigil_model::Severity;

#[test]
fn bundled_rules_are_embedded_and_load() {
    let sources = RuleSource::bundled();
    assert!(
        sources.len() >= 55,
        "only {} bundled rules embedded",
        sources.len()
    );
    assert!(sources.iter().all(|s| s.origin.starts_with("bundled:")));
    let set = RuleSet::bundled().expect("every bundled rule loads");
    // A correlation file holds its correlations and the rules they count.
    let rules_in = |s: &RuleSource| match check::split(s) {
        None => 1,
        Some(split) => split.expect("bundled files parse").rules.len(),
    };
    assert_eq!(
        set.rule_count(),
        sources.iter().map(rules_in).sum::<usize>()
    );
    assert!(set.skipped().is_empty());
    assert!(
        set.correlations().len() >= 7,
        "{}",
        set.correlations().len()
    );
}

#[test]
fn the_running_rule_is_the_tested_rule() {
    // Functions parse rules without their vigil_tests (cold start); the
    // tests parse the whole file. Both must give the same rule.
    let runtime = RuleSource::bundled_runtime();
    assert_eq!(runtime.len(), RuleSource::bundled().len());
    for (src, run) in RuleSource::bundled().iter().zip(&runtime) {
        assert_eq!(src.origin, run.origin);
        assert!(run.text.starts_with('{'), "{}: not precompiled", src.origin);
        assert!(!run.text.contains("vigil_tests"), "{}", src.origin);
        if let Some(split) = check::split(src) {
            let (tested, running) = (split.unwrap(), check::split(run).unwrap().unwrap());
            assert_eq!(tested.rules.len(), running.rules.len(), "{}", src.origin);
            for (t, r) in tested.rules.iter().zip(&running.rules) {
                let t = vigil_detect::Rule::parse(&t.origin, &t.text).unwrap();
                let r = vigil_detect::Rule::parse(&r.origin, &r.text).unwrap();
                assert_eq!(t.meta(), r.meta(), "{}", src.origin);
            }
            let ids = |s: &check::Split| -> Vec<String> {
                s.correlations
                    .iter()
                    .map(|c| c.correlation.id.clone())
                    .collect()
            };
            assert_eq!(ids(&tested), ids(&running), "{}", src.origin);
            continue;
        }
        let running = vigil_detect::Rule::parse(&run.origin, &run.text).unwrap();
        let stripped = vigil_detect::Rule::parse(&src.origin, &src.text).unwrap();
        assert_eq!(running.meta(), stripped.meta(), "{}", src.origin);
        let full = vigil_detect::Rule::parse_full(&src.origin, &src.text).unwrap();
        assert_eq!(running.meta(), full.rule.meta(), "{}", src.origin);
        let tests = full.tests.expect("bundled rules carry tests");
        for r in tests.matching.iter().chain(&tests.not_matching) {
            assert_eq!(running.matches(r), full.rule.matches(r), "{}", src.origin);
            assert_eq!(stripped.matches(r), full.rule.matches(r), "{}", src.origin);
        }
    }
}

#[test]
fn every_bundled_rule_passes_its_own_test_records() {
    // Without placeholders: a function with no configuration runs them all.
    let report = ruletest::run(&RuleSource::bundled(), &Placeholders::new());
    assert!(report.ok(), "{}", report.render());
    assert!(
        report.untested.is_empty(),
        "rules without matching test records:\n{}",
        report.untested.join("\n")
    );
    // Each rule has at least one matching and one non-matching record.
    assert!(report.cases >= 2 * report.rules, "{}", report.render());
}

#[test]
fn bundled_rules_lint_clean() {
    let issues = ruletest::lint(&RuleSource::bundled(), &Placeholders::new());
    let errors: Vec<_> = issues
        .iter()
        .filter(|i| i.level == LintLevel::Error)
        .collect();
    assert!(errors.is_empty(), "{}", ruletest::render_lint(&issues));
    // Warnings are allowed only for rules that must look at every event.
    for i in &issues {
        assert!(
            i.message.contains("runs on every event"),
            "unexpected lint warning: {}: {}",
            i.origin,
            i.message
        );
    }
}

#[test]
fn cis_section_4_is_covered_one_rule_per_control() {
    let set = RuleSet::bundled().unwrap();
    let mut controls = BTreeSet::new();
    for r in set.rules() {
        for t in r.tags() {
            if let Some(c) = t.strip_prefix("cis.") {
                assert!(controls.insert(c.to_string()), "two rules for CIS {c}");
                assert!(
                    r.meta().title.starts_with(&format!("CIS {c} ")),
                    "{}",
                    r.meta().title
                );
            }
        }
    }
    let want: BTreeSet<String> = (1..=15).map(|i| format!("4.{i}")).collect();
    assert_eq!(controls, want);
}

#[test]
fn attack_rules_are_many_tagged_and_not_catch_all() {
    let set = RuleSet::bundled().unwrap();
    let attacks: Vec<_> = set
        .rules()
        .iter()
        .filter(|r| r.origin().starts_with("bundled:attacks/"))
        .collect();
    assert!(attacks.len() >= 40, "only {} attack rules", attacks.len());
    for r in &attacks {
        let m = r.meta();
        assert!(!m.tactics.is_empty(), "{}: no ATT&CK tactic", r.origin());
        assert!(
            !m.techniques.is_empty(),
            "{}: no ATT&CK technique",
            r.origin()
        );
        assert!(!m.references.is_empty(), "{}: no reference", r.origin());
        assert!(
            !m.false_positives.is_empty(),
            "{}: no false positives",
            r.origin()
        );
    }
    // No catch-alls: every CloudTrail rule narrows the events it takes to
    // something an EventBridge pattern can state (a call, an error code,
    // root...). GuardDuty rules are never in a pattern.
    for r in set.rules().iter().filter(|r| r.logsource().is_cloudtrail()) {
        let alts = pattern::alternatives([r]);
        assert!(
            !alts.is_empty() && alts.iter().all(|a| !a.is_empty()),
            "{} would take every CloudTrail event",
            r.origin()
        );
    }
    // The few rules that the index cannot skip stay cheap and below the
    // default alerting threshold, except root use (CIS 4.3).
    for r in set.unindexed() {
        assert!(
            r.meta().severity < Severity::Medium || r.tags().iter().any(|t| t == "cis.4.3"),
            "{} runs on every event at {}",
            r.origin(),
            r.meta().severity
        );
    }
    let high = attacks
        .iter()
        .filter(|r| r.meta().severity >= Severity::High)
        .count();
    assert!(high >= 25, "only {high} high/critical attack rules");
}

#[test]
fn ids_are_unique_uuids() {
    let set = RuleSet::bundled().unwrap();
    let mut ids = BTreeSet::new();
    for r in set.rules() {
        assert!(ids.insert(r.id()), "duplicate id {}", r.id());
        assert_eq!(r.id().len(), 36, "{}", r.id());
    }
}

#[test]
fn a_user_folder_overrides_and_retires_bundled_rules() {
    let set = RuleSet::bundled().unwrap();
    let victim = &set.rules()[0];
    let dir = std::env::temp_dir().join(format!("vigil-rules-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let retired = format!(
        "title: switched off\nid: {}\nstatus: deprecated\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  s:\n    eventName: Nothing\n  condition: s\nlevel: low\n",
        victim.id()
    );
    std::fs::write(dir.join("off.yml"), retired).unwrap();
    std::fs::write(
        dir.join("mine.yaml"),
        "title: my rule\nid: 7d8e9f00-1111-4222-8333-944455556666\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    eventName: GetCallerIdentity\n  condition: s\nlevel: high\n",
    )
    .unwrap();
    let loaded = RuleSet::load(Some(&dir)).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        !loaded.ids().contains(victim.id()),
        "the retired rule still runs"
    );
    assert!(loaded
        .ids()
        .contains("7d8e9f00-1111-4222-8333-944455556666"));
    assert_eq!(loaded.rule_count(), set.rule_count());
    assert_eq!(loaded.skipped().len(), 1);
}

#[test]
fn a_broken_user_rule_fails_start_up() {
    let dir = std::env::temp_dir().join(format!("vigil-rules-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yml"),
        "title: bad\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    eventName|bogus: X\n  condition: s\n",
    )
    .unwrap();
    let err = RuleSet::load(Some(&dir)).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    let text = err.to_string();
    assert!(text.contains("bad.yml") && text.contains("bogus"), "{text}");
}

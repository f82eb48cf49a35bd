//! Sigma semantics of the rule engine, one behaviour at a time, through the
//! public API (`Rule::parse` + `Rule::matches`).

use serde_json::{json, Value};
use vigil_detect::ruletest;
use vigil_detect::{Placeholders, Rule, RuleErrorKind, RuleSet, RuleSource, Unsupported};
use vigil_model::{Severity, Tactic};

fn rule(detection: &str) -> Rule {
    let text = format!(
        "title: t\nid: 0b7c5c36-7d57-4f3b-9a63-2d8f1e7a9c01\nlevel: high\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n{detection}"
    );
    Rule::parse("test.yml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn err(detection: &str) -> RuleErrorKind {
    let text = format!(
        "title: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}"
    );
    Rule::parse("test.yml", &text).unwrap_err().kind
}

fn ct(name: &str, extra: Value) -> Value {
    let mut r = json!({
        "eventVersion": "1.09", "eventSource": "iam.amazonaws.com", "eventName": name,
        "awsRegion": "us-east-1", "userIdentity": {"type": "IAMUser", "userName": "alice"}
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut r, extra) {
        m.extend(e);
    }
    r
}

#[test]
fn plain_values_are_case_insensitive_whole_values() {
    let r = rule("  s:\n    eventName: CreateUser\n  condition: s\n");
    assert!(r.matches(&ct("CreateUser", json!({}))));
    assert!(r.matches(&ct("createuser", json!({}))));
    assert!(!r.matches(&ct("CreateUserX", json!({}))));
    assert!(!r.matches(&ct("XCreateUser", json!({}))));
    let cased = rule("  s:\n    eventName|cased: CreateUser\n  condition: s\n");
    assert!(cased.matches(&ct("CreateUser", json!({}))));
    assert!(!cased.matches(&ct("createuser", json!({}))));
}

#[test]
fn wildcards() {
    let r = rule("  s:\n    eventName: 'Create*Key'\n  condition: s\n");
    assert!(r.matches(&ct("CreateAccessKey", json!({}))));
    assert!(r.matches(&ct("createkey", json!({}))));
    assert!(!r.matches(&ct("CreateAccessKeys", json!({}))));
    let q = rule("  s:\n    eventName: 'Get?ecret*'\n  condition: s\n");
    assert!(q.matches(&ct("GetSecretValue", json!({}))));
    assert!(!q.matches(&ct("GetecretValue", json!({}))));
    let any = rule("  s:\n    errorCode: '*'\n  condition: s\n");
    assert!(any.matches(&ct("X", json!({"errorCode": "AccessDenied"}))));
    assert!(any.matches(&ct("X", json!({"errorCode": ""}))));
    assert!(!any.matches(&ct("X", json!({}))));
    assert!(!any.matches(&ct("X", json!({"errorCode": null}))));
}

#[test]
fn contains_startswith_endswith_and_all() {
    let c = rule("  s:\n    userAgent|contains: trufflehog\n  condition: s\n");
    assert!(c.matches(&ct("X", json!({"userAgent": "TruffleHog v3"}))));
    assert!(!c.matches(&ct("X", json!({"userAgent": "aws-cli"}))));
    let s = rule("  s:\n    eventName|startswith: Delete\n  condition: s\n");
    assert!(s.matches(&ct("DeleteTrail", json!({}))));
    assert!(!s.matches(&ct("UndeleteTrail", json!({}))));
    let e = rule("  s:\n    errorCode|endswith: UnauthorizedOperation\n  condition: s\n");
    assert!(e.matches(&ct(
        "X",
        json!({"errorCode": "Client.UnauthorizedOperation"})
    )));
    let all =
        rule("  s:\n    userAgent|contains|all:\n      - boto\n      - linux\n  condition: s\n");
    assert!(all.matches(&ct("X", json!({"userAgent": "Boto3/1.34 os/linux"}))));
    assert!(!all.matches(&ct("X", json!({"userAgent": "Boto3/1.34 os/windows"}))));
    let any = rule("  s:\n    userAgent|contains:\n      - boto\n      - linux\n  condition: s\n");
    assert!(any.matches(&ct("X", json!({"userAgent": "Boto3/1.34 os/windows"}))));
}

#[test]
fn regular_expressions_are_case_sensitive_unless_i() {
    let r = rule("  s:\n    userIdentity.arn|re: ':assumed-role/aws:'\n  condition: s\n");
    let rec = |arn: &str| ct("X", json!({"userIdentity": {"arn": arn}}));
    assert!(r.matches(&rec("arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1")));
    assert!(!r.matches(&rec("arn:aws:sts::1:ASSUMED-ROLE/aws:ec2-instance/i-1")));
    let i = rule("  s:\n    userIdentity.arn|re|i: ':assumed-role/AWS:'\n  condition: s\n");
    assert!(i.matches(&rec("arn:aws:sts::1:assumed-role/aws:ec2")));
    let anchored = rule("  s:\n    eventName|re: '^Get[A-Z]'\n  condition: s\n");
    assert!(anchored.matches(&ct("GetSecretValue", json!({}))));
    assert!(!anchored.matches(&ct("BatchGetSecretValue", json!({}))));
}

#[test]
fn cidr_and_numeric_comparisons() {
    let r = rule("  s:\n    sourceIPAddress|cidr:\n      - 10.0.0.0/8\n      - '2001:db8::/32'\n  condition: s\n");
    assert!(r.matches(&ct("X", json!({"sourceIPAddress": "10.1.2.3"}))));
    assert!(r.matches(&ct("X", json!({"sourceIPAddress": "2001:db8::1"}))));
    assert!(!r.matches(&ct("X", json!({"sourceIPAddress": "192.0.2.1"}))));
    assert!(!r.matches(&ct("X", json!({"sourceIPAddress": "AWS Internal"}))));
    let n = rule("  s:\n    requestParameters.pendingWindowInDays|lt: 8\n  condition: s\n");
    assert!(n.matches(&ct(
        "X",
        json!({"requestParameters": {"pendingWindowInDays": 7}})
    )));
    assert!(n.matches(&ct(
        "X",
        json!({"requestParameters": {"pendingWindowInDays": "7"}})
    )));
    assert!(!n.matches(&ct(
        "X",
        json!({"requestParameters": {"pendingWindowInDays": 30}})
    )));
    assert!(!n.matches(&ct(
        "X",
        json!({"requestParameters": {"pendingWindowInDays": "soon"}})
    )));
    for (m, v, want) in [
        ("gt", 7, false),
        ("gte", 7, true),
        ("lte", 7, true),
        ("gt", 6, true),
    ] {
        let r = rule(&format!("  s:\n    a|{m}: {v}\n  condition: s\n"));
        assert_eq!(r.matches(&json!({"a": 7})), want, "{m} {v}");
    }
}

#[test]
fn null_and_exists() {
    let null = rule("  s:\n    errorCode: null\n  condition: s\n");
    assert!(null.matches(&ct("X", json!({}))));
    assert!(null.matches(&ct("X", json!({"errorCode": null}))));
    assert!(!null.matches(&ct("X", json!({"errorCode": "AccessDenied"}))));
    let nested_null = rule("  s:\n    a.b.c: null\n  condition: s\n");
    assert!(nested_null.matches(&json!({"a": null})));
    assert!(nested_null.matches(&json!({"a": {"b": {}}})));
    assert!(!nested_null.matches(&json!({"a": {"b": {"c": 1}}})));
    let exists = rule("  s:\n    userIdentity.invokedBy|exists: true\n  condition: s\n");
    assert!(exists.matches(&ct(
        "X",
        json!({"userIdentity": {"invokedBy": "ec2.amazonaws.com"}})
    )));
    assert!(!exists.matches(&ct("X", json!({}))));
    assert!(!exists.matches(&ct("X", json!({"userIdentity": {"invokedBy": null}}))));
    let absent = rule("  s:\n    userIdentity.invokedBy|exists: false\n  condition: s\n");
    assert!(absent.matches(&ct("X", json!({}))));
    assert!(!absent.matches(&ct("X", json!({"userIdentity": {"invokedBy": "x"}}))));
    let empty = rule("  s:\n    a: ''\n  condition: s\n");
    assert!(empty.matches(&json!({"a": ""})));
    assert!(!empty.matches(&json!({})));
}

#[test]
fn arrays_anywhere_along_the_path_match_any_element() {
    let r = rule(
        "  s:\n    requestParameters.ipPermissions.items.ipRanges.items.cidrIp: 0.0.0.0/0\n    requestParameters.ipPermissions.items.fromPort: 22\n  condition: s\n",
    );
    let rec = |cidr: &str, port: Value| {
        json!({"requestParameters": {"ipPermissions": {"items": [
            {"fromPort": 443, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}},
            {"fromPort": port, "ipRanges": {"items": [{"cidrIp": "192.0.2.0/24"}, {"cidrIp": cidr}]}}
        ]}}})
    };
    assert!(r.matches(&rec("0.0.0.0/0", json!(22))));
    assert!(
        r.matches(&rec("0.0.0.0/0", json!("22"))),
        "numbers match their text"
    );
    assert!(!r.matches(&rec("10.1.0.0/16", json!(22))));
    assert!(!r.matches(&rec("0.0.0.0/0", json!(2222))));
    let leaf = rule("  s:\n    requestParameters.valuesToAdd: all\n  condition: s\n");
    assert!(leaf.matches(&json!({"requestParameters": {"valuesToAdd": ["111122223333", "all"]}})));
    assert!(!leaf.matches(&json!({"requestParameters": {"valuesToAdd": []}})));
    let empty_is_null = rule("  s:\n    requestParameters.valuesToAdd: null\n  condition: s\n");
    assert!(empty_is_null.matches(&json!({"requestParameters": {"valuesToAdd": []}})));
}

#[test]
fn objects_compare_as_their_json_text() {
    let r = rule("  s:\n    requestParameters|contains|all:\n      - '\"Effect\":\"Allow\"'\n      - '\"s3:GetObject\"'\n  condition: s\n");
    assert!(r.matches(&json!({"requestParameters": {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}})));
    assert!(!r.matches(
        &json!({"requestParameters": {"Statement": [{"Effect": "Deny", "Action": "s3:GetObject"}]}})
    ));
}

#[test]
fn booleans_compare_as_text() {
    let r = rule("  s:\n    requestParameters.enable: false\n  condition: s\n");
    assert!(r.matches(&json!({"requestParameters": {"enable": false}})));
    assert!(r.matches(&json!({"requestParameters": {"enable": "False"}})));
    assert!(!r.matches(&json!({"requestParameters": {"enable": true}})));
}

#[test]
fn lists_of_maps_are_or_and_maps_are_and() {
    let r = rule(
        "  s:\n    - eventName: A\n      eventSource: x.amazonaws.com\n    - eventName: B\n  condition: s\n",
    );
    assert!(r.matches(&json!({"eventName": "A", "eventSource": "x.amazonaws.com"})));
    assert!(!r.matches(&json!({"eventName": "A", "eventSource": "y.amazonaws.com"})));
    assert!(r.matches(&json!({"eventName": "B", "eventSource": "y.amazonaws.com"})));
}

#[test]
fn keywords_search_every_value() {
    let r = rule("  keywords:\n    - TruffleHog\n    - 'pacu*'\n  condition: keywords\n");
    assert!(r.matches(&json!({"userAgent": "trufflehog/3.63"})));
    assert!(r.matches(&json!({"a": {"b": ["x", "Pacu v1.5"]}})));
    assert!(!r.matches(&json!({"userAgent": "aws-cli", "n": 5})));
    let all =
        rule("  keywords:\n    '|all':\n      - alpha\n      - beta\n  condition: keywords\n");
    assert!(all.matches(&json!({"a": "alpha", "b": {"c": "beta"}})));
    assert!(!all.matches(&json!({"a": "alpha"})));
}

#[test]
fn conditions_combine_selections() {
    let r = rule(
        "  sel:\n    eventName: ConsoleLogin\n  filter_a:\n    userIdentity.type: AssumedRole\n  filter_b:\n    additionalEventData.MFAUsed: 'Yes'\n  condition: sel and not 1 of filter_*\n",
    );
    let login = |t: &str, mfa: &str| json!({"eventName": "ConsoleLogin", "userIdentity": {"type": t}, "additionalEventData": {"MFAUsed": mfa}});
    assert!(r.matches(&login("IAMUser", "No")));
    assert!(!r.matches(&login("AssumedRole", "No")));
    assert!(!r.matches(&login("IAMUser", "Yes")));
    let all_of = rule("  a_1:\n    x: 1\n  a_2:\n    y: 2\n  condition: all of a_*\n");
    assert!(all_of.matches(&json!({"x": 1, "y": 2})));
    assert!(!all_of.matches(&json!({"x": 1})));
    let them = rule("  a:\n    x: 1\n  b:\n    y: 2\n  condition: 1 of them\n");
    assert!(them.matches(&json!({"y": 2})));
    let parens =
        rule("  a:\n    x: 1\n  b:\n    y: 2\n  c:\n    z: 3\n  condition: a and (b or c)\n");
    assert!(parens.matches(&json!({"x": 1, "z": 3})));
    assert!(!parens.matches(&json!({"x": 1})));
    let list = rule("  a:\n    x: 1\n  b:\n    y: 2\n  condition:\n    - a\n    - b\n");
    assert!(list.matches(&json!({"y": 2})));
}

#[test]
fn fieldref_compares_two_fields() {
    let r = rule(
        "  s:\n    userIdentity.userName|fieldref: requestParameters.userName\n  condition: s\n",
    );
    assert!(r.matches(
        &json!({"userIdentity": {"userName": "Alice"}, "requestParameters": {"userName": "alice"}})
    ));
    assert!(!r.matches(
        &json!({"userIdentity": {"userName": "alice"}, "requestParameters": {"userName": "bob"}})
    ));
    assert!(!r.matches(&json!({"requestParameters": {"userName": "bob"}})));
    let ends = rule("  s:\n    userIdentity.arn|fieldref|endswith: requestParameters.userName\n  condition: s\n");
    assert!(ends.matches(&json!({"userIdentity": {"arn": "arn:aws:iam::1:user/bob"}, "requestParameters": {"userName": "bob"}})));
}

#[test]
fn metadata_becomes_the_rule_meta() {
    let text = "title: Trail stopped\nid: 5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f\nstatus: stable\ndescription: d\nreferences: [https://example.com/a]\ntags: [attack.defense-evasion, attack.t1562.008]\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    eventName: StopLogging\n  condition: s\nfalsepositives: [maintenance]\nlevel: critical\n";
    let r = Rule::parse("x.yml", text).unwrap();
    let m = r.meta();
    assert_eq!(m.id, "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
    assert_eq!(m.severity, Severity::Critical);
    assert_eq!(m.tactics, vec![Tactic::DefenseEvasion]);
    assert_eq!(m.techniques[0].id, "T1562.008");
    assert_eq!(m.false_positives, vec!["maintenance".to_string()]);
    assert_eq!(m.references, vec!["https://example.com/a".to_string()]);
    // No id: the file stem.
    let r = Rule::parse(
        "rules/my_rule.yml",
        "title: t\ndetection:\n  s:\n    a: 1\n  condition: s\n",
    )
    .unwrap();
    assert_eq!(r.id(), "my_rule");
}

#[test]
fn invalid_rules_are_typed_errors_not_panics() {
    assert!(matches!(
        err("  s:\n    a|nope: 1\n  condition: s\n"),
        RuleErrorKind::UnknownModifier { .. }
    ));
    assert!(matches!(
        err("  s:\n    a|re: '(unclosed'\n  condition: s\n"),
        RuleErrorKind::Regex { .. }
    ));
    assert!(matches!(
        err("  s:\n    a: 1\n  condition: s and t\n"),
        RuleErrorKind::Condition { .. }
    ));
    assert!(matches!(err("  s:\n    a: 1\n"), RuleErrorKind::Missing(_)));
    assert!(matches!(
        err("  s:\n    a: [[1]]\n  condition: s\n"),
        RuleErrorKind::Field { .. }
    ));
    assert!(matches!(
        err("  s: {}\n  condition: s\n"),
        RuleErrorKind::Invalid { .. }
    ));
    assert!(matches!(
        err("  s:\n    a|exists: maybe\n  condition: s\n"),
        RuleErrorKind::Field { .. }
    ));
    assert!(matches!(
        err("  s:\n    a|gt: lots\n  condition: s\n"),
        RuleErrorKind::Field { .. }
    ));
    assert!(matches!(
        err("  s:\n    a: 1\n  condition: s | count() by b > 3\n"),
        RuleErrorKind::Unsupported(Unsupported::Aggregation(_))
    ));
    assert!(matches!(
        err("  s:\n    a: 1\n  timeframe: 5m\n  condition: s\n"),
        RuleErrorKind::Unsupported(Unsupported::Timeframe(_))
    ));
    let other_source = Rule::parse(
        "w.yml",
        "title: t\nlogsource: {product: windows, service: security}\ndetection:\n  s:\n    a: 1\n  condition: s\n",
    )
    .unwrap_err();
    assert!(matches!(
        other_source.kind,
        RuleErrorKind::Unsupported(Unsupported::LogSource(_))
    ));
    for garbage in [
        "",
        "- a\n- b\n",
        "title: [",
        "title: t\n---\ntitle: u\n",
        ": : :",
        "\u{0}",
    ] {
        assert!(Rule::parse("g.yml", garbage).is_err(), "{garbage:?}");
    }
    // Untrusted input is never a panic, whatever the shape.
    for d in [
        "  s: 5\n  condition: s\n",
        "  s: [a, {b: 1}]\n  condition: s\n",
        "  s:\n    a: !!binary aGVsbG8=\n  condition: s\n",
        "  condition: 1 of them\n",
        "  s:\n    '': x\n  condition: s\n",
        "  s:\n    a|base64offset|contains|all: [x, y]\n  condition: s\n",
    ] {
        let _ = Rule::parse("g.yml", &format!("title: t\ndetection:\n{d}"));
    }
}

#[test]
fn a_wrong_test_record_fails_the_rule_tests() {
    let text = "title: t\nid: 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d\nlevel: low\ntags: [attack.discovery, attack.t1580]\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    eventName: ListUsers\n  condition: s\nvigil_tests:\n  match:\n    - {eventName: ListUsers}\n    - {eventName: ListRoles}\n  no_match:\n    - {eventName: ListUsers}\n";
    let report = ruletest::run(
        &[RuleSource {
            origin: "t.yml".into(),
            text: text.to_string().into(),
        }],
        &Placeholders::new(),
    );
    assert!(!report.ok());
    assert_eq!(report.failures.len(), 2, "{}", report.render());
    assert_eq!(report.cases, 3);
    assert!(report.render().contains("match[1]"));
    assert!(report.render().contains("no_match[0]"));
}

#[test]
fn the_index_agrees_with_evaluating_every_rule() {
    let set = RuleSet::bundled().unwrap();
    let mut checked = 0;
    for src in vigil_detect::correlation::check::flatten(&RuleSource::bundled()) {
        let p = Rule::parse_full(&src.origin, &src.text).unwrap();
        for record in p
            .tests
            .iter()
            .flat_map(|t| t.matching.iter().chain(&t.not_matching))
        {
            let mut a: Vec<&str> = set.matching(record).iter().map(|r| r.id()).collect();
            let mut b: Vec<&str> = set
                .matching_unindexed(record)
                .iter()
                .map(|r| r.id())
                .collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{}", src.origin);
            checked += 1;
        }
    }
    assert!(checked > 100);
    // Odd shapes the index cannot read still meet every rule.
    let text = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    eventName: 42\n  condition: s\n";
    let set = RuleSet::strict(&[RuleSource {
        origin: "n.yml".into(),
        text: text.to_string().into(),
    }])
    .unwrap();
    assert_eq!(set.matching(&json!({"eventName": 42})).len(), 1);
    assert_eq!(set.matching(&json!({"eventName": "42"})).len(), 1);
    assert_eq!(set.matching(&json!({"eventName": [41, 42]})).len(), 1);
}

//! Sigma 2.1's `neq` and time modifiers, and `|expand` with configured
//! placeholders (modifiers appendix 2.1.0; pySigma where the appendix is
//! silent), on CloudTrail records shaped as AWS writes them.

use serde_json::{json, Value};
use vigil_detect::eventbridge::{cloudtrail_envelope, EventPattern};
use vigil_detect::{pattern, ruletest};
use vigil_detect::{Placeholders, Rule, RuleErrorKind, RuleSet, RuleSource};

const HEAD: &str = "title: t\nid: 5d0f3b0e-2f8e-4f0b-9d55-3b1c9a7e6f21\nlevel: medium\nlogsource:\n  product: aws\n  service: cloudtrail\n";

fn text(detection: &str) -> String {
    format!("{HEAD}detection:\n{detection}")
}

fn rule(detection: &str) -> Rule {
    rule_with(detection, &Placeholders::new())
}

fn rule_with(detection: &str, placeholders: &Placeholders) -> Rule {
    let text = text(detection);
    Rule::parse_with("test.yml", &text, placeholders).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn err(detection: &str) -> RuleErrorKind {
    Rule::parse("test.yml", &text(detection)).unwrap_err().kind
}

fn placeholders(json: Value) -> Placeholders {
    Placeholders::parse(&json.to_string()).unwrap()
}

/// A console sign-in record as CloudTrail writes it (the AWS documentation's
/// example of a successful IAM-user sign-in), with `changes` applied.
fn console_login(changes: Value) -> Value {
    let mut r = json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDACKCEVSQ6C2EXAMPLE",
            "arn": "arn:aws:iam::111122223333:user/JohnDoe",
            "accountId": "111122223333",
            "userName": "JohnDoe"
        },
        "eventTime": "2024-07-16T15:49:27Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-2",
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
        "requestParameters": null,
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "Yes"
        },
        "eventID": "3fcfb182-98f8-4744-bd45-10a395ab61cb",
        "readOnly": false,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "signin.aws.amazon.com"
        }
    });
    merge(&mut r, changes);
    r
}

/// An IAM API call record (`UpdateLoginProfile` by one IAM user on another).
fn iam_call(changes: Value) -> Value {
    let mut r = json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAJ45Q7YFFAREXAMPLE",
            "arn": "arn:aws:iam::111122223333:user/alice",
            "accountId": "111122223333",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "userName": "alice"
        },
        "eventTime": "2024-07-16T02:10:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "UpdateLoginProfile",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.17.5 md/awscrt#0.20.11 ua/2.0 os/linux#6.5 md/arch#x86_64",
        "requestParameters": {"userName": "bob", "passwordResetRequired": false},
        "responseElements": null,
        "requestID": "9d2a1f43-8a8f-4f5e-a0a5-0d6b2d7c9e11",
        "eventID": "c0a1e3f5-7b9d-4c2e-8f6a-1b3d5e7f9a0b",
        "readOnly": false,
        "resources": [
            {"accountId": "111122223333", "type": "AWS::IAM::User", "ARN": "arn:aws:iam::111122223333:user/bob"}
        ],
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management"
    });
    merge(&mut r, changes);
    r
}

/// Sets each dotted path of `changes` (`null` removes the key).
fn merge(record: &mut Value, changes: Value) {
    let Value::Object(changes) = changes else {
        return;
    };
    for (path, v) in changes {
        let mut at = &mut *record;
        let mut segs: Vec<&str> = path.split('.').collect();
        let last = segs.pop().unwrap();
        for s in segs {
            at = &mut at[s];
        }
        let Value::Object(m) = at else { continue };
        if v.is_null() {
            m.remove(last);
        } else {
            m.insert(last.to_string(), v);
        }
    }
}

// ------------------------------------------------------------------ neq

#[test]
fn neq_matches_a_different_value() {
    let r = rule(
        "  s:\n    eventName: ConsoleLogin\n    userIdentity.type|neq: Root\n  condition: s\n",
    );
    assert!(r.matches(&console_login(json!({}))));
    assert!(!r.matches(&console_login(json!({"userIdentity.type": "Root"}))));
    // Case-insensitive, as the equality it negates.
    assert!(!r.matches(&console_login(json!({"userIdentity.type": "ROOT"}))));
    // A missing field differs from every value (pySigma: NOT over the entry).
    assert!(r.matches(&console_login(json!({"userIdentity.type": null}))));
    let present = rule("  s:\n    userIdentity.type|neq: Root\n    userIdentity.type|exists: true\n  condition: s\n");
    assert!(!present.matches(&console_login(json!({"userIdentity.type": null}))));
}

#[test]
fn neq_over_a_list_is_different_from_every_value() {
    // NOT (a OR b): neither region.
    let r = rule("  s:\n    eventName: ConsoleLogin\n    awsRegion|neq:\n      - us-east-1\n      - eu-west-1\n  condition: s\n");
    assert!(r.matches(&console_login(json!({}))));
    assert!(!r.matches(&console_login(json!({"awsRegion": "us-east-1"}))));
    assert!(!r.matches(&console_login(json!({"awsRegion": "eu-west-1"}))));
    // With `all`, NOT (a AND b): not both.
    let both = rule(
        "  s:\n    userAgent|contains|all|neq:\n      - Mozilla\n      - Firefox\n  condition: s\n",
    );
    assert!(!both.matches(&console_login(json!({}))));
    assert!(both.matches(&console_login(
        json!({"userAgent": "Mozilla/5.0 Chrome/126.0"})
    )));
    assert!(both.matches(&iam_call(json!({}))));
}

#[test]
fn neq_over_an_array_needs_every_element_different() {
    let r = rule("  s:\n    resources.type|neq: AWS::IAM::Role\n  condition: s\n");
    assert!(r.matches(&iam_call(json!({}))));
    let with_role = iam_call(json!({"resources": [
        {"accountId": "111122223333", "type": "AWS::IAM::User", "ARN": "arn:aws:iam::111122223333:user/bob"},
        {"accountId": "111122223333", "type": "AWS::IAM::Role", "ARN": "arn:aws:iam::111122223333:role/admin"}
    ]}));
    assert!(!r.matches(&with_role));
}

#[test]
fn neq_combines_with_other_modifiers() {
    // The specification names `fieldref|neq`: changing another user's profile.
    let other = rule("  s:\n    eventName: UpdateLoginProfile\n    requestParameters.userName|fieldref|neq: userIdentity.userName\n  condition: s\n");
    assert!(other.matches(&iam_call(json!({}))));
    assert!(!other.matches(&iam_call(json!({"requestParameters.userName": "alice"}))));
    // Outside a network: not an address in it (text that is no address too).
    let outside = rule("  s:\n    sourceIPAddress|cidr|neq: 198.51.100.0/24\n  condition: s\n");
    assert!(!outside.matches(&console_login(json!({}))));
    assert!(outside.matches(&iam_call(json!({}))));
    assert!(outside.matches(&iam_call(json!({"sourceIPAddress": "AWS Internal"}))));
    // Numbers, and `null`: a present value.
    let not_two = rule("  s:\n    eventVersion|neq: 1.09\n  condition: s\n");
    assert!(!not_two.matches(&iam_call(json!({}))));
    assert!(not_two.matches(&iam_call(json!({"eventVersion": "1.08"}))));
    let has_error = rule("  s:\n    errorCode|neq: null\n  condition: s\n");
    assert!(!has_error.matches(&iam_call(json!({}))));
    assert!(has_error.matches(&iam_call(json!({"errorCode": "AccessDenied"}))));
    let re = rule("  s:\n    userAgent|re|i|neq: '^aws-cli/'\n  condition: s\n");
    assert!(!re.matches(&iam_call(json!({}))));
    assert!(re.matches(&console_login(json!({}))));
}

#[test]
fn neq_pins_no_value_for_the_index_or_eventbridge() {
    // `eventName|neq` must not index the rule under the name it excludes.
    let text = text("  s:\n    eventSource: signin.amazonaws.com\n    eventName|neq: ConsoleLogin\n  condition: s\n");
    let set = RuleSet::strict(&[RuleSource {
        origin: "neq.yml".into(),
        text: text.into(),
    }])
    .unwrap();
    let check_mfa = console_login(json!({"eventName": "CheckMfa"}));
    assert_eq!(set.matching(&check_mfa).len(), 1);
    assert_eq!(set.matching_unindexed(&check_mfa).len(), 1);
    assert!(set.matching(&console_login(json!({}))).is_empty());
    let delivery = pattern::derive(set.rules());
    let envelope = cloudtrail_envelope(&check_mfa);
    assert!(
        delivery
            .patterns
            .iter()
            .any(|p| EventPattern::parse(p).unwrap().matches(&envelope)),
        "{:?}",
        delivery.patterns
    );
}

// ------------------------------------------------------------------ time

#[test]
fn hour_reads_the_event_time() {
    // Console sign-ins at night (UTC): a list is OR, as for any value.
    let r = rule("  s:\n    eventName: ConsoleLogin\n    eventTime|hour: [22, 23, 0, 1, 2, 3, 4, 5]\n  condition: s\n");
    assert!(!r.matches(&console_login(json!({}))));
    assert!(r.matches(&console_login(json!({"eventTime": "2024-07-16T03:49:27Z"}))));
    assert!(r.matches(&console_login(json!({"eventTime": "2024-07-16T23:00:00Z"}))));
    assert!(!r.matches(&console_login(json!({"eventTime": "2024-07-16T06:00:00Z"}))));
    // Near misses: no time, or text that is no timestamp.
    assert!(!r.matches(&console_login(json!({"eventTime": null}))));
    assert!(!r.matches(&console_login(json!({"eventTime": "03:49"}))));
    assert!(!r.matches(&console_login(json!({"eventTime": 1721101767}))));
}

#[test]
fn every_time_part() {
    // 2024-07-16T15:49:27Z: minute 49, hour 15, day 16, ISO week 29, July, 2024.
    let login = console_login(json!({}));
    for (part, yes, no) in [
        ("minute", 49, 48),
        ("hour", 15, 3),
        ("day", 16, 17),
        ("week", 29, 28),
        ("month", 7, 6),
        ("year", 2024, 2014),
    ] {
        let r = |v: i64| {
            rule(&format!(
                "  s:\n    eventTime|{part}: {v}\n  condition: s\n"
            ))
        };
        assert!(r(yes).matches(&login), "{part} {yes}");
        assert!(!r(no).matches(&login), "{part} {no}");
    }
    // ISO 8601 weeks: the last days of 2026 are in week 53, and so is
    // Sunday 2021-01-03 (of 2020's week-year).
    let week_53 = rule("  s:\n    eventTime|week: 53\n  condition: s\n");
    assert!(week_53.matches(&console_login(json!({"eventTime": "2026-12-31T12:00:00Z"}))));
    assert!(week_53.matches(&console_login(json!({"eventTime": "2021-01-03T12:00:00Z"}))));
}

#[test]
fn time_parts_chain_with_comparisons_and_neq() {
    let night = rule("  late:\n    eventTime|hour|gte: 22\n  early:\n    eventTime|hour|lt: 6\n  s:\n    eventName: ConsoleLogin\n  condition: s and (late or early)\n");
    assert!(night.matches(&console_login(json!({"eventTime": "2024-07-16T22:00:00Z"}))));
    assert!(night.matches(&console_login(json!({"eventTime": "2024-07-16T05:59:59Z"}))));
    assert!(!night.matches(&console_login(json!({"eventTime": "2024-07-16T06:00:00Z"}))));
    assert!(!night.matches(&console_login(json!({"eventTime": "2024-07-16T21:59:59Z"}))));
    let weekday_hours = rule("  s:\n    eventTime|hour|neq: [15, 16]\n  condition: s\n");
    assert!(!weekday_hours.matches(&console_login(json!({}))));
    assert!(weekday_hours.matches(&console_login(json!({"eventTime": "2024-07-16T17:00:00Z"}))));
    let q3 = rule("  s:\n    eventTime|month|gte: 7\n    eventTime|month|lte: 9\n  condition: s\n");
    assert!(q3.matches(&console_login(json!({}))));
    assert!(!q3.matches(&console_login(json!({"eventTime": "2024-10-01T00:00:00Z"}))));
}

#[test]
fn time_modifier_errors_are_typed() {
    for (detection, why) in [
        ("eventTime|hour: 24", "out of range"),
        ("eventTime|hour: night", "not a number"),
        ("eventTime|gte|hour: 22", "comparison first"),
        ("eventTime|hour|contains: 2", "not a text test"),
        ("eventTime|hour|cased: 2", "nothing to case"),
    ] {
        let kind = err(&format!("  s:\n    {detection}\n  condition: s\n"));
        assert!(
            matches!(kind, RuleErrorKind::Field { ref field, .. } if field == "eventTime"),
            "{detection} ({why}): {kind}"
        );
    }
}

// ------------------------------------------------------------------ expand

#[test]
fn expand_replaces_a_placeholder_by_its_values() {
    let p = placeholders(json!({"break_glass_users": ["JohnDoe", "breakglass-*"]}));
    let r = rule_with(
        "  s:\n    eventName: ConsoleLogin\n    userIdentity.userName|expand: '%break_glass_users%'\n  condition: s\n",
        &p,
    );
    assert!(r.matches(&console_login(json!({}))));
    // A configured value is a Sigma value: its `*` is a wildcard.
    assert!(r.matches(&console_login(
        json!({"userIdentity.userName": "breakglass-2"})
    )));
    assert!(!r.matches(&console_login(json!({"userIdentity.userName": "alice"}))));
    // Without `|expand` the `%` is text.
    let literal = rule("  s:\n    userIdentity.userName: '%break_glass_users%'\n  condition: s\n");
    assert!(!literal.matches(&console_login(json!({}))));
    assert!(literal.matches(&console_login(
        json!({"userIdentity.userName": "%break_glass_users%"})
    )));
}

#[test]
fn expand_chains_with_other_modifiers() {
    let p = placeholders(json!({
        "corporate_networks": ["192.0.2.0/24", "198.51.100.0/24"],
        "approved_tools": ["aws-cli/", "Boto3/"],
        "org_accounts": ["111122223333", "444455556666"],
        "night_hours": [22, 23, 0, 1, 2, 3, 4, 5]
    }));
    // Sign-ins from outside the corporate networks.
    let outside = rule_with(
        "  s:\n    eventName: ConsoleLogin\n  corp:\n    sourceIPAddress|expand|cidr: '%corporate_networks%'\n  condition: s and not corp\n",
        &p,
    );
    assert!(!outside.matches(&console_login(json!({}))));
    assert!(outside.matches(&console_login(json!({"sourceIPAddress": "203.0.113.9"}))));
    let tool = rule_with(
        "  s:\n    userAgent|expand|startswith: '%approved_tools%'\n  condition: s\n",
        &p,
    );
    assert!(tool.matches(&iam_call(json!({}))));
    assert!(!tool.matches(&console_login(json!({}))));
    // A placeholder inside a value: the rest of the value stays.
    let root = rule_with(
        "  s:\n    userIdentity.arn|expand: 'arn:aws:iam::%org_accounts%:root'\n  condition: s\n",
        &p,
    );
    assert!(root.matches(&console_login(
        json!({"userIdentity.arn": "arn:aws:iam::444455556666:root"})
    )));
    assert!(!root.matches(&console_login(
        json!({"userIdentity.arn": "arn:aws:iam::999999999999:root"})
    )));
    // Under `all`, the values of one placeholder are still one alternative.
    let all = rule_with(
        "  s:\n    userAgent|expand|contains|all: ['%approved_tools%', 'linux']\n  condition: s\n",
        &p,
    );
    assert!(all.matches(&iam_call(json!({}))));
    assert!(!all.matches(&iam_call(json!({"userAgent": "aws-cli/2.17.5 os/macos"}))));
    // Numbers for a time modifier, from the configuration.
    let night = rule_with(
        "  s:\n    eventTime|expand|hour: '%night_hours%'\n  condition: s\n",
        &p,
    );
    assert!(night.matches(&iam_call(json!({}))));
    assert!(!night.matches(&console_login(json!({}))));
    // And with `neq`: none of the approved tools.
    let unapproved = rule_with(
        "  s:\n    userAgent|expand|startswith|neq: '%approved_tools%'\n  condition: s\n",
        &p,
    );
    assert!(!unapproved.matches(&iam_call(json!({}))));
    assert!(unapproved.matches(&console_login(json!({}))));
}

#[test]
fn an_unconfigured_placeholder_is_a_load_error_naming_rule_and_placeholder() {
    let detection = "  s:\n    eventName: ConsoleLogin\n  ok:\n    sourceIPAddress|expand|cidr: '%corporate_networks%'\n  condition: s and not ok\n";
    let source = RuleSource {
        origin: "rules/console_outside_corp.yml".into(),
        text: text(detection).into(),
    };
    let e = RuleSet::layered_with(
        &[],
        std::slice::from_ref(&source),
        &placeholders(json!({"other": ["x"]})),
    )
    .unwrap_err();
    assert!(!e.is_unsupported(), "not skipped: {e}");
    assert!(
        matches!(&e.kind, RuleErrorKind::UnknownPlaceholder { field, name } if field == "sourceIPAddress" && name == "corporate_networks"),
        "{e}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains("rules/console_outside_corp.yml") && shown.contains("%corporate_networks%"),
        "{shown}"
    );
    // Placeholder names are case-sensitive, as pySigma's variables are.
    assert!(RuleSet::layered_with(
        &[],
        std::slice::from_ref(&source),
        &placeholders(json!({"Corporate_Networks": ["10.0.0.0/8"]}))
    )
    .is_err());
    let set = RuleSet::layered_with(
        &[],
        std::slice::from_ref(&source),
        &placeholders(json!({"corporate_networks": ["10.0.0.0/8"]})),
    )
    .unwrap();
    assert_eq!(set.rules().len(), 1);

    // `vigil rules test|lint` say so too.
    let report = ruletest::run(std::slice::from_ref(&source), &Placeholders::new());
    assert_eq!(report.errors.len(), 1);
    assert!(!report.ok());
    let lint = ruletest::lint(&[source], &Placeholders::new());
    assert!(lint.iter().any(
        |i| i.level == ruletest::LintLevel::Error && i.message.contains("%corporate_networks%")
    ));
}

#[test]
fn unknown_modifiers_stay_typed_errors() {
    for key in [
        "eventName|ne",
        "eventName|not",
        "eventTime|hours",
        "eventName|expands",
    ] {
        let kind = err(&format!("  s:\n    {key}: x\n  condition: s\n"));
        assert!(
            matches!(&kind, RuleErrorKind::UnknownModifier { modifier, .. } if key.ends_with(&format!("|{modifier}"))),
            "{key}: {kind}"
        );
    }
}

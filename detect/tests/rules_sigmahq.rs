//! SigmaHQ's public AWS CloudTrail rules in `../shared/events/sigma/`
//! (required under CI, where their absence fails these tests; a fresh clone
//! may lack them, and then these tests say so and pass). The tests that also
//! read the real CloudTrail samples need Vigil's sources and are in
//! `shared/tests/detect_samples.rs`.

use serde_json::{json, Value};
use vigil_detect::{Placeholders, Rule, RuleErrorKind, RuleSet, RuleSource, Unsupported};

#[path = "../../tests/src/samples.rs"]
mod samples;
use samples::shared_events;

fn sigma_sources(sub: &str) -> Option<Vec<RuleSource>> {
    let dir = shared_events(&format!("sigma/{sub}"))?;
    let sources = RuleSource::dir(&dir).expect("read the SigmaHQ folder");
    assert!(!sources.is_empty(), "{} holds no rules", dir.display());
    Some(sources)
}

#[test]
fn sigmahq_rules_match_what_they_describe() {
    let Some(sources) = sigma_sources("aws_cloudtrail") else {
        return;
    };
    let set = RuleSet::strict(&sources).unwrap();
    let hits = |record: Value| -> Vec<String> {
        set.matching(&record)
            .iter()
            .map(|r| r.meta().title.clone())
            .collect()
    };
    // `additionalEventData.MFAUsed: 'NO'` is case-insensitive, as Sigma says.
    let login = hits(json!({
        "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
        "additionalEventData": {"MFAUsed": "No"},
        "responseElements": {"ConsoleLogin": "Success"}
    }));
    assert!(login.iter().any(|t| t.contains("Without MFA")), "{login:?}");
    // Root use, but not an AWS service event.
    let root = |event_type: &str| {
        hits(
            json!({"eventSource": "iam.amazonaws.com", "eventName": "ListUsers",
            "eventType": event_type, "userIdentity": {"type": "Root"}}),
        )
    };
    assert!(root("AwsApiCall")
        .iter()
        .any(|t| t == "AWS Root Credentials"));
    assert!(!root("AwsServiceEvent")
        .iter()
        .any(|t| t == "AWS Root Credentials"));
    // `|re` on the instance role ARN, with `not 1 of filter_main_*`.
    let imds = |ip: &str| {
        hits(
            json!({"eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
            "sourceIPAddress": ip,
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0abc"}}),
        )
    };
    assert!(imds("198.51.100.7").iter().any(|t| t.contains("IMDS")));
    assert!(!imds("AWS Internal").iter().any(|t| t.contains("IMDS")));
    // `errorCode: null` counts a missing errorCode.
    let ssm = hits(json!({"eventSource": "ssm.amazonaws.com", "eventName": "SendCommand"}));
    assert!(ssm.iter().any(|t| t.contains("System Manager")), "{ssm:?}");
    // `requestParameters|contains|all` over nested JSON (compared as its JSON text).
    let s3browser = hits(json!({
        "eventSource": "iam.amazonaws.com", "eventName": "PutUserPolicy",
        "userAgent": "S3 Browser 11.5.7 https://s3browser.com",
        "requestParameters": {"policyDocument": {"Statement": [{"Effect": "Allow",
            "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::<YOUR-BUCKET-NAME>/*"]}]}}
    }));
    assert!(
        s3browser.iter().any(|t| t.contains("S3Browser")),
        "{s3browser:?}"
    );
    // `|fieldref`: updating one's own login profile is filtered out.
    let profile = |arn: &str| {
        hits(
            json!({"eventSource": "iam.amazonaws.com", "eventName": "UpdateLoginProfile",
            "userIdentity": {"arn": arn}, "requestParameters": {"userName": "bob"}}),
        )
    };
    let title = "AWS User Login Profile Was Modified";
    assert!(profile("arn:aws:iam::1:user/alice")
        .iter()
        .any(|t| t == title));
    assert!(!profile("bob").iter().any(|t| t == title));
}

#[test]
fn rules_beyond_plain_matching_fail_with_a_reason() {
    let Some(sources) = sigma_sources("aws_unsupported") else {
        return;
    };
    for src in &sources {
        let err = Rule::parse(&src.origin, &src.text)
            .expect_err(&format!("{} should not load as a plain rule", src.origin));
        assert!(err.is_unsupported(), "{err}");
        assert!(err.to_string().contains(&src.origin));
        assert!(
            matches!(
                &err.kind,
                RuleErrorKind::Unsupported(Unsupported::Aggregation(_) | Unsupported::Timeframe(_))
            ),
            "unexpected reason for {}: {err}",
            src.origin
        );
    }
    // A user folder holding them loads, skipping each with its reason.
    let set = RuleSet::layered(&RuleSource::bundled(), &sources).unwrap();
    assert_eq!(set.skipped().len(), sources.len());
}

#[test]
fn sigmahq_placeholder_rules_need_their_placeholders() {
    let Some(sources) = sigma_sources("aws_cloudtrail_placeholder") else {
        return;
    };
    // Unconfigured: an error naming the rule and the placeholder, not a skip.
    let err = RuleSet::layered(&RuleSource::bundled(), &sources).unwrap_err();
    assert!(
        matches!(&err.kind, RuleErrorKind::UnknownPlaceholder { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("aws_cloudtrail_console_login"),
        "{err}"
    );
    // Configured (pySigma's value_placeholders: each value an alternative).
    let placeholders = Placeholders::parse(
        r#"{"Legitimate_Countries": ["DE", "FR"], "Legitimate_IP_Ranges": ["198.51.100.*"]}"#,
    )
    .unwrap();
    let set = RuleSet::layered_with(&RuleSource::bundled(), &sources, &placeholders).unwrap();
    assert!(set.skipped().is_empty());
    let title = "AWS Console Login Monitoring";
    // The rule reads `src_country`/`src_ip` (SigmaHQ's taxonomy, not
    // CloudTrail's `sourceIPAddress`): records carrying them.
    let login = |country: &str, ip: &str| {
        let record = json!({
            "eventVersion": "1.09", "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin", "eventType": "AwsConsoleSignIn",
            "userIdentity": {"type": "IAMUser", "userName": "alice"},
            "responseElements": {"ConsoleLogin": "Success"},
            "src_country": country, "src_ip": ip
        });
        set.matching(&record)
            .iter()
            .any(|r| r.meta().title == title)
    };
    assert!(login("KP", "203.0.113.5"));
    assert!(!login("de", "203.0.113.5"));
    assert!(!login("KP", "198.51.100.20"));
}

//! One hostile value through every string field of every source into every
//! output. Each real sample (the project's `examples/events`, and the public
//! samples in `../shared/events` when present) has each of its string values
//! replaced in turn by a value that tries everything at once: a forged email
//! line, a terminal escape, bidi override, line separator, a Slack mention
//! and link, a markdown link, a bare phishing URL and 300,000 characters.
//! Whatever finding comes out is rendered into the email, the SNS subject
//! and attributes, the Chatbot notification, the OCSF copy, the Slack card
//! (webhook and bot post the same message) and the PagerDuty event, and
//! each is checked: no forged line, no mention, no live link to a host other
//! than the AWS console, no hidden character, and every size within limits.

use std::path::Path;

use serde_json::Value;
use vigil::detect::RuleSet;
use vigil::model::Finding;
use vigil::notify::{pagerduty, slack, AlertView};
use vigil::render::{self, Alert};
use vigil::sources::{self, log_file::input};

fn hostile() -> String {
    format!(
        "x\nInjected-Console-Line: x\r\nInjected-Console-Line: y \u{1b}[31m \u{202e}rtl \u{2066}iso \u{200b}zw \
         \u{2028}ls <!channel> <@U123> <https://evil.example|click> [x](https://evil.example) \
         https://evil.example/aws-login www.evil.example {}",
        "A".repeat(300_000)
    )
}

/// The samples, each an event that gives at least one finding as it is.
fn samples(rules: &RuleSet) -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs = vec![(root.join("examples/events"), 100)];
    let shared = root.join("../shared/events");
    for (sub, take) in [
        ("guardduty", 4),
        ("securityhub", 10),
        ("cloudtrail-wrapped", 4),
        ("cloudtrail-logs", 1),
        ("other-eventbridge", 6),
    ] {
        dirs.push((shared.join(sub), take));
    }
    let mut out = Vec::new();
    for (dir, take) in dirs {
        let Ok(files) = input::files(&[dir]) else {
            continue;
        };
        for file in files.iter().take(take) {
            let events = input::read_events(file).unwrap_or_default();
            for (i, event) in events.into_iter().take(3).enumerate() {
                if !findings(&event, rules).is_empty() {
                    out.push((format!("{}#{i}", file.display()), event));
                }
            }
        }
    }
    out
}

fn findings(event: &Value, rules: &RuleSet) -> Vec<Finding> {
    sources::classify(event)
        .and_then(|e| sources::findings(e, Some(rules)))
        .map(|parsed| parsed.findings)
        .unwrap_or_default()
}

/// Every string value in `v`, as a path of object keys and array indexes.
fn string_paths(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::String(_) => out.push(path.clone()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                string_paths(item, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                path.push(Step::Key(k.clone()));
                string_paths(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

const HIDDEN: [char; 7] = [
    '\u{1b}', '\u{202e}', '\u{2066}', '\u{200b}', '\u{2028}', '\r', '\0',
];

/// What every output must not carry, whatever channel it is for.
fn check_text(ctx: &str, what: &str, text: &str) {
    assert!(
        !text.contains(HIDDEN),
        "{ctx}: {what} carries a hidden character"
    );
    for (i, _) in text.match_indices("://") {
        let scheme_start = text[..i]
            .rfind(|c: char| !c.is_ascii_alphabetic())
            .map_or(0, |p| p + 1);
        let scheme = text[scheme_start..i].to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            continue;
        }
        let host: String = text[i + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .collect();
        let aws = [
            "console.aws.amazon.com",
            "console.amazonaws.cn",
            "console.amazonaws-us-gov.com",
        ]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")));
        assert!(aws, "{ctx}: {what} has a live link to {host:?}");
    }
    // `www.` starts a link where a word starts (inside a console URL's
    // percent-encoded path it does not).
    let lower = text.to_ascii_lowercase();
    for (i, _) in lower.match_indices("www.evil") {
        let starts_word = lower[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        assert!(!starts_word, "{ctx}: {what} has a live www link");
    }
}

/// Chat outputs (Slack, Chatbot): no mention, no `<url|text>` or markdown link
/// made from event text.
fn check_chat(ctx: &str, what: &str, text: &str) {
    check_text(ctx, what, text);
    for bad in [
        "<!channel>",
        "<@U123>",
        "<https://evil",
        "](https://",
        "](hxxps://",
    ] {
        assert!(!text.contains(bad), "{ctx}: {what} carries {bad:?}");
    }
}

/// Every string (and key) of a JSON document.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => {
            for (k, item) in map {
                out.push(k.clone());
                strings(item, out);
            }
        }
        _ => {}
    }
}

fn check_outputs(ctx: &str, f: &Finding) {
    let alert = Alert::new(f);
    let subject = render::subject(f);
    assert!(subject.len() <= 99 && subject.is_ascii(), "{ctx}: subject");
    check_text(ctx, "subject", &subject);
    for (name, value) in render::attributes(f) {
        assert!(
            !value.is_empty() && value.chars().count() <= 256,
            "{ctx}: attribute {name}"
        );
        check_text(ctx, name, &value);
    }

    let message = render::sns_message(&alert);
    assert!(
        message.len() <= 256 * 1024,
        "{ctx}: SNS message {} bytes",
        message.len()
    );
    let message: Value = serde_json::from_str(&message).unwrap();

    let email = message["email"].as_str().unwrap();
    check_text(ctx, "email", email);
    for line in email.lines() {
        assert!(
            !line.starts_with("Injected-Console-Line"),
            "{ctx}: the email has a forged line"
        );
    }

    let chat: Value = serde_json::from_str(message["https"].as_str().unwrap()).unwrap();
    let mut texts = Vec::new();
    strings(&chat, &mut texts);
    for t in &texts {
        check_chat(ctx, "Chatbot", t);
    }

    let ocsf = message["lambda"].as_str().unwrap();
    let ocsf_value: Value = serde_json::from_str(ocsf).unwrap();
    let mut texts = Vec::new();
    strings(&ocsf_value, &mut texts);
    for t in &texts {
        assert!(
            !t.contains(&HIDDEN[..5]),
            "{ctx}: OCSF carries a hidden character"
        );
    }
    if let Some(url) = ocsf_value["finding_info"]["src_url"].as_str() {
        check_text(ctx, "OCSF src_url", url);
    }

    let view = AlertView::parse(ocsf).unwrap();
    let card = slack::message(&view);
    assert!(
        card.to_string().chars().count() <= 40_000 * 2,
        "{ctx}: Slack size"
    );
    let mut texts = Vec::new();
    strings(&card, &mut texts);
    for t in &texts {
        check_chat(ctx, "Slack", t);
    }
    let page = pagerduty::event(&view, "key");
    let mut texts = Vec::new();
    strings(&page, &mut texts);
    for t in &texts {
        check_text(ctx, "PagerDuty", t);
    }
    assert!(
        pagerduty::summary(&view).chars().count() <= 1024,
        "{ctx}: PagerDuty summary"
    );
}

#[test]
fn a_hostile_value_in_any_field_of_any_source_forges_nothing_anywhere() {
    let rules = RuleSet::bundled().expect("bundled rules load");
    let samples = samples(&rules);
    assert!(samples.len() >= 10, "only {} samples", samples.len());
    let evil = hostile();
    let mut rendered = 0;
    for (name, event) in &samples {
        let mut paths = Vec::new();
        string_paths(event, &mut Vec::new(), &mut paths);
        for path in paths.iter().take(250) {
            let mut mutated = event.clone();
            *at(&mut mutated, path) = Value::String(evil.clone());
            for f in findings(&mutated, &rules) {
                check_outputs(&format!("{name} at {path:?}"), &f);
                rendered += 1;
            }
        }
    }
    assert!(rendered > 500, "only {rendered} findings rendered");
}

//! The Amazon Q Developer in chat applications (AWS Chatbot) custom
//! notification. Payloads outside this schema are dropped silently by
//! Chatbot, so its shape is tested field by field. Repeats of a fingerprint
//! share a `threadId` so they thread together.
//!
//! Every string in it is [`Markdown`] (client-markdown): event text comes
//! in through [`Untrusted`] as a code span or escaped chat text, so no field
//! carries a mention, a `<url|text>` or `[text](url)` link, or a live URL
//! other than a console page.

use serde_json::{json, Value};

use super::{also_matched, network_line, next_steps, severity_emoji, who, Alert, Step};
use crate::model::Finding;
use crate::text::{Markdown, Untrusted};

fn code(s: &str, max: usize) -> Markdown {
    Untrusted::new(s).code(max)
}

fn chat(s: &str, max: usize) -> Markdown {
    Untrusted::new(s).chat(max)
}

/// The notification for `alert`.
pub(super) fn notification(alert: &Alert<'_>) -> Value {
    let f = alert.finding;
    let mut keywords = vec![f.severity.as_str(), f.source.as_str()];
    keywords.extend(f.tactics.iter().map(|t| t.name()));
    let related: Vec<String> = f
        .resources
        .iter()
        .filter(|r| r.id.starts_with("arn:"))
        .take(20)
        .map(|r| chat(&r.id, 500).into_string())
        .collect();
    let steps: Vec<String> = next_steps(f)
        .iter()
        .map(|s| step(s).into_string())
        .collect();
    json!({
        "version": "1.0",
        "source": "custom",
        "id": chat(&f.id, 200).into_string(),
        "content": {
            "textType": "client-markdown",
            "title": Markdown::lit(severity_emoji(f.severity)).and_lit(" ").and(title(f)).into_string(),
            "description": description(alert).into_string(),
            "nextSteps": steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": chat(&f.fingerprint, 100).into_string(),
            "summary": chat(&f.title, 200).into_string(),
            "eventType": chat(f.type_or_rule(), 200).into_string(),
            "relatedResources": related,
            "additionalContext": {
                "account": chat(&f.account_id, 64).into_string(),
                "region": chat(&f.region, 40).into_string(),
                "severity": f.severity.as_str(),
                "findingId": chat(&f.id, 200).into_string(),
            },
        },
    })
}

fn title(f: &Finding) -> Markdown {
    Markdown::lit("[")
        .and_lit(f.severity.as_str())
        .and_lit("] ")
        .and(chat(&f.title, 230))
}

/// Severity, account and region, resource, actor, source, ATT&CK, repeats
/// and the trace, one line each.
fn description(alert: &Alert<'_>) -> Markdown {
    let f = alert.finding;
    let mut lines = vec![Markdown::lit("*")
        .and_lit(f.severity.label())
        .and_lit("* ")
        .and_lit(f.source.as_str())
        .and_lit(" finding in account ")
        .and(code(&f.account_label(), 120))
        .and_lit(" (")
        .and(code(&f.region, 40))
        .and_lit(")")];
    if let Some(r) = f.primary_resource() {
        lines.push(
            Markdown::lit("*Resource:* ")
                .and(code(&r.resource_type, 60))
                .and_lit(" ")
                .and(code(&r.id, 300)),
        );
    }
    if let Some(w) = who(f) {
        lines.push(Markdown::lit("*Actor:* ").and(code(&w, 300)));
    }
    if let Some(n) = network_line(f) {
        lines.push(Markdown::lit("*Source IP:* ").and(code(&n, 300)));
    }
    if !f.tactics.is_empty() {
        let t = f.tactics.iter().map(|t| {
            Markdown::lit(t.name())
                .and_lit(" (")
                .and_lit(t.id())
                .and_lit(")")
        });
        lines.push(Markdown::lit("*ATT&CK:* ").and(Markdown::join(t, ", ")));
    }
    if let Some((names, more)) = also_matched(f) {
        let mut also = Markdown::join(names.iter().map(|n| chat(n, 200)), ", ");
        if more > 0 {
            also = also
                .and_lit(" and ")
                .and(Markdown::number(more as u64))
                .and_lit(" more");
        }
        lines.push(Markdown::lit("*Also matched:* ").and(also));
    }
    if alert.suppressed_repeats > 0 {
        lines.push(
            Markdown::lit("_")
                .and(Markdown::number(alert.suppressed_repeats))
                .and_lit(" repeats suppressed since the last alert_"),
        );
    }
    if let Some(t) = &f.trace {
        let id = code(&t.trace_id, 64);
        lines.push(Markdown::lit("*Trace:* ").and(match &f.links.trace {
            // Built by Vigil from the configured template (see `pipeline`).
            Some(url) => Markdown::configured_link(url, id),
            None => id,
        }));
    }
    Markdown::join(lines, "\n").and_lit("\n")
}

fn step(step: &Step<'_>) -> Markdown {
    match step {
        Step::Say(s) => Markdown::lit(s),
        Step::DeactivateKey(key) => Markdown::lit("If not expected, deactivate access key ")
            .and(code(key, 64))
            .and_lit(" and review what it did in CloudTrail."),
        Step::OpenConsole(url) => Markdown::lit("Open the finding in the console: ")
            .and(Markdown::link(url, Markdown::lit("finding"))),
    }
}

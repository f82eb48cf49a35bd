//! The alert for a correlation that fired: a CloudTrail finding whose rule
//! is the correlation, naming the group, what was counted, the time span
//! and the first contributing events, each with its console link.
//!
//! Every value here came from events (attacker-controlled): titles and
//! evidence go through [`text::one_line`] and are escaped again by each
//! renderer; links are built only by [`ConsoleUrl`] from validated parts.

use chrono::{DateTime, Utc};

use super::Fired;
use crate::detect::correlation::{EventRef, Kind};
use crate::detect::LogSource;
use crate::model::{Actor, ActorType, Finding, Network, RuleRef, Source};
use crate::sources::console::{percent_encode, ConsoleUrl, Partition};
use crate::text;

/// Distinct values listed in the evidence (the count is always given).
const LISTED_VALUES: usize = 10;

/// The finding for `fired`.
pub fn finding(fired: &Fired) -> Finding {
    let c = &fired.correlation;
    let meta = c.meta();
    let w = fired.window;
    let id = format!(
        "{}:{}{}:{}",
        c.id,
        w.phase.as_str(),
        w.start,
        text::truncate(&fired.group, 300)
    );
    let mut f = Finding::new(Source::CloudTrail, id, c.id.clone());
    f.product = "Vigil".into();
    f.rule = Some(RuleRef::new(c.id.clone(), c.title.clone()));
    f.severity = c.level;
    f.tactics = meta.tactics.clone();
    f.techniques = meta.techniques.clone();
    f.count = fired.state.count;
    let events = &fired.state.events;
    let first = events.first();
    f.region = first.map(|e| e.region.clone()).unwrap_or_default();
    f.account_id = group_value(fired, &["recipientAccountId"])
        .or_else(|| first.and_then(|e| account_of(e.arn.as_deref())))
        .unwrap_or_default();
    let times = (
        events.iter().map(|e| e.time).min(),
        events.iter().map(|e| e.time).max(),
    );
    f.first_seen = times.0.and_then(at);
    f.last_seen = times.1.and_then(at);
    f.time = f.last_seen.unwrap_or_else(Utc::now);
    f.actor = actor(fired);
    f.network = Network {
        remote_ip: group_value(fired, &["sourceIPAddress"]),
        ..Network::default()
    };
    f.title = title(fired);
    f.description = description(fired, &meta.description);
    f.links.remediation = c.references.first().cloned();
    f.links.console = first.and_then(event_link);
    evidence(&mut f, fired);
    f
}

/// `<correlation>: <group> (<what was counted>)`.
fn title(fired: &Fired) -> String {
    let group: Vec<String> = fired
        .group_values()
        .iter()
        .map(|(_, v)| text::one_line(v, 100))
        .collect();
    let who = if group.is_empty() {
        String::new()
    } else {
        format!(": {}", group.join(", "))
    };
    format!("{}{} ({})", fired.correlation.title, who, counted(fired))
}

/// What was counted, in words: `12 events`, `5 distinct userName`.
fn counted(fired: &Fired) -> String {
    let s = &fired.state;
    match &fired.correlation.kind {
        Kind::EventCount(_) => format!("{} events", s.count),
        Kind::ValueCount { field, .. } => {
            format!("{} distinct {field} in {} events", s.values.len(), s.count)
        }
        Kind::Temporal { ordered } => format!(
            "{} referenced rules {} in {} events",
            fired.correlation.rules.len(),
            if *ordered { "in order" } else { "all seen" },
            s.count
        ),
    }
}

fn description(fired: &Fired, rule_description: &str) -> String {
    let c = &fired.correlation;
    let mut d = if rule_description.is_empty() {
        c.title.clone()
    } else {
        rule_description.to_string()
    };
    d.push_str(&format!(
        "\n\nCorrelation over {} within {}: {}, in the window {} to {}.",
        c.rules.join(", "),
        span_text(c.timespan_secs),
        counted(fired),
        time_text(fired.window.start),
        time_text(fired.window.end),
    ));
    if !c.false_positives.is_empty() {
        d.push_str(&format!(
            "\n\nKnown false positives: {}",
            c.false_positives.join("; ")
        ));
    }
    d
}

/// The group, the count, the values, the window and the first events.
fn evidence(f: &mut Finding, fired: &Fired) {
    let ev = &mut f.evidence;
    for (field, value) in fired.group_values() {
        ev.insert(
            format!("group.{}", text::one_line(&field, 100)),
            text::one_line(&value, 200),
        );
    }
    ev.insert("correlation_events".into(), fired.state.count.to_string());
    ev.insert(
        "correlation_timespan".into(),
        span_text(fired.correlation.timespan_secs),
    );
    ev.insert(
        "correlation_window".into(),
        format!(
            "{} to {}",
            time_text(fired.window.start),
            time_text(fired.window.end)
        ),
    );
    if let Kind::ValueCount { field, .. } = &fired.correlation.kind {
        let listed: Vec<String> = fired
            .state
            .values
            .iter()
            .take(LISTED_VALUES)
            .map(|v| text::one_line(v, 100))
            .collect();
        ev.insert(
            format!("distinct.{}", text::one_line(field, 100)),
            format!("{} ({})", fired.state.values.len(), listed.join(", ")),
        );
    }
    for (i, e) in fired.state.events.iter().enumerate() {
        let mut line = format!(
            "{} {} {}",
            time_text(e.time),
            text::one_line(&e.name, 100),
            text::one_line(&e.id, 100)
        );
        if let Some(link) = event_link(e) {
            line.push(' ');
            line.push_str(&link);
        }
        ev.insert(format!("event_{}", i + 1), line);
    }
}

/// The principal, when the group names one.
fn actor(fired: &Fired) -> Option<Actor> {
    let arn = group_value(fired, &["userIdentity.arn"]);
    let user = group_value(
        fired,
        &["userIdentity.userName", "requestParameters.userName"],
    );
    if arn.is_none() && user.is_none() {
        return None;
    }
    Some(Actor {
        actor_type: ActorType::Unknown,
        arn,
        user_name: user,
        ..Actor::default()
    })
}

/// The group's value for the first of `fields` it is grouped by.
fn group_value(fired: &Fired, fields: &[&str]) -> Option<String> {
    let values = fired.group_values();
    fields.iter().find_map(|want| {
        values
            .iter()
            .find(|(f, _)| f == want)
            .map(|(_, v)| text::one_line(v, 200))
    })
}

/// The console page of one contributing event: its CloudTrail event, or
/// its GuardDuty finding.
fn event_link(e: &EventRef) -> Option<String> {
    if e.id.is_empty() {
        return None;
    }
    let (service, view) = match e.source {
        LogSource::CloudTrail => ("cloudtrailv2", format!("/events/{}", percent_encode(&e.id))),
        LogSource::GuardDuty => (
            "guardduty",
            format!("/findings?macros=current&fId={}", percent_encode(&e.id)),
        ),
    };
    let url = ConsoleUrl::new(Partition::of_arn(e.arn.as_deref()), &e.region, service)?;
    Some(url.view(view).build())
}

/// The account of an ARN (`arn:aws:iam::111122223333:user/x`), when it is
/// twelve digits.
fn account_of(arn: Option<&str>) -> Option<String> {
    let account = arn?.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        .then(|| account.to_string())
}

fn at(t: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t, 0)
}

fn time_text(t: i64) -> String {
    at(t).map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// `10m`, `1h`, `90s`.
fn span_text(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

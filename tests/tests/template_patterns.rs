//! Nobody can forge an event into Vigil through its EventBridge rules: every
//! rule of `template.yaml` and `infra/member-account.yaml` names AWS sources,
//! and only AWS services can put events whose source starts with `aws.`
//! (PutEvents refuses them; forwarded events keep their source). Proven on
//! moto's EventBridge: each rule's pattern on a bus with an SQS target, the
//! project's sample events put as they are and as a custom source.

mod cfn;

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use cfn::Template;
use serde_json::Value as Json;
use vigil_e2e::{moto_endpoint, sdk, unique};

/// Every EventBridge pattern of both templates, with every option on that adds one.
fn patterns() -> Vec<(String, Json)> {
    let deployments = [
        Template::load(
            "template.yaml",
            &[
                ("CloudTrailBucketName", "org-trail-logs"),
                ("CloudTrailEventBridgeRule", "true"),
            ],
        ),
        Template::load(
            "infra/member-account.yaml",
            &[(
                "CentralEventBusArn",
                "arn:aws:events:us-east-1:123456789012:event-bus/default",
            )],
        ),
    ];
    let mut out = Vec::new();
    for t in &deployments {
        for (name, r) in t.of_type("AWS::Events::Rule") {
            if let Some(p) = r["Properties"].get("EventPattern") {
                out.push((name, as_pattern(t.resolve(p))));
            }
        }
        for (name, e) in t.function_events() {
            let rule = matches!(
                e["Type"].as_str(),
                Some("EventBridgeRule" | "CloudWatchEvent")
            );
            if let (true, Some(p)) = (rule, e["Properties"].get("Pattern")) {
                out.push((name, as_pattern(t.resolve(p))));
            }
        }
    }
    out
}

/// A pattern written as JSON text is the same pattern.
fn as_pattern(p: Json) -> Json {
    match p {
        Json::String(text) => serde_json::from_str(&text).expect("pattern JSON"),
        other => other,
    }
}

/// A rule with `pattern` on `bus`, delivering to a new queue; the queue URL.
async fn rule_to_queue(sdk: &SdkConfig, bus: &str, pattern: &Json) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let name = unique("vigil-rule");
    let url = sqs.create_queue().queue_name(&name).send().await.unwrap();
    let url = url.queue_url().unwrap().to_string();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attributes.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
    events
        .put_rule()
        .name(&name)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{pattern}: {e:?}"));
    events
        .put_targets()
        .rule(&name)
        .event_bus_name(bus)
        .targets(Target::builder().id("queue").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    url
}

/// Puts `samples` on `bus`, each with `source` when given.
async fn put(sdk: &SdkConfig, bus: &str, samples: &[Json], source: Option<&str>) {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    for chunk in samples.chunks(10) {
        let entries = chunk.iter().map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(source.or(e["source"].as_str()).unwrap_or_default())
                .detail_type(e["detail-type"].as_str().unwrap_or_default())
                .detail(e["detail"].to_string())
                .build()
        });
        let out = events
            .put_events()
            .set_entries(Some(entries.collect()))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count(), 0, "{out:?}");
    }
}

/// The events each queue received.
async fn received(sdk: &SdkConfig, queues: &[(String, String)]) -> Vec<(String, Json)> {
    let mut out = Vec::new();
    for (rule, url) in queues {
        let got = vigil_e2e::drain(sdk, url, 0, Duration::from_secs(2))
            .await
            .unwrap();
        out.extend(got.into_iter().map(|e| (rule.clone(), e)));
    }
    out
}

#[tokio::test]
async fn forged_events_match_no_rule_and_real_ones_do() {
    if moto_endpoint().is_none() {
        return;
    }
    let patterns = patterns();
    assert!(patterns.len() >= 8, "{patterns:?}");
    let sdk = sdk().await;
    let bus = unique("vigil-forgery");
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let mut queues = Vec::new();
    for (rule, pattern) in &patterns {
        queues.push((rule.clone(), rule_to_queue(&sdk, &bus, pattern).await));
    }
    let samples: Vec<Json> =
        vigil_e2e::events_in(&vigil_e2e::project_root().join("examples/events"))
            .into_iter()
            .map(|(_, e)| e)
            .collect();
    assert!(samples.len() >= 10);

    // The same events from a custom source, as any principal of the
    // Organization could put them on the bus.
    put(&sdk, &bus, &samples, Some("attacker.custom")).await;
    let forged: Vec<String> = received(&sdk, &queues)
        .await
        .iter()
        .map(|(rule, e)| format!("{rule} took {} {}", e["source"], e["detail-type"]))
        .collect();
    assert!(
        forged.is_empty(),
        "forged events delivered:\n{}",
        forged.join("\n")
    );

    // As AWS sends them: the CloudTrail rules, here and in member accounts, take them.
    put(&sdk, &bus, &samples, None).await;
    let real = received(&sdk, &queues).await;
    for (rule_prefix, event_name) in [
        ("CloudTrailFunction.CloudTrailRules", "StopLogging"),
        ("CloudTrailFunction.CloudTrailRules", "ConsoleLogin"),
        ("ForwardCloudTrail", "StopLogging"),
        ("ForwardCloudTrail", "ConsoleLogin"),
    ] {
        assert!(
            real.iter()
                .any(|(rule, e)| rule.starts_with(rule_prefix)
                    && e["detail"]["eventName"] == event_name),
            "{rule_prefix} did not take the real {event_name}"
        );
    }
    for rule in [
        "GuardDutyFunction.GuardDutyFinding",
        "ForwardGuardDuty",
        "SecurityHubFunction.MacieFinding",
    ] {
        assert!(
            real.iter().any(|(r, _)| r == rule),
            "{rule} took no real sample"
        );
    }
}

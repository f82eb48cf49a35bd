//! Vigil's health alarms reach someone, read from `template.yaml` as each
//! kind of deployment would create it: every alarm action names a topic of
//! the stack, and that topic has a subscription whose filter policy, evaluated
//! by moto's SNS, takes a CloudWatch alarm notification (which carries no
//! message attributes). And every function, every dead-letter queue and the
//! storm machinery has an alarm. Deploys nothing.

mod cfn;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_config::SdkConfig;
use cfn::{target, ResourceRef, Template};
use serde_json::{json, Value as Json};
use serde_yaml::Value;
use vigil_e2e::{moto_endpoint, sdk, unique};

const TEMPLATE: &str = "template.yaml";

/// Every optional part of the stack on.
const EVERYTHING: &[(&str, &str)] = &[
    ("AlertEmail", "security@example.com"),
    (
        "SlackBotTokenSecretArn",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:vigil-slack-AbCdEf",
    ),
    (
        "PagerDutySecretArn",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:vigil-pd-AbCdEf",
    ),
    ("CloudTrailBucketName", "org-trail-logs"),
    ("CloudTrailBucketAccountId", "444455556666"),
    (
        "CloudTrailKmsKeyArn",
        "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
    (
        "CloudTrailSnsTopicArn",
        "arn:aws:sns:us-east-1:444455556666:org-trail",
    ),
    ("CloudTrailEventBridgeRule", "true"),
    ("OrganizationId", "o-abcdefghij"),
    ("SuppressionsSsmParameter", "/vigil/suppressions"),
    ("RoutesSsmParameter", "/vigil/routes"),
    ("OrganizationsLookup", "true"),
];

/// The deployments the checks run on: a deployer who sets only the one email
/// address the quick start asks for, one who sets only the operations
/// address, and one with every option on.
fn deployments() -> Vec<(&'static str, Template)> {
    vec![
        (
            "only AlertEmail",
            Template::load(TEMPLATE, &[("AlertEmail", "security@example.com")]),
        ),
        (
            "only OpsEmail",
            Template::load(TEMPLATE, &[("OpsEmail", "ops@example.com")]),
        ),
        ("every option", Template::load(TEMPLATE, EVERYTHING)),
    ]
}

/// A subscription of a topic, as the template creates it.
#[derive(Debug)]
struct Subscriber {
    name: String,
    filter_policy: Option<Json>,
    scope: Option<Json>,
}

/// The topic's subscriptions: `AWS::SNS::Subscription` resources and SAM
/// functions' `SNS` events.
fn subscribers(t: &Template, topic: &str) -> Vec<Subscriber> {
    let names_topic = |v: Option<&Value>| v.and_then(target) == Some(ResourceRef::new(topic, None));
    let mut out = Vec::new();
    for (name, r) in t.of_type("AWS::SNS::Subscription") {
        let p = &r["Properties"];
        if names_topic(p.get("TopicArn")) {
            out.push(Subscriber {
                name,
                filter_policy: p.get("FilterPolicy").map(|f| t.resolve(f)),
                scope: p.get("FilterPolicyScope").map(|f| t.resolve(f)),
            });
        }
    }
    for (name, e) in t.function_events() {
        let p = &e["Properties"];
        if e["Type"].as_str() == Some("SNS") && names_topic(p.get("Topic")) {
            out.push(Subscriber {
                name,
                filter_policy: p.get("FilterPolicy").map(|f| t.resolve(f)),
                scope: p.get("FilterPolicyScope").map(|f| t.resolve(f)),
            });
        }
    }
    out
}

/// An alarm's actions: (property, action).
fn actions(alarm: &Value) -> Vec<(&'static str, &Value)> {
    ["AlarmActions", "OKActions", "InsufficientDataActions"]
        .into_iter()
        .flat_map(|k| {
            alarm["Properties"]
                .get(k)
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .map(move |a| (k, a))
        })
        .collect()
}

/// The notification CloudWatch publishes when `alarm` changes state: a JSON
/// message and a subject, and no message attributes at all.
fn notification(name: &str, alarm: &Value) -> (String, String) {
    let p = &alarm["Properties"];
    let s = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let message = json!({
        "AlarmName": format!("vigil-{name}-1A2B3C4D5E6F"),
        "AlarmDescription": s("AlarmDescription"),
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-12-02T10:00:00.000+0000",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 1 datapoint [2.0 (02/12/26 10:05:00)] was greater than or equal to the threshold (1.0).",
        "StateChangeTime": "2026-12-02T10:10:00.000+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:vigil-{name}-1A2B3C4D5E6F"),
        "OldStateValue": "OK",
        "OKActions": ["arn:aws:sns:us-east-1:123456789012:vigil-OpsTopic"],
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:vigil-OpsTopic"],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": s("MetricName"), "Namespace": s("Namespace"),
            "StatisticType": "Statistic", "Statistic": "SUM", "Unit": null,
            "Dimensions": [], "Period": 300, "EvaluationPeriods": 1,
            "ComparisonOperator": s("ComparisonOperator"), "Threshold": 1.0,
            "TreatMissingData": s("TreatMissingData"), "EvaluateLowSampleCountPercentile": ""
        }
    });
    let subject = format!("ALARM: \"vigil-{name}-1A2B3C4D5E6F\" in US East (N. Virginia)");
    (subject, message.to_string())
}

/// Whether a subscription with `s`'s filter policy receives `notification`:
/// moto's SNS evaluates the policy for a queue subscribed with it.
async fn takes(sdk: &SdkConfig, s: &Subscriber, (subject, message): &(String, String)) -> bool {
    let (topic_arn, queue_url) = vigil_e2e::topic_with_queue(sdk, &unique("alarm-filter"))
        .await
        .unwrap();
    let sns = aws_sdk_sns::Client::new(sdk);
    let subscriptions = sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    let arn = subscriptions.subscriptions()[0].subscription_arn().unwrap();
    let attributes = [
        ("FilterPolicy", &s.filter_policy),
        ("FilterPolicyScope", &s.scope),
    ];
    for (attribute, value) in attributes {
        if let Some(value) = value {
            let value = match value {
                Json::String(text) => text.clone(),
                other => other.to_string(),
            };
            sns.set_subscription_attributes()
                .subscription_arn(arn)
                .attribute_name(attribute)
                .attribute_value(value)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{}: {attribute}: {e:?}", s.name));
        }
    }
    sns.publish()
        .topic_arn(&topic_arn)
        .subject(subject)
        .message(message)
        .send()
        .await
        .unwrap();
    let got = vigil_e2e::drain(sdk, &queue_url, 1, Duration::from_secs(3))
        .await
        .unwrap();
    !got.is_empty()
}

#[tokio::test]
async fn every_alarm_reaches_a_subscriber_that_takes_alarm_notifications() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    // Filter policies repeat across alarms: each is evaluated once.
    let mut verdicts: HashMap<String, bool> = HashMap::new();
    let mut problems = Vec::new();
    for (deployment, t) in deployments() {
        let alarms = t.of_type("AWS::CloudWatch::Alarm");
        assert!(!alarms.is_empty(), "{deployment}: no alarms");
        for (name, alarm) in &alarms {
            let actions = actions(alarm);
            if !actions.iter().any(|(k, _)| *k == "AlarmActions") {
                problems.push(format!("{deployment}: {name} has no AlarmActions"));
            }
            for (property, action) in actions {
                let topic = match target(action) {
                    Some(ResourceRef {
                        resource,
                        attribute: None,
                    }) if t.type_of(&resource) == Some("AWS::SNS::Topic") => resource,
                    _ => {
                        problems.push(format!(
                            "{deployment}: {name}.{property}: {action:?} is not a topic of the stack"
                        ));
                        continue;
                    }
                };
                let subs = subscribers(&t, &topic);
                let mut taken = false;
                for s in &subs {
                    let key = format!("{:?}|{:?}", s.filter_policy, s.scope);
                    let verdict = match verdicts.get(&key) {
                        Some(v) => *v,
                        None => {
                            let v = takes(&sdk, s, &notification(name, alarm)).await;
                            verdicts.insert(key, v);
                            v
                        }
                    };
                    taken |= verdict;
                }
                if !taken {
                    problems.push(format!(
                        "{deployment}: {name}.{property} notifies {topic}, where no subscription takes an alarm notification: {subs:?}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One metric an alarm watches: namespace, name, dimensions (name and the
/// resource attribute the value names), or a metric-math / Metrics Insights
/// expression.
#[derive(Debug, PartialEq)]
enum Watched {
    Metric {
        namespace: String,
        name: String,
        dimensions: Vec<(String, Option<ResourceRef>)>,
    },
    Expression(String),
}

fn metric(m: &Value) -> Watched {
    let s = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let dimensions = m
        .get("Dimensions")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["Name"].as_str().unwrap_or_default().to_string(),
                target(&d["Value"]),
            )
        })
        .collect();
    Watched::Metric {
        namespace: s("Namespace"),
        name: s("MetricName"),
        dimensions,
    }
}

/// What an alarm watches, in either of the two forms of `AWS::CloudWatch::Alarm`.
fn watched(alarm: &Value) -> Vec<Watched> {
    let p = &alarm["Properties"];
    let Some(queries) = p.get("Metrics").and_then(Value::as_sequence) else {
        return vec![metric(p)];
    };
    queries
        .iter()
        .map(|q| match q.get("Expression") {
            Some(e) => Watched::Expression(e.as_str().unwrap_or_default().to_string()),
            None => metric(&q["MetricStat"]["Metric"]),
        })
        .collect()
}

/// Whether an alarm that watches `metric` of `namespace` with dimension
/// `dimension` = the resource attribute `value` fires on one data point.
fn alarmed(t: &Template, namespace: &str, name: &str, dimension: &str, value: ResourceRef) -> bool {
    let wanted = Some(value);
    t.of_type("AWS::CloudWatch::Alarm").iter().any(|(_, a)| {
        let sensitive = a["Properties"]["Threshold"]
            .as_f64()
            .is_some_and(|x| x <= 1.0)
            && a["Properties"]["ComparisonOperator"].as_str()
                == Some("GreaterThanOrEqualToThreshold");
        sensitive
            && watched(a).iter().any(|w| {
                matches!(w, Watched::Metric { namespace: n, name: m, dimensions }
                    if n == namespace && m == name
                        && dimensions.iter().any(|(d, v)| d == dimension && *v == wanted))
            })
    })
}

/// Properties under which a queue is named as where failures go.
const DEAD_LETTER_KEYS: &[&str] = &[
    "DeadLetterQueue",
    "DeadLetterConfig",
    "RedrivePolicy",
    "OnFailure",
];

fn collect_dead_letter_targets(v: &Value, inside: bool, out: &mut BTreeSet<String>) {
    if inside {
        if let Some(ResourceRef {
            resource,
            attribute: Some(attribute),
        }) = target(v)
        {
            if attribute == "Arn" {
                out.insert(resource);
            }
        }
    }
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let dl = k.as_str().is_some_and(|k| DEAD_LETTER_KEYS.contains(&k));
                collect_dead_letter_targets(child, inside || dl, out);
            }
        }
        Value::Sequence(items) => {
            for i in items {
                collect_dead_letter_targets(i, inside, out);
            }
        }
        Value::Tagged(tagged) => collect_dead_letter_targets(&tagged.value, inside, out),
        _ => {}
    }
}

/// Every queue some resource of the stack sends its failures to.
fn dead_letter_queues(t: &Template) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, r) in t.resources() {
        collect_dead_letter_targets(&r["Properties"], false, &mut out);
    }
    out
}

#[test]
fn every_function_and_every_dead_letter_queue_has_an_alarm() {
    for (deployment, t) in deployments() {
        let mut missing = Vec::new();
        for (f, _) in t.of_type("AWS::Serverless::Function") {
            for m in ["Errors", "Throttles"] {
                if !alarmed(
                    &t,
                    "AWS/Lambda",
                    m,
                    "FunctionName",
                    ResourceRef::new(&f, None),
                ) {
                    missing.push(format!("{f}: no alarm on its {m}"));
                }
            }
        }
        let dlqs = dead_letter_queues(&t);
        for (q, queue) in t.of_type("AWS::SQS::Queue") {
            let redriven = queue["Properties"].get("RedrivePolicy").is_some();
            if !dlqs.contains(&q) && !redriven {
                missing.push(format!(
                    "{q}: neither a dead-letter queue nor redriven to one"
                ));
            }
        }
        for q in &dlqs {
            assert_eq!(t.type_of(q), Some("AWS::SQS::Queue"), "{deployment}: {q}");
            let name = ResourceRef::new(q, Some("QueueName"));
            if !alarmed(
                &t,
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                name,
            ) {
                missing.push(format!(
                    "{q}: a dead-letter queue without an alarm on its first message"
                ));
            }
        }
        let topic = ResourceRef::new("AlertTopic", Some("TopicName"));
        if !alarmed(
            &t,
            "AWS/SNS",
            "NumberOfNotificationsFailed",
            "TopicName",
            topic,
        ) {
            missing.push("AlertTopic: no alarm on failed deliveries".into());
        }
        assert!(missing.is_empty(), "{deployment}:\n{}", missing.join("\n"));
    }
}

/// Whether some alarm watches Vigil's own metric `name` (namespace `Vigil`,
/// any `Service`), as a metric or in a metrics-insights expression.
fn vigil_metric_alarmed(t: &Template, name: &str) -> bool {
    t.of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .any(|(_, a)| {
            watched(a).iter().any(|w| match w {
                Watched::Expression(e) => {
                    e.contains(&format!("SUM({name})")) && e.contains("SCHEMA(Vigil, Service)")
                }
                Watched::Metric {
                    namespace, name: n, ..
                } => namespace == "Vigil" && n == name,
            })
        })
}

/// Vigil's metrics that mean a person must look: events failed, summaries
/// lost, events refused as forged (someone is sending them), log files
/// refused, findings that could not be read.
#[test]
fn every_metric_that_needs_a_person_has_an_alarm() {
    let needs_a_person = [
        "Errors",
        "StormSummariesFailed",
        "EventsRefused",
        "LogFilesRejected",
        "InvalidFindings",
        "CorrelationStateErrors",
    ];
    for (deployment, t) in deployments() {
        for name in needs_a_person {
            assert!(
                vigil_metric_alarmed(&t, name),
                "{deployment}: no alarm on Vigil's {name}"
            );
        }
    }
}

#[test]
fn the_storm_machinery_is_scheduled_and_alarmed() {
    for (deployment, t) in deployments() {
        let storm = vigil_metric_alarmed(&t, "StormSummariesFailed");
        assert!(storm, "{deployment}: no alarm on StormSummariesFailed");
        let (_, guardduty) = t
            .of_type("AWS::Serverless::Function")
            .into_iter()
            .find(|(n, _)| n == "GuardDutyFunction")
            .expect("GuardDutyFunction");
        let sweep = &guardduty["Properties"]["Events"]["StormSweep"];
        assert_eq!(
            sweep["Type"].as_str(),
            Some("Schedule"),
            "{deployment}: {sweep:?}"
        );
        assert_eq!(
            sweep["Properties"]["Schedule"].as_str(),
            Some("rate(5 minutes)")
        );
    }
}

/// Error alarms stay quiet when there is no data (no invocations is no
/// error); an alarm on too little of something (no events) alarms on it.
#[test]
fn missing_data_is_treated_by_what_the_alarm_watches() {
    let t = Template::load(TEMPLATE, EVERYTHING);
    for (name, a) in t.of_type("AWS::CloudWatch::Alarm") {
        let p = &a["Properties"];
        let op = p["ComparisonOperator"].as_str().unwrap_or_default();
        let treat = p["TreatMissingData"].as_str();
        let wanted = if op.starts_with("LessThan") {
            "breaching"
        } else {
            "notBreaching"
        };
        assert_eq!(treat, Some(wanted), "{name} ({op})");
        // Every alarm also says when it is over.
        assert!(p.get("OKActions").is_some(), "{name}: no OKActions");
    }
}

/// Every EventBridge rule that delivers events (not a schedule: a missed
/// sweep is redone by the next) retries and keeps what it could not deliver.
#[test]
fn every_event_rule_target_retries_and_dead_letters() {
    let t = Template::load(TEMPLATE, EVERYTHING);
    let mut targets: Vec<(String, Json)> = Vec::new();
    for (name, r) in t.of_type("AWS::Events::Rule") {
        let p = t.resolve(&r["Properties"]);
        if p.get("EventPattern").is_some() {
            for target in p["Targets"].as_array().cloned().unwrap_or_default() {
                targets.push((format!("{name} -> {}", target["Id"]), target));
            }
        }
    }
    for (name, e) in t.function_events() {
        if matches!(
            e["Type"].as_str(),
            Some("EventBridgeRule" | "CloudWatchEvent")
        ) {
            targets.push((name, t.resolve(&e["Properties"])));
        }
    }
    assert!(targets.len() >= 8, "{targets:?}");
    for (name, target) in targets {
        assert!(target["RetryPolicy"].is_object(), "{name}: no RetryPolicy");
        assert!(
            target["DeadLetterConfig"]["Arn"].is_object(),
            "{name}: no DeadLetterConfig"
        );
    }
}

/// The AWS services the stack's key trusts may use it only for this stack's
/// resources: each service statement has a condition on the source account
/// (or, where AWS sets no source keys, on the calling service or the
/// encryption context).
#[test]
fn the_key_trusts_services_only_for_this_stack() {
    let t = Template::load(TEMPLATE, EVERYTHING);
    let (_, key) = t
        .of_type("AWS::KMS::Key")
        .into_iter()
        .find(|(n, _)| n == "AlertTopicKey")
        .expect("AlertTopicKey");
    let policy = t.resolve(&key["Properties"]["KeyPolicy"]);
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let mut services = 0;
    for s in &statements {
        if s["Principal"].get("Service").is_none() {
            continue;
        }
        services += 1;
        let conditions: Vec<String> = s["Condition"]
            .as_object()
            .into_iter()
            .flat_map(|ops| ops.values())
            .filter_map(Json::as_object)
            .flat_map(|keys| keys.keys().cloned())
            .collect();
        let scoped = conditions.iter().any(|k| {
            k == "aws:SourceAccount"
                || k == "kms:ViaService"
                || k.starts_with("kms:EncryptionContext:")
        });
        assert!(scoped, "{}: no source condition: {conditions:?}", s["Sid"]);
        if s["Principal"]["Service"] != "events.amazonaws.com"
            && !conditions
                .iter()
                .any(|k| k.starts_with("kms:EncryptionContext:"))
        {
            assert!(
                conditions.contains(&"aws:SourceArn".to_string()),
                "{}: no aws:SourceArn",
                s["Sid"]
            );
        }
    }
    assert!(services >= 4, "{statements:?}");
}

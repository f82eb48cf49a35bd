//! The notifier end to end: SNS records as Lambda receives them, the real
//! notifier, the real HTTP client, and local receivers standing in for Slack
//! and PagerDuty (tiny HTTP/1.1 servers on 127.0.0.1 that record what they are
//! sent and answer as scripted). With moto: the webhook URL is read from
//! Secrets Manager through the real SDK, and the alert travels through the
//! real SNS sink, moto's SNS and an SQS subscriber before the notifier reads it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use vigil::model::{
    Actor, ActorType, Finding, FindingStatus, Network, Resource, RuleRef, Severity, Source, Tactic,
    Technique, TraceIds,
};
use vigil::notify::{
    AlertStatus, HttpClient, HttpPolicy, Notifier, NotifierConfig, NotifyError, Outcome, PagerDuty,
    Secret, SlackWebhook,
};
use vigil::render::{self, Alert};
use vigil_e2e::stand_in::{Answer, Received, StandIn};
use vigil_e2e::{moto_endpoint, sdk, unique};

// ------------------------------------------------------------------ receiver

/// A scripted answer: status, extra headers, body (text, as a webhook answers).
#[derive(Debug, Clone)]
struct Reply(u16, Vec<(&'static str, String)>, &'static str);

fn ok() -> Reply {
    Reply(200, vec![], "ok")
}

/// A stand-in for a Slack webhook or PagerDuty: answers from the script in
/// order (200 "ok" once it runs out) and records every request.
struct Receiver {
    url: String,
    inner: StandIn,
}

impl Receiver {
    async fn start(script: Vec<Reply>) -> Receiver {
        let script = script
            .into_iter()
            .map(|Reply(status, headers, body)| Answer {
                headers,
                ..Answer::text(status, body)
            })
            .collect();
        let inner = StandIn::scripted(script, |_| Answer::text(200, "ok")).await;
        Receiver {
            url: format!("{}/hook/T000/B000/secret-token", inner.base),
            inner,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.inner.received()
    }

    fn bodies(&self) -> Vec<Value> {
        self.inner.bodies()
    }
}

// ------------------------------------------------------------------ alerts

fn finding() -> Finding {
    let mut f = Finding::new(
        Source::GuardDuty,
        "f-1",
        "UnauthorizedAccess:IAMUser/TorIPCaller",
    );
    f.title = "API called from a Tor exit node".into();
    f.description = "An API was invoked from a Tor exit node.".into();
    f.severity = Severity::High;
    f.account_id = "111122223333".into();
    f.account_name = Some("prod".into());
    f.region = "us-east-1".into();
    f.fingerprint = "3f2a9c".into();
    f.resources
        .push(Resource::new("AwsIamAccessKey", "AKIAEXAMPLE"));
    f.actor = Some(Actor {
        actor_type: ActorType::IamUser,
        user_name: Some("alice".into()),
        mfa_used: Some(false),
        ..Actor::default()
    });
    f.network = Network {
        remote_ip: Some("198.51.100.7".into()),
        ..Network::default()
    };
    f.tactics.push(Tactic::InitialAccess);
    f.links.console = Some(
        "https://console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?fId=f-1".into(),
    );
    f.links.trace = Some(
        "https://ui.honeycomb.io/vigil/trace?trace_id=4bf92f3577b34da6a3ce929d0e0e4736".into(),
    );
    f.trace = Some(TraceIds {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        xray_trace_id: "1-4bf92f35-77b34da6a3ce929d0e0e4736".into(),
    });
    f
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The SNS event Lambda hands the notifier for `f`: the `lambda` key of the
/// real SNS message, and the real message attributes.
fn sns_event(f: &Finding) -> aws_lambda_events::sns::SnsEvent {
    let mut alert = Alert::new(f);
    alert.traceparent = Some(TRACEPARENT.into());
    let msg: Value = serde_json::from_str(&render::sns_message(&alert)).unwrap();
    event_with_message(f, msg["lambda"].as_str().unwrap())
}

/// The same for a hostile finding, with the OCSF JSON as the message. The
/// renderer sheds bulk to fit SNS's 256 KB, but the notifier must be safe on
/// whatever OCSF arrives, so it gets every hostile field uncut (and the test
/// skips rendering megabytes of email it would not read).
fn hostile_event(f: &Finding) -> aws_lambda_events::sns::SnsEvent {
    event_with_message(f, &vigil::ocsf::to_ocsf(f).to_string())
}

fn event_with_message(f: &Finding, message: &str) -> aws_lambda_events::sns::SnsEvent {
    let mut attrs = serde_json::Map::new();
    for (k, v) in render::attributes(f) {
        attrs.insert(k.into(), json!({"Type": "String", "Value": v}));
    }
    attrs.insert(
        "traceparent".into(),
        json!({"Type": "String", "Value": TRACEPARENT}),
    );
    record_event(json!({
        "Type": "Notification", "MessageId": unique("msg"), "TopicArn": "arn:aws:sns:us-east-1:111122223333:vigil",
        "Subject": render::subject(f), "Message": message, "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
        "MessageAttributes": attrs,
    }))
}

fn record_event(sns: Value) -> aws_lambda_events::sns::SnsEvent {
    serde_json::from_value(json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:111122223333:vigil:sub", "Sns": sns,
    }]}))
    .unwrap()
}

fn http() -> HttpClient {
    HttpClient::new(HttpPolicy::default()).unwrap()
}

fn slack_notifier(url: &str) -> Notifier {
    Notifier::new(vec![Box::new(SlackWebhook::new(
        Secret::value(url),
        http(),
    ))])
}

fn pd_notifier(url: &str, min: Severity) -> Notifier {
    Notifier::new(vec![Box::new(PagerDuty::new(
        Secret::value("R0UTINGKEY0123456789"),
        url,
        min,
        http(),
    ))])
}

/// Every Slack text object (type, text) in a message, plus the fallback `text`.
fn texts(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(t)), Some(Value::String(text))) =
                (m.get("type"), m.get("text"))
            {
                out.push((t.clone(), text.clone()));
            }
            m.values().for_each(|v| texts(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| texts(v, out)),
        _ => {}
    }
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Slack's limits, as the message arrived.
fn assert_slack_limits(msg: &Value) {
    let blocks = msg["blocks"].as_array().expect("blocks");
    assert!(
        !blocks.is_empty() && blocks.len() <= 50,
        "{} blocks",
        blocks.len()
    );
    let mut total = utf16(msg["text"].as_str().expect("fallback text"));
    for b in blocks {
        match b["type"].as_str().unwrap() {
            "header" => {
                assert_eq!(b["text"]["type"], "plain_text");
                assert!(utf16(b["text"]["text"].as_str().unwrap()) <= 150);
            }
            "section" => {
                if let Some(t) = b["text"]["text"].as_str() {
                    assert!(utf16(t) <= 3000, "section of {}", utf16(t));
                }
                for f in b["fields"].as_array().into_iter().flatten() {
                    assert!(utf16(f["text"].as_str().unwrap()) <= 2000);
                }
            }
            "actions" => {
                for e in b["elements"].as_array().unwrap() {
                    let url = e["url"].as_str().unwrap();
                    assert!(url.starts_with("https://") && url.len() <= 3000, "{url}");
                    assert!(utf16(e["text"]["text"].as_str().unwrap()) <= 75);
                }
            }
            "context" => assert!(b["elements"].as_array().unwrap().len() <= 10),
            other => panic!("unexpected block type {other}"),
        }
    }
    let mut all = Vec::new();
    texts(msg, &mut all);
    total += all.iter().map(|(_, t)| utf16(t)).sum::<usize>();
    assert!(total <= 40_000, "{total} characters");
    assert!(
        msg.get("link_names").is_none(),
        "link_names must never be set"
    );
}

// ------------------------------------------------------------------ Slack

#[tokio::test]
async fn a_new_finding_arrives_as_a_block_kit_card() {
    let slack = Receiver::start(vec![]).await;
    let f = finding();
    let reports = slack_notifier(&slack.url)
        .handle(&sns_event(&f))
        .await
        .unwrap();
    assert_eq!(reports[0].outcomes, [("slack", Outcome::Sent)]);
    assert_eq!(reports[0].status, AlertStatus::New);

    let got = slack.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hook/T000/B000/secret-token");
    assert!(got[0]
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/json")));
    let msg = &got[0].body;
    assert_slack_limits(msg);
    let blocks = msg["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        blocks[0]["text"]["text"],
        ":red_circle: HIGH: API called from a Tor exit node"
    );
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    for expected in [
        "*Account*\n`prod (111122223333)`",
        "*Region*\n`us-east-1`",
        "*Actor*\n`alice (IAMUser), no MFA`",
        "*Resource*\n`AwsIamAccessKey AKIAEXAMPLE`",
        "*Source IP*\n`198.51.100.7`",
        "*ATT&amp;CK*\n`Initial Access (TA0001)`",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected:?} not in {fields:#?}"
        );
    }
    assert_eq!(
        blocks[2]["text"]["text"],
        "An API was invoked from a Tor exit node."
    );
    let actions = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("buttons");
    assert_eq!(
        actions["elements"][0]["url"],
        f.links.console.as_deref().unwrap()
    );
    assert_eq!(
        actions["elements"][1]["url"],
        f.links.trace.as_deref().unwrap()
    );
    let context = blocks.last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        context.contains("fingerprint `3f2a9c`")
            && context.contains("trace `4bf92f3577b34da6a3ce929d0e0e4736`"),
        "{context}"
    );
    assert_eq!(
        msg["text"],
        "[HIGH] API called from a Tor exit node | prod (111122223333) us-east-1"
    );
}

#[tokio::test]
async fn a_repeat_is_one_compact_line() {
    let slack = Receiver::start(vec![]).await;
    let mut f = finding();
    f.count = 12;
    slack_notifier(&slack.url)
        .handle(&sns_event(&f))
        .await
        .unwrap();
    let msg = &slack.bodies()[0];
    assert_slack_limits(msg);
    let blocks = msg["blocks"].as_array().unwrap();
    assert!(
        blocks.iter().all(|b| b["type"] != "header"),
        "no full card for a repeat"
    );
    let line = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        line.starts_with(
            ":repeat: *Seen again (12 times)* · HIGH `API called from a Tor exit node`"
        ),
        "{line}"
    );
}

#[tokio::test]
async fn repeats_suppressed_by_vigil_are_counted_from_the_message_attribute() {
    let slack = Receiver::start(vec![]).await;
    let f = finding();
    let mut event = sns_event(&f);
    // What the SNS sink adds when the dedup stage suppressed repeats.
    let mut sns = serde_json::to_value(&event.records[0].sns).unwrap();
    sns["MessageAttributes"]["suppressed_repeats"] = json!({"Type": "Number", "Value": "4"});
    event = record_event(sns);
    let reports = slack_notifier(&slack.url).handle(&event).await.unwrap();
    assert_eq!(reports[0].status, AlertStatus::Repeat);
    let line = slack.bodies()[0]["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        line.contains("*Seen again (5 times since the last alert)*"),
        "{line}"
    );
}

/// Hostile text in every field the alert carries, long enough to need cuts.
fn evil(tag: &str) -> String {
    format!(
        "{tag} <!channel> <!here> <@U1> <#C1> <!subteam^S1> <https://evil.example|click> *bold* _it_ ~strike~ \
         `code` ```block``` `lone > quote &amp; & \u{1b}[31mred\u{1b}[0m \0nul \u{7f}del \u{202e}rtl\u{202c} \u{2067}iso \
         \u{200b}zw \u{feff}bom \u{2028}ls élan Ωμέγα 日本語 עברית 😀 :skull: {}",
        "x".repeat(100_000)
    )
}

fn hostile_finding() -> Finding {
    let mut f = finding();
    f.id = evil("id");
    f.product = evil("product");
    f.finding_type = evil("type");
    f.rule = Some(RuleRef::new(evil("rule"), evil("rule title")));
    f.also_matched = vec![RuleRef::new(evil("also"), evil("also title"))];
    f.title = evil("title");
    f.description = format!("{}\n{}\r\n{}", evil("desc"), evil("second"), evil("third"));
    f.source_severity = Some(evil("score"));
    f.techniques.push(Technique {
        id: evil("T"),
        name: Some(evil("technique")),
    });
    f.account_id = evil("account");
    f.account_name = Some(evil("account name"));
    f.region = evil("region");
    // Many resources, the first few hostile (all of them would only slow the test).
    f.resources = (0..60)
        .map(|i| {
            if i < 3 {
                let mut r = Resource::new(evil("rtype"), evil(&format!("resource{i}")));
                r.tags.insert(evil("tag key"), evil("tag value"));
                r
            } else {
                Resource::new("AwsS3Bucket", format!("bucket-{i}"))
            }
        })
        .collect();
    f.actor = Some(Actor {
        actor_type: ActorType::AssumedRole,
        arn: Some(evil("arn")),
        user_name: Some(evil("user")),
        principal_id: Some(evil("principal")),
        account_id: Some(evil("actor account")),
        session_issuer: Some(evil("issuer")),
        access_key_id: Some(evil("key")),
        mfa_used: Some(false),
        source_ip: Some(evil("ip")),
        user_agent: Some(evil("ua")),
        invoked_by: Some(evil("invoked by")),
    });
    f.network = Network {
        remote_ip: Some(evil("ip")),
        remote_port: Some(4444),
        country: Some(evil("country")),
        city: Some(evil("city")),
        asn: Some(evil("asn")),
        organization: Some(evil("org")),
        domain: Some(evil("domain")),
        ..Network::default()
    };
    f.evidence
        .insert(evil("evidence key"), evil("evidence value"));
    f.remediation = Some(evil("remediation"));
    f.links.console = Some(format!("https://evil.example/{}", evil("console")));
    f.links.trace = Some("javascript:alert(document.domain)//evil".into());
    f.fingerprint = evil("fingerprint");
    f.event_id = Some(evil("event"));
    f.trace = Some(TraceIds {
        trace_id: evil("trace"),
        xray_trace_id: evil("xray"),
    });
    f
}

#[tokio::test]
async fn hostile_text_in_every_field_never_reaches_slack_unescaped() {
    for (status, count) in [
        (FindingStatus::Active, 1),
        (FindingStatus::Active, 3),
        (FindingStatus::Resolved, 1),
    ] {
        let slack = Receiver::start(vec![]).await;
        let mut f = hostile_finding();
        f.status = status;
        f.count = count;
        slack_notifier(&slack.url)
            .handle(&hostile_event(&f))
            .await
            .unwrap();
        let msg = &slack.bodies()[0];
        assert_slack_limits(msg);

        let mut all = Vec::new();
        texts(msg, &mut all);
        let fallback = msg["text"].as_str().unwrap().to_string();
        all.push(("fallback".into(), fallback.clone()));
        for (kind, text) in &all {
            // No Slack control sequence can start or end: no mention, no link.
            assert!(!text.contains('<') && !text.contains('>'), "{kind}: {text}");
            // Every & is one of the three escapes.
            let amp_ok = text.match_indices('&').all(|(i, _)| {
                ["&amp;", "&lt;", "&gt;"]
                    .iter()
                    .any(|e| text[i..].starts_with(e))
            });
            assert!(amp_ok, "{kind}: bare & in {text}");
            // No terminal escapes, NUL, DEL, bidi overrides or invisible characters.
            assert!(
                !text.chars().any(|c| (c.is_control() && c != '\n')
                    || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2028}' | '\u{2029}' | '\u{2066}'..='\u{2069}' | '\u{feff}')),
                "{kind}: {text:?}"
            );
            // Markdown: in mrkdwn objects event text only sits inside code spans.
            if kind == "mrkdwn" {
                assert_eq!(
                    text.matches('`').count() % 2,
                    0,
                    "unbalanced code span: {text}"
                );
                let outside: String = text.split('`').step_by(2).collect();
                for word in [
                    "bold",
                    "channel",
                    "here",
                    "evil",
                    "strike",
                    "skull",
                    "x".repeat(50).as_str(),
                ] {
                    assert!(
                        !outside.contains(word),
                        "{word:?} outside a code span: {text}"
                    );
                }
            }
            // Cuts are marked.
            if text.contains("xxxxxxxxxx") {
                assert!(text.contains('…'), "{kind}: unmarked cut");
            }
        }
        // Non-ASCII survives where there is room.
        assert!(all
            .iter()
            .any(|(_, t)| t.contains("日本語") && t.contains("😀") && t.contains("Ωμέγα")));
        // Hostile URLs never become buttons.
        for b in msg["blocks"].as_array().unwrap() {
            for e in b["elements"].as_array().into_iter().flatten() {
                if let Some(url) = e["url"].as_str() {
                    assert!(
                        !url.contains("evil") && !url.contains("javascript"),
                        "{url}"
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------ HTTP behaviour

#[tokio::test]
async fn http_429_waits_for_retry_after_then_arrives_once() {
    let slack = Receiver::start(vec![
        Reply(429, vec![("retry-after", "1".into())], "rate_limited"),
        ok(),
    ])
    .await;
    let reports = slack_notifier(&slack.url)
        .handle(&sns_event(&finding()))
        .await
        .unwrap();
    assert_eq!(reports[0].outcomes, [("slack", Outcome::Sent)]);
    let bodies = slack.bodies();
    assert_eq!(bodies.len(), 2, "one rejected attempt, one delivery");
    assert_eq!(bodies[0], bodies[1], "the retry sends the same message");
}

#[tokio::test]
async fn http_429_beyond_the_wait_budget_fails_without_waiting_it_out() {
    let slack = Receiver::start(vec![Reply(
        429,
        vec![("retry-after", "3600".into())],
        "rate_limited",
    )])
    .await;
    let err = slack_notifier(&slack.url)
        .handle(&sns_event(&finding()))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(slack.received().len(), 1);
}

#[tokio::test]
async fn http_500_fails_the_invocation_so_sns_retries() {
    let slack = Receiver::start(vec![Reply(500, vec![], "internal error")]).await;
    let err = slack_notifier(&slack.url)
        .handle(&sns_event(&finding()))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Delivery { .. }), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert!(
        !err.to_string().contains("secret-token"),
        "the webhook URL is a credential: {err}"
    );
    assert_eq!(slack.received().len(), 1, "no retry inside the invocation");
}

#[tokio::test]
async fn http_400_fails_the_invocation_as_permanent() {
    let slack = Receiver::start(vec![Reply(400, vec![], "invalid_blocks")]).await;
    let err = slack_notifier(&slack.url)
        .handle(&sns_event(&finding()))
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    assert!(err.to_string().contains("invalid_blocks"), "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_the_invocation() {
    // Bind then drop: nothing listens on the port any more.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = slack_notifier(&format!("http://{addr}/hook"))
        .handle(&sns_event(&finding()))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_plain_http_webhook_outside_loopback_is_refused() {
    let err = slack_notifier("http://hooks.example.com/services/T/B/x")
        .handle(&sns_event(&finding()))
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    assert!(!err.to_string().contains("services/T/B/x"), "{err}");
}

// ------------------------------------------------------------------ PagerDuty

#[tokio::test]
async fn pagerduty_triggers_with_the_fingerprint_as_dedup_key() {
    let pd = Receiver::start(vec![Reply(202, vec![], r#"{"status":"success"}"#)]).await;
    let f = finding();
    let reports = pd_notifier(&pd.url, Severity::High)
        .handle(&sns_event(&f))
        .await
        .unwrap();
    assert_eq!(reports[0].outcomes, [("pagerduty", Outcome::Sent)]);
    let e = &pd.bodies()[0];
    assert_eq!(e["routing_key"], "R0UTINGKEY0123456789");
    assert_eq!(e["event_action"], "trigger");
    assert_eq!(e["dedup_key"], "3f2a9c");
    assert_eq!(
        e["payload"]["summary"],
        "[HIGH] API called from a Tor exit node | prod (111122223333) us-east-1"
    );
    assert_eq!(e["payload"]["severity"], "error");
    assert_eq!(e["payload"]["source"], "AKIAEXAMPLE");
    assert_eq!(e["payload"]["component"], "AwsIamAccessKey");
    assert_eq!(e["payload"]["group"], "prod (111122223333)");
    assert_eq!(
        e["payload"]["class"],
        "UnauthorizedAccess:IAMUser/TorIPCaller"
    );
    assert_eq!(e["payload"]["custom_details"]["finding_id"], "f-1");
    assert_eq!(e["links"][0]["href"], f.links.console.as_deref().unwrap());
    assert_eq!(e["links"][1]["href"], f.links.trace.as_deref().unwrap());
}

#[tokio::test]
async fn pagerduty_resolves_with_the_same_dedup_key() {
    let pd = Receiver::start(vec![]).await;
    let notifier = pd_notifier(&pd.url, Severity::High);
    let mut f = finding();
    notifier.handle(&sns_event(&f)).await.unwrap();
    f.status = FindingStatus::Resolved;
    notifier.handle(&sns_event(&f)).await.unwrap();
    let bodies = pd.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["event_action"], "resolve");
    assert_eq!(bodies[1]["dedup_key"], bodies[0]["dedup_key"]);
    assert!(bodies[1].get("payload").is_none());
}

#[tokio::test]
async fn pagerduty_pages_only_at_or_above_its_minimum() {
    let pd = Receiver::start(vec![]).await;
    let notifier = pd_notifier(&pd.url, Severity::High);
    let mut f = finding();
    f.severity = Severity::Medium;
    let reports = notifier.handle(&sns_event(&f)).await.unwrap();
    assert!(matches!(
        reports[0].outcomes[0],
        ("pagerduty", Outcome::Skipped(_))
    ));
    assert!(pd.received().is_empty());
    f.severity = Severity::Critical;
    notifier.handle(&sns_event(&f)).await.unwrap();
    assert_eq!(pd.bodies()[0]["payload"]["severity"], "critical");
}

#[tokio::test]
async fn hostile_text_stays_within_pagerduty_limits() {
    let pd = Receiver::start(vec![]).await;
    pd_notifier(&pd.url, Severity::Informational)
        .handle(&hostile_event(&hostile_finding()))
        .await
        .unwrap();
    let e = &pd.bodies()[0];
    let summary = e["payload"]["summary"].as_str().unwrap();
    assert!(summary.chars().count() <= 1024 && summary.ends_with('…'));
    assert!(!summary.chars().any(char::is_control));
    assert!(e["dedup_key"].as_str().unwrap().len() <= 255);
    assert!(
        e.get("links").is_none(),
        "hostile URLs are not links: {}",
        e["links"]
    );
}

#[tokio::test]
async fn pagerduty_is_paged_first_and_slack_still_posts_when_it_fails() {
    let pd = Receiver::start(vec![Reply(503, vec![], "unavailable")]).await;
    let slack = Receiver::start(vec![]).await;
    let notifier = Notifier::new(vec![
        Box::new(PagerDuty::new(
            Secret::value("k"),
            pd.url.clone(),
            Severity::High,
            http(),
        )),
        Box::new(SlackWebhook::new(Secret::value(slack.url.clone()), http())),
    ]);
    let err = notifier.handle(&sns_event(&finding())).await.unwrap_err();
    assert!(err.to_string().contains("pagerduty"), "{err}");
    assert_eq!(pd.received().len(), 1);
    assert_eq!(
        slack.received().len(),
        1,
        "one channel down must not silence the other"
    );
}

// ------------------------------------------------------------------ with moto

#[tokio::test]
async fn the_webhook_url_is_read_from_secrets_manager_once_and_reread_after_a_revocation() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let revoked = Receiver::start(vec![Reply(404, vec![], "no_service")]).await;
    let arn = sm
        .create_secret()
        .name(unique("vigil/slack-webhook"))
        .secret_string(json!({"webhook_url": revoked.url}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let config = NotifierConfig::from_lookup(|k| {
        (k == "VIGIL_SLACK_WEBHOOK_SECRET_ARN").then(|| arn.clone())
    })
    .unwrap();
    let notifier = Notifier::from_config(&config, &sdk).unwrap();
    assert_eq!(notifier.destinations().collect::<Vec<_>>(), ["slack"]);

    // The webhook was revoked: the invocation fails, and the secret is read again next time.
    let err = notifier.handle(&sns_event(&finding())).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    assert_eq!(revoked.received().len(), 1);

    // The secret is rotated to a working webhook (bare string form this time).
    let slack = Receiver::start(vec![]).await;
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string(&slack.url)
        .send()
        .await
        .unwrap();
    notifier.handle(&sns_event(&finding())).await.unwrap();
    assert_eq!(slack.received().len(), 1);

    // Cached from now on: even with the secret gone, alerts keep flowing.
    sm.delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    notifier.handle(&sns_event(&finding())).await.unwrap();
    assert_eq!(slack.received().len(), 2);
    assert_eq!(revoked.received().len(), 1);
}

#[tokio::test]
async fn a_missing_secret_fails_the_invocation() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let config = NotifierConfig {
        pagerduty_secret_arn: Some(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:vigil/nope-AbCdEf".into(),
        ),
        ..NotifierConfig::default()
    };
    let err = Notifier::from_config(&config, &sdk)
        .unwrap()
        .handle(&sns_event(&finding()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pagerduty"), "{err}");
}

/// The whole path: a GuardDuty sample through the guardduty pipeline and the
/// real SNS sink into moto, out of an SQS subscriber (the same envelope and
/// attributes Lambda delivers), into the notifier, onto the Slack receiver.
#[tokio::test]
async fn a_guardduty_finding_travels_from_the_pipeline_through_sns_to_slack() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let (topic_arn, queue_url) = vigil_e2e::topic_with_queue(&sdk, &unique("notifier-e2e"))
        .await
        .unwrap();
    let config = vigil::Config {
        topic_arn: Some(topic_arn),
        alert_samples: true,
        min_severity: Severity::Informational,
        trace_url_template: Some("https://ui.honeycomb.io/vigil/trace?trace_id={trace_id}".into()),
        ..vigil::Config::default()
    };
    let trace = vigil::model::TraceContext {
        ids: TraceIds {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            xray_trace_id: "1-4bf92f35-77b34da6a3ce929d0e0e4736".into(),
        },
        traceparent: TRACEPARENT.into(),
        aws_trace_header:
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1".into(),
    };
    let pipeline = vigil::app::pipeline_builder(&config, &Default::default(), Some(&sdk))
        .trace_context(Arc::new(move || Some(trace.clone())))
        .build();
    let events = vigil_e2e::events_in(&vigil_e2e::sample_dir("guardduty", "guardduty"));
    let (_, event) = events.first().expect("a GuardDuty sample");
    let report = pipeline.process_event(event).await.unwrap();
    assert_eq!(report.alerts(), 1);
    let finding = &report.findings[0].finding;

    let messages = vigil_e2e::drain(&sdk, &queue_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    let sns: aws_lambda_events::sns::SnsEvent =
        serde_json::from_value(vigil_e2e::lambda_sns_event(&messages[0])).unwrap();
    assert_eq!(
        vigil::notify::trace_parent(&sns.records[0]).as_deref(),
        Some(TRACEPARENT)
    );

    let slack = Receiver::start(vec![]).await;
    let reports = slack_notifier(&slack.url).handle(&sns).await.unwrap();
    assert_eq!(reports[0].finding_id, finding.id);
    let msg = &slack.bodies()[0];
    assert_slack_limits(msg);
    let header = msg["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(header.contains(finding.severity.as_str()), "{header}");
    let buttons: Vec<&str> = msg["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap())
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert!(
        buttons.contains(
            &"https://ui.honeycomb.io/vigil/trace?trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
        ),
        "{buttons:?}"
    );
}

/// The notifier's SNS subscription in `template.yaml` takes Vigil's alerts and
/// leaves out the CloudWatch alarm notifications that share the topic (which
/// it could not read: each would fail it, and its error alarm would notify it
/// again). The template's own filter policy, evaluated by moto's SNS.
#[tokio::test]
async fn the_notifier_subscription_takes_alerts_but_not_alarm_notifications() {
    use vigil::sinks::AlertSink;
    if moto_endpoint().is_none() {
        return;
    }
    let text = std::fs::read_to_string(vigil_e2e::project_root().join("template.yaml")).unwrap();
    let template: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let policy = &template["Resources"]["NotifierFunction"]["Properties"]["Events"]["Alert"]
        ["Properties"]["FilterPolicy"];
    assert!(
        policy.is_mapping(),
        "the notifier's subscription has a filter policy"
    );
    let policy = serde_json::to_string(&serde_json::to_value(policy).unwrap()).unwrap();

    let sdk = sdk().await;
    let (topic_arn, queue_url) = vigil_e2e::topic_with_queue(&sdk, &unique("notifier-filter"))
        .await
        .unwrap();
    let sns = aws_sdk_sns::Client::new(&sdk);
    let subscriptions = sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    let subscription = subscriptions.subscriptions()[0].subscription_arn().unwrap();
    sns.set_subscription_attributes()
        .subscription_arn(subscription)
        .attribute_name("FilterPolicy")
        .attribute_value(&policy)
        .send()
        .await
        .unwrap();

    // An alarm notification as CloudWatch publishes it: no message attributes.
    sns.publish()
        .topic_arn(&topic_arn)
        .subject("ALARM: \"vigil-notifier-errors\" in US East (N. Virginia)")
        .message(
            json!({"AlarmName": "vigil-notifier-errors", "NewStateValue": "ALARM",
                   "NewStateReason": "Threshold Crossed", "Trigger": {"MetricName": "Errors"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let f = finding();
    vigil::sinks::SnsSink::new(sns.clone(), topic_arn.clone())
        .send(&Alert::new(&f))
        .await
        .unwrap();

    let got = vigil_e2e::drain(&sdk, &queue_url, 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "only the alert passes: {got:?}");
    assert_eq!(
        got[0]["MessageAttributes"]["severity"]["Value"],
        f.severity.as_str()
    );
}

//! Slack bot-token mode and channel routing end to end: SNS records as Lambda
//! receives them, the real notifier and HTTP client, and a local HTTP/1.1
//! server standing in for the Slack Web API (it answers `chat.postMessage`
//! the way Slack does: HTTP 200 with `{"ok": true, "channel", "ts"}` or
//! `{"ok": false, "error"}`, as scripted). With moto: the bot token is read
//! from Secrets Manager and each fingerprint's thread is kept in a DynamoDB
//! state table, through the real SDK.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

use vigil::dedup::{DynamoStore, FingerprintStore};
use vigil::model::{Actor, ActorType, Finding, FindingStatus, Network, Resource, Severity, Source};
use vigil::notify::{
    AlertStatus, AlertView, Destination, DynamoThreads, HttpClient, HttpPolicy, MemoryThreads,
    Notifier, NotifierConfig, Outcome, Secret, SlackBot, SlackChannel, SlackThread, SlackWebhook,
    ThreadStore, SLACK_SECRET_KEYS,
};
use vigil::render::{self, Alert};
use vigil::route::Route;
use vigil_e2e::stand_in::{Answer, Received, StandIn};
use vigil_e2e::{moto_endpoint, sdk, unique};

const TOKEN: &str = "xoxb-1111-2222-T0KENSECRET";

// ------------------------------------------------------------------ Slack stand-in

/// A scripted answer. `Posted` answers as Slack does for a good post: the
/// channel id for the channel asked for, and a fresh `ts`.
#[derive(Debug, Clone)]
enum Reply {
    Posted,
    Raw(u16, Vec<(&'static str, String)>, String),
}

fn slack_error(code: &str) -> Reply {
    Reply::Raw(200, vec![], json!({"ok": false, "error": code}).to_string())
}

/// The channel id the stand-in gives a channel name (`#payments-sec` →
/// `CPAYMENTSSEC`); an id is kept.
fn channel_id(channel: &str) -> String {
    match channel.strip_prefix('#') {
        Some(name) => format!("C{}", name.to_uppercase().replace(['-', '_'], "")),
        None => channel.to_string(),
    }
}

/// A local Slack Web API: answers from the script in order (`Posted` once it
/// runs out) and records every request.
struct SlackApi {
    /// The API base, as `VIGIL_SLACK_API_URL` takes it.
    base: String,
    inner: StandIn,
}

impl SlackApi {
    async fn start(script: Vec<Reply>) -> SlackApi {
        let script = Mutex::new(VecDeque::from(script));
        let ts = AtomicU32::new(0);
        let inner = StandIn::start(move |request| {
            let reply = script.lock().unwrap().pop_front().unwrap_or(Reply::Posted);
            match reply {
                Reply::Posted => {
                    let n = ts.fetch_add(1, Ordering::SeqCst) + 1;
                    let body = &request.body;
                    let channel = channel_id(body["channel"].as_str().unwrap_or_default());
                    // Slack echoes the message beside the ts: keep the answer as big.
                    let answer = json!({"ok": true, "channel": channel, "ts": format!("1767225600.{n:06}"),
                                        "message": {"text": body["text"], "blocks": body["blocks"]}});
                    Answer::json(200, answer.to_string())
                }
                Reply::Raw(status, headers, text) => Answer {
                    headers,
                    ..Answer::json(status, text)
                },
            }
        })
        .await;
        SlackApi {
            base: format!("{}/api", inner.base),
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

/// An incoming-webhook stand-in and its URL: the same server (a webhook
/// only needs the 2xx, it never reads the body).
async fn webhook() -> (SlackApi, String) {
    let api = SlackApi::start(vec![]).await;
    let url = format!("{}/hook/T000/B000/secret", api.base);
    (api, url)
}

// ------------------------------------------------------------------ alerts

fn finding(fingerprint: &str) -> Finding {
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
    f.fingerprint = fingerprint.into();
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
    f
}

fn repeat(f: &Finding, count: u64) -> Finding {
    let mut r = f.clone();
    r.count = count;
    r
}

fn resolved(f: &Finding) -> Finding {
    let mut r = f.clone();
    r.status = FindingStatus::Resolved;
    r
}

fn route(channel: Option<&str>) -> Route {
    Route {
        name: "payments".into(),
        slack_channel: channel.map(str::to_string),
        ..Default::default()
    }
}

/// The SNS event Lambda hands the notifier for `f`, routed by `route`: the
/// `lambda` key of the real SNS message, and its real attributes.
fn sns_event(f: &Finding, route: Option<&Route>) -> aws_lambda_events::sns::SnsEvent {
    let mut alert = Alert::new(f);
    alert.route = route;
    let msg: Value = serde_json::from_str(&render::sns_message(&alert)).unwrap();
    event_with_message(f, msg["lambda"].as_str().unwrap())
}

fn event_with_message(f: &Finding, message: &str) -> aws_lambda_events::sns::SnsEvent {
    let mut attrs = serde_json::Map::new();
    for (k, v) in render::attributes(f) {
        attrs.insert(k.into(), json!({"Type": "String", "Value": v}));
    }
    serde_json::from_value(json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:111122223333:vigil:sub",
        "Sns": {
            "Type": "Notification", "MessageId": unique("msg"), "TopicArn": "arn:aws:sns:us-east-1:111122223333:vigil",
            "Subject": render::subject(f), "Message": message, "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
            "MessageAttributes": attrs,
        },
    }]}))
    .unwrap()
}

fn http() -> HttpClient {
    HttpClient::new(HttpPolicy::default()).unwrap()
}

fn chan(c: &str) -> SlackChannel {
    SlackChannel::parse(c).unwrap()
}

/// A bot with the token given directly and threads in `store`.
fn bot(api: &SlackApi, store: &MemoryThreads) -> SlackBot {
    SlackBot::new(Secret::value(TOKEN), &api.base, http())
        .default_channel(Some(chan("#security")))
        .threads(Some(Arc::new(store.clone())))
}

// ------------------------------------------------------------------ moto set-up

async fn create_table(sdk: &SdkConfig) -> String {
    vigil_e2e::state_table(sdk, "vigil-threads").await.unwrap()
}

async fn create_secret(sdk: &SdkConfig, value: &str) -> String {
    vigil_e2e::create_secret(sdk, value).await.unwrap()
}

/// The `fp#<fingerprint>` item as stored.
async fn item(
    sdk: &SdkConfig,
    table: &str,
    fingerprint: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(format!("fp#{fingerprint}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default()
}

fn s_attr<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, k: &str) -> &'a str {
    match item.get(k) {
        Some(AttributeValue::S(s)) => s,
        other => panic!("{k}: {other:?}"),
    }
}

/// The notifier as deployed in bot mode: token in a moto secret, threads in a
/// moto table, the Slack API at the stand-in.
struct Bed {
    sdk: SdkConfig,
    table: String,
    secret_arn: String,
    api: SlackApi,
    notifier: Notifier,
}

async fn bed(secret: Value, script: Vec<Reply>, extra: &[(&str, &str)]) -> Option<Bed> {
    moto_endpoint()?;
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let secret_arn = create_secret(&sdk, &secret.to_string()).await;
    let api = SlackApi::start(script).await;
    let mut vars = vec![
        ("VIGIL_SLACK_BOT_TOKEN_SECRET_ARN", secret_arn.clone()),
        ("VIGIL_SLACK_API_URL", api.base.clone()),
        ("VIGIL_STATE_TABLE", table.clone()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let config = NotifierConfig::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let notifier = Notifier::from_config(&config, &sdk).unwrap();
    Some(Bed {
        sdk,
        table,
        secret_arn,
        api,
        notifier,
    })
}

fn default_secret() -> Value {
    json!({"bot_token": TOKEN, "channel": "#security"})
}

// ------------------------------------------------------------------ bot mode, with moto

#[tokio::test]
async fn the_first_alert_posts_a_top_level_card_to_the_routed_channel_and_keeps_its_thread() {
    let Some(b) = bed(default_secret(), vec![], &[]).await else {
        return;
    };
    let f = finding(&unique("fp"));
    let payments = route(Some("#payments-sec"));
    let reports = b
        .notifier
        .handle(&sns_event(&f, Some(&payments)))
        .await
        .unwrap();
    assert_eq!(reports[0].outcomes, [("slack", Outcome::Sent)]);
    assert_eq!(reports[0].status, AlertStatus::New);

    let got = b.api.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/api/chat.postMessage");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(got[0]
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    let body = &got[0].body;
    assert_eq!(body["channel"], "#payments-sec");
    assert!(body.get("thread_ts").is_none(), "a top-level post");
    assert_eq!(body["unfurl_links"], false);
    assert_eq!(body["unfurl_media"], false);
    assert!(body.get("link_names").is_none());
    assert_eq!(body["blocks"][0]["type"], "header", "the full card");
    assert_eq!(
        body["text"],
        "[HIGH] API called from a Tor exit node | prod (111122223333) us-east-1"
    );

    // The thread: the ts and channel id Slack answered, on the fingerprint's record.
    let item = item(&b.sdk, &b.table, &f.fingerprint).await;
    assert_eq!(s_attr(&item, "thread_ts"), "1767225600.000001");
    assert_eq!(s_attr(&item, "thread_channel"), "CPAYMENTSSEC");
    let expiration: i64 = match item.get("expiration") {
        Some(AttributeValue::N(n)) => n.parse().unwrap(),
        other => panic!("expiration: {other:?}"),
    };
    let now = chrono::Utc::now().timestamp();
    assert!(
        expiration > now + 6 * 86_400 && expiration <= now + 8 * 86_400,
        "the record still expires: {expiration}"
    );
    assert!(!item.contains_key("state") && !item.contains_key("version"));
}

#[tokio::test]
async fn repeats_and_the_resolution_reply_in_the_first_cards_thread() {
    let Some(b) = bed(default_secret(), vec![], &[]).await else {
        return;
    };
    let f = finding(&unique("fp"));
    let payments = route(Some("#payments-sec"));
    b.notifier
        .handle(&sns_event(&f, Some(&payments)))
        .await
        .unwrap();
    assert_eq!(b.api.bodies().len(), 1);

    let reports = b
        .notifier
        .handle(&sns_event(&repeat(&f, 4), Some(&payments)))
        .await
        .unwrap();
    assert_eq!(reports[0].status, AlertStatus::Repeat);
    // The resolution carries no route: it still goes to the thread's channel.
    let reports = b
        .notifier
        .handle(&sns_event(&resolved(&f), None))
        .await
        .unwrap();
    assert_eq!(reports[0].status, AlertStatus::Resolved);

    let bodies = b.api.bodies();
    assert_eq!(bodies.len(), 3);
    for (reply, what) in [
        (&bodies[1], "*Seen again (4 times)*"),
        (&bodies[2], "*Resolved*"),
    ] {
        assert_eq!(reply["thread_ts"], "1767225600.000001", "{reply}");
        assert_eq!(reply["channel"], "CPAYMENTSSEC", "the thread's channel id");
        assert!(reply.get("link_names").is_none());
        assert_eq!(reply["unfurl_links"], false);
        let line = reply["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(line.contains(what), "{line}");
        assert!(
            reply["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["type"] != "header"),
            "a compact line, not a card"
        );
    }
    for r in b.api.received() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    // Replies do not move the thread.
    let item = item(&b.sdk, &b.table, &f.fingerprint).await;
    assert_eq!(s_attr(&item, "thread_ts"), "1767225600.000001");
}

#[tokio::test]
async fn a_repeat_without_a_known_thread_posts_a_card_and_starts_one() {
    let Some(b) = bed(
        json!({"bot_token": TOKEN}),
        vec![],
        &[("VIGIL_SLACK_CHANNEL", "#security")],
    )
    .await
    else {
        return;
    };
    let f = finding(&unique("fp"));
    // No route and no channel in the secret: VIGIL_SLACK_CHANNEL.
    b.notifier
        .handle(&sns_event(&repeat(&f, 2), None))
        .await
        .unwrap();
    b.notifier
        .handle(&sns_event(&repeat(&f, 3), None))
        .await
        .unwrap();
    let bodies = b.api.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["channel"], "#security");
    assert!(bodies[0].get("thread_ts").is_none());
    assert_eq!(
        bodies[0]["blocks"][0]["type"], "header",
        "a card starts the thread"
    );
    assert_eq!(bodies[1]["thread_ts"], "1767225600.000001");
    assert_eq!(bodies[1]["channel"], "CSECURITY");
    assert_eq!(
        s_attr(
            &item(&b.sdk, &b.table, &f.fingerprint).await,
            "thread_channel"
        ),
        "CSECURITY"
    );
}

#[tokio::test]
async fn a_refused_token_fails_the_delivery_and_the_rotated_secret_is_read_again() {
    let Some(b) = bed(default_secret(), vec![slack_error("invalid_auth")], &[]).await else {
        return;
    };
    let f = finding(&unique("fp"));
    let err = b.notifier.handle(&sns_event(&f, None)).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("invalid_auth"), "{err}");
    assert!(
        !err.to_string().contains("T0KENSECRET"),
        "the token is a credential: {err}"
    );
    assert!(
        item(&b.sdk, &b.table, &f.fingerprint).await.is_empty(),
        "no thread for a post that failed"
    );

    aws_sdk_secretsmanager::Client::new(&b.sdk)
        .put_secret_value()
        .secret_id(&b.secret_arn)
        .secret_string(r##"{"bot_token": "xoxb-rotated", "channel": "#security"}"##)
        .send()
        .await
        .unwrap();
    b.notifier.handle(&sns_event(&f, None)).await.unwrap();
    let got = b.api.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("authorization"), Some("Bearer xoxb-rotated"));
    assert_eq!(got[1].body["channel"], "#security", "the secret's channel");
}

#[tokio::test]
async fn the_bot_token_wins_over_a_webhook_when_both_are_set() {
    if moto_endpoint().is_none() {
        return;
    }
    let (hook, hook_url) = webhook().await;
    let sdk = sdk().await;
    let hook_arn = create_secret(&sdk, &hook_url).await;
    let Some(b) = bed(
        default_secret(),
        vec![],
        &[("VIGIL_SLACK_WEBHOOK_SECRET_ARN", hook_arn.as_str())],
    )
    .await
    else {
        return;
    };
    b.notifier
        .handle(&sns_event(&finding(&unique("fp")), None))
        .await
        .unwrap();
    assert_eq!(b.api.received().len(), 1);
    assert_eq!(b.notifier.destinations().collect::<Vec<_>>(), ["slack"]);
    assert!(hook.received().is_empty(), "the webhook is not used");
}

#[tokio::test]
async fn the_thread_and_the_dedup_state_share_the_fingerprint_record_in_dynamodb() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let table = create_table(&sdk).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoStore::new(client.clone(), table.clone());
    let threads = DynamoThreads::new(client, table.clone());
    let now = chrono::Utc::now().timestamp();
    let thread = |ts: &str, c: &str| SlackThread {
        ts: ts.into(),
        channel: Some(c.into()),
        origin: Some(format!("origin-{ts}")),
    };

    // Dedup first, as in the deployed flow: the thread lands beside the state.
    store
        .save("fp#a", "{\"seen\":1}", None, now + 100, now)
        .await
        .unwrap();
    threads
        .save("fp#a", &thread("1.1", "C1"), now + 9999)
        .await
        .unwrap();
    let v = store.load("fp#a", now).await.unwrap().unwrap();
    assert_eq!((v.state.as_str(), v.version), ("{\"seen\":1}", 1));
    assert_eq!(
        threads.load("fp#a", now).await.unwrap(),
        Some(thread("1.1", "C1"))
    );
    let it = item(&sdk, &table, "a").await;
    assert_eq!(
        it.get("expiration"),
        Some(&AttributeValue::N((now + 100).to_string())),
        "an existing record keeps its expiry"
    );
    // The dedup stage's next write keeps the thread.
    store
        .save("fp#a", "{\"seen\":2}", Some(1), now + 200, now)
        .await
        .unwrap();
    assert_eq!(
        threads.load("fp#a", now).await.unwrap(),
        Some(thread("1.1", "C1"))
    );
    // Expired (TTL lags): no thread.
    assert_eq!(threads.load("fp#a", now + 201).await.unwrap(), None);

    // The notifier first (no dedup state yet): the dedup stage still starts fresh.
    threads
        .save("fp#b", &thread("2.2", "C2"), now + 500)
        .await
        .unwrap();
    assert_eq!(store.load("fp#b", now).await.unwrap(), None);
    store
        .save("fp#b", "{}", None, now + 100, now)
        .await
        .unwrap();
    assert_eq!(store.load("fp#b", now).await.unwrap().unwrap().version, 1);
    assert_eq!(
        threads.load("fp#b", now).await.unwrap(),
        Some(thread("2.2", "C2"))
    );

    // A missing table is an error the notifier can log, not a panic.
    let gone = DynamoThreads::new(aws_sdk_dynamodb::Client::new(&sdk), unique("no-such-table"));
    assert!(gone.save("fp#c", &thread("3", "C3"), now).await.is_err());
}

// ------------------------------------------------------------------ bot mode, no moto needed

#[tokio::test]
async fn rate_limits_by_status_or_by_slacks_answer_are_waited_out_then_posted_once() {
    let api = SlackApi::start(vec![
        Reply::Raw(
            429,
            vec![("retry-after", "1".into())],
            "{\"ok\":false,\"error\":\"ratelimited\"}".into(),
        ),
        Reply::Raw(
            200,
            vec![("retry-after", "1".into())],
            "{\"ok\":false,\"error\":\"ratelimited\"}".into(),
        ),
    ])
    .await;
    let store = MemoryThreads::new();
    let notifier = Notifier::new(vec![Box::new(bot(&api, &store))]);
    let started = Instant::now();
    let reports = notifier
        .handle(&sns_event(&finding("fp-rl"), None))
        .await
        .unwrap();
    assert_eq!(reports[0].outcomes, [("slack", Outcome::Sent)]);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured"
    );
    let bodies = api.bodies();
    assert_eq!(bodies.len(), 3, "two rate-limited attempts, one post");
    assert_eq!(bodies[0], bodies[2], "the retry sends the same message");
    assert_eq!(
        store
            .load("fp#fp-rl", chrono::Utc::now().timestamp())
            .await
            .unwrap()
            .map(|t| t.ts),
        Some("1767225600.000001".into()),
        "the thread is the post that went through"
    );
}

/// PagerDuty down: the notifier posts to Slack, fails the invocation for
/// PagerDuty's sake, and SNS delivers the same message again. The card is
/// not posted twice and the thread stays on the first card.
#[tokio::test]
async fn a_retried_delivery_of_the_first_alert_does_not_post_its_card_twice() {
    let api = SlackApi::start(vec![]).await;
    let store = MemoryThreads::new();
    let notifier = Notifier::new(vec![Box::new(bot(&api, &store))]);
    let f = finding("fp-retry");
    let first = sns_event(&f, None);
    let reports = notifier.handle(&first).await.unwrap();
    assert_eq!(reports[0].outcomes, [("slack", Outcome::Sent)]);
    let retried = notifier.handle(&first).await.unwrap();
    assert!(
        matches!(retried[0].outcomes[0], ("slack", Outcome::Skipped(_))),
        "{:?}",
        retried[0].outcomes
    );
    assert_eq!(api.bodies().len(), 1, "one card");

    // A later repeat of the fingerprint still replies in the first card's thread.
    notifier
        .handle(&sns_event(&repeat(&f, 3), None))
        .await
        .unwrap();
    let bodies = api.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["thread_ts"], "1767225600.000001");
}

#[tokio::test]
async fn rate_limits_beyond_the_wait_budget_fail_as_transient() {
    let api = SlackApi::start(vec![Reply::Raw(
        200,
        vec![("retry-after", "3600".into())],
        "{\"ok\":false,\"error\":\"ratelimited\"}".into(),
    )])
    .await;
    let notifier = Notifier::new(vec![Box::new(bot(&api, &MemoryThreads::new()))]);
    let err = notifier
        .handle(&sns_event(&finding("fp"), None))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("ratelimited"), "{err}");
    assert_eq!(api.received().len(), 1);
}

#[tokio::test]
async fn slack_5xx_and_internal_errors_are_transient() {
    for reply in [
        Reply::Raw(503, vec![], "upstream down".into()),
        slack_error("internal_error"),
    ] {
        let api = SlackApi::start(vec![reply]).await;
        let notifier = Notifier::new(vec![Box::new(bot(&api, &MemoryThreads::new()))]);
        let err = notifier
            .handle(&sns_event(&finding("fp"), None))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
}

#[tokio::test]
async fn a_channel_the_bot_cannot_post_to_is_a_permanent_error_naming_it() {
    for code in ["channel_not_found", "not_in_channel"] {
        let api = SlackApi::start(vec![slack_error(code)]).await;
        let notifier = Notifier::new(vec![Box::new(bot(&api, &MemoryThreads::new()))]);
        let payments = route(Some("#payments-sec"));
        let err = notifier
            .handle(&sns_event(&finding("fp"), Some(&payments)))
            .await
            .unwrap_err();
        assert!(!err.is_transient(), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("#payments-sec") && msg.contains(code), "{msg}");
    }
}

#[tokio::test]
async fn a_state_store_failure_never_fails_the_delivery() {
    let api = SlackApi::start(vec![]).await;
    let store = MemoryThreads::new();
    store.set_unavailable(true);
    let b = bot(&api, &store);
    // The destination itself, to read its error count.
    let alert = |f: &Finding| AlertView::parse(&sns_event(f, None).records[0].sns.message).unwrap();
    let f = finding("fp-down");
    assert_eq!(b.deliver(&alert(&f)).await.unwrap(), Outcome::Sent);
    assert_eq!(
        b.thread_store_errors(),
        2,
        "the thread could neither be read (a retry check) nor saved"
    );
    assert_eq!(
        b.deliver(&alert(&repeat(&f, 2))).await.unwrap(),
        Outcome::Sent
    );
    assert_eq!(b.thread_store_errors(), 4, "nor read, nor saved again");
    let bodies = api.bodies();
    assert_eq!(bodies.len(), 2, "both alerts were posted");
    assert!(bodies.iter().all(|b| b.get("thread_ts").is_none()));
}

/// Hostile text in every field the thread path renders, long enough to need cuts.
fn evil(tag: &str) -> String {
    format!(
        "{tag} <!channel> <!here> <@U1> <#C1> <https://evil.example|click> *bold* `code` & \u{1b}[31mred \0nul \
         \u{202e}rtl \u{200b}zw 日本語 😀 {}",
        "x".repeat(20_000)
    )
}

fn hostile_finding(fingerprint: &str) -> Finding {
    let mut f = finding(fingerprint);
    f.title = evil("title");
    f.description = format!("{}\n{}", evil("desc"), evil("line2"));
    f.account_name = Some(evil("account"));
    f.region = evil("region");
    f.resources = vec![Resource::new(evil("rtype"), evil("resource"))];
    f.actor = Some(Actor {
        actor_type: ActorType::AssumedRole,
        user_name: Some(evil("user")),
        ..Actor::default()
    });
    f.network = Network {
        remote_ip: Some(evil("ip")),
        ..Network::default()
    };
    f.links.console = Some(format!("https://evil.example/<x>{}", evil("c")));
    f.links.trace = Some("javascript:alert(1)//evil".into());
    f
}

fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(t)) = m.get("text") {
                out.push(t.clone());
            }
            m.values().for_each(|v| texts(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| texts(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn hostile_text_is_still_escaped_in_cards_and_thread_replies() {
    let api = SlackApi::start(vec![]).await;
    let store = MemoryThreads::new();
    let notifier = Notifier::new(vec![Box::new(bot(&api, &store))]);
    // A short fingerprint, so the replies really are threaded; then a hostile
    // one, which is too long to be a state key and posts at the top level.
    let long_fp = evil("fp");
    for fp in ["fp-hostile", long_fp.as_str()] {
        let f = hostile_finding(fp);
        let hostile_route = route(Some("#payments-sec"));
        for g in [f.clone(), repeat(&f, 5), resolved(&f)] {
            notifier
                .handle(&sns_event(&g, Some(&hostile_route)))
                .await
                .unwrap();
        }
    }
    let bodies = api.bodies();
    assert_eq!(bodies.len(), 6);
    assert!(bodies[1]["thread_ts"].is_string() && bodies[2]["thread_ts"].is_string());
    assert!(
        bodies[4].get("thread_ts").is_none(),
        "an overlong fingerprint is not threaded"
    );
    for body in &bodies {
        assert!(body.get("link_names").is_none());
        let mut all = Vec::new();
        texts(body, &mut all);
        assert!(!all.is_empty());
        for text in &all {
            assert!(!text.contains('<') && !text.contains('>'), "{text}");
            assert!(
                !text
                    .chars()
                    .any(|c| (c.is_control() && c != '\n') || matches!(c, '\u{202e}' | '\u{200b}')),
                "{text:?}"
            );
        }
        assert!(
            body.to_string().chars().count() <= 45_000,
            "within Slack's limits"
        );
        for b in body["blocks"].as_array().unwrap() {
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

// ------------------------------------------------------------------ webhook mode routing

#[tokio::test]
async fn webhook_mode_posts_to_the_routed_channels_webhook_or_falls_back_to_the_default() {
    let (default_hook, default_url) = webhook().await;
    let (payments_hook, payments_url) = webhook().await;
    let secret = json!({"webhook_url": default_url, "channels": {"#payments-sec": payments_url}});
    let notifier = Notifier::new(vec![Box::new(SlackWebhook::new(
        Secret::value(secret.to_string()).with_keys(SLACK_SECRET_KEYS),
        http(),
    ))]);
    let f = finding("fp-hook");
    let payments = route(Some("#payments-sec"));
    let unknown = route(Some("#nobody-configured-this"));
    notifier
        .handle(&sns_event(&f, Some(&payments)))
        .await
        .unwrap();
    notifier
        .handle(&sns_event(&f, Some(&unknown)))
        .await
        .unwrap();
    notifier.handle(&sns_event(&f, None)).await.unwrap();
    let payments_bodies = payments_hook.bodies();
    let default_bodies = default_hook.bodies();
    assert_eq!(payments_bodies.len(), 1, "the routed channel's webhook");
    assert_eq!(
        default_bodies.len(),
        2,
        "an unknown channel and no route: the default"
    );
    for b in payments_bodies.iter().chain(&default_bodies) {
        assert!(b.get("channel").is_none(), "a webhook's channel is fixed");
        assert_eq!(b["blocks"][0]["type"], "header");
    }
}

#[tokio::test]
async fn webhook_mode_reads_the_channels_map_from_secrets_manager() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let (default_hook, default_url) = webhook().await;
    let (payments_hook, payments_url) = webhook().await;
    let arn = create_secret(
        &sdk,
        &json!({"webhook_url": default_url, "channels": {"payments-sec": payments_url}})
            .to_string(),
    )
    .await;
    let config = NotifierConfig::from_lookup(|k| {
        (k == "VIGIL_SLACK_WEBHOOK_SECRET_ARN").then(|| arn.clone())
    })
    .unwrap();
    let notifier = Notifier::from_config(&config, &sdk).unwrap();
    // The routing table says "#payments-sec", the secret "payments-sec": the same channel.
    let payments = route(Some("#payments-sec"));
    notifier
        .handle(&sns_event(&finding("fp"), Some(&payments)))
        .await
        .unwrap();
    assert_eq!(payments_hook.received().len(), 1);
    assert!(default_hook.received().is_empty());
}

//! Routing end to end through moto: an organization with nested OUs in AWS
//! Organizations, the routing table in an SSM parameter, the function
//! pipeline as the Lambdas build it (`vigil::app::function_pipeline`), and the
//! alert read back from an SQS subscriber of the SNS topic: its `route`
//! attribute (what subscriber filter policies match), the route in the OCSF
//! body (what the notifier reads), and the account's name from Organizations.

use std::time::Duration;

use serde_json::Value;

use vigil::model::{Severity, Source};
use vigil_e2e::stand_in::{Answer, StandIn};
use vigil_e2e::{drain, events_in, moto_endpoint, sample_dir, sdk, topic_with_queue, unique};

/// The organization's root id, creating the organization if moto has none yet
/// (moto keeps one organization per server, shared by every test).
async fn root_id(org: &aws_sdk_organizations::Client) -> String {
    if let Err(e) = org
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
    {
        let already = e
            .as_service_error()
            .is_some_and(|se| se.is_already_in_organization_exception());
        assert!(already, "create_organization: {e:?}");
    }
    let roots = org.list_roots().send().await.unwrap();
    roots.roots()[0].id().unwrap().to_string()
}

async fn unit(org: &aws_sdk_organizations::Client, parent: &str, name: &str) -> String {
    org.create_organizational_unit()
        .parent_id(parent)
        .name(name)
        .send()
        .await
        .unwrap()
        .organizational_unit()
        .and_then(|u| u.id())
        .unwrap()
        .to_string()
}

/// A new member account named `name`, moved from the root into `unit_id`.
async fn account_in(
    org: &aws_sdk_organizations::Client,
    root: &str,
    unit_id: &str,
    name: &str,
) -> String {
    let status = org
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .unwrap();
    let id = status
        .create_account_status()
        .and_then(|s| s.account_id())
        .expect("moto creates accounts at once")
        .to_string();
    org.move_account()
        .account_id(&id)
        .source_parent_id(root)
        .destination_parent_id(unit_id)
        .send()
        .await
        .unwrap();
    id
}

/// A real GuardDuty sample, moved into `account`.
fn guardduty_event_in(account: &str) -> Value {
    let events = events_in(&sample_dir("guardduty", "guardduty"));
    let (_, event) = events.first().expect("a GuardDuty sample");
    let mut event = event.clone();
    event["account"] = Value::from(account);
    event["detail"]["accountId"] = Value::from(account);
    event["id"] = Value::from(unique("evt"));
    event
}

fn attribute<'a>(envelope: &'a Value, name: &str) -> Option<&'a str> {
    envelope["MessageAttributes"][name]["Value"].as_str()
}

#[tokio::test]
async fn alerts_take_the_route_of_the_ou_above_their_account_and_carry_its_name() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let org = aws_sdk_organizations::Client::new(&sdk);
    let root = root_id(&org).await;
    let payments = unit(&org, &root, &unique("Payments")).await;
    // Nested: the rule names the parent OU, the account sits one level below.
    let payments_prod = unit(&org, &payments, "Prod").await;
    let marketing = unit(&org, &root, &unique("Marketing")).await;
    let pay_name = unique("payments-prod");
    let pay_account = account_in(&org, &root, &payments_prod, &pay_name).await;
    let web_account = account_in(&org, &root, &marketing, &unique("web")).await;

    let parameter = format!("/{}/routes", unique("vigil"));
    let table = format!(
        "routes:\n  - name: payments\n    ou: {payments}\n    slack_channel: '#payments-security'\n    pagerduty_service: payments\ndefault:\n  slack_channel: '#security-alerts'\n"
    );
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&parameter)
        .value(table)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();

    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("routing")).await.unwrap();
    let config = vigil::Config::from_lookup(|name| match name {
        "VIGIL_TOPIC_ARN" => Some(topic_arn.clone()),
        "VIGIL_ROUTES_SSM_PARAMETER" => Some(parameter.clone()),
        "VIGIL_ORGANIZATIONS_LOOKUP" => Some("true".into()),
        "VIGIL_ALERT_SAMPLES" => Some("true".into()),
        "VIGIL_MIN_SEVERITY" => Some("INFORMATIONAL".into()),
        _ => None,
    })
    .unwrap();
    let loaded = vigil::app::Loaded::load(&config, Some(&sdk)).await.unwrap();
    assert!(loaded.routes.uses_units());
    let pipeline =
        vigil::app::function_pipeline(&config, &loaded, &sdk, &[Source::GuardDuty], None);

    for account in [&pay_account, &web_account] {
        let report = pipeline
            .process_event(&guardduty_event_in(account))
            .await
            .unwrap();
        assert_eq!(report.alerts(), 1, "{account}");
    }
    let mut messages = drain(&sdk, &queue_url, 2, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
    messages.sort_by_key(|m| attribute(m, "account") != Some(pay_account.as_str()));

    let paid = &messages[0];
    assert_eq!(attribute(paid, "account"), Some(pay_account.as_str()));
    assert_eq!(attribute(paid, "route"), Some("payments"));
    let body: Value = serde_json::from_str(paid["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["unmapped"]["vigil_route"]["slack_channel"],
        "#payments-security"
    );
    assert_eq!(
        body["unmapped"]["vigil_route"]["pagerduty_service"],
        "payments"
    );
    assert_eq!(body["cloud"]["account"]["name"], pay_name.as_str());
    let view = vigil::notify::AlertView::parse(paid["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        view.route.and_then(|r| r.pagerduty_service).as_deref(),
        Some("payments")
    );

    // The notifier pages each alert's service: the payments key for the
    // payments route, the default key for the other, both read from one
    // PagerDuty secret in Secrets Manager.
    let pd = StandIn::start(|_| Answer::json(202, r#"{"status":"success"}"#)).await;
    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(unique("vigil/pagerduty"))
        .secret_string(r#"{"routing_key": "R0DEFAULT", "services": {"payments": "R0PAYMENTS"}}"#)
        .send()
        .await
        .unwrap();
    let notifier = vigil::notify::Notifier::from_config(
        &vigil::notify::NotifierConfig {
            pagerduty_secret_arn: secret.arn().map(str::to_string),
            pagerduty_min_severity: Severity::Informational,
            pagerduty_url: format!("{}/v2/enqueue", pd.base),
            ..vigil::notify::NotifierConfig::default()
        },
        &sdk,
    )
    .unwrap();
    for m in &messages {
        let event = serde_json::from_value(vigil_e2e::lambda_sns_event(m)).unwrap();
        notifier.handle(&event).await.unwrap();
    }
    let keys: Vec<Value> = pd
        .bodies()
        .iter()
        .map(|b| b["routing_key"].clone())
        .collect();
    assert_eq!(keys, ["R0PAYMENTS", "R0DEFAULT"]);

    let other = &messages[1];
    assert_eq!(attribute(other, "account"), Some(web_account.as_str()));
    assert_eq!(attribute(other, "route"), Some("default"));
    let body: Value = serde_json::from_str(other["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["unmapped"]["vigil_route"]["slack_channel"],
        "#security-alerts"
    );
    assert!(body["unmapped"]["vigil_route"]
        .get("pagerduty_service")
        .is_none());
}

#[tokio::test]
async fn a_denied_or_unknown_account_still_alerts_with_its_id_on_the_default_route() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let org = aws_sdk_organizations::Client::new(&sdk);
    root_id(&org).await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("routing-unknown"))
        .await
        .unwrap();
    let config = vigil::Config::from_lookup(|name| match name {
        "VIGIL_TOPIC_ARN" => Some(topic_arn.clone()),
        "VIGIL_ORGANIZATIONS_LOOKUP" => Some("true".into()),
        "VIGIL_ALERT_SAMPLES" => Some("true".into()),
        "VIGIL_MIN_SEVERITY" => Some("INFORMATIONAL".into()),
        _ => None,
    })
    .unwrap();
    let loaded = vigil::app::Loaded {
        routes: vigil::route::RoutingTable::parse(
            "routes: [{name: payments, ou: Payments, slack_channel: '#pay'}]",
            "test",
        )
        .unwrap(),
        ..Default::default()
    };
    let pipeline =
        vigil::app::function_pipeline(&config, &loaded, &sdk, &[Source::GuardDuty], None);
    // Not a member of the organization: Organizations answers
    // AccountNotFoundException, and the alert must still go out.
    let report = pipeline
        .process_event(&guardduty_event_in("210987654321"))
        .await
        .unwrap();
    assert_eq!(report.alerts(), 1);
    let messages = drain(&sdk, &queue_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(attribute(&messages[0], "route"), Some("default"));
    let body: Value = serde_json::from_str(messages[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["cloud"]["account"]["uid"], "210987654321");
    assert!(body["cloud"]["account"].get("name").is_none());
}

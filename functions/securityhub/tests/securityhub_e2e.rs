//! Security Hub and Macie end to end: the real `securityhub` function binary
//! under cargo-lambda's Lambda runtime emulator, publishing through the real
//! AWS SDK to moto's SNS, read back from an SQS subscriber queue (envelope
//! delivery, as `topic_with_queue` subscribes it).
//!
//! Samples: the project's own `examples/events/securityhub/` (ASFF `Security
//! Hub Findings - Imported` events and the only Macie `Macie Finding` event),
//! plus the real public ones in `../shared/events/securityhub/` when that
//! folder exists. Bare ASFF findings there (as `GetFindings` returns them) are
//! put, unchanged, into the EventBridge envelope Security Hub sends them in.
//!
//! What each alert must look like is read from the samples themselves
//! (`Severity.Label`, `ProductName`, `RecordState`, `Workflow.Status`,
//! `Compliance.Status`, ...), not from Vigil's parser. The negative cases are
//! edited copies of real samples.
//!
//! An SQS subscriber only sees the `sqs` key of the JSON message structure;
//! the whole structure (`default`, `email`, `lambda`) is read from what moto's
//! SNS recorded as published (`/moto-api/data.json`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use vigil::model::Severity;
use vigil_e2e::{
    drain, events_in, moto_endpoint, project_root, published, sdk, shared_events, topic_with_queue,
    unique, LambdaFunction,
};

/// The threshold every function in this file runs with (`VIGIL_MIN_SEVERITY`).
const THRESHOLD: Severity = Severity::Medium;

// ------------------------------------------------------------ the function

/// The `securityhub` binary under the emulator, publishing to `topic_arn`,
/// with `extra` settings on top of the threshold.
fn start_function(
    endpoint: &str,
    topic_arn: &str,
    extra: &[(&str, &str)],
) -> Option<LambdaFunction> {
    let binary = Path::new(env!("CARGO_BIN_EXE_securityhub"));
    let mut env: Vec<(&str, &str)> = vec![
        ("VIGIL_TOPIC_ARN", topic_arn),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("VIGIL_MIN_SEVERITY", THRESHOLD.as_str()),
    ];
    env.extend_from_slice(extra);
    LambdaFunction::start(binary, &env)
}

fn invoke(function: &LambdaFunction, name: &str, event: &Value) -> Value {
    function
        .invoke(event)
        .unwrap_or_else(|e| panic!("{name}: {e}\nlogs:\n{}", function.logs()))
}

/// The decision the function logged last for the finding with `id` (its
/// `finding <decision>` line carries `finding_id` and `decision`).
fn logged_decision(function: &LambdaFunction, id: &str) -> Option<String> {
    let logs = function.logs();
    logs.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["finding_id"] == id)
        .find_map(|l| l["decision"].as_str().map(str::to_string))
}

// ---------------------------------------------------------------- samples

fn own_dir() -> PathBuf {
    project_root().join("examples/events/securityhub")
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().to_string()
}

/// One sample event by file name from the project's own samples.
fn own_sample(name: &str) -> Value {
    let path = own_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A bare ASFF finding inside the EventBridge envelope Security Hub delivers
/// it in (`Security Hub Findings - Imported`); the finding is unchanged.
fn imported_event(findings: Vec<Value>) -> Value {
    let first = findings.first().cloned().unwrap_or(Value::Null);
    let region = first["Region"]
        .as_str()
        .or_else(|| first["Resources"][0]["Region"].as_str())
        .or_else(|| {
            first["ProductArn"]
                .as_str()
                .and_then(|a| a.split(':').nth(3))
        })
        .unwrap_or("us-east-1")
        .to_string();
    json!({
        "version": "0",
        "id": unique("sh-event"),
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": first["AwsAccountId"],
        "time": first["UpdatedAt"],
        "region": region,
        "resources": findings.iter().map(|f| f["ProductFields"]["aws/securityhub/FindingId"].as_str().or(f["Id"].as_str())).collect::<Vec<_>>(),
        "detail": {"findings": findings},
    })
}

fn is_asff(v: &Value) -> bool {
    v.get("SchemaVersion").is_some() && v.get("ProductArn").is_some()
}

/// Every sample as EventBridge delivers it, with the file it came from: the
/// project's own, then the public ones when `../shared/events` is there.
fn samples() -> Vec<(String, Value)> {
    let mut dirs = vec![own_dir()];
    dirs.extend(shared_events("securityhub"));
    let mut out = Vec::new();
    for dir in dirs {
        for (path, event) in events_in(&dir) {
            let name = file_name(&path);
            if event.get("detail-type").is_some() {
                out.push((name, event));
            } else if let Some(list) = event.get("Findings").and_then(Value::as_array) {
                out.push((name, imported_event(list.clone())));
            } else if is_asff(&event) {
                out.push((name, imported_event(vec![event])));
            } else {
                panic!("{name}: neither an EventBridge event nor an ASFF finding");
            }
        }
    }
    out
}

// ----------------------------------------------- what the samples promise

/// How the `finding_type` attribute is checked against the sample.
#[derive(Debug, Clone)]
enum TypeCheck {
    /// The control id, the CVE, the native type.
    Exact(String),
    /// Something the finding says (a generator, a Config rule, a type).
    In(String),
}

/// What a subscriber must receive for one finding, read from the sample.
#[derive(Debug, Clone)]
struct Expected {
    file: String,
    /// `source` attribute: SecurityHub, or Macie for Macie's own events.
    source: &'static str,
    /// The finding id alerts and logs carry: the ASFF `Id`, except for
    /// GuardDuty, whose own events use the short id at the end of the ARN.
    id: String,
    title: String,
    account: String,
    /// The severity as the source wrote it (`Severity.Label`, Macie's `severity.description`).
    label: String,
    severity: Severity,
    product: Option<String>,
    finding_type: TypeCheck,
    /// Why it must not alert (every reason that applies), when it must not.
    no_alert: Vec<&'static str>,
}

/// Alerts still to arrive, by the finding id they carry.
type Promised = HashMap<String, Vec<Expected>>;

impl Expected {
    fn alerts(&self) -> bool {
        self.no_alert.is_empty()
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn product_field<'a>(f: &'a Value, key: &str) -> Option<&'a str> {
    f.get("ProductFields")?
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// What one ASFF finding must produce, by the ASFF documentation and the
/// README: archived records, suppressed or resolved workflows and passed
/// checks are not active; sample findings, GuardDuty and Macie copies and
/// findings below the threshold do not alert.
fn expect_asff(file: &str, f: &Value) -> Expected {
    let id = s(f, "/Id").unwrap_or_else(|| panic!("{file}: finding without Id"));
    let label = s(f, "/Severity/Label")
        .or_else(|| s(f, "/FindingProviderFields/Severity/Label"))
        .or_else(|| product_field(f, "aws/securityhub/SeverityLabel"))
        .unwrap_or_else(|| panic!("{file}: finding {id} has no severity label"));
    let severity: Severity = label.parse().unwrap_or_else(|e| panic!("{file}: {e}"));
    let product = s(f, "/ProductName")
        .or_else(|| product_field(f, "aws/securityhub/ProductName"))
        .map(str::to_string);
    let product_arn = s(f, "/ProductArn").unwrap_or_default();
    let named = |name: &str| {
        product.as_deref().is_some_and(|p| {
            p.eq_ignore_ascii_case(name) || p.eq_ignore_ascii_case(&format!("Amazon {name}"))
        })
    };
    let guardduty = product_arn.ends_with("/aws/guardduty")
        || named("GuardDuty")
        || [s(f, "/Id"), s(f, "/GeneratorId")]
            .into_iter()
            .flatten()
            .any(|s| s.contains(":guardduty:"));
    // The direct path alerts; Security Hub's copy of a finding a direct
    // source delivers is kept (GuardDuty, Macie, Inspector, Access Analyzer, Config).
    let forwarded = guardduty
        || product_arn.ends_with("/aws/macie")
        || named("Macie")
        || product_arn.ends_with("/aws/inspector")
        || named("Inspector")
        || product_arn.ends_with("/aws/access-analyzer")
        || named("IAM Access Analyzer")
        || product_arn.ends_with("/aws/config")
        || named("Config");
    let workflow = s(f, "/Workflow/Status")
        .or_else(|| s(f, "/WorkflowState"))
        .unwrap_or_default()
        .to_ascii_uppercase();
    let inactive = s(f, "/RecordState").is_some_and(|r| r.eq_ignore_ascii_case("ARCHIVED"))
        || matches!(workflow.as_str(), "SUPPRESSED" | "RESOLVED" | "DEFERRED")
        || s(f, "/Compliance/Status").is_some_and(|c| c.eq_ignore_ascii_case("PASSED"));
    let sample = f
        .get("ProductFields")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .any(|(k, v)| k.ends_with("sample") && v.as_str() == Some("true"))
        || f.to_string().contains("GeneratedFinding");
    let no_alert = [
        (inactive, "inactive"),
        (sample, "sample"),
        (forwarded, "from_other_source"),
        (severity < THRESHOLD, "below_threshold"),
    ]
    .into_iter()
    .filter_map(|(applies, why)| applies.then_some(why))
    .collect();
    let id = if guardduty {
        id.rsplit_once("/finding/").map_or(id, |(_, short)| short)
    } else {
        id
    };
    let finding_type = s(f, "/Compliance/SecurityControlId")
        .or_else(|| s(f, "/Vulnerabilities/0/Id"))
        .map(|t| TypeCheck::Exact(t.to_string()))
        .unwrap_or_else(|| TypeCheck::In(f.to_string()));
    Expected {
        file: file.to_string(),
        source: "SecurityHub",
        id: id.to_string(),
        title: s(f, "/Title").unwrap_or_default().to_string(),
        account: s(f, "/AwsAccountId").unwrap_or_default().to_string(),
        label: label.to_string(),
        severity,
        product,
        finding_type,
        no_alert,
    }
}

/// What Macie's own `Macie Finding` event must produce.
fn expect_macie(file: &str, d: &Value) -> Expected {
    let label =
        s(d, "/severity/description").unwrap_or_else(|| panic!("{file}: no severity.description"));
    let severity: Severity = label.parse().unwrap_or_else(|e| panic!("{file}: {e}"));
    let no_alert = [
        (d["sample"] == true, "sample"),
        (d["archived"] == true, "inactive"),
        (severity < THRESHOLD, "below_threshold"),
    ]
    .into_iter()
    .filter_map(|(applies, why)| applies.then_some(why))
    .collect();
    Expected {
        file: file.to_string(),
        source: "Macie",
        id: s(d, "/id").unwrap().to_string(),
        title: s(d, "/title").unwrap_or_default().to_string(),
        account: s(d, "/accountId").unwrap_or_default().to_string(),
        label: label.to_string(),
        severity,
        product: Some("Macie".to_string()),
        finding_type: TypeCheck::Exact(s(d, "/type").unwrap().to_string()),
        no_alert,
    }
}

/// Every finding an event carries, with what it must produce.
fn expected_of(file: &str, event: &Value) -> Vec<Expected> {
    match (s(event, "/source"), s(event, "/detail-type")) {
        (Some("aws.macie"), Some("Macie Finding")) => vec![expect_macie(file, &event["detail"])],
        (Some("aws.securityhub"), Some("Security Hub Insight Results")) => Vec::new(),
        (Some("aws.securityhub"), _) => event["detail"]["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no detail.findings"))
            .iter()
            .map(|f| expect_asff(file, f))
            .collect(),
        (source, dt) => panic!("{file}: not a Security Hub or Macie event ({source:?}, {dt:?})"),
    }
}

// ------------------------------------------------------------ the checks

/// Checks one SQS message (SNS envelope) against what its sample promised,
/// and the whole JSON message structure SNS was given for it. Returns the
/// expectation it matched, removed from `expected`.
fn check_alert(
    notification: &Value,
    expected: &mut Promised,
    structures: &HashMap<String, (Value, String)>,
) -> Expected {
    // The sqs key: the finding as OCSF.
    let ocsf: Value = serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap();
    assert_eq!(ocsf["class_uid"], 2004, "{ocsf}");
    assert!(vigil::ocsf::missing_required(&ocsf).is_empty(), "{ocsf}");
    let uid = ocsf["finding_info"]["uid"].as_str().unwrap();
    let e = expected
        .get_mut(uid)
        .and_then(Vec::pop)
        .unwrap_or_else(|| panic!("unexpected alert (or one too many) for {uid}: {ocsf}"));
    let ctx = format!("{} ({})", e.file, e.id);

    // SNS message attributes, the subject.
    let attrs = &notification["MessageAttributes"];
    let attr = |name: &str| {
        attrs[name]["Value"]
            .as_str()
            .unwrap_or_else(|| panic!("{ctx}: no {name} attribute: {attrs}"))
            .to_string()
    };
    let sev = e.severity.as_str();
    assert_eq!(
        attr("severity"),
        sev,
        "{ctx}: severity is the source's {:?}",
        e.label
    );
    assert_eq!(attr("source"), e.source, "{ctx}");
    assert_eq!(attr("account"), e.account, "{ctx}");
    let finding_type = attr("finding_type");
    match &e.finding_type {
        TypeCheck::Exact(t) => assert_eq!(&finding_type, t, "{ctx}"),
        TypeCheck::In(raw) => assert!(
            !finding_type.is_empty() && raw.contains(finding_type.as_str()),
            "{ctx}: finding_type {finding_type:?} is nothing the finding says"
        ),
    }
    let subject = notification["Subject"].as_str().expect("subject");
    assert!(
        subject.starts_with(&format!("[{sev}] {}: ", e.source)),
        "{ctx}: {subject}"
    );
    assert!(subject.is_ascii() && subject.len() <= 99, "{subject:?}");
    assert!(!subject.contains('\n') && !subject.contains('\r'));

    // OCSF: the finding as the source gave it.
    assert_eq!(ocsf["finding_info"]["title"], e.title.as_str(), "{ctx}");
    assert_eq!(
        ocsf["finding_info"]["types"][0],
        finding_type.as_str(),
        "{ctx}"
    );
    assert_eq!(ocsf["severity"], e.severity.label(), "{ctx}");
    assert_eq!(
        ocsf["unmapped"]["vigil_source_severity"],
        e.label.as_str(),
        "{ctx}: the source's severity is kept"
    );
    assert_eq!(ocsf["cloud"]["account"]["uid"], e.account.as_str(), "{ctx}");
    assert_eq!(ocsf["status_id"], 1, "{ctx}: only active findings alert");
    if let Some(product) = &e.product {
        assert_eq!(
            ocsf["finding_info"]["product"]["name"],
            product.as_str(),
            "{ctx}"
        );
    }

    // The whole JSON message structure SNS was given.
    let message_id = notification["MessageId"].as_str().unwrap();
    let (structure, published_subject) = structures
        .get(message_id)
        .unwrap_or_else(|| panic!("{ctx}: SNS recorded no publish {message_id}"));
    assert_eq!(published_subject, subject, "{ctx}");
    for key in ["default", "email", "sqs", "lambda", "https"] {
        assert!(
            structure[key].is_string(),
            "{ctx}: no {key} key: {structure}"
        );
    }
    assert_eq!(structure["sqs"], notification["Message"], "{ctx}");
    assert_eq!(
        structure["lambda"], structure["sqs"],
        "{ctx}: lambda gets OCSF too"
    );

    // https (Chatbot subscribes over https): an Amazon Q Developer custom notification.
    let chat: Value = serde_json::from_str(structure["https"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{ctx}: https is not JSON: {e}"));
    assert_eq!(chat["version"], "1.0", "{ctx}");
    assert_eq!(chat["source"], "custom", "{ctx}");
    assert_eq!(chat["content"]["textType"], "client-markdown", "{ctx}");
    assert!(
        chat["content"]["title"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("[{sev}]"))),
        "{ctx}: {chat}"
    );
    assert!(chat["content"]["description"].is_string(), "{ctx}");
    assert_eq!(
        chat["metadata"]["eventType"],
        finding_type.as_str(),
        "{ctx}"
    );
    let context = &chat["metadata"]["additionalContext"];
    assert_eq!(context["account"], e.account.as_str(), "{ctx}");
    assert_eq!(context["severity"], sev, "{ctx}");
    assert_eq!(context["findingId"], e.id.as_str(), "{ctx}");

    // email: plain text for people, no raw JSON.
    let email = structure["email"].as_str().unwrap();
    assert!(!email.trim_start().starts_with('{'), "{ctx}: {email}");
    assert!(
        !email.contains("\"class_uid\"") && !email.contains("\"version\""),
        "{ctx}: {email}"
    );
    let severity_line = email
        .lines()
        .find(|l| l.starts_with("Severity:"))
        .unwrap_or_else(|| panic!("{ctx}: no severity line: {email}"));
    assert!(
        severity_line.contains(e.severity.label()) && severity_line.contains(e.label.as_str()),
        "{ctx}: {severity_line}"
    );
    if let Some(product) = &e.product {
        assert!(
            email
                .lines()
                .any(|l| l.starts_with("Source:")
                    && l.contains(&format!("{} / {product}", e.source))),
            "{ctx}: product {product:?} not in the email:\n{email}"
        );
    }
    assert!(email.contains(&e.account), "{ctx}: {email}");
    e
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn securityhub_and_macie_samples_alert_once_per_active_finding_at_the_threshold() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("sh-e2e")).await.unwrap();
    let Some(function) = start_function(&endpoint, &topic_arn, &[]) else {
        return;
    };

    // Samples share finding ids (the same finding in several test sets), so
    // each event's messages are read before the next event is sent.
    let events = samples();
    let mut arrived: Vec<(Vec<Value>, Promised)> = Vec::new();
    let mut alerts = 0usize;
    let mut skipped: HashMap<&'static str, usize> = HashMap::new();
    let mut sources = Vec::new();
    for (file, event) in &events {
        let promised = expected_of(file, event);
        let out = invoke(&function, file, event);
        let want = promised.iter().filter(|e| e.alerts()).count();
        assert_eq!(out["findings"], promised.len(), "{file}: {out}");
        assert_eq!(
            out["alerts"], want,
            "{file}: {out}\npromised: {promised:#?}"
        );
        let mut expected: Promised = HashMap::new();
        for e in promised {
            if e.alerts() {
                sources.push(e.source);
                expected.entry(e.id.clone()).or_default().push(e);
                continue;
            }
            // Not alerted, and for one of the reasons the sample gives.
            let decision = logged_decision(&function, &e.id);
            let why = e
                .no_alert
                .iter()
                .find(|why| decision.as_deref() == Some(**why))
                .unwrap_or_else(|| {
                    panic!(
                        "{file}: {} logged {decision:?}, not one of {:?}",
                        e.id, e.no_alert
                    )
                });
            *skipped.entry(why).or_default() += 1;
        }
        let messages = drain(&sdk, &queue_url, want, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(
            messages.len(),
            want,
            "{file}: one SNS message per alerting finding"
        );
        alerts += want;
        arrived.push((messages, expected));
    }
    assert!(
        sources.contains(&"SecurityHub") && sources.contains(&"Macie"),
        "{sources:?}"
    );
    eprintln!(
        "{} events, {alerts} alerts, not alerted: {skipped:?}",
        events.len()
    );

    let structures = published(&endpoint, &topic_arn).await;
    assert_eq!(structures.len(), alerts, "one publish per alerting finding");
    for (messages, mut expected) in arrived {
        for m in &messages {
            check_alert(m, &mut expected, &structures);
        }
        let left: Vec<&Expected> = expected.values().flatten().collect();
        assert!(
            left.is_empty(),
            "promised alerts that did not arrive: {left:#?}"
        );
    }
}

/// The project's own Security Hub control finding (HIGH, active, failed), the
/// base of the edited copies below.
fn control_finding() -> Value {
    own_sample("control-s3-public-access-failed.json")["detail"]["findings"][0].clone()
}

/// A copy of `f` with its own id, so alerts can be told apart.
fn with_id(f: &Value, suffix: &str) -> Value {
    let mut f = f.clone();
    f["Id"] = json!(format!("{}-{suffix}", f["Id"].as_str().unwrap()));
    f
}

#[tokio::test]
async fn inactive_and_below_threshold_findings_do_not_alert() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("sh-inactive"))
        .await
        .unwrap();
    let Some(function) = start_function(&endpoint, &topic_arn, &[]) else {
        return;
    };

    let base = control_finding();
    // (name, why it must not alert, the edit)
    type Edit = (&'static str, &'static str, fn(&mut Value));
    let edits: [Edit; 5] = [
        ("resolved", "inactive", |f| {
            f["Workflow"]["Status"] = json!("RESOLVED")
        }),
        ("suppressed", "inactive", |f| {
            f["Workflow"]["Status"] = json!("SUPPRESSED")
        }),
        ("archived", "inactive", |f| {
            f["RecordState"] = json!("ARCHIVED")
        }),
        ("passed", "inactive", |f| {
            f["Compliance"]["Status"] = json!("PASSED")
        }),
        ("low", "below_threshold", |f| {
            f["Severity"] = json!({"Label": "LOW", "Normalized": 1, "Original": "LOW"});
            f["FindingProviderFields"]["Severity"] = json!({"Label": "LOW", "Original": "LOW"});
        }),
    ];
    for (name, why, edit) in edits {
        let mut f = with_id(&base, name);
        edit(&mut f);
        let e = expect_asff(name, &f);
        assert_eq!(e.no_alert, [why], "the edited sample itself says {why}");
        let out = invoke(&function, name, &imported_event(vec![f]));
        assert_eq!(out["findings"], 1, "{name}: {out}");
        assert_eq!(out["alerts"], 0, "{name}: {out}");
        assert_eq!(
            logged_decision(&function, &e.id).as_deref(),
            Some(why),
            "{name}"
        );
    }

    // The unedited finding alerts through the same function: the edits, not
    // the function, kept the others quiet.
    let e = expect_asff("control", &base);
    assert!(e.alerts(), "{e:?}");
    let out = invoke(&function, "control", &imported_event(vec![base.clone()]));
    assert_eq!(out["alerts"], 1, "{out}");
    let messages = drain(&sdk, &queue_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1, "only the active finding alerted");
    let structures = published(&endpoint, &topic_arn).await;
    let mut expected = HashMap::from([(e.id.clone(), vec![e])]);
    check_alert(&messages[0], &mut expected, &structures);
}

#[tokio::test]
async fn every_finding_of_an_event_alerts_on_its_own() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("sh-multi")).await.unwrap();
    let Some(function) = start_function(&endpoint, &topic_arn, &[]) else {
        return;
    };

    // The project's two Security Hub findings, a second copy of the control
    // finding, and a resolved one, in one `detail.findings[]`. The Inspector
    // copy is kept without alerting: Inspector's direct rule alerts on it.
    let control = control_finding();
    let inspector = own_sample("inspector-log4j-critical.json")["detail"]["findings"][0].clone();
    let mut resolved = with_id(&control, "resolved");
    resolved["Workflow"]["Status"] = json!("RESOLVED");
    let findings = vec![
        control.clone(),
        inspector,
        with_id(&control, "second"),
        resolved,
    ];
    let mut event = own_sample("control-s3-public-access-failed.json");
    event["detail"]["findings"] = json!(findings);
    let promised = expected_of("multi", &event);
    let alerting: Vec<Expected> = promised.into_iter().filter(Expected::alerts).collect();
    assert_eq!(alerting.len(), 2);

    let out = invoke(&function, "multi", &event);
    assert_eq!(out["findings"], 4, "{out}");
    assert_eq!(out["alerts"], alerting.len(), "{out}");
    let messages = drain(&sdk, &queue_url, alerting.len(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), alerting.len(), "one message per finding");
    let structures = published(&endpoint, &topic_arn).await;
    let mut expected: Promised = HashMap::new();
    for e in alerting {
        expected.entry(e.id.clone()).or_default().push(e);
    }
    for m in &messages {
        check_alert(m, &mut expected, &structures);
    }
    assert!(expected.values().all(Vec::is_empty), "{expected:#?}");

    // The real multi-finding events, when the public samples are there.
    if let Some(dir) = shared_events("securityhub") {
        let multi: Vec<(PathBuf, Value)> = events_in(&dir)
            .into_iter()
            .filter(|(_, e)| {
                e["detail"]["findings"]
                    .as_array()
                    .is_some_and(|f| f.len() > 1)
            })
            .collect();
        assert!(
            !multi.is_empty(),
            "the public samples have multi-finding events"
        );
        let mut total = 0;
        for (path, event) in &multi {
            let file = file_name(path);
            let promised = expected_of(&file, event);
            let out = invoke(&function, &file, event);
            assert_eq!(out["findings"], promised.len(), "{file}: {out}");
            let alerting: Vec<Expected> = promised.into_iter().filter(Expected::alerts).collect();
            assert_eq!(out["alerts"], alerting.len(), "{file}: {out}");
            total += alerting.len();
            for e in alerting {
                expected.entry(e.id.clone()).or_default().push(e);
            }
        }
        let more = drain(&sdk, &queue_url, total, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(more.len(), total);
        let structures = published(&endpoint, &topic_arn).await;
        for m in &more {
            check_alert(m, &mut expected, &structures);
        }
        assert!(expected.values().all(Vec::is_empty), "{expected:#?}");
    }
}

/// A GuardDuty finding as Security Hub forwards it: the real one from the
/// GuardDuty user guide when the public samples are there, else a copy of the
/// project's control finding made GuardDuty's (product, generator, type).
fn guardduty_via_securityhub() -> Value {
    if let Some(dir) = shared_events("securityhub") {
        let path = dir.join("awsdocs-gdguide__securityhub-integration__block0.json");
        if path.is_file() {
            return serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        }
    }
    let mut f = control_finding();
    let account = f["AwsAccountId"].as_str().unwrap().to_string();
    let region = f["Region"].as_str().unwrap().to_string();
    let detector =
        format!("arn:aws:guardduty:{region}:{account}:detector/d4b040365221be2b54a6264dc9a4bc64");
    f["Id"] = json!(format!(
        "{detector}/finding/46ba0ac2845071e23ccdeb2ae03bfdea"
    ));
    f["GeneratorId"] = json!(detector);
    f["ProductArn"] = json!(format!(
        "arn:aws:securityhub:{region}::product/aws/guardduty"
    ));
    f["ProductName"] = json!("GuardDuty");
    f["CompanyName"] = json!("Amazon");
    f["ProductFields"]["aws/securityhub/ProductName"] = json!("GuardDuty");
    f["Types"] = json!(["TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"]);
    f["FindingProviderFields"]["Types"] = f["Types"].clone();
    if let Some(o) = f.as_object_mut() {
        o.remove("Compliance");
    }
    f
}

/// The same finding made Macie's, as Security Hub forwards Macie findings.
fn macie_via_securityhub() -> Value {
    let mut f = with_id(&control_finding(), "macie");
    let region = f["Region"].as_str().unwrap().to_string();
    f["ProductArn"] = json!(format!("arn:aws:securityhub:{region}::product/aws/macie"));
    f["ProductName"] = json!("Macie");
    f["CompanyName"] = json!("Amazon");
    f["ProductFields"]["aws/securityhub/ProductName"] = json!("Macie");
    f["Types"] = json!(["Sensitive Data Identifications/PII/SensitiveData:S3Object-Personal"]);
    if let Some(o) = f.as_object_mut() {
        o.remove("Compliance");
    }
    f
}

/// GuardDuty's type as its own events name it, from Security Hub's
/// (`.../UnauthorizedAccess:EC2-SSHBruteForce` → `UnauthorizedAccess:EC2/SSHBruteForce`).
fn guardduty_type(f: &Value) -> String {
    let t = f["Types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|t| t.contains(':'))
        .unwrap();
    let native = t.rsplit('/').next().unwrap();
    let (purpose, rest) = native.split_once(':').unwrap();
    format!("{purpose}:{}", rest.replacen('-', "/", 1))
}

#[tokio::test]
async fn guardduty_and_macie_copies_and_samples_do_not_alert_twice() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let sdk = sdk().await;

    let gd = guardduty_via_securityhub();
    let macie = macie_via_securityhub();
    let gd_expected = expect_asff("guardduty-via-securityhub", &gd);
    assert_eq!(gd_expected.no_alert, ["from_other_source"]);
    assert!(
        gd_expected.severity >= THRESHOLD,
        "at the threshold: only the source keeps it quiet"
    );
    let gd_id = gd["Id"].as_str().unwrap();
    // The id GuardDuty's own events use (the copy shares their fingerprint).
    let gd_short = gd_id.rsplit('/').next().unwrap().to_string();
    // GuardDuty's sample markers, as a generated sample finding carries them.
    let mut gd_sample = gd.clone();
    gd_sample["Id"] = json!(format!("{gd_id}0"));
    gd_sample["ProductFields"]["aws/guardduty/service/additionalInfo/sample"] = json!("true");
    // Without the flag: the placeholders GuardDuty writes into generated samples.
    let mut gd_generated = gd.clone();
    gd_generated["Id"] = json!(format!("{gd_id}1"));
    let remote =
        "aws/guardduty/service/action/networkConnectionAction/remoteIpDetails/organization";
    for (key, value) in [
        ("asnOrg", "GeneratedFindingASNOrg"),
        ("org", "GeneratedFindingORG"),
        ("isp", "GeneratedFindingISP"),
    ] {
        gd_generated["ProductFields"][format!("{remote}/{key}")] = json!(value);
    }
    // Macie's own sample event.
    let mut macie_sample = own_sample("macie-personal-data-high.json");
    macie_sample["detail"]["sample"] = json!(true);
    macie_sample["detail"]["id"] = json!(format!(
        "{}0",
        macie_sample["detail"]["id"].as_str().unwrap()
    ));
    assert_eq!(
        expect_macie("macie-sample", &macie_sample["detail"]).no_alert,
        ["sample"]
    );

    // Defaults: GuardDuty and Macie arrive directly, their copies do not alert.
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("sh-skip")).await.unwrap();
    let Some(function) = start_function(&endpoint, &topic_arn, &[]) else {
        return;
    };
    for (name, f) in [("guardduty", &gd), ("macie", &macie)] {
        let out = invoke(&function, name, &imported_event(vec![f.clone()]));
        assert_eq!(out["findings"], 1, "{name}: {out}");
        assert_eq!(out["alerts"], 0, "{name}: {out}");
    }
    assert_eq!(
        logged_decision(&function, &gd_short).as_deref(),
        Some("from_other_source")
    );
    assert_eq!(
        logged_decision(&function, macie["Id"].as_str().unwrap()).as_deref(),
        Some("from_other_source")
    );
    let out = invoke(&function, "macie-sample", &macie_sample);
    assert_eq!(
        (out["findings"].as_u64(), out["alerts"].as_u64()),
        (Some(1), Some(0)),
        "{out}"
    );
    assert_eq!(
        logged_decision(&function, macie_sample["detail"]["id"].as_str().unwrap()).as_deref(),
        Some("sample")
    );
    let messages = drain(&sdk, &queue_url, 0, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(messages.is_empty(), "{messages:#?}");
    drop(function);

    // Without the GuardDuty function: GuardDuty's copy alerts, its samples
    // still do not, and Macie's copy (its setting unchanged) still does not.
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("sh-noskip")).await.unwrap();
    let Some(function) = start_function(
        &endpoint,
        &topic_arn,
        &[("VIGIL_SECURITYHUB_SKIP_GUARDDUTY", "false")],
    ) else {
        return;
    };
    for (name, f) in [
        ("guardduty-sample", &gd_sample),
        ("guardduty-generated", &gd_generated),
    ] {
        let out = invoke(&function, name, &imported_event(vec![f.clone()]));
        assert_eq!(out["alerts"], 0, "{name}: {out}");
        let short = f["Id"].as_str().unwrap().rsplit('/').next().unwrap();
        assert_eq!(
            logged_decision(&function, short).as_deref(),
            Some("sample"),
            "{name}"
        );
    }
    let out = invoke(&function, "macie", &imported_event(vec![macie.clone()]));
    assert_eq!(out["alerts"], 0, "{out}");
    let out = invoke(&function, "guardduty", &imported_event(vec![gd.clone()]));
    assert_eq!(out["alerts"], 1, "{out}");

    let messages = drain(&sdk, &queue_url, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let m = &messages[0];
    let attrs = &m["MessageAttributes"];
    assert_eq!(attrs["source"]["Value"], "SecurityHub");
    assert_eq!(attrs["finding_type"]["Value"], guardduty_type(&gd).as_str());
    assert_eq!(attrs["severity"]["Value"], gd_expected.severity.as_str());
    assert_eq!(attrs["account"]["Value"], gd_expected.account.as_str());
    let ocsf: Value = serde_json::from_str(m["Message"].as_str().unwrap()).unwrap();
    assert_eq!(ocsf["finding_info"]["uid"], gd_short.as_str());
    assert_eq!(ocsf["finding_info"]["product"]["name"], "GuardDuty");
    assert_eq!(
        ocsf["unmapped"]["vigil_source_severity"],
        gd_expected.label.as_str()
    );
}

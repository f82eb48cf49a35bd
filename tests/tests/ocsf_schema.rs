//! The OCSF body of every alert validates against the official OCSF schema of
//! the version it declares, checked by `scripts/validate_ocsf.py` (the OCSF
//! schema export through `ocsf-json-schema`, strictly, and `pydantic-ocsf`'s
//! model). Every sample event the project has (`examples/events/`, and the
//! public samples in `../shared/events/` when present) runs through the
//! pipeline with the bundled rules into a memory sink; every finding it
//! produces is rendered as the SNS message's `sqs` body. Then a minimal
//! finding, a hostile one, and one per odd corner of the mapping.
//!
//! The validator runs in the project's `.venv` (`scripts/lib.sh`). Without it
//! the tests say so and pass, except under CI (`CI=true`) or
//! `scripts/test.sh` (`VIGIL_REQUIRE_OCSF=1`), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use vigil::detect::RuleSet;
use vigil::model::{
    Actor, ActorType, FindingStatus, IpClass, Network, Resource, RuleRef, Tactic, Technique,
    TraceContext, TraceIds,
};
use vigil::render::{self, Alert};
use vigil::route::Route;
use vigil::sinks::MemorySink;
use vigil::{Config, Finding, Pipeline, Severity, Source};
use vigil_e2e::{events_in, project_root, shared_events, unique};

/// The venv's python, when it can import the validator's packages.
fn validator_python() -> Option<PathBuf> {
    let python = project_root().join(".venv/bin/python");
    let check = Command::new(&python)
        .args(["-c", "import jsonschema, ocsf, ocsf_json_schema"])
        .output();
    let reason = match check {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
        Err(e) => format!("{}: {e}", python.display()),
    };
    let required = std::env::var("CI").as_deref() == Ok("true")
        || std::env::var("VIGIL_REQUIRE_OCSF").as_deref() == Ok("1");
    assert!(
        !required,
        "the OCSF validator is not installed (run `source scripts/lib.sh && ensure_venv`): {reason}"
    );
    eprintln!("skipping: the OCSF validator is not installed in .venv ({reason})");
    None
}

/// One document to validate, named for the failure message.
struct Doc {
    name: String,
    body: Value,
}

/// The validator's report: its exit status and what it printed.
struct Report {
    ok: bool,
    output: String,
}

/// Writes every document to its own file and runs the validator over them.
fn validate(python: &Path, docs: &[Doc]) -> Report {
    let dir = std::env::temp_dir().join(unique("vigil-ocsf"));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, doc) in docs.iter().enumerate() {
        let file = dir.join(format!("{i:04}-{}.json", file_safe(&doc.name)));
        std::fs::write(file, doc.body.to_string()).unwrap();
    }
    let out = Command::new(python)
        .arg(project_root().join("scripts/validate_ocsf.py"))
        .arg(&dir)
        .output()
        .expect("run scripts/validate_ocsf.py");
    std::fs::remove_dir_all(&dir).ok();
    Report {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

fn assert_valid(python: &Path, docs: &[Doc]) {
    let report = validate(python, docs);
    assert!(report.ok, "invalid OCSF:\n{}", report.output);
}

/// The `sqs` body of the SNS message for `alert`; the `lambda` body is the same.
fn ocsf_body(alert: &Alert<'_>) -> Value {
    let msg: Value = serde_json::from_str(&render::sns_message(alert)).unwrap();
    assert_eq!(msg["sqs"], msg["lambda"]);
    serde_json::from_str(msg["sqs"].as_str().expect("an sqs key")).unwrap()
}

fn route() -> Route {
    Route {
        name: "payments".into(),
        slack_channel: Some("#payments-security".into()),
        pagerduty_service: Some("payments".into()),
    }
}

fn trace_ids() -> TraceIds {
    TraceIds {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        xray_trace_id: "1-4bf92f35-77b34da6a3ce929d0e0e4736".into(),
    }
}

/// Alerts on everything, with the bundled rules, a trace and a trace link, so
/// every part of the mapping a sample can reach is rendered.
fn pipeline(sink: MemorySink) -> Pipeline {
    let config = Config {
        alert_samples: true,
        alert_inactive: true,
        min_severity: Severity::Informational,
        trace_url_template: Some("https://ui.honeycomb.io/trace?trace_id={trace_id}".into()),
        ..Config::default()
    };
    let trace = Arc::new(|| {
        Some(TraceContext {
            ids: trace_ids(),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            aws_trace_header: "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736".into(),
        })
    });
    Pipeline::builder(&config)
        .detector(Arc::new(RuleSet::load(None).expect("bundled rules")))
        .trace_context(trace)
        .sink(Box::new(sink))
        .build()
}

/// Every sample folder: the project's own, then the public ones beside it.
fn sample_dirs() -> Vec<PathBuf> {
    let own = project_root().join("examples/events");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&own)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let public = [
        "cloudtrail",
        "cloudtrail-wrapped",
        "cloudtrail-logs",
        "guardduty",
        "guardduty-wrapped",
        "guardduty-raw",
        "securityhub",
        "other-eventbridge",
    ];
    let found: Vec<PathBuf> = public.iter().filter_map(|s| shared_events(s)).collect();
    if found.is_empty() {
        eprintln!("note: ../shared/events not present: only the project's own samples");
    }
    dirs.extend(found);
    dirs
}

/// The OCSF body of every finding the samples produce, alerted or not, and
/// how many of the samples were events the pipeline took.
async fn sample_documents() -> (Vec<Doc>, usize) {
    let sink = MemorySink::new();
    let pipeline = pipeline(sink.clone());
    let route = route();
    let mut docs = Vec::new();
    let mut events = 0;
    for dir in sample_dirs() {
        for (file, event) in events_in(&dir) {
            // Malformed public samples are the sources' tests' business.
            let Ok(report) = pipeline.process_event(&event).await else {
                continue;
            };
            events += 1;
            for (n, p) in report.findings.iter().chain(&report.summaries).enumerate() {
                let mut alert = Alert::new(&p.finding);
                alert.route = Some(&route);
                let name = format!("{}-{}-{n}", dir_name(&dir), file_name(&file));
                docs.push(Doc {
                    name,
                    body: ocsf_body(&alert),
                });
            }
        }
    }
    // What the sink was handed renders the same way.
    for (n, sent) in sink.sent().iter().enumerate().take(50) {
        let mut alert = Alert::new(&sent.finding);
        alert.suppressed_repeats = sent.suppressed_repeats;
        alert.route = sent.route.as_ref();
        docs.push(Doc {
            name: format!("sent-{n}"),
            body: ocsf_body(&alert),
        });
    }
    (docs, events)
}

fn dir_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn file_name(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

#[tokio::test]
async fn every_sample_alert_is_valid_ocsf() {
    let Some(python) = validator_python() else {
        return;
    };
    let (docs, events) = sample_documents().await;
    let own = events_in(&project_root().join("examples/events")).len();
    assert!(events >= own, "{events} events taken, {own} own samples");
    assert!(docs.len() >= own, "only {} findings", docs.len());
    for doc in &docs {
        assert_eq!(doc.body["metadata"]["version"], vigil::ocsf::OCSF_VERSION);
    }
    eprintln!(
        "validating {} OCSF bodies from {events} sample events",
        docs.len()
    );
    assert_valid(&python, &docs);
}

fn at(y: i32, mo: u32, d: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, 12, 0, 0).unwrap()
}

/// Mentions, markup, escapes, NUL, bidi overrides, non-ASCII, and 100k characters.
fn evil(tag: &str) -> String {
    format!(
        "{tag} <!channel> <@U1> <https://evil.example|click> *b* `c` & \u{1b}[31mred \0nul \
         \u{202e}rtl \u{200b}zw \u{2028}ls élan 日本語 😀 \"q\" \\ {}",
        "x".repeat(100_000)
    )
}

/// Hostile text in every field, and values no OCSF type takes as they are: an
/// address that is no IP, an ASN that is no number, a country that is no code.
fn hostile() -> Finding {
    let mut f = Finding::new(Source::CloudTrail, evil("id"), evil("type"));
    f.product = evil("product");
    f.rule = Some(RuleRef::new(evil("rule"), evil("rule title")));
    f.also_matched = vec![RuleRef::new(evil("also"), evil("also title"))];
    f.title = evil("title");
    f.description = format!("{}\n{}", evil("desc"), evil("line2"));
    f.severity = Severity::Critical;
    f.source_severity = Some(evil("score"));
    f.tactics = Tactic::ALL.to_vec();
    f.techniques = vec![
        Technique {
            id: evil("T"),
            name: Some(evil("technique")),
        },
        Technique {
            id: "T1562.008".into(),
            name: None,
        },
    ];
    f.account_id = evil("account");
    f.account_name = Some(evil("account name"));
    f.region = evil("region");
    f.time = at(2026, 11, 26);
    f.first_seen = Some(at(2026, 11, 1));
    f.last_seen = Some(at(2026, 11, 26));
    f.count = u64::from(u32::MAX) + 7;
    f.resources = (0..10)
        .map(|i| {
            let mut r = Resource::new(evil("rtype"), evil(&format!("res{i}")));
            r.region = Some(evil("rregion"));
            r.tags.insert(evil("tag key"), evil("tag value"));
            r.tags.insert("empty".into(), String::new());
            r
        })
        .chain([Resource::new("AwsS3Bucket", "")])
        .collect();
    f.actor = Some(Actor {
        actor_type: ActorType::AssumedRole,
        arn: Some(evil("arn")),
        user_name: Some(evil("user")),
        principal_id: Some(evil("principal")),
        account_id: Some(evil("actor account")),
        session_issuer: Some(evil("issuer")),
        access_key_id: Some(evil("key")),
        mfa_used: Some(true),
        source_ip: Some(evil("ip")),
        user_agent: Some(evil("ua")),
        invoked_by: Some(evil("invoked by")),
    });
    f.network = Network {
        remote_ip: Some(evil("ip")),
        remote_ip_class: IpClass::Unknown,
        remote_port: Some(65535),
        local_port: Some(0),
        protocol: Some(evil("proto")),
        direction: Some(evil("dir")),
        country: Some(evil("country")),
        city: Some(evil("city")),
        asn: Some(evil("asn")),
        organization: Some(evil("org")),
        domain: Some(evil("domain")),
    };
    for i in 0..5 {
        f.evidence.insert(format!("{i}{}", evil("k")), evil("v"));
    }
    for i in 0..2000 {
        f.evidence.insert(format!("k{i}"), "v".repeat(200));
    }
    f.remediation = Some(evil("fix"));
    f.links.console = Some(format!("https://evil.example/<x>{}", evil("c")));
    f.links.remediation = Some(evil("remediation link"));
    f.links.trace = Some("javascript:alert('evil')".into());
    f.status = FindingStatus::Suppressed;
    f.sample = true;
    f.event_id = Some(evil("event"));
    f.fingerprint = evil("fp");
    f.trace = Some(TraceIds {
        trace_id: evil("trace"),
        xray_trace_id: evil("xray"),
    });
    f
}

/// One finding per odd corner: a link without a remediation text, an actor
/// known only by its key, one known only by its user agent, an AWS service as
/// the remote side, a country code, ASNs in both forms, IPv6, each status.
fn corner_cases() -> Vec<(String, Finding)> {
    let base = || {
        let mut f = Finding::new(
            Source::GuardDuty,
            "f-1",
            "Recon:EC2/PortProbeUnprotectedPort",
        );
        f.account_id = "111122223333".into();
        f.region = "us-east-1".into();
        f
    };
    let mut out = Vec::new();
    let mut f = base();
    f.links.remediation = Some("https://docs.aws.amazon.com/guardduty/".into());
    out.push(("remediation-link-only".into(), f));
    let mut f = base();
    f.actor = Some(Actor {
        access_key_id: Some("AKIAEXAMPLE".into()),
        ..Actor::default()
    });
    out.push(("actor-key-only".into(), f));
    let mut f = base();
    f.actor = Some(Actor {
        user_agent: Some("aws-cli/2.15".into()),
        ..Actor::default()
    });
    out.push(("actor-user-agent-only".into(), f));
    let mut f = base();
    f.actor = Some(Actor {
        actor_type: ActorType::Root,
        ..Actor::default()
    });
    f.network = Network {
        remote_ip: Some("ec2.amazonaws.com".into()),
        remote_ip_class: IpClass::AwsService,
        ..Network::default()
    };
    out.push(("aws-service-caller".into(), f));
    for (name, ip, country, asn) in [
        ("ipv4-country-code", "198.51.100.7", "DE", "AS64500"),
        ("ipv6-country-name", "2001:db8::1", "Germany", "64500"),
        ("port-only", "", "", ""),
    ] {
        let mut f = base();
        f.network = Network {
            remote_ip: Some(ip.into()).filter(|s: &String| !s.is_empty()),
            remote_port: Some(22),
            country: Some(country.into()).filter(|s: &String| !s.is_empty()),
            asn: Some(asn.into()).filter(|s: &String| !s.is_empty()),
            ..Network::default()
        };
        out.push((name.into(), f));
    }
    for status in [
        FindingStatus::Archived,
        FindingStatus::Resolved,
        FindingStatus::Suppressed,
    ] {
        let mut f = base();
        f.status = status;
        f.count = 3;
        out.push((format!("{status:?}"), f));
    }
    out
}

#[test]
fn minimal_hostile_and_odd_findings_are_valid_ocsf() {
    let Some(python) = validator_python() else {
        return;
    };
    let minimal = Finding::new(Source::GuardDuty, "", "");
    let hostile = hostile();
    let route = Route {
        name: evil("route"),
        slack_channel: Some(evil("channel")),
        pagerduty_service: None,
    };
    let mut docs = vec![
        Doc {
            name: "minimal".into(),
            body: vigil::ocsf::to_ocsf(&minimal),
        },
        Doc {
            name: "minimal-sns".into(),
            body: ocsf_body(&Alert::new(&minimal)),
        },
        // Whole, then as SNS carries it: cut to fit, evidence shed.
        Doc {
            name: "hostile".into(),
            body: vigil::ocsf::to_ocsf(&hostile),
        },
    ];
    let mut alert = Alert::new(&hostile);
    alert.route = Some(&route);
    alert.suppressed_repeats = 41;
    let cut = ocsf_body(&alert);
    assert_eq!(
        cut["metadata"]["is_truncated"], true,
        "the hostile alert is cut to fit"
    );
    docs.push(Doc {
        name: "hostile-sns".into(),
        body: cut,
    });
    for (name, f) in corner_cases() {
        docs.push(Doc {
            name,
            body: vigil::ocsf::to_ocsf(&f),
        });
    }
    assert_valid(&python, &docs);
}

/// The validator itself fails on what the schema forbids, naming the
/// attribute: each of the findings about the old body, one per document.
#[test]
fn the_validator_rejects_what_the_schema_does_not_allow() {
    let Some(python) = validator_python() else {
        return;
    };
    let mut f = Finding::new(
        Source::GuardDuty,
        "f-1",
        "Recon:EC2/PortProbeUnprotectedPort",
    );
    f.account_id = "111122223333".into();
    let good = vigil::ocsf::to_ocsf(&f);
    let mutate = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        change(&mut body);
        Doc {
            name: name.into(),
            body,
        }
    };
    let cases: Vec<(Doc, &str)> = vec![
        (
            mutate("remediation-without-desc", &|v| {
                v["remediation"] = serde_json::json!({"references": ["https://example.com"]});
            }),
            "remediation: 'desc' is a required property",
        ),
        (
            mutate("top-level-src-endpoint", &|v| {
                v["src_endpoint"] = serde_json::json!({"ip": "198.51.100.7"});
            }),
            "src_endpoint: not an attribute of Detection Finding",
        ),
        (
            mutate("undeclared-cloud-profile", &|v| {
                v["metadata"].as_object_mut().unwrap().remove("profiles");
            }),
            "cloud: belongs to the `cloud` profile",
        ),
        (
            mutate("deprecated-invoked-by", &|v| {
                v["evidences"] =
                    serde_json::json!([{"actor": {"invoked_by": "ec2.amazonaws.com"}}]);
            }),
            "evidences[0].actor.invoked_by: deprecated since 1.2.0",
        ),
        (
            mutate("severity-label-disagrees", &|v| {
                v["severity"] = "Low".into();
            }),
            "Inconsistent severity_id",
        ),
        (
            mutate("older-version-without-original-event-uid", &|v| {
                v["metadata"]["version"] = "1.3.0".into();
                v["metadata"]["original_event_uid"] = "evt-1".into();
            }),
            "metadata.original_event_uid: not an attribute of Metadata in OCSF 1.3.0",
        ),
    ];
    for (doc, expected) in cases {
        let report = validate(&python, std::slice::from_ref(&doc));
        assert!(!report.ok, "{} passed:\n{}", doc.name, report.output);
        assert!(
            report.output.contains(expected),
            "{}: expected {expected:?} in:\n{}",
            doc.name,
            report.output
        );
    }
    assert!(validate(&python, &[mutate("unchanged", &|_| {})]).ok);
}

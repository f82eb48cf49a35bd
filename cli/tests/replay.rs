//! `vigil replay` as scripts and CI jobs run it: the real binary over the
//! project's samples (and the real public samples beside the project when
//! present). JSON lines against the schema in replay-line.schema.json, the
//! OCSF lines against what SNS delivers to an SQS subscriber (moto), the
//! exit codes, the user's own rules, and the HTML report's data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use vigil_e2e::{drain, moto_endpoint, project_root, sdk, shared_events, topic_with_queue, unique};

/// The `vigil` binary with no VIGIL_* setting from the caller's environment,
/// so each test says what it configures.
fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(project_root());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("vigil runs")
}

fn samples() -> PathBuf {
    project_root().join("examples").join("events")
}

/// A fresh folder under cargo's temporary directory for integration tests.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The summary's counts, read from its first lines (what people read).
#[derive(Debug, PartialEq, Default)]
struct Counts {
    events: u64,
    files: u64,
    findings: u64,
    alerts: u64,
    errors: u64,
    storm_summaries: u64,
    by_severity: Vec<(String, u64)>,
    by_outcome: Vec<(String, u64)>,
}

fn number_before(text: &str, word: &str) -> u64 {
    let at = text
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in {text:?}"));
    let digits: String = text[..at]
        .trim_end()
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

fn pairs(line: Option<&str>) -> Vec<(String, u64)> {
    line.map(|l| {
        l.split_whitespace()
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect()
    })
    .unwrap_or_default()
}

fn summary_counts(text: &str) -> Counts {
    let head = text
        .lines()
        .find(|l| l.starts_with("Replayed "))
        .unwrap_or_else(|| panic!("no summary in {text:?}"));
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .map(|l| &l[prefix.len()..])
    };
    Counts {
        events: number_before(head, " events from"),
        files: number_before(head, " files:"),
        findings: number_before(head, " findings,"),
        alerts: number_before(head, " alerts,"),
        errors: number_before(head, " errors"),
        storm_summaries: line("Storm summaries: ").map_or(0, |l| number_before(l, " (each")),
        by_severity: pairs(line("By severity:")),
        by_outcome: pairs(line("By outcome:")),
    }
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay-line.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema is valid")
}

#[test]
fn every_json_line_follows_the_schema_and_the_lines_add_up_to_the_summary() {
    let mut inputs = vec![samples()];
    // The real public samples hold repeats, storms, samples and inactive findings.
    inputs.extend(shared_events("."));
    let out = run(vigil().args(["replay", "--output", "json"]).args(&inputs));
    let lines = json_lines(&out.stdout);
    let counts = summary_counts(&String::from_utf8_lossy(&out.stderr));
    assert!(!lines.is_empty());
    let validator = schema();
    for line in &lines {
        let problems: Vec<String> = validator
            .iter_errors(line)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(problems.is_empty(), "{problems:?}\n{line}");
    }
    let findings: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "finding").collect();
    let storms = lines
        .iter()
        .filter(|l| l["kind"] == "storm_summary" && l["decision"] == "alerted");
    assert_eq!(findings.len() as u64, counts.findings);
    assert_eq!(storms.count() as u64, counts.storm_summaries);
    let alerted = findings
        .iter()
        .filter(|l| l["decision"] == "alerted")
        .count();
    assert_eq!(alerted as u64, counts.alerts);
    for (severity, n) in &counts.by_severity {
        assert_eq!(
            findings
                .iter()
                .filter(|l| l["severity"] == severity.as_str())
                .count() as u64,
            *n,
            "{severity}"
        );
    }
    for (decision, n) in &counts.by_outcome {
        assert_eq!(
            findings
                .iter()
                .filter(|l| l["decision"] == decision.as_str())
                .count() as u64,
            *n,
            "{decision}"
        );
    }
    // Trace ids lead from a line to its spans; with no OTLP endpoint no span
    // is recorded (a replay pays for none), so a line names no trace.
    assert!(findings.iter().all(|l| l["trace_id"].is_null()));
}

#[test]
fn the_schema_refuses_what_the_lines_must_not_be() {
    let out = run(vigil().args(["replay", "--output", "json"]).arg(samples()));
    let line = json_lines(&out.stdout).remove(0);
    let validator = schema();
    assert!(validator.is_valid(&line));
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut l = line.clone();
        f(&mut l);
        validator.is_valid(&l)
    };
    assert!(!broken(&|l| l["severity"] = "SEVERE".into()));
    assert!(!broken(&|l| l["decision"] = "dropped".into()));
    assert!(!broken(&|l| l["time"] = "yesterday".into()));
    assert!(!broken(&|l| l["surprise"] = 1.into()));
    assert!(!broken(&|l| {
        l.as_object_mut().unwrap().remove("fingerprint");
    }));
    assert!(
        !broken(&|l| l["decision"] = "suppressed".into()),
        "a repeat needs its detail"
    );
}

#[test]
fn machine_output_keeps_stdout_for_the_lines_and_text_keeps_the_summary() {
    let out = run(vigil().args(["replay", "--output", "json"]).arg(samples()));
    assert!(out.status.success());
    // One event per sample file (examples/events holds one event a file).
    let events = vigil_e2e::events_in(&samples()).len();
    assert!(events >= 27, "{events} samples");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("Replayed {events} events")));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Replayed"));
    let out = run(vigil().args(["replay", "--output", "ocsf"]).arg(samples()));
    let ocsf = json_lines(&out.stdout);
    assert_eq!(
        ocsf.len() as u64,
        summary_counts(&String::from_utf8_lossy(&out.stderr)).alerts
    );
    assert!(ocsf.iter().all(|o| o["class_uid"] == 2004));
    let out = run(vigil().args(["replay", "--quiet"]).arg(samples()));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("Replayed {events} events")));
    let out = run(vigil()
        .args(["replay", "--quiet", "--output", "json"])
        .arg(samples()));
    assert!(out.stdout.is_empty(), "--quiet: the summary only");
}

#[test]
fn exit_codes_say_how_the_replay_went() {
    let code = |cmd: &mut Command| run(cmd).status.code().unwrap();
    let dir = scratch("exit");
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{ not json").unwrap();
    assert_eq!(code(vigil().args(["replay", "-q"]).arg(samples())), 0);
    assert_eq!(code(vigil().args(["replay", "-q"]).arg(&broken)), 1);
    assert_eq!(
        code(
            vigil()
                .args(["replay", "-q", "--fail-on", "critical"])
                .arg(samples())
        ),
        3
    );
    assert_eq!(
        code(
            vigil()
                .args(["replay", "-q", "--fail-on", "critical"])
                .arg(samples())
                .arg(&broken)
        ),
        1
    );
    // The samples' one LOW finding is below the default threshold; it still counts.
    let low_only = samples().join("guardduty/ec2-port-probe-low.json");
    assert_eq!(
        code(
            vigil()
                .args(["replay", "-q", "--fail-on", "low"])
                .arg(&low_only)
        ),
        3
    );
    assert_eq!(
        code(
            vigil()
                .args(["replay", "-q", "--fail-on", "medium"])
                .arg(&low_only)
        ),
        0
    );
    assert_eq!(
        code(vigil().args(["replay", "--output", "xml"]).arg(samples())),
        2
    );
    assert_eq!(
        code(
            vigil()
                .args(["replay", "--fail-on", "urgent"])
                .arg(samples())
        ),
        2
    );
    assert_eq!(
        code(
            vigil()
                .args(["replay", "--rules-dir"])
                .arg(dir.join("missing"))
                .arg(samples())
        ),
        2
    );
    let bad_rules = dir.join("rules");
    std::fs::create_dir_all(&bad_rules).unwrap();
    std::fs::write(bad_rules.join("bad.yml"), "title: no detection\nid: 1\n").unwrap();
    assert_eq!(
        code(
            vigil()
                .args(["replay", "--rules-dir"])
                .arg(&bad_rules)
                .arg(samples())
        ),
        2
    );
    let out = run(vigil()
        .args(["replay", "--report"])
        .arg(dir.join("missing/report.html"))
        .arg(samples()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "a bad report path fails before the replay"
    );
}

const OWN_RULE: &str = r#"title: Our trail must never stop
id: 3d7f2c1e-0000-4000-8000-00000000a001
status: stable
description: Our own rule, tested against captured events.
author: a detection engineer
tags:
    - attack.defense_evasion
    - attack.t1562.008
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: cloudtrail.amazonaws.com
        eventName: StopLogging
    condition: selection
level: critical
"#;

#[test]
fn own_rules_run_beside_or_instead_of_the_bundled_ones() {
    let dir = scratch("rules");
    std::fs::write(dir.join("trail.yml"), OWN_RULE).unwrap();
    let cloudtrail = samples().join("cloudtrail");
    let rule_ids = |extra: &[&str]| -> Vec<String> {
        let out = run(vigil()
            .args(["replay", "--output", "json", "--rules-dir"])
            .arg(&dir)
            .args(extra)
            .arg(&cloudtrail));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out.stdout)
            .iter()
            .map(|l| l["rule"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mine = "3d7f2c1e-0000-4000-8000-00000000a001".to_string();
    let alone = rule_ids(&["--no-bundled"]);
    assert_eq!(alone, vec![mine.clone()]);
    let beside = rule_ids(&[]);
    assert!(beside.contains(&mine) && beside.len() > 1, "{beside:?}");
    let out = run(vigil()
        .args([
            "replay",
            "-q",
            "--no-bundled",
            "--fail-on",
            "critical",
            "--rules-dir",
        ])
        .arg(&dir)
        .arg(&cloudtrail));
    assert_eq!(
        out.status.code(),
        Some(3),
        "CI fails on the own rule's level"
    );
}

#[tokio::test]
async fn ocsf_lines_are_what_an_sqs_subscriber_of_the_topic_receives() {
    if moto_endpoint().is_none() {
        return;
    }
    let sdk = sdk().await;
    let (topic_arn, queue_url) = topic_with_queue(&sdk, &unique("replay-ocsf"))
        .await
        .unwrap();
    let out = run(vigil()
        .args(["replay", "--output", "ocsf", "--sns-topic-arn", &topic_arn])
        .arg(samples()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines.len() as u64,
        summary_counts(&String::from_utf8_lossy(&out.stderr)).alerts
    );
    let messages = drain(&sdk, &queue_url, lines.len(), Duration::from_secs(20))
        .await
        .unwrap();
    let mut delivered: Vec<String> = messages
        .iter()
        .map(|envelope| {
            envelope["Message"]
                .as_str()
                .expect("the SNS envelope's Message")
                .to_string()
        })
        .collect();
    lines.sort();
    delivered.sort();
    assert_eq!(
        lines, delivered,
        "each OCSF line is the sqs body SNS delivered, byte for byte"
    );
}

/// The page's JSON data block, parsed back.
fn report_data(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"vigil-data\">";
    let start = page.find(open).expect("the data block") + open.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

fn data_count(page: &str, key: &str) -> u64 {
    let marker = format!("data-count=\"{key}\">");
    let at = page.find(&marker).unwrap_or_else(|| panic!("no {marker}")) + marker.len();
    page[at..].split('<').next().unwrap().parse().unwrap()
}

#[test]
fn the_report_counts_what_the_summary_counts() {
    let dir = scratch("report");
    let report = dir.join("report.html");
    let mut inputs = vec![samples()];
    inputs.extend(shared_events("."));
    let out = run(vigil()
        .args(["replay", "-q", "--report"])
        .arg(&report)
        .args(&inputs));
    let counts = summary_counts(&String::from_utf8_lossy(&out.stdout));
    let page = std::fs::read_to_string(&report).unwrap();
    assert_eq!(data_count(&page, "events"), counts.events);
    assert_eq!(data_count(&page, "files"), counts.files);
    assert_eq!(data_count(&page, "findings"), counts.findings);
    assert_eq!(data_count(&page, "alerts"), counts.alerts);
    assert_eq!(data_count(&page, "errors"), counts.errors);
    assert_eq!(data_count(&page, "storm-summaries"), counts.storm_summaries);
    for (severity, n) in &counts.by_severity {
        assert_eq!(data_count(&page, &format!("severity-{severity}")), *n);
    }
    for (decision, n) in &counts.by_outcome {
        assert_eq!(data_count(&page, &format!("decision-{decision}")), *n);
    }
    assert_eq!(
        report_data(&page)["alerts"].as_array().unwrap().len() as u64,
        counts.alerts
    );
}

const PAYLOADS: [&str; 4] = [
    "<script>document.title='pwned';window.__vigil_pwned=1</script>",
    "\"><img src=x onerror=\"document.title='pwned';window.__vigil_pwned=2\">",
    "</script><script>window.__vigil_pwned=3</script><!--",
    "'><svg onload=window.__vigil_pwned=4>",
];

#[test]
fn hostile_event_text_reaches_the_report_as_text_only() {
    let dir = scratch("hostile");
    let report = dir.join("report.html");
    let hostile = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile-events.json");
    let out = run(vigil()
        .args(["replay", "-q", "--report"])
        .arg(&report)
        .arg(&hostile));
    assert!(out.status.success());
    let page = std::fs::read_to_string(&report).unwrap();
    for payload in PAYLOADS {
        assert!(!page.contains(payload), "raw in the page: {payload}");
    }
    assert_eq!(
        page.matches("<script").count(),
        2,
        "the data block and the page's script only"
    );
    assert!(!page.contains("<img") && !page.contains("<svg onload"));
    // The escaped text is there (top lists), and the data gives it back intact.
    assert!(page.contains("&lt;script&gt;document.title=&#39;pwned&#39;"));
    let data = report_data(&page);
    let alerts = data["alerts"].as_array().unwrap();
    assert!(alerts.iter().any(|a| a["actor"] == PAYLOADS[0]));
    assert!(alerts
        .iter()
        .any(|a| a["description"].as_str().unwrap().contains(PAYLOADS[2])));
}

#[test]
fn json_lines_stay_one_line_each_for_every_line_reader() {
    let hostile = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile-events.json");
    let out = run(vigil().args(["replay", "--output", "json"]).arg(&hostile));
    let text = String::from_utf8(out.stdout).unwrap();
    // The fixture's request parameters hold U+2028 and U+2029: escaped, so
    // readers that also break lines there (Python's splitlines) see 2 lines
    // (the StopLogging record, CIS 4.5 listed in it, and the GuardDuty finding).
    assert!(!text.contains(['\u{2028}', '\u{2029}']));
    assert_eq!(text.lines().count(), 2);
    let evidence = json_lines(text.as_bytes())[0]["evidence"]["request_parameters"].clone();
    assert!(
        evidence.as_str().unwrap().contains('\u{2028}'),
        "the text itself is kept: {evidence}"
    );
}

/// A CloudTrail record that the own rule (`OWN_RULE`) alerts on.
fn stop_logging(id: &str) -> Value {
    serde_json::json!({"eventVersion": "1.08", "eventTime": "2024-05-01T10:00:00Z",
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
        "awsRegion": "us-east-1", "recipientAccountId": "111122223333", "eventID": id,
        "sourceIPAddress": "203.0.113.7", "eventType": "AwsApiCall",
        "userIdentity": {"type": "IAMUser", "accountId": "111122223333",
            "arn": "arn:aws:iam::111122223333:user/alice", "userName": "alice"}})
}

#[test]
fn a_bad_record_is_said_with_its_place_and_the_rest_of_its_file_replays() {
    let dir = scratch("bad-record");
    std::fs::write(dir.join("trail.yml"), OWN_RULE).unwrap();
    let replay = |name: &str, text: String| {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let out = run(vigil()
            .args(["replay", "--output", "json", "--no-dedup", "--no-bundled"])
            .arg("--rules-dir")
            .arg(&dir)
            .arg(&file));
        let ids: Vec<String> = json_lines(&out.stdout)
            .iter()
            .map(|l| {
                l["finding"]["event_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        (
            out.status.code(),
            ids.len(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Nested far deeper than serde_json's limit, between two alerting records.
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let (code, findings, stderr) = replay(
        "deep.json",
        format!(
            r#"{{"Records":[{},{{"eventName":"Deep","x":{deep}}},{}]}}"#,
            stop_logging("a"),
            stop_logging("b")
        ),
    );
    assert_eq!((code, findings), (Some(1), 2), "{stderr}");
    assert!(
        stderr.contains("deep.json: record 2: recursion limit exceeded")
            && stderr.contains("skipped"),
        "{stderr}"
    );
    // A record over VIGIL_LOG_RECORD_MAX_BYTES refuses the rest of its file.
    let (code, findings, stderr) = replay(
        "big.json",
        format!(
            r#"{{"Records":[{},{{"x":"{}"}},{}]}}"#,
            stop_logging("c"),
            "a".repeat(3 << 20),
            stop_logging("d")
        ),
    );
    assert_eq!((code, findings), (Some(1), 1), "{stderr}");
    assert!(
        stderr.contains("record 2 is larger than 2097152 bytes (VIGIL_LOG_RECORD_MAX_BYTES)"),
        "{stderr}"
    );
}

/// `vigil replay` reads the direct sources' samples: each folder gives its
/// findings, alerts where the sample says so, and refuses nothing.
#[test]
fn replay_reads_every_direct_source() {
    for (dir, source, alerts) in [
        ("health", "Health", 2),
        ("access-analyzer", "AccessAnalyzer", 2),
        ("inspector", "Inspector", 2),
        ("config", "Config", 2),
        ("malware-protection", "MalwareProtection", 1),
    ] {
        let out = run(vigil()
            .args(["replay", "--output", "json"])
            .arg(samples().join(dir)));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{dir}: {stderr}");
        let lines = json_lines(&out.stdout);
        let findings: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "finding").collect();
        assert!(!findings.is_empty(), "{dir}: {stderr}");
        assert!(
            findings.iter().all(|l| l["source"] == source),
            "{dir}: {findings:?}"
        );
        let alerted = findings
            .iter()
            .filter(|l| l["decision"] == "alerted")
            .count();
        assert_eq!(alerted, alerts, "{dir}: {findings:#?}");
        assert_eq!(summary_counts(&stderr).errors, 0, "{dir}: {stderr}");
    }
}

/// A bundled correlation's firing sequence, as one log file: the replay's
/// memory state fires the correlation once (one alert, per window set at
/// most two, folded by dedup); its near miss fires nothing.
#[test]
fn a_bundled_correlation_fires_on_its_sequence_and_not_on_its_near_miss() {
    use vigil_e2e::sequences::firing_and_near_miss;
    let (fires, near) = firing_and_near_miss("console_brute_force");
    let dir = scratch("correlation");
    let brute_force = "e7dbb6c5-9629-58a5-94bc-8ee2616fa033";
    let correlated = |name: &str, events: &[Value]| -> Vec<Value> {
        let file = dir.join(name);
        std::fs::write(&file, serde_json::json!({ "Records": events }).to_string()).unwrap();
        let out = run(vigil().args(["replay", "--output", "json"]).arg(&file));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out.stdout)
            .into_iter()
            .filter(|l| l["rule"]["id"] == brute_force)
            .collect()
    };
    let lines = correlated("burst.json", &fires.events);
    let alerted: Vec<_> = lines
        .iter()
        .filter(|l| l["decision"] == "alerted")
        .collect();
    assert_eq!(alerted.len(), 1, "{lines:?}");
    assert_eq!(alerted[0]["severity"], "HIGH");
    assert!(correlated("near.json", &near.events).is_empty());
}

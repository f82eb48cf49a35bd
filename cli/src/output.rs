//! What `vigil replay` writes for machines: one JSON object a line per
//! finding (`--output json`, schema in cli/tests/replay-line.schema.json),
//! or the OCSF Detection Finding of each alert exactly as the SNS `sqs` key
//! carries it (`--output ocsf`); and `--fail-on`, which turns findings into
//! an exit code.

use std::io::Write;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use vigil::model::{Actor, Resource, Severity};
use vigil::pipeline::{decision_name, Decision};
use vigil::render::{self, Alert};
use vigil::sinks::{AlertSink, Delivery, SinkError, SinkFuture};

use crate::replay::walk::{Kind, Seen};

/// `--output`: who reads stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Each alert as its email reads, then the summary.
    Text,
    /// One JSON object a line per finding and storm summary, with its decision.
    Json,
    /// One OCSF Detection Finding a line per alert: the SNS `sqs` body.
    Ocsf,
}

impl OutputFormat {
    /// Machine output on stdout: the summary goes to stderr.
    pub(crate) fn is_machine(self) -> bool {
        self != OutputFormat::Text
    }
}

/// Writes to stdout, ignoring a closed pipe (`vigil replay ... | head`) instead
/// of panicking as `print!` does.
pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
}

/// Version of the JSON line's shape; bumped when a field changes meaning or
/// goes away (new fields do not bump it).
pub(crate) const JSON_LINE_SCHEMA: &str = "vigil.replay.finding/1";

/// The `--output json` line of one finding or storm summary.
pub(crate) fn json_line(seen: &Seen<'_>) -> Value {
    let f = &seen.processed.finding;
    let mut line = json!({
        "schema": JSON_LINE_SCHEMA,
        "kind": seen.kind.as_str(),
        "decision": decision_name(&seen.processed.decision),
        "finding_id": f.id,
        "source": f.source.as_str(),
        "product": f.product,
        "finding_type": f.finding_type,
        "rule": f.rule.as_ref().map(|r| json!({"id": r.id, "title": r.title, "attempt": r.attempt})),
        "also_matched": f.also_matched.iter().map(|r| json!({"id": r.id, "title": r.title})).collect::<Vec<_>>(),
        "title": f.title,
        "severity": f.severity.as_str(),
        "tactics": f.tactics.iter().map(|t| json!({"id": t.id(), "name": t.name()})).collect::<Vec<_>>(),
        "techniques": f.techniques.iter().map(|t| json!({"id": t.id, "name": t.name})).collect::<Vec<_>>(),
        "account": {"id": f.account_id, "name": f.account_name},
        "region": f.region,
        "actor": f.actor.as_ref().map(actor_json),
        "resource": f.primary_resource().map(resource_json),
        "resources": f.resources.iter().map(resource_json).collect::<Vec<_>>(),
        "remote_ip": f.network.remote_ip,
        "fingerprint": f.fingerprint,
        "event_id": f.event_id,
        "time": rfc3339(f.time),
        "count": f.count,
        "trace_id": f.trace.as_ref().map(|t| &t.trace_id),
        "xray_trace_id": f.trace.as_ref().map(|t| &t.xray_trace_id),
        "console_url": f.links.console,
        "evidence": f.evidence,
        "file": seen.file.map(|p| p.display().to_string()),
    });
    if let (Some(obj), Some((key, detail))) = (
        line.as_object_mut(),
        decision_detail(&seen.processed.decision),
    ) {
        obj.insert(key.into(), detail);
    }
    line
}

/// What the decision adds beyond its name, under a key of its own.
fn decision_detail(d: &Decision) -> Option<(&'static str, Value)> {
    Some(match d {
        Decision::Alerted(deliveries) => (
            "deliveries",
            deliveries
                .iter()
                .map(|d| json!({"sink": d.sink, "message_id": d.message_id}))
                .collect(),
        ),
        Decision::Suppressed {
            kind,
            repeats,
            until,
        } => (
            "repeat",
            json!({"kind": kind.as_str(), "repeats": repeats, "until": epoch(*until)}),
        ),
        Decision::SuppressedByRule { rule, reason } => {
            ("suppression_rule", json!({"name": rule, "reason": reason}))
        }
        Decision::Aggregated { window, position } => (
            "storm",
            json!({"window_start": epoch(*window), "position": position}),
        ),
        Decision::FromOtherSource(source) => ("forwarded_from", json!(source.as_str())),
        Decision::Failed(message) => ("error", json!(message)),
        _ => return None,
    })
}

fn actor_json(a: &Actor) -> Value {
    json!({
        "type": a.actor_type.as_str(),
        "name": a.display_name(),
        "arn": a.arn,
        "user_name": a.user_name,
        "principal_id": a.principal_id,
        "account_id": a.account_id,
        "session_issuer": a.session_issuer,
        "access_key_id": a.access_key_id,
        "mfa_used": a.mfa_used,
        "source_ip": a.source_ip,
        "user_agent": a.user_agent,
    })
}

fn resource_json(r: &Resource) -> Value {
    json!({"type": r.resource_type, "id": r.id, "region": r.region})
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Epoch seconds as RFC 3339 (dedup windows); out of range reads as the epoch.
fn epoch(secs: i64) -> String {
    rfc3339(DateTime::from_timestamp(secs, 0).unwrap_or_default())
}

/// Writes JSON lines to stdout; after the first failed write (a closed
/// pipe, a full disk) it stops and keeps the error for the exit code.
#[derive(Debug, Default)]
pub(crate) struct JsonLines {
    pub(crate) failed: Option<std::io::Error>,
}

impl JsonLines {
    pub(crate) fn write(&mut self, seen: &Seen<'_>) {
        if self.failed.is_some() {
            return;
        }
        // U+2028 and U+2029 stay valid JSON as they are, but line readers
        // (Python's splitlines, for one) break lines at them: escaped, the
        // same string reaches every reader on one line.
        let mut line = json_line(seen)
            .to_string()
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029");
        line.push('\n');
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_all(line.as_bytes()) {
            self.failed = Some(e);
        }
    }
}

/// The OCSF body of the SNS message for `alert`: its `sqs` key, built by
/// the renderer the SNS sink publishes with (route, size budget and all).
pub(crate) fn sqs_body(alert: &Alert<'_>) -> Result<String, SinkError> {
    let message: Value =
        serde_json::from_str(&render::sns_message(alert)).map_err(|e| SinkError::Permanent {
            sink: "ocsf",
            message: format!("the SNS message is not JSON: {e}"),
        })?;
    match message.get("sqs") {
        Some(Value::String(body)) => Ok(body.clone()),
        _ => Err(SinkError::Permanent {
            sink: "ocsf",
            message: "the SNS message has no sqs body".into(),
        }),
    }
}

/// `--output ocsf`: each alert's OCSF body, one a line. Added as the last
/// sink, so a line is written only once every other sink (SNS with
/// `--sns-topic-arn`) has delivered.
pub(crate) struct OcsfSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl OcsfSink {
    pub(crate) fn stdout() -> OcsfSink {
        OcsfSink {
            out: Mutex::new(Box::new(std::io::stdout())),
        }
    }

    fn write(&self, alert: &Alert<'_>) -> Result<Delivery, SinkError> {
        let mut line = sqs_body(alert)?;
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| SinkError::Permanent {
                sink: "ocsf",
                message: e.to_string(),
            })?;
        Ok(Delivery {
            sink: "ocsf",
            message_id: None,
        })
    }
}

impl AlertSink for OcsfSink {
    fn name(&self) -> &'static str {
        "ocsf"
    }

    fn send<'a>(&'a self, alert: &'a Alert<'a>) -> SinkFuture<'a> {
        let result = self.write(alert);
        Box::pin(async move { result })
    }
}

/// `--fail-on SEVERITY`: counts the findings at or above it that are real
/// activity. Samples, findings inactive at the source, copies of another
/// source's finding and findings a suppression rule matched do not count
/// (the configuration says they are not news); repeats, aggregated and
/// below-threshold findings do.
#[derive(Debug, Clone)]
pub(crate) struct FailOn {
    level: Option<Severity>,
    pub(crate) matched: usize,
}

impl FailOn {
    pub(crate) fn new(level: Option<Severity>) -> FailOn {
        FailOn { level, matched: 0 }
    }

    pub(crate) fn see(&mut self, seen: &Seen<'_>) {
        let Some(level) = self.level else { return };
        if counts_for_fail_on(seen) && seen.processed.finding.severity >= level {
            self.matched += 1;
        }
    }
}

fn counts_for_fail_on(seen: &Seen<'_>) -> bool {
    // A storm summary stands for findings already counted one by one.
    seen.kind == Kind::Finding
        && !matches!(
            seen.processed.decision,
            Decision::Sample
                | Decision::Inactive
                | Decision::FromOtherSource(_)
                | Decision::SuppressedByRule { .. }
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use vigil::model::{Actor, Finding, Source, Tactic, Technique};
    use vigil::pipeline::Processed;

    fn finding() -> Finding {
        let mut f = Finding::new(
            Source::GuardDuty,
            "f-1",
            "UnauthorizedAccess:IAMUser/TorIPCaller",
        );
        f.title = "API called from a Tor exit node".into();
        f.severity = Severity::High;
        f.account_id = "111122223333".into();
        f.region = "us-east-1".into();
        f.fingerprint = "fp-1".into();
        f.tactics = vec![Tactic::InitialAccess];
        f.techniques = vec![Technique {
            id: "T1078.004".into(),
            name: Some("Cloud Accounts".into()),
        }];
        f.actor = Some(Actor {
            user_name: Some("alice".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            source_ip: Some("198.51.100.7".into()),
            ..Actor::default()
        });
        f.resources
            .push(Resource::new("AwsIamAccessKey", "AKIAEXAMPLE"));
        f
    }

    fn line(decision: Decision, kind: Kind) -> Value {
        let processed = Processed {
            finding: finding(),
            decision,
        };
        json_line(&Seen {
            processed: &processed,
            kind,
            file: Some(Path::new("events/a.json")),
        })
    }

    #[test]
    fn a_line_carries_the_decision_and_who_what_where() {
        let l = line(Decision::BelowThreshold, Kind::Finding);
        assert_eq!(l["schema"], JSON_LINE_SCHEMA);
        assert_eq!(l["kind"], "finding");
        assert_eq!(l["decision"], "below_threshold");
        assert_eq!(l["severity"], "HIGH");
        assert_eq!(l["tactics"][0]["id"], "TA0001");
        assert_eq!(l["techniques"][0]["name"], "Cloud Accounts");
        assert_eq!(l["account"]["id"], "111122223333");
        assert_eq!(l["actor"]["name"], "alice");
        assert_eq!(l["actor"]["source_ip"], "198.51.100.7");
        assert_eq!(l["resource"]["type"], "AwsIamAccessKey");
        assert_eq!(l["fingerprint"], "fp-1");
        assert_eq!(l["time"], "1970-01-01T00:00:00Z");
        assert_eq!(l["file"], "events/a.json");
        assert!(l["rule"].is_null() && l["trace_id"].is_null());
    }

    #[test]
    fn each_decision_adds_its_own_detail() {
        let l = line(
            Decision::SuppressedByRule {
                rule: "scanner".into(),
                reason: "our own scanner".into(),
            },
            Kind::Finding,
        );
        assert_eq!(l["decision"], "suppressed_by_rule");
        assert_eq!(l["suppression_rule"]["name"], "scanner");
        let l = line(
            Decision::Aggregated {
                window: 1_800_000_000,
                position: 12,
            },
            Kind::Finding,
        );
        assert_eq!(l["storm"]["window_start"], "2027-01-15T08:00:00Z");
        assert_eq!(l["storm"]["position"], 12);
        let l = line(Decision::Alerted(Vec::new()), Kind::StormSummary);
        assert_eq!(l["kind"], "storm_summary");
        assert_eq!(l["deliveries"], json!([]));
        let l = line(Decision::Failed("sns: throttled".into()), Kind::Finding);
        assert_eq!(l["error"], "sns: throttled");
        assert!(line(Decision::Sample, Kind::Finding).get("error").is_none());
    }

    #[test]
    fn the_ocsf_line_is_the_sns_sqs_body() {
        let f = finding();
        let alert = Alert::new(&f);
        let message: Value = serde_json::from_str(&render::sns_message(&alert)).unwrap();
        assert_eq!(sqs_body(&alert).unwrap(), message["sqs"].as_str().unwrap());
        let ocsf: Value = serde_json::from_str(&sqs_body(&alert).unwrap()).unwrap();
        assert_eq!(ocsf["class_uid"], 2004);
    }

    #[test]
    fn fail_on_counts_real_activity_at_or_above_its_level() {
        let see = |fail_on: &mut FailOn, severity: Severity, decision: Decision, kind: Kind| {
            let mut finding = finding();
            finding.severity = severity;
            let processed = Processed { finding, decision };
            fail_on.see(&Seen {
                processed: &processed,
                kind,
                file: None,
            });
        };
        let mut f = FailOn::new(Some(Severity::High));
        see(
            &mut f,
            Severity::Medium,
            Decision::Alerted(vec![]),
            Kind::Finding,
        );
        assert_eq!(f.matched, 0);
        see(&mut f, Severity::High, Decision::Sample, Kind::Finding);
        see(
            &mut f,
            Severity::Critical,
            Decision::Inactive,
            Kind::Finding,
        );
        see(
            &mut f,
            Severity::Critical,
            Decision::SuppressedByRule {
                rule: "r".into(),
                reason: String::new(),
            },
            Kind::Finding,
        );
        see(
            &mut f,
            Severity::Critical,
            Decision::Alerted(vec![]),
            Kind::StormSummary,
        );
        assert_eq!(f.matched, 0);
        see(
            &mut f,
            Severity::High,
            Decision::Alerted(vec![]),
            Kind::Finding,
        );
        see(
            &mut f,
            Severity::Critical,
            Decision::BelowThreshold,
            Kind::Finding,
        );
        assert_eq!(f.matched, 2);
        let mut off = FailOn::new(None);
        see(
            &mut off,
            Severity::Critical,
            Decision::Alerted(vec![]),
            Kind::Finding,
        );
        assert_eq!(off.matched, 0);
    }
}

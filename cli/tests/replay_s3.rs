//! `vigil replay s3://bucket/prefix/` on moto: gzip CloudTrail log files
//! (one of them broken half-way) streamed from S3 give the same findings,
//! counts and errors as the same files replayed from a local folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};
use vigil_e2e::{moto_endpoint, project_root, sdk, unique};

/// The `vigil` binary with no VIGIL_* setting from the caller's environment.
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

/// The project's CloudTrail samples as bare records (as log files hold them).
fn records() -> Vec<Value> {
    let dir = project_root().join("examples/events/cloudtrail");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let out: Vec<Value> = files
        .iter()
        .map(|f| serde_json::from_str::<Value>(&std::fs::read_to_string(f).unwrap()).unwrap())
        .map(|e| e["detail"].clone())
        .collect();
    assert!(out.len() >= 3, "the CloudTrail samples are missing");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Log files: each sample record under its own event id, in a few files,
/// and one file cut off in the middle of its second record.
fn log_files() -> Vec<(String, Vec<u8>)> {
    let records = records();
    let mut files = Vec::new();
    for n in 0..4 {
        let batch: Vec<Value> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut r = r.clone();
                r["eventID"] = json!(format!("replay-s3-{n}-{i}"));
                r
            })
            .collect();
        let body = json!({ "Records": batch }).to_string();
        files.push((format!("f{n}.json.gz"), gzip(body.as_bytes())));
    }
    let whole = json!({ "Records": records }).to_string();
    let cut = whole.len() * 2 / 3;
    files.push(("f9-broken.json.gz".into(), gzip(&whole.as_bytes()[..cut])));
    files
}

/// What each JSON line decides, in order: the finding, its rule, severity,
/// fingerprint and decision (not the trace ids or the times, which differ
/// from run to run, nor the file, which is named differently).
fn decisions(stdout: &[u8]) -> Vec<String> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let fields = ["kind", "finding_id", "severity", "fingerprint", "decision"];
            let mut out: Vec<String> = fields.iter().map(|f| v[f].to_string()).collect();
            out.push(v["rule"]["id"].to_string());
            out.join(" ")
        })
        .collect()
}

/// The summary's first line without its rates (`(68 events/s, ...)`).
fn head(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| l.starts_with("Replayed "))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    line.split(" (").next().unwrap().to_string()
}

fn replay(args: &[&str]) -> Output {
    vigil()
        .args(["replay", "--output", "json"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn s3_locations_replay_as_the_same_files_do_locally() {
    if moto_endpoint().is_none() {
        return;
    }
    let s3 = aws_sdk_s3::Client::new(&sdk().await);
    let bucket = unique("replay-s3");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let local = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("replay-s3-local"));
    std::fs::create_dir_all(&local).unwrap();
    let prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/27/";
    for (name, bytes) in log_files() {
        std::fs::write(local.join(&name), &bytes).unwrap();
        let put = s3
            .put_object()
            .bucket(&bucket)
            .key(format!("{prefix}{name}"));
        put.body(ByteStream::from(bytes)).send().await.unwrap();
    }
    // Outside the prefix, and a digest file inside it: neither is replayed.
    let outside = s3.put_object().bucket(&bucket).key("other/f0.json.gz");
    outside
        .body(ByteStream::from(gzip(b"{\"Records\":[]}")))
        .send()
        .await
        .unwrap();
    let digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/27/d.json.gz";
    let digest = s3.put_object().bucket(&bucket).key(digest);
    digest
        .body(ByteStream::from_static(b"not gzip"))
        .send()
        .await
        .unwrap();

    let from_s3 = replay(&[&format!("s3://{bucket}/AWSLogs/")]);
    let from_disk = replay(&[local.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&from_s3.stderr);
    // A broken file is an error (exit 1) on both sides.
    assert_eq!(from_s3.status.code(), Some(1), "{stderr}");
    assert_eq!(from_disk.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("s3://{bucket}/{prefix}f9-broken.json.gz")),
        "{stderr}"
    );
    let s3_head = head(&from_s3.stderr);
    assert_eq!(s3_head, head(&from_disk.stderr));
    assert!(s3_head.contains(" 5 files"), "{s3_head}");
    let findings = decisions(&from_s3.stdout);
    assert!(findings.len() >= 4, "{findings:#?}");
    assert_eq!(findings, decisions(&from_disk.stdout));
    let line: Value =
        serde_json::from_slice(from_s3.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(line["file"]
        .as_str()
        .unwrap()
        .starts_with(&format!("s3://{bucket}/{prefix}f0")));
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_not_an_empty_replay() {
    if moto_endpoint().is_none() {
        return;
    }
    let out = replay(&[&format!("s3://{}/", unique("no-such-bucket"))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("listing s3://"), "{stderr}");
}

#[test]
fn s3_locations_and_local_paths_are_not_mixed() {
    let out = replay(&["s3://trail/AWSLogs/", "examples/events"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be replayed together"), "{stderr}");
}

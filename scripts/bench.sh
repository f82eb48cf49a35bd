#!/usr/bin/env bash
# Whole-process figures for Vigil, printed as a Markdown report (the source
# of docs/benchmarks.md):
#
#   - start-up of each function binary (release build): from process start
#     until it asks a stand-in Lambda runtime API on loopback for its first
#     event (GET .../invocation/next); no network, no AWS call;
#   - peak memory (max RSS): `vigil replay --quiet` on a large generated
#     CloudTrail log file, and each function serving one invocation (the
#     cloudtrail-logs function streaming that same file from moto's S3);
#   - throughput of that replay (events/s, MB/s);
#   - the criterion benchmarks (rules vs the parse floor, GuardDuty per
#     finding) read from target/criterion;
#   - binary sizes; and the Lambda cost per million events these give.
#
# Usage: scripts/bench.sh [RECORDS]   (default 200000 records, ~300 MB of JSON)
#   BENCH_SKIP_CRITERION=1  reuse the last `cargo bench` results instead of running it
#   BENCH_SKIP_BUILD=1      use the release binaries already in target/release
#   BENCH_RUNS=N            start-up samples per function (default 30)
# Run it on a quiet machine: every figure is wall-clock or CPU time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

RECORDS="${1:-200000}"
RUNS="${BENCH_RUNS:-30}"
OUT="$ROOT/target/bench"
mkdir -p "$OUT"
LOG_FILE="$OUT/cloudtrail-$RECORDS.json.gz"
FUNCTIONS=()
for dir in functions/*/; do
  bin="$(sed -n 's/^name = "\(.*\)"$/\1/p' "$dir/Cargo.toml" | sed -n 2p)"
  [ -n "$bin" ] && FUNCTIONS+=("$bin")
done

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "==> release build: vigil CLI, ${FUNCTIONS[*]}, the log-file generator" >&2
  cargo build --release --quiet --workspace --bins
  cargo build --release --quiet -p vigil --example cloudtrail_log
fi

# The same bytes whichever build generates them (a fixed seed).
gen=target/release/examples/cloudtrail_log
[ -x "$gen" ] || gen=target/debug/examples/cloudtrail_log
if [ ! -s "$LOG_FILE" ]; then
  echo "==> generating $LOG_FILE ($RECORDS records)" >&2
  "$gen" "$LOG_FILE" "$RECORDS"
fi
# Event times that run on (`spread`), at half and full size: for replay
# memory against file size.
for n in $((RECORDS / 2)) "$RECORDS"; do
  if [ ! -s "$OUT/cloudtrail-$RECORDS-spread-$n.json.gz" ]; then
    echo "==> generating the spread default mix ($n records)" >&2
    "$gen" "$OUT/cloudtrail-$RECORDS-spread-$n.json.gz" "$n" 104375239146001 default spread
  fi
done
for mix in read-only all-matching; do
  if [ ! -s "$OUT/cloudtrail-$RECORDS-$mix.json.gz" ]; then
    echo "==> generating the $mix mix ($RECORDS records)" >&2
    "$gen" "$OUT/cloudtrail-$RECORDS-$mix.json.gz" "$RECORDS" 104375239146001 "$mix"
  fi
done

if [ "${BENCH_SKIP_CRITERION:-0}" != 1 ]; then
  echo "==> cargo bench -p vigil --bench cloudtrail --bench guardduty --bench correlate" >&2
  cargo bench --quiet -p vigil --bench cloudtrail --bench guardduty --bench correlate >"$OUT/criterion.txt" 2>&1
fi

MOTO=""
if [ -x "$VENV/bin/moto_server" ]; then
  trap stop_moto EXIT
  start_moto >&2
  MOTO="$AWS_ENDPOINT_URL"
fi

export PATH="$VENV/bin:$PATH"
python3 - "$ROOT" "$LOG_FILE" "$RECORDS" "$RUNS" "$MOTO" "${FUNCTIONS[@]}" <<'PY'
import gzip, http.server, json, os, platform, socket, statistics, subprocess, sys, threading, time

root, log_file, records, runs, moto = sys.argv[1:6]
functions = sys.argv[6:]
records, runs = int(records), int(runs)
release = os.path.join(root, "target", "release")

# Lambda arm64 prices (us-east-1): duration per GB-second and requests.
GB_S = 0.0000133334
PER_REQUEST = 0.20 / 1e6
MEMORY_MB = 128
# Lambda gives CPU in proportion to memory: one full vCPU at 1769 MB.
VCPU_SHARE = MEMORY_MB / 1769

base_env = dict(os.environ)
base_env.update({
    "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "1",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
    "VIGIL_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:vigil-bench",
    # The notifier needs a destination; its secret is read on first use.
    "VIGIL_SLACK_WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-AbCdEf",
})
if not moto:
    base_env.pop("AWS_ENDPOINT_URL", None)


def run_measured(cmd, env=None, stdout=subprocess.DEVNULL):
    """Runs cmd under GNU time; returns (wall seconds, max RSS in KB,
    user+sys CPU seconds, returncode). Not Python's own wait4 rusage: the
    child's high-water mark would include the forked Python before exec."""
    report = os.path.join(os.path.dirname(log_file), "time.txt")
    code = subprocess.call(["/usr/bin/time", "-f", "%e %M %U %S", "-o", report] + cmd,
                           env=env, stdout=stdout, stderr=subprocess.DEVNULL)
    wall, rss, user, system = open(report).read().split()[-4:]
    return float(wall), int(rss), float(user) + float(system), code


def peak_rss_kb(pid):
    """VmHWM: the process's own peak RSS since exec."""
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def startup_ms(binary):
    """Process start until the first connection to the runtime API, in ms."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    s.settimeout(10)
    env = dict(base_env, AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d" % s.getsockname()[1])
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn, _ = s.accept()
        t1 = time.perf_counter()
        conn.settimeout(5)
        request = conn.recv(4096)
        conn.close()
        if b"/runtime/invocation/next" not in request:
            return None
        return (t1 - t0) * 1000
    except socket.timeout:
        return None
    finally:
        p.kill()
        p.wait()
        s.close()


def serve_one(binary, event, env_extra):
    """Runs binary against a stand-in runtime API that hands out `event`
    once; returns (max RSS KB, the function's response) once it asks again.
    With no event, stops it as soon as it is ready (its idle footprint)."""
    state = {"served": False, "response": None, "done": threading.Event()}

    class Api(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if state["served"] or event is None:
                state["done"].set()
                time.sleep(30)
                return
            state["served"] = True
            body = json.dumps(event).encode()
            self.send_response(200)
            for k, v in {"Lambda-Runtime-Aws-Request-Id": "bench-1",
                         "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 600000),
                         "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                         "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                         "Content-Type": "application/json",
                         "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            state["response"] = (self.path.rsplit("/", 1)[-1], self.rfile.read(n).decode(errors="replace"))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(base_env, AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d" % server.server_address[1], **env_extra)
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished = state["done"].wait(600) and (event is None or state["response"] is not None)
    rss = peak_rss_kb(p.pid)
    p.kill()
    p.wait()
    server.shutdown()
    return rss, state["response"] if finished else ("timeout", "")


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


out = []
w = out.append
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
w("## Machine\n")
w("| | |\n|---|---|")
w("| CPU | %s, %d cores (`nproc`), %s |" % (cpu_model(), os.cpu_count(), platform.machine()))
w("| rustc | %s |" % rustc)
w("| load average at start | %s |" % " ".join(open("/proc/loadavg").read().split()[:3]))
w("| date | %s |" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
w("")

# --- criterion --------------------------------------------------------------
def estimate(group, name):
    path = os.path.join(root, "target", "criterion", group, name, "new", "estimates.json")
    try:
        return json.load(open(path))["mean"]["point_estimate"]  # ns per iteration
    except (OSError, KeyError, ValueError):
        return None

CT_RECORDS = 20000
GD_FINDINGS = len([f for f in os.listdir(os.path.join(root, "examples", "events", "guardduty")) if f.endswith(".json")])
rates = {}
w("## Rules against the parse floor (criterion, one core)\n")
w("%d generated records (see `shared/benches/cloudtrail_data`). Events/s = records / mean time per iteration.\n" % CT_RECORDS)
w("| benchmark | events/s | µs per event | vs parse floor |")
w("|---|---:|---:|---:|")
floor = estimate("cloudtrail", "parse_floor")
for name in ["parse_floor", "detect_bundled", "parse_detect_bundled", "parse_detect_bundled_sigmahq",
             "stream_detect_log_file", "stream_detect_log_file_gzip"]:
    ns = estimate("cloudtrail", name)
    if ns is None:
        continue
    rate = CT_RECORDS / (ns / 1e9)
    rates[name] = rate
    w("| `%s` | %s | %.2f | %s |" % (name, format(int(rate), ","), ns / 1e3 / CT_RECORDS,
                                     "%.2f×" % (floor / ns) if floor else "-"))
w("")
MIXES = ["default", "read-only", "all-matching"]
mix_floor = {m: estimate("cloudtrail_" + m, "parse_floor") for m in MIXES}
w("### The fast path against the parse floor, by mix (criterion, one core)\n")
w("Each mix's floor is `serde_json::from_slice::<Value>` on that mix's records, measured in the same run. "
  "`_full`: every record parsed; `_fast`: the prefilter first.\n")
w("| mix | benchmark | events/s | µs per event | vs that mix's parse floor |")
w("|---|---|---:|---:|---:|")
for m in MIXES:
    for name in ["parse_floor", "parse_detect", "prefilter_detect", "log_file_gzip_full", "log_file_gzip_fast"]:
        ns = estimate("cloudtrail_" + m, name)
        if ns is None:
            continue
        rates["%s/%s" % (m, name)] = CT_RECORDS / (ns / 1e9)
        w("| %s | `%s` | %s | %.2f | %s |" % (m, name, format(int(CT_RECORDS / (ns / 1e9)), ","), ns / 1e3 / CT_RECORDS,
                                            "%.2f×" % (mix_floor[m] / ns) if mix_floor[m] else "-"))
w("")
w("| GuardDuty (%d sample findings) | findings/s | µs per finding |" % GD_FINDINGS)
w("|---|---:|---:|")
gd_us = {}
for name in ["normalize", "pipeline"]:
    ns = estimate("guardduty", name)
    if ns is None:
        continue
    gd_us[name] = ns / 1e3 / GD_FINDINGS
    w("| `guardduty/%s` | %s | %.1f |" % (name, format(int(GD_FINDINGS / (ns / 1e9)), ","), gd_us[name]))
w("")

w("| correlations (%d generated records) | events/s | µs per event |" % CT_RECORDS)
w("|---|---:|---:|")
for name in ["correlate_bundled", "detect_bundled"]:
    ns = estimate("correlate", name)
    if ns is None:
        continue
    w("| `correlate/%s` | %s | %.2f |" % (name, format(int(CT_RECORDS / (ns / 1e9)), ","), ns / 1e3 / CT_RECORDS))
w("")

# --- replay -----------------------------------------------------------------
size = os.path.getsize(log_file)
with gzip.open(log_file, "rb") as f:
    plain = sum(len(chunk) for chunk in iter(lambda: f.read(1 << 20), b""))
def replay(path):
    summary_path = path + ".replay.txt"
    with open(summary_path, "w") as so:
        measured = run_measured([os.path.join(release, "vigil"), "replay", "--quiet", path],
                                env=dict(base_env, AWS_ENDPOINT_URL=""), stdout=so)
    return measured, open(summary_path).read().splitlines()

(wall, rss, cpu, code), summary = replay(log_file)
w("## `vigil replay --quiet` on one large log file\n")
w("`%s`: %s records, %.1f MB gzip, %.1f MB of JSON (%.0f bytes per record)." % (
    os.path.basename(log_file), format(records, ","), size / 1e6, plain / 1e6, plain / records))
w("")
w("| mix | wall | CPU (user+sys) | events/s (wall) | events/s per CPU-second | vs the mix's parse floor (wall) | MB/s of JSON | peak RSS | findings |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
per_finding = None
for m in MIXES:
    path = log_file if m == "default" else log_file.replace(".json.gz", "-%s.json.gz" % m)
    if not os.path.exists(path):
        continue
    (mw, mrss, mcpu, mcode), msummary = (wall, rss, cpu, code), summary
    if m != "default":
        (mw, mrss, mcpu, mcode), msummary = replay(path)
    with gzip.open(path, "rb") as f:
        mplain = sum(len(chunk) for chunk in iter(lambda: f.read(1 << 20), b""))
    floor_rate = CT_RECORDS / (mix_floor[m] / 1e9) if mix_floor.get(m) else None
    found = msummary[0].split(": ", 1)[1].split(",")[0] if msummary and ": " in msummary[0] else "?"
    w("| %s | %.2f s | %.2f s | %s | %s | %s | %.0f | %.1f MB | %s |" % (
        m, mw, mcpu, format(int(records / mw), ","), format(int(records / mcpu), ","),
        "%.2f×" % (records / mw / floor_rate) if floor_rate else "-", mplain / 1e6 / mw, mrss / 1024, found))
    if m == "all-matching":
        per_finding = (m, mcpu, msummary)
w("")
w("The default mix's summary line: `%s` (exit %d)." % (summary[0] if summary else "", code))
w("")
# Per finding: the all-matching replay's CPU less what reading, parsing and
# the rules cost on that mix (criterion's log_file_gzip_full, one core), over
# its findings: what the pipeline adds for each (enrich, fingerprint, dedup,
# gate, correlation, log line).
read_ns = estimate("cloudtrail_all-matching", "log_file_gzip_full")
if read_ns and per_finding:
    _, fcpu, fsummary = per_finding
    n = int(fsummary[0].split(": ", 1)[1].split(" findings")[0]) if fsummary and " findings" in fsummary[0] else 0
    if n:
        rest = fcpu - records * read_ns / 1e9 / CT_RECORDS
        w("Per finding through the whole pipeline (all-matching replay's CPU, less that mix's "
          "`log_file_gzip_full` per record, over its %s findings): **%.1f µs**." % (format(n, ","), rest / n * 1e6))
w("")

# Replay memory against file size. The generator's default times cycle
# through one hour, so every correlation window stays open to the end and
# their state grows with the file; with times that run on, as a real trail's
# do, windows close and are dropped.
w("Peak RSS of `vigil replay --quiet` by file size (default mix):\n")
w("| records | event times | peak RSS |")
w("|---:|---|---:|")
for n in (records // 2, records):
    path = log_file.replace(".json.gz", "-spread-%d.json.gz" % n)
    if os.path.exists(path):
        (_, srss, _, _), _ = replay(path)
        w("| %s | run on (`spread`) | %.1f MB |" % (format(n, ","), srss / 1024))
w("| %s | cycle through one hour | %.1f MB |" % (format(records, ","), rss / 1024))
w("")

# --- functions --------------------------------------------------------------
w("## Functions (release builds)\n")
w("| function | binary size | start-up to ready, median (p90, max) of %d | peak RSS serving one event |" % runs)
w("|---|---:|---:|---:|")
gd_event = json.load(open(os.path.join(root, "examples", "events", "guardduty", "attack-sequence-s3-critical.json")))
s3_event = None
if moto:
    import urllib.request
    # The large log file in moto's S3, announced by an S3 notification in an SQS event.
    bucket, key = "vigil-bench-trail", "AWSLogs/o-bench/111122223333/CloudTrail/us-east-1/2024/05/01/bench.json.gz"
    env = dict(base_env, AWS_ENDPOINT_URL=moto)
    subprocess.run([sys.executable, "-c", "import boto3,sys; s3=boto3.client('s3', endpoint_url=sys.argv[1]); "
                    "s3.create_bucket(Bucket=sys.argv[2]); s3.upload_file(sys.argv[4], sys.argv[2], sys.argv[3])",
                    moto, bucket, key, log_file], env=env, check=True)
    subprocess.run([sys.executable, "-c", "import boto3,sys; boto3.client('sns', endpoint_url=sys.argv[1]).create_topic(Name='vigil-bench')",
                    moto], env=env, check=True)
    notification = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                                 "eventName": "ObjectCreated:Put",
                                 "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}}}]}
    s3_event = {"Records": [{"messageId": "bench-message", "receiptHandle": "r", "body": json.dumps(notification),
                             "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench", "awsRegion": "us-east-1"}]}
events = {"guardduty": gd_event, "cloudtrail-logs": s3_event}
startups = {}
for fn in functions:
    binary = os.path.join(release, fn)
    if not os.path.exists(binary):
        continue
    samples = [startup_ms(binary) for _ in range(runs)]
    ok = sorted(x for x in samples if x is not None)
    startups[fn] = statistics.median(ok) if ok else None
    start = ("%.1f ms (%.1f, %.1f)" % (statistics.median(ok), ok[int(len(ok) * 0.9) - 1], ok[-1])) if ok else "did not start"
    mem = "-"
    event = events.get(fn)
    if event is not None:
        rss, response = serve_one(binary, event, {"AWS_ENDPOINT_URL": moto} if moto else {})
        kind, body = response
        mem = "%.1f MB (%s)" % (rss / 1024, "ok" if kind == "response" else kind)
        if fn == "cloudtrail-logs":
            mem += ", streaming the %.0f MB file" % (size / 1e6)
    else:
        rss, _ = serve_one(binary, None, {})
        mem = "%.1f MB (ready, no event)" % (rss / 1024)
    w("| `%s` | %.1f MB | %s | %s |" % (fn, os.path.getsize(binary) / 1e6, start, mem))
w("| `vigil` (CLI) | %.1f MB | | see the replay above |" % (os.path.getsize(os.path.join(release, "vigil")) / 1e6))
w("")

# --- cost ---------------------------------------------------------------------
w("## Cost per million events (Lambda arm64, %d MB)\n" % MEMORY_MB)
w("Prices: $%.10f per GB-second and $0.20 per million requests (arm64, us-east-1). At %d MB a function gets "
  "%.3f of a vCPU (one vCPU at 1769 MB), so CPU-bound work takes 1/%.3f as long as on one core here. "
  "Measured on this %s machine, not on Graviton: expect arm64 per-core speed within a few tens of percent either way. "
  "Network waits (S3 reads, SNS publishes) are billed too and are not in these figures." % (
      GB_S, MEMORY_MB, VCPU_SHARE, VCPU_SHARE, platform.machine()))
w("")
w("| path | CPU per event (one core) | billed per 1M events | requests per 1M events | cost per 1M events |")
w("|---|---:|---:|---:|---:|")
ct_rows = []
if "stream_detect_log_file_gzip" in rates:
    # What the function does to every record: gunzip, stream-parse, rules
    # (the ~1.5% that match then go through the pipeline).
    ct_rows.append(("CloudTrail log files: gzip + streaming parse + rules (`stream_detect_log_file_gzip`)",
                    1 / rates["stream_detect_log_file_gzip"]))
if records and cpu:
    # Whole process, every record through the whole pipeline: an upper bound.
    ct_rows.append(("CloudTrail log files: every record through the whole pipeline (the replay above, CPU)",
                    cpu / records))
for label, per_event in ct_rows:
    seconds = 1e6 * per_event / VCPU_SHARE
    gbs = seconds * MEMORY_MB / 1024
    # A batch of 10 files of ~5000 records per invocation.
    requests = 1e6 / (10 * 5000)
    cost = gbs * GB_S + requests * PER_REQUEST
    w("| %s | %.1f µs | %.0f s, %.0f GB-s | %.0f | $%.4f |" % (label, per_event * 1e6, seconds, gbs, requests, cost))
if "pipeline" in gd_us:
    us = gd_us["pipeline"]
    billed_ms = max(1, -(-us / VCPU_SHARE // 1000))  # whole milliseconds, at least 1
    gbs = 1e6 * billed_ms / 1000 * MEMORY_MB / 1024
    cost = gbs * GB_S + 1e6 * PER_REQUEST
    w("| GuardDuty findings (one invocation each; CPU from `guardduty/pipeline`) | %.1f µs | %.0f ms each, %.0f GB-s | 1,000,000 | $%.2f |" % (
        us, billed_ms, gbs, cost))
w("")
print("\n".join(out))
PY

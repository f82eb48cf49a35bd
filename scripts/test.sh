#!/usr/bin/env bash
# Runs every Vigil test on a fresh machine: installs the Python tools into
# .venv, starts moto server on loopback, runs the Rust tests against it, lints
# the SAM templates and runs `sam build` once. Always stops the server.
set -euo pipefail
export SAM_CLI_TELEMETRY=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

echo "==> the code reads one way (docs/architecture.md)"
python3 scripts/check_architecture.py
# The detection crate stays free of the AWS SDK, so a rule edit rebuilds
# only it and its tests run in seconds.
if sdk=$(cargo tree -p vigil-detect -e normal,build,dev --prefix none | grep '^aws-sdk-'); then
  echo "vigil-detect depends on the AWS SDK: $sdk" >&2
  exit 1
fi

ensure_venv
# tests/tests/ocsf_schema.rs validates every sample alert's OCSF body with
# scripts/validate_ocsf.py: here a missing validator fails it, not skips it.
echo "==> the OCSF validator is installed"
"$VENV/bin/python" scripts/validate_ocsf.py --version
export VIGIL_REQUIRE_OCSF=1
trap stop_moto EXIT
start_moto

echo "==> cargo test --workspace"
cargo test --workspace --all-targets

# Sample-driven tests never pass by checking nothing: under CI a missing
# ../shared/events fails them (tests/src/samples.rs). Proved on one of them
# with the samples folder pointed at a path that does not exist.
echo "==> under CI, sample tests fail when ../shared/events is missing"
missing_log="$ROOT/target/samples-missing.log"
if CI=true VIGIL_SHARED_EVENTS="$ROOT/target/no-such-samples" \
  cargo test -q -p vigil-detect --test rules_sigmahq >"$missing_log" 2>&1; then
  echo "the sample tests passed under CI without their samples" >&2
  exit 1
fi
grep -q "CI is set but the public samples folder" "$missing_log" || {
  cat "$missing_log" >&2
  exit 1
}

# `vigil replay --output ocsf` writes the SNS `sqs` body: it must validate
# against the official schema too, and there must be something to validate.
echo "==> vigil replay --output ocsf of the samples is valid OCSF"
ocsf_lines="$ROOT/target/replay-ocsf.jsonl"
cargo run -q --bin vigil -- replay --output ocsf examples/events 2>/dev/null >"$ocsf_lines"
[ -s "$ocsf_lines" ] || { echo "vigil replay --output ocsf wrote nothing" >&2; exit 1; }
"$VENV/bin/python" scripts/validate_ocsf.py "$ocsf_lines"
# The replay report (docs/replay.md) in a real browser: Debian's Chromium,
# driven over the DevTools protocol, on reports the vigil binary just built.
echo "==> the replay report in headless Chromium"
ensure_chromium
python scripts/report_browser_test.py
echo "==> the report picture (README) is of the report the samples make now"
python scripts/report_picture.py --check

echo "==> SAM and CloudFormation linters"
sam validate --lint --template template.yaml --region us-east-1
shopt -s nullglob
cfn-lint template.yaml infra/*.yaml
echo "==> the dashboard picture (docs/operations.md) matches the template's dashboard and a replay of the samples"
python scripts/dashboard_picture.py template.yaml target/dashboard.svg
diff -u docs/dashboard.svg target/dashboard.svg || { echo "docs/dashboard.svg is stale: run scripts/dashboard_picture.py template.yaml docs/dashboard.svg"; exit 1; }
echo "==> checkov (skipped checks and reasons: .checkov.yaml)"
checkov --config-file .checkov.yaml -f template.yaml $(printf -- '-f %s ' infra/*.yaml)
stop_moto
# The template's functions and the crates agree: `sam build` once (cargo-lambda,
# arm64); see the script for the fast profile and the x86_64 fallback.
scripts/sam_build.sh
echo "==> all tests passed"

#!/usr/bin/env bash
# Shared set-up for Vigil's scripts: the Python tools venv and moto server.
# Sourced, not run. Everything is installed into the project (.venv), so a
# fresh machine needs only Rust and Python 3.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# Pinned so CI and developers lint and emulate with the same versions.
# The OCSF validator (scripts/validate_ocsf.py): the official schema export as
# JSON Schema (ocsf-json-schema, checked with jsonschema) and pydantic-ocsf.
# websocket-client drives headless Chromium over the DevTools protocol (the
# report's browser test); Python's standard library has no WebSocket client.
PY_TOOLS=("moto[server]==5.2.*" "cfn-lint==1.*" "aws-sam-cli==1.*" "cargo-lambda==1.9.*" "ziglang==0.13.*" "checkov==3.*"
  "pydantic-ocsf==3.0.*" "ocsf-json-schema==1.2.*" "jsonschema==4.*" "websocket-client==1.*")

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.vigil-tools"
  local want="${PY_TOOLS[*]}"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing Python tools into .venv: $want"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >/dev/null
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Starts moto server on a free loopback port and exports the AWS variables
# that point the SDK at it. Stop it with stop_moto (the callers trap EXIT).
start_moto() {
  MOTO_PORT="$(free_port)"
  MOTO_LOG="$ROOT/target/moto.log"
  mkdir -p "$ROOT/target"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then
      break
    fi
    sleep 0.1
  done
  if ! curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then
    echo "moto server did not start; its log:" >&2
    cat "$MOTO_LOG" >&2
    return 1
  fi
  export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  # Tests that need moto fail (rather than skip) when this is set and it is not there.
  export VIGIL_REQUIRE_MOTO=1
  echo "==> moto server on $AWS_ENDPOINT_URL (pid $MOTO_PID)"
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=""
  fi
}

# Debian's Chromium, for the HTML report's browser test and its screenshot
# (scripts/report_browser_test.py, scripts/report_picture.py). CI runs as
# root on a fresh Debian machine, so it installs from the distribution.
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
ensure_chromium() {
  if [ ! -x "$CHROMIUM" ]; then
    echo "==> installing chromium (Debian package)"
    if [ "$(id -u)" -ne 0 ]; then
      echo "chromium is missing and installing it needs root: apt-get install chromium" >&2
      return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  export CHROMIUM
}

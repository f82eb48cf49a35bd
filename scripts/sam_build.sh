#!/usr/bin/env bash
# Runs `sam build` once to prove that template.yaml and the crates agree: every
# function with `BuildMethod: rust-cargolambda` names (BuildProperties: Binary)
# a binary that cargo-lambda builds for the function's architecture, SAM writes
# the built template and one `bootstrap` per function, and every crate under
# functions/ has its function in the template. scripts/test.sh runs it; it
# also runs on its own.
#
# A check, not a deploy build. It builds into target/sam-check/ (cargo's target
# directory and SAM's build directory), never into .aws-sam/, which a later
# `sam deploy` would pick up; and it overrides the workspace's release profile
# (thin LTO, one codegen unit, opt-level 3: slow) with opt-level 0, no LTO and
# 16 codegen units through CARGO_PROFILE_RELEASE_* variables, which SAM and
# cargo-lambda pass through to cargo. `sam build` for a deploy is unchanged.
#
# Architecture: the template's arm64, cross-compiled by cargo-lambda with zig
# (the ziglang package in .venv). That needs Rust's standard library for
# aarch64-unknown-linux-gnu, so the script runs `rustup target add` (a no-op
# when it is installed; a download from static.rust-lang.org when not). If it
# cannot be installed, the script says so and builds for x86_64 from a copy of
# the template with `Architectures: [arm64]` switched: the functions and crates
# are still checked, the arm64 cross-compilation is not.
#   VIGIL_SAM_ARCH=arm64    fail instead of falling back
#   VIGIL_SAM_ARCH=x86_64   build for x86_64 without trying arm64
#   VIGIL_SAM_CHECK_DIR=DIR build there instead of target/sam-check
set -euo pipefail
export SAM_CLI_TELEMETRY=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv

OUT="${VIGIL_SAM_CHECK_DIR:-$ROOT/target/sam-check}"
ARCH="${VIGIL_SAM_ARCH:-auto}"
AARCH64=aarch64-unknown-linux-gnu

has_rust_std() { [ -d "$(rustc --print sysroot)/lib/rustlib/$1/lib" ]; }

case "$ARCH" in
  auto | arm64)
    if command -v rustup >/dev/null 2>&1; then
      echo "==> rustup target add $AARCH64"
      timeout 600 rustup target add "$AARCH64" || echo "rustup could not add $AARCH64 (see above)" >&2
    fi
    if has_rust_std "$AARCH64"; then
      ARCH=arm64
    elif [ "$ARCH" = arm64 ]; then
      echo "error: Rust's standard library for $AARCH64 is not installed and could not be installed" >&2
      echo "       (run: rustup target add $AARCH64); VIGIL_SAM_ARCH=arm64 forbids the x86_64 fallback" >&2
      exit 1
    else
      echo "WARNING: Rust's standard library for $AARCH64 is not installed and could not be installed." >&2
      echo "WARNING: Building for x86_64 instead: the template's functions and the crates are checked," >&2
      echo "WARNING: the arm64 cross-compilation is not. Run 'rustup target add $AARCH64' to build for arm64." >&2
      ARCH=x86_64
    fi
    ;;
  x86_64) ;;
  *)
    echo "VIGIL_SAM_ARCH must be auto, arm64 or x86_64, not '$ARCH'" >&2
    exit 2
    ;;
esac

BUILD_DIR="$OUT/build"
SAM_ARGS=(--build-dir "$BUILD_DIR")
mkdir -p "$OUT"
if [ "$ARCH" = x86_64 ]; then
  # The deployed template stays arm64; the copy resolves CodeUri against the
  # project (--base-dir) and reads the project's samconfig.toml.
  python - "$ROOT/template.yaml" "$OUT/template-x86_64.yaml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
text, n = re.subn(r"^(\s*Architectures:\s*)\[\s*arm64\s*\]\s*$", r"\1[x86_64]", text, flags=re.M)
if n == 0:
    sys.exit("template.yaml has no 'Architectures: [arm64]' line to switch to x86_64")
open(sys.argv[2], "w").write(text)
EOF
  SAM_ARGS+=(--template-file "$OUT/template-x86_64.yaml" --base-dir "$ROOT" --config-file "$ROOT/samconfig.toml")
fi

echo "==> sam build ($ARCH, fast release profile) into ${BUILD_DIR#"$ROOT"/}"
echo "    (the first build compiles every dependency for the target: several minutes)"
start=$SECONDS
# --no-cached: with CodeUri '.', SAM's cache would hash the whole project
# (target/ and .venv included) once per function before building.
CARGO_TARGET_DIR="$OUT/cargo" \
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
  CARGO_PROFILE_RELEASE_LTO=false \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  CARGO_PROFILE_RELEASE_INCREMENTAL=true \
  sam build --no-cached "${SAM_ARGS[@]}"
echo "    sam build took $((SECONDS - start)) s (a check build, not for deploying: see docs/deploy.md)"

echo "==> every function in the built template has its $ARCH bootstrap; every function crate has its function"
CARGO_TARGET_DIR="$OUT/cargo" python - "$ROOT" "$BUILD_DIR" "$ARCH" <<'EOF'
import filecmp, json, os, pathlib, struct, subprocess, sys
from samcli.yamlhelper import yaml_parse

root, build, arch = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
machine, machine_name = {"arm64": (183, "aarch64"), "x86_64": (62, "x86-64")}[arch]
lambda_dir = pathlib.Path(os.environ["CARGO_TARGET_DIR"]) / "lambda"
errors = []

source = yaml_parse((root / "template.yaml").read_text())
built_template = build / "template.yaml"
if not built_template.is_file():
    sys.exit(f"no built template at {built_template}")
built = yaml_parse(built_template.read_text())

functions = {
    logical_id: resource
    for logical_id, resource in source["Resources"].items()
    if resource.get("Type") == "AWS::Serverless::Function"
    and (resource.get("Metadata") or {}).get("BuildMethod") == "rust-cargolambda"
}
if not functions:
    errors.append("template.yaml has no function with BuildMethod rust-cargolambda")
binaries = set()
for logical_id, resource in sorted(functions.items()):
    binary = ((resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
    if not binary:
        errors.append(f"{logical_id}: Metadata.BuildProperties.Binary is missing")
        continue
    binaries.add(binary)
    code_uri = built["Resources"].get(logical_id, {}).get("Properties", {}).get("CodeUri")
    if code_uri != logical_id:
        errors.append(f"{logical_id}: the built template's CodeUri is {code_uri!r}, not {logical_id!r}")
        continue
    bootstrap = build / code_uri / "bootstrap"
    if not bootstrap.is_file():
        errors.append(f"{logical_id}: no {bootstrap}")
        continue
    head = bootstrap.open("rb").read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] != 2:
        errors.append(f"{logical_id}: {bootstrap} is not a 64-bit ELF file")
        continue
    (e_machine,) = struct.unpack_from("<H", head, 18)
    if e_machine != machine:
        errors.append(f"{logical_id}: {bootstrap} is for ELF machine {e_machine}, not {machine_name}")
        continue
    built_binary = lambda_dir / binary / "bootstrap"
    if not (built_binary.is_file() and filecmp.cmp(bootstrap, built_binary, shallow=False)):
        errors.append(f"{logical_id}: its bootstrap is not cargo-lambda's build of the '{binary}' binary ({built_binary})")
        continue
    print(f"    {logical_id}: {binary}, {machine_name} ELF, {bootstrap.stat().st_size / 1e6:.1f} MB")

metadata = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
)
functions_dir = (root / "functions").resolve()
crate_binaries = {
    target["name"]: package["name"]
    for package in metadata["packages"]
    if functions_dir in pathlib.Path(package["manifest_path"]).resolve().parents
    for target in package["targets"]
    if "bin" in target["kind"]
}
for binary, package in sorted(crate_binaries.items()):
    if binary not in binaries:
        errors.append(f"crate {package} builds the binary '{binary}', but no function in template.yaml uses it")

if errors:
    print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"    {len(functions)} functions, {len(crate_binaries)} function crates: they agree")
EOF

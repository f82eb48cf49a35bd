#!/usr/bin/env python3
"""The README's picture of the replay report, made from the project's samples.

    scripts/report_picture.py           # writes docs/report-sample.html, docs/report.png
                                        # and docs/report.png.source.sha256
    scripts/report_picture.py --check   # fails when any of them is stale

`vigil replay --report` over examples/events gives docs/report-sample.html
(open it in a browser: it is the real page), with the trace ids zeroed: they
are random per run, and nothing else in the page is. Headless Chromium
photographs that page into docs/report.png, and the page's SHA-256 is
recorded beside the picture.

Pixels differ between machines (fonts, Chromium versions), so --check, which
scripts/test.sh runs, compares what is deterministic: the page a replay of
the samples makes now must be docs/report-sample.html byte for byte, and
the picture must have been taken from that page (the recorded hash). A
change to the report or to the samples therefore fails the test command
until this script is run again.
"""
import difflib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGE = DOCS / "report-sample.html"
PICTURE = DOCS / "report.png"
SOURCE_HASH = DOCS / "report.png.source.sha256"
SAMPLES = "examples/events"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WINDOW = "1400,2300"


def vigil_binary():
    subprocess.run(["cargo", "build", "-q", "--bin", "vigil"], cwd=ROOT, check=True)
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    return Path(meta["target_directory"]) / "debug" / "vigil"


def normalized(page):
    """The page with its trace ids zeroed (random per run)."""
    page = re.sub(r'"trace_id":"[0-9a-f]{32}"', '"trace_id":"' + "0" * 32 + '"', page)
    return re.sub(r'"xray_trace_id":"1-[0-9a-f]{8}-[0-9a-f]{24}"',
                  '"xray_trace_id":"1-00000000-' + "0" * 24 + '"', page)


def sample_page():
    """The report of the samples, as any machine makes it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        # No VIGIL_* setting of the caller's shapes the picture.
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        subprocess.run([str(vigil_binary()), "replay", "--quiet", "--report", str(out), SAMPLES],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        return normalized(out.read_text(encoding="utf-8"))


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photograph():
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={WINDOW}",
                        "--virtual-time-budget=5000", f"--screenshot={PICTURE}", PAGE.resolve().as_uri()],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def check():
    page = sample_page()
    if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != page:
        old = PAGE.read_text(encoding="utf-8").splitlines() if PAGE.exists() else []
        diff = list(difflib.unified_diff(old, page.splitlines(), str(PAGE), "now", lineterm="", n=0))
        print("\n".join(line[:300] for line in diff[:40]), file=sys.stderr)
        sys.exit(f"{PAGE.relative_to(ROOT)} is stale: run scripts/report_picture.py")
    recorded = SOURCE_HASH.read_text().split()[0] if SOURCE_HASH.exists() else ""
    if not PICTURE.exists() or recorded != sha256(PAGE):
        sys.exit(f"{PICTURE.relative_to(ROOT)} was not taken from {PAGE.name}: run scripts/report_picture.py")
    print(f"{PICTURE.relative_to(ROOT)} and {PAGE.relative_to(ROOT)} match the report of {SAMPLES}")


def write():
    PAGE.write_text(sample_page(), encoding="utf-8")
    photograph()
    SOURCE_HASH.write_text(f"{sha256(PAGE)}  {PAGE.name}\n")
    print(f"wrote {PAGE.relative_to(ROOT)}, {PICTURE.relative_to(ROOT)} and {SOURCE_HASH.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        check()
    elif sys.argv[1:]:
        sys.exit(__doc__)
    else:
        write()

#!/usr/bin/env python3
"""The HTML report of `vigil replay --report` in a real browser.

Headless Chromium (Debian's package: scripts/lib.sh ensure_chromium) loads
reports made by the real `vigil` binary and is driven over the DevTools
protocol, with real mouse clicks and typing:

1. the report of the project's samples renders with no JavaScript error, no
   console error (a Content-Security-Policy violation is one) and no network
   request; its counts equal the replay's own summary and JSON lines;
   filtering by severity (a click), account (the select), text (typing) and
   rule (the URL's hash) shows exactly the alerts the JSON lines say, and a
   clicked row opens on its console link and trace id;
2. the report of hostile events (cli/tests/fixtures/hostile-events.json:
   <script>, onerror and </script> payloads in user names, titles,
   descriptions, request parameters) shows the payloads as text, and none of
   them runs, not even when every row is opened or a filter carries one.

usage: scripts/report_browser_test.py     (exit 1 on any failed check)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import websocket  # websocket-client, installed into .venv by scripts/lib.sh

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
]
HOSTILE = ROOT / "cli" / "tests" / "fixtures" / "hostile-events.json"
PAYLOADS = [
    "<script>document.title='pwned';window.__vigil_pwned=1</script>",
    "\"><img src=x onerror=\"document.title='pwned';window.__vigil_pwned=2\">",
    "</script><script>window.__vigil_pwned=3</script><!--",
    "'><svg onload=window.__vigil_pwned=4>",
]


class CheckFailed(Exception):
    pass


CHECKS = []


def check(condition, what):
    if not condition:
        raise CheckFailed(what)
    CHECKS.append(what)


def vigil_binary():
    """Builds the CLI (a no-op after `cargo test`) and returns its path."""
    subprocess.run(["cargo", "build", "-q", "--bin", "vigil"], cwd=ROOT, check=True)
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    return Path(meta["target_directory"]) / "debug" / "vigil"


def replay(vigil, inputs, report):
    """Replays with JSON lines on stdout and the summary on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    done = subprocess.run([str(vigil), "replay", "--output", "json", "--report", str(report), *map(str, inputs)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise CheckFailed(f"vigil replay exited {done.returncode}: {done.stderr}")
    lines = [json.loads(line) for line in done.stdout.split("\n") if line]
    return lines, summary_counts(done.stderr)


def summary_counts(text):
    head = next(l for l in text.splitlines() if l.startswith("Replayed "))
    m = re.match(r"Replayed (\d+) events from (\d+) files: (\d+) findings, (\d+) alerts, (\d+) errors", head)
    counts = dict(zip(["events", "files", "findings", "alerts", "errors"], map(int, m.groups())))
    storms = re.search(r"^Storm summaries: (\d+)", text, re.M)
    counts["storm-summaries"] = int(storms.group(1)) if storms else 0
    for prefix, key in (("By severity:", "severity-"), ("By outcome:", "decision-")):
        line = next((l for l in text.splitlines() if l.startswith(prefix)), prefix)
        for name, n in re.findall(r"(\w+)=(\d+)", line[len(prefix):]):
            counts[key + name] = int(n)
    return counts


class Page:
    """One headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="vigil-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def _port(self):
        port_file = Path(self.profile) / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                return int(port_file.read_text().split()[0])
            if self.proc.poll() is not None:
                raise CheckFailed("chromium exited at start")
            time.sleep(0.1)
        raise CheckFailed("chromium did not open its DevTools port")

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method, **params):
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise CheckFailed(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(json.loads(self.ws.recv()))
        raise CheckFailed(f"no {method} in {timeout} s")

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise CheckFailed(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, url):
        # Through about:blank, so that a URL differing only in its hash loads anew.
        for step in ("about:blank", url):
            self.events.clear()
            self.call("Page.navigate", url=step)
            self.wait_for("Page.loadEventFired")
        for _ in range(100):
            if self.eval("document.body && document.body.getAttribute('data-ready')") == "1":
                return
            time.sleep(0.05)
        raise CheckFailed(f"{url}: the page's script never finished")

    def problems(self, page_url):
        """JavaScript exceptions, console errors, dialogs and network requests so far."""
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p["exceptionDetails"])[:300])
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append("console: " + p["entry"]["text"])
            elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append("console." + p["type"])
            elif method == "Page.javascriptDialogOpening":
                out.append("dialog: " + p.get("message", ""))
            elif method == "Network.requestWillBeSent" and p["request"]["url"].split("#")[0] != page_url:
                out.append("network: " + p["request"]["url"])
        return out

    def click(self, selector):
        """A real left click in the middle of the element (scrolled into view)."""
        x, y = self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center', inline: 'start'});"
            " const r = e.getBoundingClientRect(); return [r.x + Math.min(r.width / 2, 24), r.y + r.height / 2]; })()")
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_into(self, selector, text):
        self.click(selector)
        self.call("Input.insertText", text=text)

    def visible_rows(self):
        return self.eval("[...document.querySelectorAll('#alert-rows tr.alert')].filter(r => !r.hidden).length")


def account_label(line):
    a = line["account"]
    return f"{a['name']} ({a['id']})" if a["name"] else a["id"]


def rule_label(line):
    return line["rule"]["title"] if line["rule"] else line["finding_type"]


def search_text(line):
    """What the page's search box looks through, as the report builds it."""
    actor = line["actor"] or {}
    resource = line["resource"]
    parts = [line["title"], rule_label(line), line["rule"]["id"] if line["rule"] else line["finding_type"],
             actor.get("name") or "", account_label(line), line["region"],
             f"{resource['id']} ({resource['type']})" if resource else "",
             actor.get("source_ip") or line["remote_ip"] or "", actor.get("access_key_id") or ""]
    return "\n".join(parts).lower()


def check_counts(page, counts, alerts):
    shown = page.eval("Object.fromEntries([...document.querySelectorAll('[data-count]')]"
                      ".map(e => [e.getAttribute('data-count'), Number(e.textContent)]))")
    for key, n in counts.items():
        check(shown.get(key) == n, f"the page's {key} is the summary's {n} (page: {shown.get(key)})")
    for sev in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"):
        n = sum(1 for a in alerts if a["severity"] == sev)
        check(shown.get(f"alerts-{sev}") == n, f"the page's {sev} alerts are the JSON lines' {n}")
    check(page.eval("document.querySelectorAll('#alert-rows tr.alert').length") == len(alerts),
          "one table row per alerted finding")


def check_filters(page, url, alerts):
    high = sum(1 for a in alerts if a["severity"] == "HIGH")
    page.click('#severity-filter button[data-severity="HIGH"]')
    check(page.visible_rows() == high, f"a click on HIGH shows the {high} HIGH alerts")
    check(page.eval("document.getElementById('shown-count').textContent") == str(high), "the shown count follows")
    check(page.eval("location.hash") == "#severity=HIGH", "the filter is in the URL's hash")
    check(page.eval("[...document.querySelectorAll('#alert-rows tr.alert')].filter(r => !r.hidden)"
                    ".every(r => r.querySelector('.sev').textContent === 'HIGH')"), "every row shown is HIGH")
    page.click('#severity-filter button[data-severity="HIGH"]')
    check(page.visible_rows() == len(alerts), "a second click shows every alert again")
    account = account_label(alerts[0])
    page.eval(f"(() => {{ const s = document.getElementById('filter-account'); s.value = {json.dumps(account)};"
              " s.dispatchEvent(new Event('change', {bubbles: true})); })()")
    n = sum(1 for a in alerts if account_label(a) == account)
    check(page.visible_rows() == n, f"account {account} shows its {n} alerts")
    page.click("#filter-clear")
    query = "deploy-bot"
    page.type_into("#filter-q", query)
    n = sum(1 for a in alerts if query in search_text(a))
    check(n > 0 and page.visible_rows() == n, f"typing {query!r} shows the {n} alerts that mention it")
    page.click("#filter-clear")
    rule = rule_label(alerts[-1])
    page.open(url + "#" + urllib.parse.urlencode({"rule": rule}, quote_via=urllib.parse.quote))
    n = sum(1 for a in alerts if rule_label(a) == rule)
    check(page.visible_rows() == n, f"a link to rule {rule!r} opens on its {n} alerts")


def check_detail(page, alerts):
    page.open(page.eval("location.href.split('#')[0]"))
    with_console = [a for a in alerts if a["console_url"]]
    target = with_console[0]
    index = page.eval("[...document.querySelectorAll('#alert-rows tr.alert td.title')].map(t => t.textContent)"
                      f".indexOf({json.dumps(target['title'][:200])})")
    check(index >= 0, "the alert is in the table")
    page.click(f"#alert-rows tr.alert:nth-of-type({2 * index + 1})")
    detail = page.eval(f"(() => {{ const d = document.querySelectorAll('#alert-rows tr.alert')[{index}].nextElementSibling;"
                       " const a = d.querySelector('a.console'); return {hidden: d.hidden, text: d.innerText, href: a && a.href}; })()")
    check(not detail["hidden"], "a click opens the row")
    # A replay records spans only when it exports them (OTLP endpoint set);
    # without, a line has no trace id and the row names none.
    if target["trace_id"]:
        check(target["trace_id"] in detail["text"], "the row shows its trace id")
    check(target["finding_id"] in detail["text"], "the row shows its finding id")
    check(detail["href"] == target["console_url"], "the row links to its console page")


def samples_report(vigil, work):
    report = work / "samples.html"
    lines, counts = replay(vigil, [ROOT / "examples" / "events"], report)
    alerts = [l for l in lines if l["kind"] == "finding" and l["decision"] == "alerted"]
    url = report.resolve().as_uri()
    page = Page()
    try:
        page.open(url)
        check(page.problems(url) == [], f"the samples' report loads clean: {page.problems(url)}")
        check(page.eval("document.body.getAttribute('data-js-errors')") is None, "no error reached window.onerror")
        check_counts(page, counts, alerts)
        check_filters(page, url, alerts)
        check_detail(page, alerts)
        check(page.problems(url) == [], f"no error, dialog or request while filtering: {page.problems(url)}")
    finally:
        page.close()


def check_nothing_ran(page, when):
    state = page.eval("({title: document.title, pwned: window.__vigil_pwned === undefined ? null : window.__vigil_pwned,"
                      " injected: document.querySelectorAll('img, iframe, object, embed, svg:not(.chart)').length,"
                      " scripts: document.scripts.length})")
    check(state == {"title": "Vigil replay report", "pwned": None, "injected": 0, "scripts": 2},
          f"no hostile markup became an element or ran ({when}): {state}")


def hostile_report(vigil, work):
    report = work / "hostile.html"
    lines, _ = replay(vigil, [HOSTILE], report)
    url = report.resolve().as_uri()
    page = Page()
    try:
        page.open(url)
        time.sleep(0.5)  # an injected <img onerror> would have fired by now
        check_nothing_ran(page, "on load")
        n = page.eval("document.querySelectorAll('#alert-rows tr.alert').length")
        for i in range(n):
            page.click(f"#alert-rows tr.alert:nth-of-type({2 * i + 1})")
        time.sleep(0.3)
        check_nothing_ran(page, "with every row open")
        text = page.eval("document.body.innerText")
        for payload in PAYLOADS:
            check(payload in text, f"the payload shows as text: {payload}")
        actor = lines[0]["actor"]["name"]
        page.open(url + "#" + urllib.parse.urlencode({"actor": actor, "q": PAYLOADS[1]}, quote_via=urllib.parse.quote))
        time.sleep(0.3)
        check_nothing_ran(page, "with payloads in the URL's hash")
        page.open(url + "#" + urllib.parse.urlencode({"actor": actor}, quote_via=urllib.parse.quote))
        expected = sum(1 for l in lines if l["decision"] == "alerted" and (l["actor"] or {}).get("name") == actor)
        check(page.visible_rows() == expected, "filtering on a hostile actor name works like any other")
        check(page.problems(url) == [], f"no error, dialog or request: {page.problems(url)}")
    finally:
        page.close()


def main():
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"{CHROMIUM} is missing: scripts/lib.sh ensure_chromium installs it")
    vigil = vigil_binary()
    work = Path(tempfile.mkdtemp(prefix="vigil-report-test-"))
    try:
        samples_report(vigil, work)
        hostile_report(vigil, work)
    except CheckFailed as e:
        print(f"report browser test FAILED: {e}", file=sys.stderr)
        print(f"({len(CHECKS)} checks passed before it; reports kept in {work})", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"report browser test: {len(CHECKS)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Renders the CloudWatch dashboard of template.yaml as an operator would see
it after the project's samples went through Vigil: every widget in its place,
with the figures its query gives over the metrics of a replay.

The layout, titles and queries come from the template's dashboard JSON; the
figures from the Embedded Metric Format lines that the real telemetry code
writes during `VIGIL_METRICS=emf vigil replay examples/events` (the same
lines a deployed function writes to its log stream). Each widget's Metrics
Insights query (`SELECT SUM(m) FROM SCHEMA(Vigil, dims) GROUP BY d ORDER BY
SUM() DESC LIMIT n`) is evaluated over those lines, as CloudWatch would over
the same data. Time series are drawn as their totals over the replay (a
replay takes a second: there is no curve to draw). What a replay cannot
show is said on the widget: AWS/Lambda and AWS/SQS metrics, and latency,
which differs on every machine and so would make the picture unstable.

scripts/test.sh regenerates the picture and fails if it differs from the
committed one, so neither the layout nor the figures can drift from what
`sam deploy` creates and what the pipeline counts.

Usage: dashboard_picture.py TEMPLATE OUTPUT.svg
"""
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from html import escape
from pathlib import Path

import yaml  # PyYAML, installed with cfn-lint in .venv

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = "examples/events"


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation tags (!Sub, !Ref, ...) as plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


CfnLoader.add_multi_constructor("!", _tag)

CELL_W, CELL_H, PAD = 40, 34, 4
COLORS = {"metric": "#fbfcfd", "text": "#f4f6f8", "alarm": "#fbfcfd"}
SEVERITY_COLORS = {"CRITICAL": "#8b1a1a", "HIGH": "#d9412b", "MEDIUM": "#ee9a2f",
                   "LOW": "#e6c229", "INFORMATIONAL": "#8aa0b6"}
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITY_COLORS)}
SERIES_COLORS = ["#1f5fa8", "#2e9e6b", "#8e5bb5", "#d9822b", "#3a8fb7", "#b5475b"]


def dashboard_body(template_path):
    with open(template_path) as f:
        template = yaml.load(f, Loader=CfnLoader)
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::CloudWatch::Dashboard":
            body = resource["Properties"]["DashboardBody"]
            # ${AWS::Region}, ${Function} ... are CloudFormation's to fill in.
            return json.loads(re.sub(r"\$\{[^}]+\}", "X", body))
    sys.exit("no AWS::CloudWatch::Dashboard in " + template_path)


def replay_metrics():
    """Every datapoint of the samples' replay: (namespace, metric, dimensions, value)."""
    subprocess.run(["cargo", "build", "-q", "--bin", "vigil"], cwd=ROOT, check=True)
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                                     cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    vigil = Path(meta["target_directory"]) / "debug" / "vigil"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "OTEL_"))}
    env["VIGIL_METRICS"] = "emf"
    done = subprocess.run([str(vigil), "replay", "--quiet", SAMPLES], cwd=ROOT, env=env,
                          check=True, capture_output=True, text=True)
    points = []
    for line in done.stderr.split("\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        # EMF lines among the JSON log lines on stderr.
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dims in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    key = {d: record[d] for d in dims}
                    points.append((directive["Namespace"], metric["Name"], key, record[metric["Name"]]))
    return points


INSIGHTS = re.compile(
    r"SELECT SUM\((\w+)\) FROM SCHEMA\((\w+)((?:, *\w+)*)\)"
    r"(?: GROUP BY (\w+))?(?: ORDER BY SUM\(\) (DESC|ASC))?(?: LIMIT (\d+))?$")


def insights(expression, points):
    """A Metrics Insights SUM query over the points: {group label: total}, or None when
    the query is not one of that form."""
    m = INSIGHTS.match(expression.strip())
    if not m:
        return None
    metric, namespace, dims, group, order, limit = m.groups()
    schema = {d.strip() for d in dims.split(",") if d.strip()}
    totals = defaultdict(float)
    for ns, name, key, value in points:
        # SCHEMA(ns, a, b) matches metrics with exactly these dimensions.
        if ns == namespace and name == metric and set(key) == schema:
            totals[key[group] if group else metric] += value
    rows = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return rows[: int(limit)] if limit else rows


def widget_series(w, points):
    """What a metric widget shows: [(label, value)] and notes about what it cannot."""
    series, notes = [], []
    for m in w.get("properties", {}).get("metrics", []):
        first = m[0]
        if isinstance(first, dict) and "expression" in first:
            rows = insights(first["expression"], points)
            if rows is None:
                notes.append("not drawn: measured live, it differs on every machine")
                continue
            label = first.get("label")
            series += [(label or group, value) for group, value in rows]
        else:
            notes.append(f"{first} metric: none in a replay")
    # Severities read best in their own order, most severe first.
    if series and all(label in SEVERITY_RANK for label, _ in series):
        series.sort(key=lambda kv: SEVERITY_RANK[kv[0]])
    return series, sorted(set(notes))


def number(v):
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def bar_color(label, i):
    return SEVERITY_COLORS.get(label, SERIES_COLORS[i % len(SERIES_COLORS)])


def draw_bars(out, x, y, width, height, series):
    """Horizontal bars, one per series, with its label and total."""
    top = max((v for _, v in series), default=0) or 1
    row_h = min(18, max(12, (height - 6) // max(len(series), 1)))
    label_w = min(230, width * 0.45)
    chars = int(label_w / 6.3)
    for i, (label, value) in enumerate(series[: int((height - 4) // row_h)]):
        ty = y + i * row_h
        bw = max(2, (width - label_w - 50) * value / top) if value else 0
        out.append(f'<text x="{x}" y="{ty + row_h - 5}" font-size="11" fill="#333">{escape(label if len(label) <= chars else label[: chars - 1] + "…")}</text>')
        out.append(f'<rect x="{x + label_w:.1f}" y="{ty + 3}" width="{bw:.1f}" height="{row_h - 7}" rx="2" '
                   f'fill="{bar_color(label, i)}"/>')
        out.append(f'<text x="{x + label_w + bw + 6:.1f}" y="{ty + row_h - 5}" font-size="11" '
                   f'font-weight="bold" fill="#1d2733">{number(value)}</text>')


def widget_body(out, w, box, points):
    x, y, ww, hh = box
    props = w.get("properties", {})
    if w["type"] == "text":
        lines = [l.lstrip("# ") for l in props.get("markdown", "").splitlines() if l.strip()]
        for i, line in enumerate(lines[:3]):
            size, weight = (15, "bold") if i == 0 else (11, "normal")
            out.append(f'<text x="{x + 10}" y="{y + 22 + i * 17}" font-size="{size}" font-weight="{weight}" '
                       f'fill="#1d2733">{escape(line[:140])}</text>')
        return
    out.append(f'<text x="{x + 10}" y="{y + 20}" font-size="13" font-weight="bold" fill="#1d2733">'
               f'{escape(props.get("title", ""))}</text>')
    if w["type"] == "alarm":
        n = len(props.get("alarms", []))
        out.append(f'<text x="{x + 10}" y="{y + 42}" font-size="11" fill="#5b6878">{n} alarms on Vigil\'s own '
                   f'health: their state shows in the console (a replay raises none)</text>')
        return
    series, notes = widget_series(w, points)
    view = props.get("view", "")
    caption = "total over the replay of the samples" + ("; a time series in the console" if view == "timeSeries" else "")
    out.append(f'<text x="{x + 10}" y="{y + 35}" font-size="10" fill="#5b6878">{caption}</text>')
    body_h = hh - 52 - 14 * len(notes)
    if series:
        draw_bars(out, x + 10, y + 42, ww - 20, body_h, series)
    elif not notes:
        notes = ["no data in a replay of the samples"]
    for i, note in enumerate(notes):
        out.append(f'<text x="{x + 10}" y="{y + hh - 10 - 14 * i}" font-size="10.5" fill="#5b6878">{escape(note)}</text>')


def render(body, points):
    widgets = body["widgets"]
    rows = max(w["y"] + w["height"] for w in widgets)
    width, height = 24 * CELL_W, rows * CELL_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect width="{width}" height="{height}" fill="#eef1f5"/>',
    ]
    for w in widgets:
        x, y = w["x"] * CELL_W + PAD, w["y"] * CELL_H + PAD
        ww, hh = w["width"] * CELL_W - 2 * PAD, w["height"] * CELL_H - 2 * PAD
        out.append(f'<rect x="{x}" y="{y}" width="{ww}" height="{hh}" rx="4" '
                   f'fill="{COLORS.get(w["type"], "#fff")}" stroke="#c9d3de"/>')
        widget_body(out, w, (x, y, ww, hh), points)
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    svg = render(dashboard_body(sys.argv[1]), replay_metrics())
    with open(sys.argv[2], "w") as f:
        f.write(svg)

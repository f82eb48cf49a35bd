#!/usr/bin/env python3
"""Renders the CloudWatch dashboard of template.yaml as an SVG layout picture.

The picture in docs/operations.md is made from the template, not drawn by hand:
scripts/test.sh regenerates it and fails if it differs from the committed one,
so the documentation cannot drift from what `sam deploy` creates.

Usage: dashboard_picture.py TEMPLATE OUTPUT.svg
"""
import json
import re
import sys
from html import escape

import yaml  # PyYAML, installed with cfn-lint in .venv


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
COLORS = {"metric": "#e8f1fb", "text": "#f4f4f4", "alarm": "#fdecea"}


def dashboard_body(template_path):
    with open(template_path) as f:
        template = yaml.load(f, Loader=CfnLoader)
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::CloudWatch::Dashboard":
            body = resource["Properties"]["DashboardBody"]
            # ${AWS::Region}, ${Function} ... are CloudFormation's to fill in.
            return json.loads(re.sub(r"\$\{[^}]+\}", "X", body))
    sys.exit("no AWS::CloudWatch::Dashboard in " + template_path)


def widget_lines(w):
    props = w.get("properties", {})
    if w["type"] == "text":
        text = props.get("markdown", "").splitlines()[0].lstrip("# ")
        return [text], ""
    lines = []
    for m in props.get("metrics", []):
        first = m[0]
        if isinstance(first, dict):
            expr = first.get("expression", "")
            label = first.get("label") or expr.split(" FROM ")[0].replace("SELECT ", "")
            lines.append(label)
        else:
            lines.append(f"{first} {m[1]}")
    if w["type"] == "alarm":
        lines = [f"{len(props.get('alarms', []))} alarms"]
    return lines, props.get("title", "")


def render(body):
    widgets = body["widgets"]
    rows = max(w["y"] + w["height"] for w in widgets)
    width, height = 24 * CELL_W, rows * CELL_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for w in widgets:
        x, y = w["x"] * CELL_W + PAD, w["y"] * CELL_H + PAD
        ww, hh = w["width"] * CELL_W - 2 * PAD, w["height"] * CELL_H - 2 * PAD
        lines, title = widget_lines(w)
        out.append(
            f'<rect x="{x}" y="{y}" width="{ww}" height="{hh}" rx="4" '
            f'fill="{COLORS.get(w["type"], "#eee")}" stroke="#8aa4c8"/>'
        )
        ty = y + 20
        if title:
            out.append(f'<text x="{x + 10}" y="{ty}" font-size="14" font-weight="bold">{escape(title)}</text>')
            ty += 20
        view = w.get("properties", {}).get("view")
        if view:
            out.append(f'<text x="{x + ww - 10}" y="{y + 20}" font-size="11" fill="#557" text-anchor="end">{escape(view)}</text>')
        for line in lines[:5]:
            out.append(f'<text x="{x + 10}" y="{ty}" font-size="11" fill="#333">{escape(line[:110])}</text>')
            ty += 16
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    svg = render(dashboard_body(sys.argv[1]))
    with open(sys.argv[2], "w") as f:
        f.write(svg)

#!/usr/bin/env python3
"""Checks that Vigil's code reads one way (docs/architecture.md).

usage: scripts/check_architecture.py            # every check, exit 1 on any finding

1. Layers: each top-level module of the `vigil` crate (shared/src) may use
   only the modules listed before it in LAYERS (through `crate::` paths).
2. Cycles: no import cycle between the files of any crate of the workspace.
3. Length: no function longer than MAX_FN_LINES lines outside tests, in the
   library crates.

Test code (`#[cfg(test)]` modules, tests/ and benches/ folders) is not
checked: tests may reach anywhere.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The `vigil` crate's modules, lowest first: each may use only those above
# it in this list. `model` and `detect` are the vigil-model and vigil-detect
# crates re-exported, so they sit below everything.
LAYERS = [
    "text", "json", "env", "aws", "documents", "model", "detect",
    "accounts", "ocsf", "sources", "enrich", "route", "render", "sinks",
    "dedup", "correlate", "config", "pipeline", "telemetry", "logfiles", "notify", "app",
]

# Crates whose source is checked for cycles and function length.
LIBRARY_CRATES = ["model/src", "detect/src", "shared/src", "cli/src"]
CYCLE_CRATES = LIBRARY_CRATES + ["tests/src"] + [
    os.path.join("functions", f, "src") for f in sorted(os.listdir(os.path.join(ROOT, "functions")))
]
MAX_FN_LINES = 80


def strip_tests(text):
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*(\{|;)", text)
    return text[: m.start()] if m else text


def without_comments(text):
    return re.sub(r"//[^\n]*", "", text)


def module_files(src):
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if not n.endswith(".rs"):
                continue
            p = os.path.join(root, n)
            rel = os.path.relpath(p, src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            if rel and rel[0] == "bin" or rel and rel[-1] == "tests":
                continue
            files[tuple(rel)] = p
    return files


def referenced_paths(mod, path, text):
    """Module paths (as lists) a file names through crate:: and super::."""
    paths = re.findall(r"\bcrate::((?:\w+::)*\w+)", text)
    for pre, grp in re.findall(r"\bcrate::((?:\w+::)*)\{([^}]*)\}", text):
        for g in grp.split(","):
            g = g.strip()
            if g and g != "self":
                paths.append(pre + g)
        paths.append(pre.rstrip(":"))
    # `super` is the parent of the file's module, whether the file is
    # `a/b.rs` (module a::b, parent a) or `a/mod.rs` (module a, parent root).
    parent = list(mod[:-1])
    for sp in re.findall(r"\bsuper::((?:\w+::)*\w+)", text):
        paths.append("::".join(parent + sp.split("::")))
    for grp in re.findall(r"\bsuper::\{([^}]*)\}", text):
        paths += ["::".join(parent + g.strip().split("::")) for g in grp.split(",") if g.strip()]
    return [p.split("::") for p in paths if p]


def edges(files):
    out = {k: set() for k in files}
    for mod, path in files.items():
        text = without_comments(strip_tests(open(path, encoding="utf-8").read()))
        for parts in referenced_paths(mod, path, text):
            for i in range(len(parts), 0, -1):
                t = tuple(parts[:i])
                if t in files:
                    if t != mod:
                        out[mod].add(t)
                    break
    return out


def sccs(graph):
    index, low, stack, on, res, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            res.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return [c for c in res if len(c) > 1]


def check_layers(problems):
    src = os.path.join(ROOT, "shared/src")
    files = module_files(src)
    rank = {name: i for i, name in enumerate(LAYERS)}
    for mod, targets in sorted(edges(files).items()):
        if not mod:
            continue
        top = mod[0]
        if top not in rank:
            problems.append(f"layers: shared/src module `{top}` is not in LAYERS")
            continue
        for t in sorted(targets):
            if t and t[0] != top and rank.get(t[0], -1) > rank[top]:
                problems.append(
                    f"layers: `{'::'.join(mod)}` uses `{'::'.join(t)}`, which is above it"
                )


def check_cycles(problems):
    for crate in CYCLE_CRATES:
        src = os.path.join(ROOT, crate)
        if not os.path.isdir(src):
            continue
        for comp in sccs(edges(module_files(src))):
            names = ", ".join(sorted("::".join(m) or "lib" for m in comp))
            problems.append(f"cycle in {crate}: {names}")


FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def code_only(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//")[0]


def function_lengths(path):
    lines = strip_tests(open(path, encoding="utf-8").read()).split("\n")
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if m:
            depth, started, j = 0, False, i
            while j < len(lines):
                s = code_only(lines[j])
                if ";" in s and not started and "{" not in s:
                    break
                for c in s:
                    if c == "{":
                        depth += 1
                        started = True
                    elif c == "}":
                        depth -= 1
                if started and depth == 0:
                    break
                j += 1
            if started:
                yield m.group(6), i + 1, j - i + 1
        i += 1


def check_lengths(problems):
    for crate in LIBRARY_CRATES:
        for root, _, names in os.walk(os.path.join(ROOT, crate)):
            for n in sorted(names):
                if not n.endswith(".rs") or n == "tests.rs":
                    continue
                path = os.path.join(root, n)
                for name, line, length in function_lengths(path):
                    if length > MAX_FN_LINES:
                        rel = os.path.relpath(path, ROOT)
                        problems.append(f"length: {rel}:{line} `{name}` is {length} lines")


def main():
    problems = []
    check_layers(problems)
    check_cycles(problems)
    check_lengths(problems)
    for p in problems:
        print(p)
    print(f"architecture: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

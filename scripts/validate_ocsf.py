#!/usr/bin/env python3
"""Validates OCSF event documents against the official schema of the version
each one declares.

Usage: validate_ocsf.py [PATH ...]
       validate_ocsf.py --version    # the validators' versions, and OCSF's

Each PATH is a JSON document, a file of JSON documents one per line, or a
folder of such files (`*.json`, `*.jsonl`); `-` or no PATH reads stdin. Every
document is checked twice, and every problem is printed as
`DOCUMENT: ATTRIBUTE.PATH: what is wrong`; the exit status is 1 when any
document has a problem, 2 when the validators themselves are missing.

1. Strictly, against the JSON Schema that `ocsf-json-schema` generates from
   the official OCSF schema export of the declared `metadata.version`
   (schema.ocsf.io/<version>/export/schema, shipped in that package), for the
   class of `class_uid` with the profiles listed in `metadata.profiles`:
   required attributes, types, enums, `at_least_one` constraints, and no
   attribute the class, its objects or its declared profiles do not define
   (so a profile's attribute without the profile declared is an error).
   Attributes the schema marks deprecated are errors too.
2. With `pydantic-ocsf`'s model of the same version and class, which checks
   each enum id against its label (`severity_id` 4 with `severity` "High").

Its models alone are not enough: they accept unknown attributes, know no
profiles, and the 1.3.0 model lacks attributes such as `time` and `class_uid`.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

try:
    import jsonschema
    import pydantic
    from ocsf._exceptions import OCSFError
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema, get_packaged_versions
except ImportError as missing:  # pragma: no cover - the message is the point
    print(
        f"validate_ocsf.py needs jsonschema, pydantic-ocsf and ocsf-json-schema "
        f"(scripts/lib.sh PY_TOOLS; `source scripts/lib.sh && ensure_venv`): {missing}",
        file=sys.stderr,
    )
    sys.exit(2)


@dataclass
class Document:
    """One document to check, and where it came from (`file:line`)."""

    name: str
    value: Any


def read_documents(paths: list[str]) -> Iterator[Document]:
    """Every document in `paths`, in order; stdin when there are none."""
    if not paths or paths == ["-"]:
        yield from documents_in_text("<stdin>", sys.stdin.read())
        return
    for raw in paths:
        path = Path(raw)
        files = sorted(
            p for p in path.iterdir() if p.suffix in (".json", ".jsonl")
        ) if path.is_dir() else [path]
        for file in files:
            yield from documents_in_text(str(file), file.read_text(encoding="utf-8"))


def documents_in_text(source: str, text: str) -> Iterator[Document]:
    """A whole-file JSON document, else one document per non-empty line."""
    try:
        yield Document(source, json.loads(text))
        return
    except json.JSONDecodeError:
        pass
    # Not splitlines(): JSON strings may hold U+2028 and other line breaks raw.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        name = f"{source}:{number}"
        try:
            yield Document(name, json.loads(line))
        except json.JSONDecodeError as e:
            yield Document(name, NotJson(str(e)))


@dataclass
class NotJson:
    reason: str


def attribute_path(parts: Any) -> str:
    """`evidences[0].src_endpoint.ip` from jsonschema's path parts."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<document>"


class Schema:
    """The official schema export of one OCSF version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.export = get_ocsf_schema(version)
        self.generator = OcsfJsonSchemaEmbedded(self.export)

    def class_named(self, class_uid: Any) -> dict:
        if not isinstance(class_uid, int) or isinstance(class_uid, bool):
            raise LookupError(f"class_uid must be an integer, not {class_uid!r}")
        try:
            name = self.generator.lookup_class_name_from_uid(class_uid)
        except ValueError:
            raise LookupError(f"OCSF {self.version} has no class {class_uid}") from None
        return self.export["classes"][name]

    def definition_at(self, cls: dict, parts: list) -> dict | None:
        """The class or object definition that holds the attribute at `parts`
        (a path into the document), for messages about that attribute."""
        current: dict | None = cls
        for part in parts:
            if isinstance(part, int) or current is None:
                continue
            attr = current.get("attributes", {}).get(part)
            if attr is None or attr.get("type") != "object_t":
                return None
            current = self.export["objects"].get(attr.get("object_type"))
        return current


@lru_cache(maxsize=None)
def schema_of(version: str) -> Schema:
    return Schema(version)


@lru_cache(maxsize=None)
def validator_for(version: str, class_name: str, profiles: tuple[str, ...]) -> Any:
    """A JSON Schema validator of the class with `profiles`; `deprecated: true`
    (annotation only in JSON Schema) is made an error."""
    schema = schema_of(version).generator.get_class_schema(class_name, list(profiles))

    def deprecated(validator: Any, value: Any, instance: Any, subschema: Any) -> Iterator[Any]:
        if value is True:
            yield jsonschema.ValidationError("deprecated")

    base = jsonschema.Draft202012Validator
    strict = jsonschema.validators.extend(base, {"deprecated": deprecated})
    return strict(schema)


def describe(error: Any, schema: Schema, cls: dict, profiles: tuple[str, ...]) -> list[str]:
    """What is wrong, naming the attribute: `path: message` lines."""
    where = list(error.absolute_path)
    holder = schema.definition_at(cls, where[:-1]) if where else cls
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        owner = schema.definition_at(cls, where) if where else cls
        return [
            f"{attribute_path(where + [name])}: {not_defined(name, owner, profiles, schema.version)}"
            for name in unknown
        ]
    if error.validator == "deprecated":
        attr = (holder or {}).get("attributes", {}).get(where[-1], {}) if where else {}
        note = attr.get("@deprecated", {})
        since = f" since {note['since']}" if "since" in note else ""
        advice = f": {strip_html(note['message'])}" if "message" in note else ""
        return [f"{attribute_path(where)}: deprecated{since}{advice}"]
    if error.validator in ("anyOf", "oneOf") and all(
        set(s) == {"required"} for s in error.validator_value
    ):
        names = [s["required"][0] for s in error.validator_value]
        rule = "at least one" if error.validator == "anyOf" else "exactly one"
        return [f"{attribute_path(where)}: needs {rule} of {', '.join(names)}"]
    return [f"{attribute_path(where)}: {shorten(error.message)}"]


def not_defined(name: str, owner: dict | None, profiles: tuple[str, ...], version: str) -> str:
    attr = (owner or {}).get("attributes", {}).get(name)
    if attr is not None and attr.get("profile") and attr["profile"] not in profiles:
        return (
            f"belongs to the `{attr['profile']}` profile, which metadata.profiles "
            f"does not declare"
        )
    what = (owner or {}).get("caption", "this object")
    return f"not an attribute of {what} in OCSF {version}"


def strip_html(text: str) -> str:
    for tag in ("<code>", "</code>", "<br>", "<strong>", "</strong>"):
        text = text.replace(tag, "")
    return " ".join(text.split())


def shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def check_profiles(cls: dict, declared: Any, version: str) -> tuple[tuple[str, ...], list[str]]:
    """The declared profiles, and what is wrong with the list."""
    if declared is None:
        return (), []
    if not isinstance(declared, list) or not all(isinstance(p, str) for p in declared):
        return (), [f"metadata.profiles: must be a list of profile names, not {declared!r}"]
    problems = [
        f"metadata.profiles: `{p}` is not a profile of {cls['caption']} in OCSF {version}"
        for p in declared
        if p not in cls.get("profiles", [])
    ]
    return tuple(sorted(set(declared))), problems


def pydantic_model(version: str, cls: dict) -> Any:
    module = importlib.import_module(f"ocsf.v{version.replace('.', '_')}.events")
    return getattr(module, "".join(w.capitalize() for w in cls["name"].split("_")))


def pydantic_problems(version: str, cls: dict, value: dict) -> list[str]:
    try:
        model = pydantic_model(version, cls)
    except (ImportError, AttributeError, OCSFError):
        return [f"<document>: pydantic-ocsf has no model of {cls['caption']} in OCSF {version}"]
    try:
        model.model_validate(value)
    except pydantic.ValidationError as e:
        return [
            f"{attribute_path(err['loc'])}: {shorten(err['msg'])} (pydantic-ocsf)"
            for err in e.errors()
        ]
    return []


def problems_of(value: Any) -> list[str]:
    """Everything wrong with one document; empty when it is valid."""
    if isinstance(value, NotJson):
        return [f"<document>: not JSON: {value.reason}"]
    if not isinstance(value, dict):
        return ["<document>: an OCSF event is a JSON object"]
    metadata = value.get("metadata")
    version = metadata.get("version") if isinstance(metadata, dict) else None
    if not isinstance(version, str):
        return ["metadata.version: missing: the document must say which OCSF version it is"]
    if version not in get_packaged_versions():
        known = ", ".join(sorted(get_packaged_versions()))
        return [f"metadata.version: {version!r} is not a released OCSF version ({known})"]
    schema = schema_of(version)
    try:
        cls = schema.class_named(value.get("class_uid"))
    except LookupError as e:
        return [f"class_uid: {e}"]
    profiles, problems = check_profiles(cls, metadata.get("profiles"), version)
    validator = validator_for(version, cls["name"], profiles)
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        problems += describe(error, schema, cls, profiles)
    return problems + pydantic_problems(version, cls, value)


def main(argv: list[str]) -> int:
    if argv == ["--version"]:
        from importlib.metadata import version

        tools = ", ".join(
            f"{name} {version(name)}" for name in ("pydantic-ocsf", "ocsf-json-schema", "jsonschema")
        )
        print(f"{tools}; OCSF {', '.join(sorted(get_packaged_versions()))}")
        return 0
    checked = failed = 0
    for document in read_documents(argv):
        checked += 1
        problems = problems_of(document.value)
        if problems:
            failed += 1
        for problem in problems:
            print(f"{document.name}: {problem}")
    if checked == 0:
        print("validate_ocsf.py: no documents to check", file=sys.stderr)
        return 1
    print(f"{checked - failed} valid, {failed} invalid OCSF documents", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

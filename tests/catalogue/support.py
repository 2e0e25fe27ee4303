"""Shared helpers of the catalogue tests: the Intercom descriptions, openapi-core apps, example values.

The example values are built from the action's own in-schema (the description's examples where they are
valid, else minimal values synthesised from the schema), so every test message is one a user could send.
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = Path(os.environ.get("INTERCOM_SPEC_DIR") or ROOT.parent / "shared" / "intercom")
CURRENT = SPEC_DIR / "api.intercom.io.2.8.yaml"
LEGACY = SPEC_DIR / "api.intercom.io.2.8.2023-03-03.yaml"
NEWEST = SPEC_DIR / "api.intercom.io.2.16.yaml"
BASE_URL = "https://api.intercom.io"  # the description's first server: openapi-core matches it


@cache
def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


@cache
def operations() -> tuple[dict[str, Any], ...]:
    """The 100 actions of API 2.8 (operations.json rows; `description` says which file describes each)."""
    rows = json.loads((SPEC_DIR / "operations.json").read_text(encoding="utf-8"))["operations"]
    return tuple({**row, "description": "2.8" if row["in_current_spec"] else "2023"} for row in rows)


def _call(method: str, path: str) -> tuple[str, str]:
    return method.upper(), re.sub(r"\{[^{}]+\}", "{}", path)


@cache
def newest_operations() -> tuple[dict[str, Any], ...]:
    """The 2.16 operations without a 2.8 counterpart (same method and path, parameter names ignored), in the
    description's order, as rows like operations.json's: found here from the description itself."""
    from tools.generate import derived_action_id

    known = {_call(row["method"], row["path"]) for row in operations()}
    rows = []
    for path, item in load_yaml(NEWEST)["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch") and _call(method, path) not in known:
                rows.append(
                    {
                        "action": op.get("operationId") or derived_action_id(method, path),
                        "title": op.get("summary"),
                        "method": method.upper(),
                        "path": path,
                        "operationId": op.get("operationId"),
                        "in_current_spec": True,
                        "description": "2.16",
                    }
                )
    return tuple(rows)


@cache
def all_operations() -> tuple[dict[str, Any], ...]:
    """Every action of the catalogue: the 100 of 2.8, then the 2.16 ones."""
    return operations() + newest_operations()


DESCRIPTION_FILES = {"2.8": CURRENT, "2023": LEGACY, "2.16": NEWEST}


@cache
def component() -> dict[str, Any]:
    return json.loads((ROOT / "component.json").read_text(encoding="utf-8"))


def schema(action_id: str, kind: str) -> dict[str, Any]:
    return json.loads((ROOT / "schemas" / f"{action_id}.{kind}.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ openapi-core

# Requests are validated against the description as the connector enforces it: Intercom's description with
# the corrections of tools/generate.py applied (CORRECTIONS, each with its reason and evidence; oneOf read as
# anyOf; the schemas the current description references without defining taken from the 2023-03-03
# revision). One exemption is the validator's, not Intercom's:
# lisDataEvents: the required query parameter `filter` is an object serialised form/explode (Intercom
# expects `?user_id=...&type=user`); openapi-core only looks for a query key named `filter`, so it reports it
# missing. The validator gets `filter` as optional, and the test checks the exploded keys against the
# parameter's schema itself (see `exploded_filter_errors`).


def _which(description: bool | str) -> str:
    """A row's `description` ("2.8", "2023", "2.16"); True/False are the older legacy flag."""
    if isinstance(description, bool):
        return "2023" if description else "2.8"
    return description


@cache
def openapi(description: bool | str) -> Any:
    from openapi_core import OpenAPI

    from tools.generate import corrected_description

    which = _which(description)
    spec = copy.deepcopy(corrected_description(SPEC_DIR, DESCRIPTION_FILES[which].name))
    if which == "2.8":
        for param in spec["paths"]["/events"]["get"]["parameters"]:
            if param.get("name") == "filter":
                param["required"] = False
    return OpenAPI.from_dict(spec)


def filter_param_schema() -> dict[str, Any]:
    params = load_yaml(CURRENT)["paths"]["/events"]["get"]["parameters"]
    return next(p for p in params if p.get("name") == "filter")["schema"]


def exploded_filter_errors(query: dict[str, list[str]]) -> list[str]:
    """Validate the form/explode `filter` keys of a /events query against the description's schema."""
    keys = {"user_id", "intercom_user_id", "email"}
    value = {k: v[0] for k, v in query.items() if k in keys}
    return [e.message for e in Draft202012Validator(filter_param_schema()).iter_errors(value)]


def validate_request(prepared: Any, legacy: bool | str) -> None:
    """Raise when the request does not conform to Intercom's description (the row's `description`)."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest

    openapi(_which(legacy)).validate_request(RequestsOpenAPIRequest(prepared))


# ------------------------------------------------------------------------------------ example values


def is_valid(schema: dict[str, Any], value: Any) -> bool:
    """Valid including formats: openapi-core checks them (e.g. `uuid`), so examples must pass them too."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return not any(validator.iter_errors(value))


STRING_FORMATS = {
    "date-time": "2024-01-02T03:04:05Z",
    "date": "2024-01-02",
    "email": "jane@example.com",
    "uri": "https://example.com/x",
    "url": "https://example.com/x",
    "uuid": "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
}


def synthesise(schema: dict[str, Any], depth: int = 0, full: bool = False) -> Any:
    """A small value valid against `schema`: examples first, else required members (all with `full`)."""
    for example in schema.get("examples", []):
        if example is not None and is_valid(schema, example):
            return copy.deepcopy(example)
    if "const" in schema:
        return schema["const"]
    if "default" in schema and is_valid(schema, schema["default"]):
        return schema["default"]
    if schema.get("enum"):
        return next(v for v in schema["enum"] if v is not None)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            for branch in schema[key]:
                if branch.get("type") == "null":
                    continue
                for everything in (False, True):
                    candidate = synthesise({**rest, **branch}, depth + 1, everything)
                    if is_valid(schema, candidate):
                        return candidate
    if "allOf" in schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            merged = {
                **merged,
                **part,
                "properties": {**merged.get("properties", {}), **part.get("properties", {})},
                "required": [*merged.get("required", []), *part.get("required", [])],
            }
        return synthesise(merged, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties", {})
        names = list(props) if full else schema.get("required", [])
        return {name: synthesise(props.get(name, {}), depth + 1) for name in names}
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        return [synthesise(schema.get("items", {}), depth + 1) for _ in range(count)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "string":
        value = STRING_FORMATS.get(schema.get("format", ""), "abc123")
        if len(value) > schema.get("maxLength", len(value)) and schema.get("examples"):
            return schema["examples"][0]  # the format and the length contradict: the length wins
        return value.ljust(schema.get("minLength", 0), "x")
    return "abc123"


def response_example(spec: dict[str, Any], op: dict[str, Any], out_schema: dict[str, Any]) -> Any:
    """The description's success example if it is valid against the out-schema, else a synthesised one."""
    codes = [code for code in op["responses"] if str(code).startswith("2")]
    answer = op["responses"][min(codes)] if codes else op["responses"].get("default", {})
    media = (answer.get("content") or {}).get("application/json") or {}
    candidates = [e.get("value") for e in (media.get("examples") or {}).values()]
    if "example" in media:
        candidates.insert(0, media["example"])
    for candidate in candidates:
        if isinstance(candidate, dict) and is_valid(out_schema, candidate):
            return copy.deepcopy(candidate)
    return synthesise(out_schema)

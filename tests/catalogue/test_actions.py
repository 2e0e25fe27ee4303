"""Every action of the catalogue, end to end in-process: message -> HTTP request -> emitted data.

For each of the 239 actions (100 of API 2.8, 139 of 2.16) a valid message (path, query and header parameters
and the body exercised) runs through `elasticio_sailor.execute` against `responses`; the test asserts the
method, the full URL (path parameters substituted and percent-encoded, query string), the headers, the JSON
body and the emitted data, and validates every captured request against Intercom's OpenAPI description with
openapi-core (the 2023-03-03 revision for the two visitor operations it alone has, the 2.16 description,
as corrected by tools/generate.py, for the 2.16 actions). See support.py for the two narrow exemptions
from validating the current description as published.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import responses
from elasticio_sailor import execute

from tests.catalogue import support

TOKEN = "tok_catalogue_1234567890"
ROWS = {row["action"]: row for row in support.all_operations()}
ACTION_IDS = list(ROWS)
METADATA = {"applicationUid": "app-42", "oihUid": "oih-7", "recordUid": "crm-1"}


@dataclass
class Case:
    """One action's test message and what Intercom must receive."""

    action_id: str
    data: dict[str, Any]
    method: str
    path: str
    query: dict[str, list[str]]
    version: str
    body: Any = None
    has_body: bool = False
    legacy: bool | str = False  # which description validates the request (support.validate_request)
    accept: str = "application/json"
    response: Any = None
    status: int = 200
    kind: str = "json"  # json | empty | binary
    pagination: str | None = None
    items_key: str | None = None
    extra_pages: list[Any] = field(default_factory=list)


def spec_operation(row: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(description, path, operation object) of an operations.json row, found by its operationId (a 2.16
    row by its method and path)."""
    if row["description"] == "2.16":  # as corrected: two path parameters are missing from it as published
        from tools.generate import corrected_description

        spec = corrected_description(support.SPEC_DIR, support.NEWEST.name)
        return spec, row["path"], spec["paths"][row["path"]][row["method"].lower()]
    legacy = not row["in_current_spec"]
    spec = support.load_yaml(support.LEGACY if legacy else support.CURRENT)
    op_id = row["operationId_in_2023_spec" if legacy else "operationId_in_current_spec"]
    for path, item in spec["paths"].items():
        op = item.get(row["method"].lower())
        if isinstance(op, dict) and op.get("operationId") == op_id:
            return spec, path, op
    raise KeyError(op_id)


def query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def path_value(prop: dict[str, Any]) -> Any:
    """A path parameter value; strings get a space and a slash so that encoding is exercised."""
    value = support.synthesise(prop)
    if "integer" in prop.get("type", ()):
        return int(value)
    return f"{value} x/y"


def neutralise_pages(page: Any) -> Any:
    """A response page that is the last one, so the client stops after it."""
    if isinstance(page, dict) and isinstance(page.get("pages"), dict):
        pages = page["pages"]
        pages["next"] = None
        if "total_pages" in pages or "page" in pages:
            pages["page"], pages["total_pages"] = 1, 1
    if isinstance(page, dict) and "next_cursor" in page:  # 2.16 merge history
        page["next_cursor"], page["has_more"] = None, False
    if isinstance(page, dict) and "total_pages" in page and "page" in page:  # 2.16 audiences, snippets
        page["page"], page["total_pages"] = 1, 1
    return page


def build_case(action_id: str, *, flat: bool = False) -> Case:
    row = ROWS[action_id]
    spec, path, op = spec_operation(row)
    in_schema = support.schema(action_id, "in")
    props = in_schema["properties"]
    index = ACTION_IDS.index(action_id)
    data: dict[str, Any] = {}
    query: dict[str, list[str]] = {}
    version = "2.16" if row["description"] == "2.16" else "2.8"
    accept = "application/json"
    params = [p for p in [*spec["paths"][path].get("parameters", []), *op.get("parameters", [])]]
    for param in params:
        name, where = param["name"], param["in"]
        if where == "header" and name == "Accept":  # a download: sent by default, given every other time
            accept = "application/octet-stream"
            if index % 2 == 1:
                data[name] = accept
            continue
        if where == "header":
            if index % 2 == 0:  # every other action sets the version in the message
                version = data[name] = "2.7"
            continue
        if name in data:  # a name both in the path and the query (2.16 reporting data): one value, sent twice
            value = data[name]
        else:
            value = path_value(props[name]) if where == "path" else support.synthesise(props[name])
        data[name] = value
        if where == "path":
            path = path.replace("{" + name + "}", quote(query_value(value), safe=""))
        elif isinstance(value, dict):  # style form, explode: each key is a query parameter
            query.update({k: [query_value(v)] for k, v in value.items()})
        elif isinstance(value, list):  # style form, explode: the parameter once per element
            query[name] = [query_value(v) for v in value]
        else:
            query[name] = [query_value(value)]
    if action_id == "listCompaniesForAContact":  # the original component's name of the parameter
        data["contact_id"] = data.pop("id")
    which = row["description"] if row["description"] == "2.16" else not row["in_current_spec"]
    case = Case(action_id, data, row["method"], path, query, version, legacy=which, accept=accept)
    if "requestBody" in props:
        case.has_body = True
        case.body = support.synthesise(props["requestBody"])
        if case.body == {}:  # nothing required: exercise every field instead
            everything = support.synthesise(props["requestBody"], full=True)
            if support.is_valid(props["requestBody"], everything):
                case.body = everything
        if flat:
            data.update(case.body)
        else:
            data["requestBody"] = case.body
    out_schema = support.schema(action_id, "out")
    module_text = (support.ROOT / support.component()["actions"][action_id]["main"]).read_text()
    case.pagination = (re.search(r'pagination="(\w+)"', module_text) or [None, None])[1]
    case.items_key = (re.search(r'items_key="(\w+)"', module_text) or [None, None])[1]
    codes = [code for code in op["responses"] if str(code)[0] in "23"]  # a 2xx, else a redirect
    status = int(min(codes)) if codes else 200
    case.status = status
    answer = op["responses"].get(str(status)) or op["responses"].get("default") or {}
    if '"binary"' in module_text:
        case.kind = "binary"
        case.response = gzip.compress(b"id,title\n1,Hello\n", mtime=0)
    elif "text/plain" in (answer.get("content") or {}):
        case.kind = "text"
        case.response = "00:01 Agent: Hello\n00:03 Caller: Hi"
    elif not (answer.get("content") or {}).get("application/json"):
        case.kind = "empty"
    else:
        case.response = neutralise_pages(support.response_example(spec, op, out_schema))
        if (
            out_schema.get("properties", {}).get("data", {}).get("type") == "array"
            and resolve_answer(spec, answer).get("type") == "array"
        ):  # Intercom answers a bare array
            case.response = case.response["data"]
        key = case.items_key
        if key and not items_of(case.response, key):  # at least one object, to see it emitted
            holder, last = items_holder(case.response, key)
            holder[last] = [support.synthesise(item_schema(out_schema, key), full=True)]
        if case.pagination == "scroll":  # a scroll ends with a page without items
            case.response["scroll_param"] = "scroll-2"
            case.extra_pages = [{"type": "list", "data": [], "scroll_param": "scroll-2"}]
    return case


def resolve_answer(spec: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    node = ((answer.get("content") or {}).get("application/json") or {}).get("schema") or {}
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def items_holder(page: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
    """The object holding a list's items and the items' key (`data.articles`: page["data"], "articles")."""
    *outer, last = key.split(".")
    for part in outer:
        page = page.setdefault(part, {})
    return page, last


def items_of(page: dict[str, Any], key: str) -> Any:
    holder, last = items_holder(page, key)
    return holder.get(last)


def item_schema(out_schema: dict[str, Any], key: str) -> dict[str, Any]:
    node = out_schema
    for part in key.split("."):
        node = node["properties"][part]
    return node["items"]


RECORDING_URL = "https://recordings.example.com/signed/call-1.mp3"  # where a 302 sends the download


def run(case: Case, cfg: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    url = re.compile(re.escape(support.BASE_URL + case.path) + r"(\?.*)?$")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        if case.kind == "binary" and case.status == 302:  # a redirect to the file, followed
            mock.add(case.method, url, status=302, headers={"Location": RECORDING_URL})
            mock.add("GET", RECORDING_URL, body=case.response, status=200, content_type="application/gzip")
        elif case.kind == "text":
            mock.add(case.method, url, body=case.response, status=case.status, content_type="text/plain")
        elif case.kind == "binary":
            mock.add(
                case.method, url, body=case.response, status=case.status, content_type="application/gzip"
            )
        elif case.kind == "empty":
            mock.add(case.method, url, body=b"", status=case.status)
        else:
            mock.add(case.method, url, json=case.response, status=case.status)
        for page in case.extra_pages:
            mock.add(case.method, url, json=page, status=case.status)
        events = execute(
            case.action_id, {"data": case.data, "metadata": dict(METADATA)}, cfg, component_dir=support.ROOT
        )
        calls = [call.request for call in mock.calls if not call.request.url.startswith(RECORDING_URL)]
    return events, calls


def check_request(case: Case, request: Any) -> None:
    parts = urlsplit(request.url)
    assert request.method == case.method
    assert f"{parts.scheme}://{parts.netloc}" == support.BASE_URL
    assert parts.path == case.path
    assert parse_qs(parts.query, keep_blank_values=True) == case.query
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Intercom-Version"] == case.version
    assert request.headers["Accept"] == case.accept
    if case.has_body:
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.body) == case.body
    else:
        assert not request.body
    support.validate_request(request, case.legacy)
    if case.action_id == "lisDataEvents":
        assert support.exploded_filter_errors(parse_qs(parts.query)) == []


def check_emitted(case: Case, events: list[dict[str, Any]]) -> None:
    errors = [e for e in events if e["event"] == "error"]
    assert errors == []
    assert events and events[0]["event"] == "data"
    data, metadata = events[0]["data"], events[0]["metadata"]
    if case.kind == "binary":
        assert base64.b64decode(data["content"]) == case.response
        assert data["size"] == len(case.response)
        assert data["contentType"] == "application/gzip"
    elif case.kind == "empty":
        assert data["status"] == case.status
        assert data["action"] == case.action_id
    elif case.kind == "text":
        assert data["text"] == case.response
        assert data["contentType"].startswith("text/plain")
    elif isinstance(case.response, list):  # a JSON array is emitted as one object
        assert data == {"type": "list", "data": case.response}
    else:
        assert data == case.response
    assert support.is_valid(support.schema(case.action_id, "out"), data)
    assert metadata["applicationUid"] == METADATA["applicationUid"]
    assert metadata["oihUid"] == METADATA["oihUid"]
    if case.kind == "json" and isinstance(data.get("id"), str | int) and case.pagination is None:
        assert metadata["recordUid"] == str(data["id"])
    else:
        assert metadata.get("recordUid") != METADATA["recordUid"]  # never another application's id


@pytest.mark.timeout(60)
@pytest.mark.parametrize("action_id", ACTION_IDS)
def test_action_sends_the_described_request_and_emits_the_result(action_id: str) -> None:
    case = build_case(action_id)
    cfg: dict[str, Any] = {"accessToken": TOKEN}
    if ACTION_IDS.index(action_id) % 3 == 0:
        cfg["server"] = "https://api.intercom.io"
    events, calls = run(case, cfg)
    check_emitted(case, events)
    assert len(calls) == 1 + len(case.extra_pages)
    check_request(case, calls[0])
    for later in calls[1:]:
        support.validate_request(later, case.legacy)


FLAT = [a for a in ACTION_IDS if "else" in support.schema(a, "in")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("action_id", FLAT)
def test_flat_form_sends_the_same_body(action_id: str) -> None:
    case = build_case(action_id, flat=True)
    if not case.body:
        case.data["requestBody"] = case.body  # an empty body has no flat form; send it explicitly
    events, calls = run(case, {"accessToken": TOKEN})
    check_emitted(case, events)
    check_request(case, calls[0])


LISTS = [a for a in ACTION_IDS if build_case(a).items_key]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("behaviour", ["emitIndividually", "fetchAll"])
@pytest.mark.parametrize("action_id", LISTS)
def test_list_actions_emit_objects_individually_or_all_at_once(action_id: str, behaviour: str) -> None:
    case = build_case(action_id)
    key = case.items_key
    items = items_of(case.response, key)
    assert items
    events, calls = run(case, {"accessToken": TOKEN, "emitBehaviour": behaviour})
    assert [e for e in events if e["event"] == "error"] == []
    check_request(case, calls[0])
    items_schema = item_schema(support.schema(action_id, "out"), key)
    if behaviour == "emitIndividually":
        assert [e["data"] for e in events] == items
        for event, item in zip(events, items, strict=True):
            assert support.is_valid(items_schema, event["data"])
            if isinstance(item, dict) and isinstance(item.get("id"), str | int):
                assert event["metadata"]["recordUid"] == str(item["id"])
    else:
        assert len(events) == 1
        assert events[0]["data"][key.rsplit(".", 1)[-1]] == items


DROPDOWNS = [
    (a, name)
    for a in ACTION_IDS
    for name, fld in support.component()["actions"][a]["fields"].items()
    if isinstance(fld.get("model"), str)
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("action_id", "param"), DROPDOWNS)
def test_dropdown_step_field_supplies_a_missing_parameter(action_id: str, param: str) -> None:
    """A value picked in a select-model step field arrives in cfg and fills the parameter."""
    case = build_case(action_id)
    if param in case.data:
        value = case.data.pop(param)
    else:  # a body field (2.16 tickets: ticket_type_id, ticket_state_id), in the body sent as given
        body_schema = support.schema(action_id, "in")["properties"]["requestBody"]
        prop = next(
            s["properties"][param]
            for s in [body_schema, *body_schema.get("allOf", [])]
            if param in s.get("properties", {})
        )
        value = case.body.setdefault(param, support.synthesise(prop))
        case.data["requestBody"] = {k: v for k, v in case.body.items() if k != param}
    events, calls = run(case, {"accessToken": TOKEN, param: value})
    check_emitted(case, events)
    check_request(case, calls[0])


REQUIRED = [a for a in ACTION_IDS if support.schema(a, "in")["required"]]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("action_id", REQUIRED)
def test_message_without_required_fields_is_rejected_before_any_request(action_id: str) -> None:
    case = build_case(action_id)
    missing = support.schema(action_id, "in")["required"]
    for name in missing:
        case.data.pop(name, None)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        events = execute(action_id, {"data": case.data}, {"accessToken": TOKEN}, component_dir=support.ROOT)
        assert len(mock.calls) == 0
    assert [e["event"] for e in events] == ["error"]
    error = events[0]["error"]
    assert error["name"] == "ValidationError"
    assert {(e["field"], e["rule"]) for e in error["errors"]} >= {(n, "required") for n in missing}
    assert TOKEN not in json.dumps(events)

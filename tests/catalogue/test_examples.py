"""Every request example of Intercom's descriptions, through its action, validated with openapi-core.

For each of the 239 operations (100 of 2.8, 139 of 2.16), every request-body example the description gives
(all of `examples`, not only the first; the two visitor operations only the 2023-03-03 revision has come
from there, the 2.16 actions' from the 2.16 description) runs through
`elasticio_sailor.execute` with the operation's parameter examples. The test checks that the connector
sends it (body equal to the example, integers given for string ids sent as their decimal string) and that
the request validates with openapi-core against the corrected description (tools/generate.py CORRECTIONS).
Operations without a body example get a body synthesised from their in-schema, so all 239 are run.

A few examples are of requests Intercom *refuses* (they illustrate a 4xx answer and break a rule Intercom
enforces). The connector refuses them before sending, as it must; EXPECTED_REJECTIONS lists each with the
reason, and the test checks that both our validation and openapi-core reject them, and that the description
pairs the example with a 4xx answer.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
import requests
import responses
from elasticio_sailor import execute

from tests.catalogue import support
from tests.catalogue.test_actions import ROWS, spec_operation
from tools.generate import CORRECTIONS, apply_correction

TOKEN = "tok_examples_1234567890"

# operationId/example -> why Intercom refuses it (the description pairs each with a 4xx answer example:
# "400"/"422" below is that answer).
EXPECTED_REJECTIONS = {
    "createArticle/bad_request": "author_id missing; Intercom answers 400 (required field).",
    "createCollection/bad_request": "name missing; Intercom answers 400 (required field).",
    "attachContactToACompany/bad_request": "the body is null; 400.",
    "createConversation/contact_not_found": "from.id '123_doesnt_exist' is not a 24-character contact id; "
    "Intercom answers 404, we refuse it before sending.",
    "createDataAttribute/invalid_data_type": "data_type 'mithril' is not a data type; 400.",
    "createDataAttribute/too_few_options_for_list": "name, model and data_type missing; 400.",
    "updateDataAttribute/too_few_options_in_list": "options is an object, not a list; 400.",
    "createMessage/no_body_supplied_for_message": "body null (and message_type 'inapp'); 400.",
    "createMessage/no_body_supplied_for_email_message": "body null; 400.",
    "createMessage/no_subject_supplied_for_email_message": "no subject, `to` without id; 422.",
    "createTag/invalid_parameters": "no name (only an unknown key); 400.",
    "createInternalArticle/bad_request": "author_id and owner_id missing; Intercom answers 400.",
}

# Examples the description cuts short: the file data of this example ends in "..." (not base64, which
# openapi-core checks, format byte); it runs with the "..." removed (the 60 characters before it are base64).
TRUNCATED_FILE_DATA = {"startFinConversation/Request with attachments"}


def description_of(action_id: str) -> bool | str:
    """What support.validate_request takes: the 2023 revision (True), 2.8 (False) or "2.16"."""
    row = ROWS[action_id]
    return "2.16" if row["description"] == "2.16" else not row["in_current_spec"]


def example_operation_id(action_id: str) -> str:
    """The operationId naming an example (the action id for the four 2.16 operations without one)."""
    return spec_operation(ROWS[action_id])[2].get("operationId") or action_id


def snake(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def error_examples(op: dict[str, Any]) -> set[str]:
    """Names of the 4xx answer examples (request and answer examples share their names, snake_cased)."""
    names = set()
    for status, answer in op["responses"].items():
        if str(status).startswith("4"):
            media = (answer.get("content") or {}).get("application/json") or {}
            names |= {snake(name) for name in media.get("examples") or {}}
            names |= {snake(e.get("summary", "")) for e in (media.get("examples") or {}).values()}
    return names


def cases() -> list[tuple[str, str, dict[str, Any], Any, bool]]:
    """(action id, example name, parameter values, body example, body given) for every example."""
    out = []
    for action_id, row in ROWS.items():
        spec, path, op = spec_operation(row)
        props = support.schema(action_id, "in")["properties"]
        params = {}
        for param in [*spec["paths"][path].get("parameters", []), *op.get("parameters", [])]:
            if "$ref" in param:
                param = spec["components"]["parameters"][param["$ref"].rsplit("/", 1)[-1]]
            if param["in"] == "header":
                continue
            example = param.get("example", param.get("schema", {}).get("example"))
            if example is None:
                example = support.synthesise(props[param["name"]])
            params[param["name"]] = example
        media = ((op.get("requestBody") or {}).get("content") or {}).get("application/json")
        if not media:
            out.append((action_id, "(no body)", params, None, False))
            continue
        examples = {name: e.get("value") for name, e in (media.get("examples") or {}).items()}
        if not examples and "example" in media:
            examples = {"example": media["example"]}
        if not examples:  # no request example at all: a body from the in-schema (its own examples first)
            examples = {"(synthesised)": support.synthesise(props["requestBody"])}
        for name, body in examples.items():
            if f"{example_operation_id(action_id)}/{name}" in TRUNCATED_FILE_DATA:
                body = copy.deepcopy(body)
                for attachment in body["attachments"]:
                    if "data" in attachment:
                        attachment["data"] = attachment["data"].removesuffix("...")
            out.append((action_id, name, params, body, True))
    return out


CASES = cases()


def ids_as_strings(sent: Any, example: Any) -> bool:
    """Equal, except that an integer of the example may have been sent as its decimal string."""
    if type(example) is int and isinstance(sent, str):
        return sent == str(example)
    if isinstance(example, dict) and isinstance(sent, dict):
        return sent.keys() == example.keys() and all(ids_as_strings(sent[k], example[k]) for k in example)
    if isinstance(example, list) and isinstance(sent, list):
        return len(sent) == len(example) and all(map(ids_as_strings, sent, example))
    return sent == example and type(sent) is type(example)


def raw_request(action_id: str, params: dict[str, Any], body: Any) -> requests.PreparedRequest:
    """The request the example stands for, built without the connector (for openapi-core's opinion)."""
    row = ROWS[action_id]
    _, path, _ = spec_operation(row)
    for name, value in params.items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return requests.Request(
        row["method"], support.BASE_URL + path, data=json.dumps(body), headers=headers
    ).prepare()


def run(action_id: str, data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    row = ROWS[action_id]
    answer = {"type": "list", "data": [{"type": "thing", "id": "1"}], "pages": {"next": None}}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(row["method"], re.compile(r"https://api\.intercom\.io/.*"), json=answer)
        events = execute(action_id, {"data": data}, {"accessToken": TOKEN}, component_dir=support.ROOT)
        return events, [call.request for call in mock.calls]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("action_id", "name", "params", "body", "has_body"), CASES, ids=[f"{c[0]}/{c[1]}" for c in CASES]
)
def test_request_example(
    action_id: str, name: str, params: dict[str, Any], body: Any, has_body: bool
) -> None:
    data = copy.deepcopy(params)
    if has_body:
        data["requestBody"] = copy.deepcopy(body)
    before = json.dumps(data, sort_keys=True)
    events, calls = run(action_id, data)
    assert json.dumps(data, sort_keys=True) == before  # the message is never modified
    key = f"{example_operation_id(action_id)}/{name}"
    legacy = description_of(action_id)
    if key in EXPECTED_REJECTIONS:
        assert calls == []
        assert [e["event"] for e in events] == ["error"]
        assert events[0]["error"]["name"] == "ValidationError"
        with pytest.raises(Exception):  # noqa: B017 - openapi-core's several validation error types
            support.validate_request(raw_request(action_id, params, body), legacy)
        assert name in error_examples(spec_operation(ROWS[action_id])[2])
        return
    assert [e for e in events if e["event"] == "error"] == []
    assert len(calls) == 1
    request = calls[0]
    if has_body:
        assert ids_as_strings(json.loads(request.body), body)
    support.validate_request(request, legacy)


def test_every_operation_runs_examples_and_the_rejections_are_real() -> None:
    operations = {c[0] for c in CASES}
    accepted = {c[0] for c in CASES if f"{example_operation_id(c[0])}/{c[1]}" not in EXPECTED_REJECTIONS}
    assert len(operations) == 239 and accepted == operations  # every operation sends at least one example
    assert sum(1 for a in operations if description_of(a) == "2.16") == 139
    names = {f"{example_operation_id(c[0])}/{c[1]}" for c in CASES}
    assert set(EXPECTED_REJECTIONS) <= names
    described = sum(1 for c in CASES if c[1] not in ("(no body)", "(synthesised)"))
    print(
        f"{len(CASES)} cases over {len(operations)} operations: {described} body examples of the "
        f"description, {len(EXPECTED_REJECTIONS)} of them refused as Intercom refuses them"
    )


CORRECTED_EXAMPLES = [(fix, example) for fix in CORRECTIONS for example in fix.examples]


@pytest.mark.parametrize(
    ("fix", "example"), CORRECTED_EXAMPLES, ids=[f"{f.action}:{e}" for f, e in CORRECTED_EXAMPLES]
)
def test_each_correction_makes_its_example_valid(fix, example: str) -> None:
    """The example fails against the description as published and passes against the corrected one."""
    from openapi_core import OpenAPI

    from tools.generate import MISSING_SCHEMAS

    name = example.split("/")[1]
    case = next(c for c in CASES if c[0] == fix.action and c[1] == name)
    _, _, params, body, _ = case
    newest = fix.description == support.NEWEST.name
    if newest:  # as published, except for the other 2.16 corrections (it is unusable without the path fixes)
        published = copy.deepcopy(support.load_yaml(support.NEWEST))
        for other in CORRECTIONS:
            if other.description == fix.description and other is not fix:
                apply_correction(published, other, None)
    else:
        published = copy.deepcopy(support.load_yaml(support.CURRENT))
        old = support.load_yaml(support.LEGACY)["components"]["schemas"]
        for missing in MISSING_SCHEMAS:
            published["components"]["schemas"].setdefault(missing, old[missing])
    request = raw_request(fix.action, params, body)
    with pytest.raises(Exception):  # noqa: B017
        OpenAPI.from_dict(published).validate_request(_openapi_request(request))
    support.validate_request(request, legacy="2.16" if newest else False)


def _openapi_request(prepared: requests.PreparedRequest) -> Any:
    from openapi_core.contrib.requests import RequestsOpenAPIRequest

    return RequestsOpenAPIRequest(prepared)


def test_numeric_ids_are_sent_as_strings_but_floats_and_booleans_are_refused() -> None:
    body = {"body": "Hi", "admin_id": 991266840, "contact_id": 123}
    events, calls = run("createNote", {"id": 5, "requestBody": body})
    assert [e["event"] for e in events] == ["data"]
    assert json.loads(calls[0].body) == {"body": "Hi", "admin_id": "991266840", "contact_id": "123"}
    assert calls[0].url.endswith("/contacts/5/notes")
    for wrong in (991266840.0, True):
        events, calls = run("createNote", {"id": "5", "requestBody": {"body": "Hi", "admin_id": wrong}})
        assert calls == [] and events[0]["error"]["errors"][0]["field"] == "requestBody.admin_id"
    flat = {"name": "vip", "companies": [{"id": 7}, {"company_id": 8}]}
    events, calls = run("createTag", flat)
    assert json.loads(calls[0].body) == {"name": "vip", "companies": [{"id": "7"}, {"company_id": "8"}]}


def integers(value: Any, path: str = "") -> dict[str, int]:
    """Every integer (not boolean) in a JSON value, by path."""
    if type(value) is int:
        return {path: value}
    if isinstance(value, dict):
        return {k: v for name, sub in value.items() for k, v in integers(sub, f"{path}.{name}").items()}
    if isinstance(value, list):
        return {k: v for i, sub in enumerate(value) for k, v in integers(sub, f"{path}[{i}]").items()}
    return {}


ISSUE_ACTIONS = (
    "createNote",
    "attachSubscriptionTypeToContact",
    "attachTagToContact",
    "attachTagToConversation",
    "detachTagFromConversation",
    "attachContactToConversation",
    "detachContactFromConversation",
    "redactConversation",
    "manageConversation",
)


@pytest.mark.parametrize("action_id", ISSUE_ACTIONS)
def test_intercoms_numeric_id_examples_are_sent_with_string_ids(action_id: str) -> None:
    """The actions whose own examples send numbers for string ids: each such number arrives as a string."""
    examples = [c for c in CASES if c[0] == action_id and c[3] is not None and integers(c[3])]
    assert examples
    for _, _, params, body, _ in examples:
        events, calls = run(action_id, {**params, "requestBody": body})
        assert [e["event"] for e in events] == ["data"]
        sent = json.loads(calls[0].body)
        numbers = integers(body)
        ids = {path for path in numbers if re.search(r"(^|_|\.)id$", path)}
        assert ids and {path for path in numbers if path not in integers(sent)} == ids
        assert all(integers(sent)[path] == numbers[path] for path in set(numbers) - ids)  # e.g. snoozed_until

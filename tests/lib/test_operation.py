"""Operation: validation before any request, request building, emitting, metadata, binary, empty bodies."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from responses import matchers

from lib.intercom.errors import ConfigurationError, IntercomError, ValidationError
from lib.operation import Operation
from tests.lib.conftest import SCHEMAS, TOKEN, US

pytestmark = pytest.mark.timeout(30)


@dataclass
class Msg:
    """Stands in for elasticio_sailor.Message (same attribute names)."""

    data: Any
    metadata: dict = field(default_factory=dict)
    attachments: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    id: str | None = None
    passthrough: dict = field(default_factory=dict)


def op(action_id: str, method: str, path: str, **kw: Any) -> Operation:
    kw.setdefault("header_params", ("Intercom-Version",))
    return Operation(action_id=action_id, method=method, path=path, schema_dir=SCHEMAS, **kw)


SHOW = op(
    "TestShowContact",
    "GET",
    "/contacts/{id}",
    path_params=("id",),
    query_params=("display_as",),
    aliases={"id": ("contact_id",)},
)
CREATE = op("TestCreateContact", "POST", "/contacts", has_body=True)
DELETE = op("TestDeleteContact", "DELETE", "/contacts/{id}", path_params=("id",))
DETACH = op("TestDetachTag", "DELETE", "/contacts/{contact_id}/tags/{id}", path_params=("contact_id", "id"))
EVENTS = op(
    "TestListEvents", "GET", "/events", query_params=("filter", "type", "summary", "tags"), items_key="events"
)
DOWNLOAD = op(
    "TestDownload",
    "GET",
    "/download/content/data/{job_identifier}",
    path_params=("job_identifier",),
    response="binary",
)


def run(operation: Operation, data: Any, cfg: dict, metadata: dict | None = None) -> list[dict]:
    """Call process as the sailor does and collect the emitted data messages."""
    result = operation.process(None, Msg(data, metadata or {}), cfg, {})
    if isinstance(result, dict):
        return [result]
    return list(result)


# ------------------------------------------------------------------------------------------ validation
def test_validation_error_names_fields_and_sends_nothing(rsps, cfg):
    rsps.post(f"{US}/contacts", json={"id": "1"})
    with pytest.raises(ValidationError) as info:
        run(CREATE, {"requestBody": {"email": 42, "role": "boss", "extra": 1}}, cfg)
    err = info.value
    fields = {(e["field"], e["rule"]) for e in err.to_dict()["errors"]}
    assert fields == {
        ("requestBody.email", "type"),
        ("requestBody.role", "enum"),
        ("requestBody.extra", "additionalProperties"),
    }
    for name in ("requestBody.email", "requestBody.role", "requestBody.extra", "rule type", "rule enum"):
        assert name in str(err)
    assert len(rsps.calls) == 0
    json.dumps(err.to_dict())


def test_missing_required_fields_are_named(rsps, cfg):
    with pytest.raises(ValidationError) as info:
        run(DETACH, {}, cfg)
    assert [(e["field"], e["rule"]) for e in info.value.errors] == [
        ("contact_id", "required"),
        ("id", "required"),
    ]
    with pytest.raises(ValidationError, match=r"requestBody.tags\[0\].id: is required"):
        run(CREATE, {"requestBody": {"role": "user", "tags": [{}]}}, cfg)
    assert len(rsps.calls) == 0


def test_one_of_error_reports_closest_branch(rsps, cfg):
    search = op(
        "TestSearch",
        "POST",
        "/contacts/search",
        has_body=True,
        pagination="search",
        items_key="data",
        idempotent=True,
    )
    with pytest.raises(ValidationError) as info:
        run(search, {"requestBody": {"query": {"field": "email"}}}, cfg)
    (entry,) = info.value.errors
    assert entry["field"] == "requestBody.query" and entry["rule"] == "oneOf"
    assert "closest" in entry["message"]
    assert len(rsps.calls) == 0


def test_data_must_be_an_object(rsps, cfg):
    with pytest.raises(ValidationError, match="JSON object"):
        run(SHOW, ["x"], cfg)


def test_validator_compiled_once(cfg, rsps):
    rsps.get(f"{US}/contacts/1", json={"id": "1"})
    fresh = op("TestShowContact", "GET", "/contacts/{id}", path_params=("id",))
    run(fresh, {"id": "1"}, cfg)
    validator = fresh.validator
    run(fresh, {"id": "1"}, cfg)
    assert fresh.validator is validator is SHOW.validator  # one compiled validator per schema file


def test_missing_schema_is_a_clear_error(cfg):
    with pytest.raises(ConfigurationError, match=r"NoSuchAction\.in\.json"):
        run(op("NoSuchAction", "GET", "/x"), {}, cfg)


# ----------------------------------------------------------------------------------- request building
def test_path_encoding_query_and_headers(rsps, cfg):
    rsps.get(
        f"{US}/contacts/a%2Fb%20c%3F",
        json={"type": "contact", "id": "a/b c?"},
        match=[matchers.query_string_matcher("display_as=plaintext")],
    )
    [message] = run(SHOW, {"id": "a/b c?", "display_as": "plaintext", "Intercom-Version": "2.7"}, cfg)
    sent = rsps.calls[0].request
    assert sent.url == f"{US}/contacts/a%2Fb%20c%3F?display_as=plaintext"
    assert sent.headers["Intercom-Version"] == "2.7"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert message["data"]["id"] == "a/b c?" and message["metadata"]["recordUid"] == "a/b c?"


def test_version_from_cfg_then_default(rsps):
    rsps.get(f"{US}/contacts/1", json={"id": "1"})
    run(SHOW, {"id": "1"}, {"accessToken": TOKEN, "intercomVersion": "2.9"})
    run(SHOW, {"id": "1"}, {"accessToken": TOKEN})
    assert [c.request.headers["Intercom-Version"] for c in rsps.calls] == ["2.9", "2.8"]


def test_query_object_explode_arrays_and_booleans(rsps, cfg):
    rsps.get(f"{US}/events", json={"type": "event.list", "events": []})
    run(
        EVENTS,
        {
            "filter": {"user_id": "u 1", "email": "a+b@c.d"},
            "type": "user",
            "summary": True,
            "tags": ["x", "y"],
        },
        cfg,
    )
    assert rsps.calls[0].request.url == (
        f"{US}/events?user_id=u+1&email=a%2Bb%40c.d&type=user&summary=true&tags=x&tags=y"
    )


def test_alias_and_cfg_fill_in(rsps, cfg):
    rsps.get(f"{US}/contacts/c1", json={"id": "c1"})
    rsps.get(f"{US}/contacts/c2", json={"id": "c2"})
    run(SHOW, {"contact_id": "c1"}, cfg)
    run(SHOW, {}, {**cfg, "id": "c2", "display_as": "plaintext"})
    assert rsps.calls[0].request.url == f"{US}/contacts/c1"
    assert rsps.calls[1].request.url == f"{US}/contacts/c2?display_as=plaintext"


def test_body_under_request_body_and_flat_form(rsps, cfg):
    rsps.post(f"{US}/contacts", json={"type": "contact", "id": "n1"})
    body = {"role": "user", "email": "a@b.c", "custom_attributes": {"plan": "pro"}}
    run(CREATE, {"requestBody": body}, cfg)
    run(CREATE, {**body, "Intercom-Version": "2.8"}, cfg)
    for call in rsps.calls:
        assert json.loads(call.request.body) == body
        assert call.request.headers["Content-Type"] == "application/json"
    assert "requestBody" not in json.loads(rsps.calls[1].request.body)


def test_message_as_plain_dicts(rsps, cfg):
    rsps.get(f"{US}/contacts/9", json={"id": "9"})
    out = SHOW.process(None, {"data": {"id": "9"}, "metadata": {"oihUid": "o"}}, cfg, {})
    assert out["metadata"] == {"oihUid": "o", "recordUid": "9"}
    assert SHOW.process(None, {"id": "9"}, cfg, None)["data"] == {"id": "9"}


# --------------------------------------------------------------------------------------------- output
def test_metadata_carried_over(rsps, cfg):
    rsps.post(f"{US}/contacts", json={"type": "contact", "id": "ic-7", "email": "a@b.c"})
    incoming = {"applicationUid": "app-1", "oihUid": "oih-1", "recordUid": "crm-55", "domainId": "d"}
    [message] = run(CREATE, {"requestBody": {"role": "user"}}, cfg, incoming)
    assert message["metadata"] == {
        "applicationUid": "app-1",
        "oihUid": "oih-1",
        "recordUid": "ic-7",
        "domainId": "d",
    }
    assert message["data"]["email"] == "a@b.c"


def test_204_emits_a_summary(rsps, cfg):
    rsps.delete(f"{US}/contacts/c%201", status=204)
    [message] = run(DELETE, {"id": "c 1"}, cfg, {"oihUid": "o"})
    assert message["data"] == {
        "status": 204,
        "action": "TestDeleteContact",
        "result": "no content",
        "id": "c 1",
    }
    assert message["metadata"] == {"oihUid": "o", "recordUid": "c 1"}


def test_202_empty_body(rsps, cfg):
    rsps.post(f"{US}/contacts", status=202, body="")
    [message] = run(CREATE, {"requestBody": {"role": "lead"}}, cfg)
    assert message["data"] == {"status": 202, "action": "TestCreateContact", "result": "accepted"}


def test_binary_download(rsps, cfg):
    blob = bytes(range(256)) * 10
    rsps.get(f"{US}/download/content/data/job%2F1", body=blob, content_type="application/octet-stream")
    [message] = run(DOWNLOAD, {"job_identifier": "job/1"}, cfg)
    data = message["data"]
    assert data["contentType"] == "application/octet-stream" and data["size"] == len(blob)
    assert data["encoding"] == "base64" and base64.b64decode(data["content"]) == blob


def test_http_error_raised_with_details(rsps, cfg):
    rsps.get(
        f"{US}/contacts/x",
        status=404,
        json={
            "type": "error.list",
            "request_id": "rq",
            "errors": [{"code": "not_found", "message": "Contact Not Found"}],
        },
    )
    with pytest.raises(IntercomError, match=r"Intercom 404 not_found: Contact Not Found \(request_id rq"):
        run(SHOW, {"id": "x"}, cfg)


def test_token_never_in_events_or_errors(rsps, cfg, caplog):
    rsps.get(f"{US}/contacts/1", json={"id": "1"})
    rsps.get(
        f"{US}/contacts/2",
        status=401,
        json={
            "type": "error.list",
            "errors": [{"code": "unauthorized", "message": f"token {TOKEN} invalid"}],
        },
    )
    rsps.get(f"{US}/contacts/3", body=requests.exceptions.ConnectionError("boom"))
    seen = [json.dumps(run(SHOW, {"id": "1"}, cfg))]
    for data in ({"id": "2"}, {"id": "3"}, {"id": 3}):
        with pytest.raises((IntercomError, ValidationError)) as info:
            run(SHOW, data, cfg)
        seen += [str(info.value), repr(info.value), json.dumps(getattr(info.value, "to_dict", dict)())]
    seen.append(caplog.text)
    assert all(TOKEN not in text for text in seen)


def test_invalid_emit_behaviour_is_rejected_before_any_request(rsps, cfg):
    with pytest.raises(ConfigurationError, match="emitBehaviour") as info:
        run(EVENTS, {"filter": {"user_id": "u"}, "type": "user"}, {**cfg, "emitBehaviour": "everything"})
    assert info.value.to_dict()["field"] == "emitBehaviour"
    assert len(rsps.calls) == 0


def test_unknown_declarations_rejected():
    with pytest.raises(ValueError, match="pagination"):
        Operation("X", "GET", "/x", pagination="offset")
    with pytest.raises(ValueError, match="response"):
        Operation("X", "GET", "/x", response="xml")


def test_fast_and_reference_validators_agree(rsps, cfg, monkeypatch):
    """The Rust check is only a fast path: without it the same messages pass and fail the same way."""
    from lib import operation as operation_module

    validator = CREATE.validator
    assert validator.fast is not None  # jsonschema-rs is a pinned runtime dependency
    good = {"requestBody": {"role": "user", "email": "a@b.c"}}
    bad = {"requestBody": {"role": "admin"}}
    assert validator.fast.is_valid(good) and not validator.fast.is_valid(bad)
    monkeypatch.setattr(validator, "fast", None)
    assert list(validator.iter_errors(good)) == []
    assert [e.validator for e in validator.iter_errors(bad)] == ["enum"]
    monkeypatch.setattr(operation_module, "jsonschema_rs", None)
    slow = operation_module.SchemaValidator(validator.reference.schema)
    assert slow.fast is None and [e.validator for e in slow.iter_errors(bad)] == ["enum"]


def test_missing_body_fields_named_under_request_body(rsps, cfg):
    """A schema that accepts the body nested or flat still names missing body fields requestBody.<f>."""
    either = op("TestCreateEither", "POST", "/contacts", has_body=True)
    with pytest.raises(ValidationError) as info:
        run(either, {"Intercom-Version": "2.8"}, cfg)
    assert [(e["field"], e["rule"]) for e in info.value.errors] == [("requestBody.role", "required")]
    rsps.post(f"{US}/contacts", json={"id": "1"})
    run(either, {"role": "lead"}, cfg)
    assert json.loads(rsps.calls[0].request.body) == {"role": "lead"}


def test_ambiguous_one_of_is_explained(rsps, cfg):
    search = op(
        "TestSearch",
        "POST",
        "/contacts/search",
        has_body=True,
        pagination="search",
        items_key="data",
        idempotent=True,
    )
    with pytest.raises(ValidationError, match="more than one of the allowed forms"):
        run(search, {"requestBody": {"query": {"field": "x", "operator": "AND", "value": []}}}, cfg)
    assert len(rsps.calls) == 0


def test_required_body_missing_keeps_the_body_error(rsps, cfg):
    with pytest.raises(ValidationError) as info:
        run(CREATE, {"Intercom-Version": "2.8"}, cfg)
    assert [(e["field"], e["rule"]) for e in info.value.errors] == [
        ("requestBody", "required"),
        ("requestBody.role", "required"),
    ]
    assert len(rsps.calls) == 0


def test_list_items_fall_back_to_data_when_the_named_key_is_absent(rsps, cfg):
    """listCompaniesForAContact: the description names `companies`, Intercom answers under `data`."""
    rsps.get(f"{US}/events", json={"type": "list", "data": [{"id": "e1"}, {"id": "e2"}]})
    rsps.get(f"{US}/events", json={"type": "event.list", "events": [{"id": "e3"}]})
    data = {"filter": {"user_id": "1"}, "type": "user"}
    individually = run(EVENTS, data, {**cfg, "emitBehaviour": "emitIndividually"})
    assert [m["data"]["id"] for m in individually] == ["e1", "e2"]
    [everything] = run(EVENTS, data, {**cfg, "emitBehaviour": "fetchAll"})
    assert [item["id"] for item in everything["data"]["events"]] == ["e3"]

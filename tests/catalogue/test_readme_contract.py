"""README's "The message contract" and "Retries and rate limits" stay true: their examples are run, and the
defaults they state are the ones the code and component.json use."""

from __future__ import annotations

import json
import re
from typing import Any

import responses
from elasticio_sailor import execute

from lib.intercom import client, pagination, ratelimit
from tests.catalogue import support

README = (support.ROOT / "README.md").read_text(encoding="utf-8")
CONTRACT = README[README.index("## The message contract") : README.index("## Triggers")]
TOKEN = "tok_readme_1234567890"


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def run(action_id: str, data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST"):
            mock.add(method, re.compile(r"https://api\.intercom\.io/.*"), json={"type": "x", "id": "1"})
        events = execute(action_id, {"data": data}, {"accessToken": TOKEN}, component_dir=support.ROOT)
        return events, [call.request for call in mock.calls]


def test_the_validation_examples_are_what_the_actions_emit() -> None:
    for action_id, data in (
        ("createNote", {"id": "1", "requestBody": {"admin_id": "5"}}),
        ("CreateContact", {"email": 42}),
    ):
        events, calls = run(action_id, data)
        assert calls == [] and [e["event"] for e in events] == ["error"]
        emitted = json.dumps(events[0]["error"]["errors"])
        assert f"errors: {emitted}" in flat(CONTRACT), emitted


def test_the_query_and_numeric_id_examples_send_what_the_readme_says() -> None:
    _, calls = run("lisDataEvents", {"filter": {"user_id": "42"}, "type": "user"})
    assert "`GET /events?user_id=42&type=user`" in CONTRACT
    assert calls[0].url == "https://api.intercom.io/events?user_id=42&type=user"
    assert '`{"id": "1", "body": "Hi", "admin_id": 991266840}` on `createNote` sends' in flat(CONTRACT)
    _, calls = run("createNote", {"id": "1", "body": "Hi", "admin_id": 991266840})
    sent = calls[0].body.decode()
    assert json.loads(sent) == {"body": "Hi", "admin_id": "991266840"}
    assert f"`{sent}`" in flat(CONTRACT)


def test_stated_defaults_agree_with_the_code_and_the_step_field_placeholders() -> None:
    fields = json.loads((support.ROOT / "tools" / "component_base.json").read_text())["credentials"]["fields"]
    assert client.DEFAULT_READ_TIMEOUT == float(fields["requestTimeout"]["placeholder"]) == 30
    assert client.DEFAULT_MAX_RETRIES == int(fields["maxRetries"]["placeholder"]) == 3
    row = next(line for line in README.splitlines() if line.startswith("| `requestTimeout`, `maxRetries`"))
    assert "(default 30)" in row and "(default 3)" in row  # the credentials table states the same
    text = flat(CONTRACT)
    assert "`requestTimeout` (default 30 s)" in text and "`maxRetries` times (default 3)" in text
    assert f"at most {ratelimit.DEFAULT_RATE_LIMIT_WAIT:g} s in total" in text
    assert f"`maxPages` (default {pagination.DEFAULT_MAX_PAGES})" in text
    assert f"fewer than {ratelimit.MIN_LOW_WATER} calls" in text and ratelimit.LOW_WATER == 0.2  # "a fifth"
    component = support.component()
    placeholders = {
        f["placeholder"]
        for a in component["actions"].values()
        for n, f in a["fields"].items()
        if n == "maxPages"
    }
    assert placeholders == {str(pagination.DEFAULT_MAX_PAGES)}

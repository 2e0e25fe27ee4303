"""The credentials verifier: GET /me, readable reasons, never a traceback or the token."""

from __future__ import annotations

import json

import pytest
import requests

from lib.verify_credentials import verify
from tests.lib.conftest import TOKEN, US

pytestmark = pytest.mark.timeout(30)


def test_valid_token(rsps, cfg):
    rsps.get(f"{US}/me", json={"type": "admin", "id": "1", "email": "a@b.c"})
    assert verify(cfg) == {"verified": True}
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_legacy_field_and_eu(rsps):
    rsps.get("https://api.eu.intercom.io/me", json={"type": "admin", "id": "1"})
    assert verify({"auth_bearerAuth": TOKEN, "server": "eu"}) == {"verified": True}


def test_invalid_token(rsps, cfg):
    rsps.get(
        f"{US}/me",
        status=401,
        json={
            "type": "error.list",
            "request_id": "r",
            "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}],
        },
    )
    assert verify(cfg) == {
        "verified": False,
        "reason": "Invalid access token (Intercom answered 401 unauthorized)",
    }
    assert len(rsps.calls) == 1


def test_missing_token():
    result = verify({"server": "us"})
    assert result["verified"] is False and "accessToken" in result["reason"]


def test_bad_custom_server():
    result = verify({"accessToken": TOKEN, "server": "--- Custom URL"})
    assert result["verified"] is False and "otherServer" in result["reason"]


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (403, {"type": "error.list", "errors": [{"code": "forbidden", "message": "no"}]}, "403"),
        (500, {"type": "error.list", "errors": [{"code": "server_error", "message": f"x {TOKEN}"}]}, "500"),
        (None, requests.exceptions.ConnectionError("refused"), "Could not reach Intercom"),
    ],
)
def test_other_failures_give_a_reason(rsps, cfg, status, body, words):
    if status is None:
        rsps.get(f"{US}/me", body=body)
    else:
        rsps.get(f"{US}/me", status=status, json=body)
    result = verify({**cfg, "maxRetries": 0})
    assert result["verified"] is False and words in result["reason"]
    assert "Traceback" not in result["reason"] and TOKEN not in json.dumps(result)


def test_unexpected_exception_is_an_answer(rsps, cfg):
    rsps.get(f"{US}/me", body="not json", content_type="application/json")
    result = verify(cfg)
    assert result["verified"] is False and TOKEN not in result["reason"]

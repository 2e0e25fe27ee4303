"""IntercomClient: headers, versions, caching, errors, retries, idempotency, connection failures."""

from __future__ import annotations

import json
import logging
import socket

import pytest
import requests
import responses
from urllib3.exceptions import ProtocolError

from lib.intercom.client import IntercomClient
from lib.intercom.errors import IntercomError
from tests.lib.conftest import TOKEN, US

pytestmark = pytest.mark.timeout(30)

ERROR_404 = {
    "type": "error.list",
    "request_id": "abc",
    "errors": [{"code": "not_found", "message": "Contact Not Found"}],
}


def test_default_headers(rsps, cfg):
    rsps.get(f"{US}/me", json={"type": "admin", "id": "1"})
    client = IntercomClient.from_cfg(cfg)
    assert client.request_json("GET", "/me") == {"type": "admin", "id": "1"}
    sent = rsps.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Intercom-Version"] == "2.8"
    assert sent.headers["User-Agent"].startswith("intercom-oih-connector/")
    assert "Content-Type" not in sent.headers


def test_json_body_content_type(rsps, cfg):
    rsps.post(f"{US}/contacts", json={"id": "1"})
    IntercomClient.from_cfg(cfg).request("POST", "/contacts", json={"email": "a@b.c"})
    sent = rsps.calls[0].request
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {"email": "a@b.c"}


def test_intercom_version_precedence(rsps):
    rsps.get(f"{US}/me", json={})
    client = IntercomClient.from_cfg({"accessToken": TOKEN, "intercomVersion": "2.9"})
    client.request("GET", "/me")
    client.request("GET", "/me", headers={"Intercom-Version": "2.7"})
    assert rsps.calls[0].request.headers["Intercom-Version"] == "2.9"
    assert rsps.calls[1].request.headers["Intercom-Version"] == "2.7"


@pytest.mark.parametrize(
    ("cfg_extra", "host"),
    [
        ({"server": "eu"}, "https://api.eu.intercom.io"),
        ({"server": "https://api.au.intercom.io - The australian API server"}, "https://api.au.intercom.io"),
        (
            {"server": "--- Custom URL", "otherServer": "http://proxy.local:9000/ic"},
            "http://proxy.local:9000/ic",
        ),
    ],
)
def test_regions_and_custom_url_reach_the_right_host(rsps, cfg_extra, host):
    rsps.get(f"{host}/me", json={"ok": True})
    client = IntercomClient.from_cfg({"auth_bearerAuth": TOKEN, **cfg_extra})
    assert client.request_json("GET", "/me") == {"ok": True}
    assert rsps.calls[0].request.url == f"{host}/me"
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_from_cfg_caches_one_session_per_settings(cfg):
    first = IntercomClient.from_cfg(cfg)
    assert IntercomClient.from_cfg(dict(cfg)) is first
    assert IntercomClient.from_cfg({"auth_bearerAuth": TOKEN}) is first
    assert IntercomClient.from_cfg({**cfg, "server": "eu"}) is not first
    assert IntercomClient.from_cfg({**cfg, "accessToken": "other-token-1234"}) is not first
    assert IntercomClient.from_cfg({**cfg, "maxRetries": 1}) is not first
    assert TOKEN not in repr(first)


def test_timeouts_from_cfg(rsps):
    client = IntercomClient.from_cfg({"accessToken": TOKEN, "requestTimeout": "5"})
    assert client.timeout == (5.0, 5.0)
    assert IntercomClient.from_cfg({"accessToken": TOKEN}).timeout == (10.0, 30.0)


@pytest.mark.parametrize("field", [{"requestTimeout": "soon"}, {"maxRetries": -1}, {"maxRetries": 1.5}])
def test_invalid_settings(field):
    with pytest.raises(ValueError, match=next(iter(field))):
        IntercomClient.from_cfg({"accessToken": TOKEN, **field})


def test_404_error_fields(rsps, cfg):
    rsps.get(f"{US}/contacts/x", json=ERROR_404, status=404)
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg(cfg).request("GET", "/contacts/x")
    err = info.value
    assert str(err).startswith("Intercom 404 not_found: Contact Not Found (request_id abc")
    assert (err.status, err.code, err.request_id) == (404, "not_found", "abc")
    details = err.to_dict()
    assert details["errors"] == ERROR_404["errors"]
    assert details["status"] == 404 and details["path"] == "/contacts/x"
    json.dumps(details)
    assert len(rsps.calls) == 1


def test_401_and_request_id_from_header(rsps, cfg):
    rsps.get(
        f"{US}/me",
        json={"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]},
        status=401,
        headers={"X-Request-Id": "req-9"},
    )
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg(cfg).request("GET", "/me")
    assert info.value.status == 401 and info.value.code == "unauthorized"
    assert info.value.request_id == "req-9"
    assert "Access Token Invalid" in str(info.value)
    assert len(rsps.calls) == 1


def test_422_lists_every_error(rsps, cfg):
    rsps.post(
        f"{US}/contacts",
        status=422,
        json={
            "type": "error.list",
            "request_id": "r1",
            "errors": [
                {"code": "parameter_invalid", "message": "Email is invalid", "field": "email"},
                {"code": "parameter_invalid", "message": "Role is invalid"},
            ],
        },
    )
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg(cfg).request("POST", "/contacts", json={"email": "x"})
    assert "Email is invalid (field email); Role is invalid" in str(info.value)
    assert len(info.value.errors) == 2


def test_non_json_error_body(rsps, cfg):
    rsps.get(f"{US}/me", body="<html>Bad gateway</html>", status=502)
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg({**cfg, "maxRetries": 0}).request("GET", "/me")
    assert info.value.code == "bad_gateway" and "Bad gateway" in info.value.message


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_429_waits_until_reset(rsps, sleeps):
    rsps.get(
        f"{US}/me",
        status=429,
        headers={"X-RateLimit-Reset": "1000012"},
        json={"type": "error.list", "errors": [{"code": "rate_limit_exceeded", "message": "slow"}]},
    )
    rsps.get(f"{US}/me", json={"id": "1"})
    client = IntercomClient(US, TOKEN, clock=Clock(1000000.0))
    assert client.request_json("GET", "/me") == {"id": "1"}
    assert len(sleeps) == 1 and 12.0 <= sleeps[0] <= 12.1


def test_a_429_asking_for_more_than_the_call_may_wait_fails_at_once(rsps, sleeps):
    rsps.get(f"{US}/me", status=429, headers={"X-RateLimit-Reset": "1003600"})
    rsps.get(f"{US}/me", json={})
    with pytest.raises(IntercomError) as info:
        IntercomClient(US, TOKEN, clock=Clock(1000000.0), max_rate_limit_wait=60).request("GET", "/me")
    assert sleeps == [] and len(rsps.calls) == 1
    assert info.value.status == 429 and "beyond the 60 s" in str(info.value)


def test_429_without_reset_backs_off_and_post_is_retried(rsps, sleeps, cfg):
    rsps.post(f"{US}/contacts", status=429)
    rsps.post(f"{US}/contacts", json={"id": "7"})
    body = IntercomClient.from_cfg(cfg).request_json("POST", "/contacts", json={"email": "a@b.c"})
    assert body == {"id": "7"} and len(rsps.calls) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5


def test_429s_do_not_use_up_retries_but_the_total_wait_is_bounded(rsps, sleeps):
    rsps.get(f"{US}/me", status=429, headers={"X-RateLimit-Reset": "5"})  # a reset in the past, for ever
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg({"accessToken": TOKEN, "maxRetries": 0}).request("GET", "/me")
    assert info.value.status == 429 and len(rsps.calls) == len(sleeps) + 1 > 2  # retried despite maxRetries 0
    assert 30 < sum(sleeps) <= 60 and min(sleeps) >= 0.1  # bounded by time (60 s), not by count
    assert info.value.attempts == len(rsps.calls)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_5xx_retried_for_idempotent_methods(rsps, sleeps, cfg, method):
    rsps.add(method, f"{US}/x", status=500)
    rsps.add(method, f"{US}/x", status=503)
    rsps.add(method, f"{US}/x", json={"ok": 1})
    assert IntercomClient.from_cfg(cfg).request_json(method, "/x") == {"ok": 1}
    assert len(rsps.calls) == 3
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


def test_5xx_retry_limit(rsps, sleeps, cfg):
    rsps.get(f"{US}/x", status=500)
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg(cfg).request("GET", "/x")
    assert len(rsps.calls) == 4 and len(sleeps) == 3  # default maxRetries 3
    assert info.value.attempts == 4 and "after 4 attempts" in str(info.value)


def test_max_retries_zero(rsps, sleeps):
    rsps.get(f"{US}/x", status=500)
    with pytest.raises(IntercomError):
        IntercomClient.from_cfg({"accessToken": TOKEN, "maxRetries": "0"}).request("GET", "/x")
    assert len(rsps.calls) == 1 and sleeps == []


def test_plain_post_not_retried_on_500(rsps, sleeps, cfg):
    rsps.post(f"{US}/contacts", status=500)
    rsps.post(f"{US}/contacts", json={"id": "dup"})
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg(cfg).request("POST", "/contacts", json={"email": "a@b.c"})
    assert info.value.status == 500 and len(rsps.calls) == 1 and sleeps == []


def test_idempotent_post_retried_on_500(rsps, sleeps, cfg):
    rsps.post(f"{US}/contacts/search", status=500)
    rsps.post(f"{US}/contacts/search", json={"data": []})
    client = IntercomClient.from_cfg(cfg)
    body = client.request_json("POST", "/contacts/search", json={"query": {}}, idempotent=True)
    assert body == {"data": []}
    assert len(rsps.calls) == 2 and len(sleeps) == 1


def _dropped() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))


def test_dropped_connection_retried_for_get_not_for_post(rsps, sleeps, cfg):
    rsps.get(f"{US}/x", body=_dropped())
    rsps.get(f"{US}/x", json={"ok": True})
    client = IntercomClient.from_cfg(cfg)
    assert client.request_json("GET", "/x") == {"ok": True}
    rsps.post(f"{US}/contacts", body=_dropped())
    with pytest.raises(IntercomError) as info:
        client.request("POST", "/contacts", json={})
    assert info.value.code == "connection_error" and info.value.status is None
    assert sum(1 for c in rsps.calls if c.request.method == "POST") == 1


def test_read_timeout_not_retried_for_post(rsps, sleeps, cfg):
    rsps.post(f"{US}/contacts", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg(cfg).request("POST", "/contacts", json={})
    assert info.value.code == "timeout" and len(rsps.calls) == 1 and sleeps == []
    assert "no answer within 30 s" in str(info.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(20)
def test_connection_refused_is_retried_even_for_post(sleeps):
    """A refused connection means no byte reached the server: retrying cannot duplicate the write."""
    port = _closed_port()
    cfg = {
        "accessToken": TOKEN,
        "server": "custom",
        "otherServer": f"http://127.0.0.1:{port}",
        "maxRetries": 2,
    }
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg(cfg).request("POST", "/contacts", json={"email": "a@b.c"})
    err = info.value
    assert err.code == "connection_error" and err.attempts == 3 and len(sleeps) == 2
    assert "could not connect" in str(err) and TOKEN not in str(err)


def test_token_never_in_errors_or_logs(rsps, cfg, caplog):
    """Even an error body that echoes the token does not leak it."""
    caplog.set_level(logging.DEBUG)
    rsps.get(
        f"{US}/a",
        status=401,
        json={
            "type": "error.list",
            "request_id": None,
            "errors": [{"code": "unauthorized", "message": f"bad {TOKEN}"}],
        },
    )
    rsps.get(f"{US}/b", status=500, body=f"Authorization: Bearer {TOKEN}")
    rsps.get(f"{US}/c", body=requests.exceptions.ConnectTimeout("timed out"))
    client = IntercomClient.from_cfg(cfg)
    texts = []
    for path in ("/a", "/b", "/c"):
        with pytest.raises(IntercomError) as info:
            client.request("GET", path)
        texts += [str(info.value), repr(info.value), json.dumps(info.value.to_dict())]
    texts.append(caplog.text)
    texts.append(repr(client))
    for text in texts:
        assert TOKEN not in text
    assert "retry" in caplog.text  # the retries were logged, without the token


def test_next_url_on_foreign_host_stays_on_base_url(rsps, cfg):
    rsps.get(
        f"{US}/admins/activity_logs",
        json={
            "activity_logs": [1],
            "pages": {
                "page": 1,
                "total_pages": 2,
                "next": "https://evil.example/admins/activity_logs?page=2",
            },
        },
    )
    rsps.get(
        f"{US}/admins/activity_logs?page=2",
        json={"activity_logs": [2], "pages": {"page": 2, "total_pages": 2, "next": None}},
    )
    pages = list(IntercomClient.from_cfg(cfg).paginate("GET", "/admins/activity_logs", style="page"))
    assert [p["activity_logs"] for p in pages] == [[1], [2]]
    assert all(c.request.url.startswith(US) for c in rsps.calls)


def test_paths_only(cfg):
    with pytest.raises(ValueError, match="path"):
        IntercomClient.from_cfg(cfg).request("GET", "https://evil.example/x")


def test_unknown_pagination_style(cfg):
    with pytest.raises(ValueError, match="style"):
        list(IntercomClient.from_cfg(cfg).paginate("GET", "/x", style="offset"))


def test_session_reused_across_requests(cfg):
    client = IntercomClient.from_cfg(cfg)
    with responses.RequestsMock() as mock:
        mock.get(f"{US}/me", json={})
        client.request("GET", "/me")
        client.request("GET", "/me")
    assert IntercomClient.from_cfg(cfg).session is client.session


def test_proxy_environment_read_once_and_netrc_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = IntercomClient(US, TOKEN)
    assert client.session.proxies.get("https") == "http://proxy.local:3128"
    assert client.session.verify == "/etc/ssl/certs/ca-certificates.crt"
    assert client.session.trust_env is False  # no per-request environment scan, no ~/.netrc override
    monkeypatch.setenv("NO_PROXY", "api.intercom.io")
    assert "https" not in IntercomClient(US, TOKEN).session.proxies


def test_one_client_serves_many_threads(rsps, cfg):
    """The worker processes `prefetch` messages at once: they share the cached client and its session."""
    from concurrent.futures import ThreadPoolExecutor

    rsps.get(f"{US}/me", json={"type": "admin"})

    def call(_: int) -> tuple[int, dict]:
        client = IntercomClient.from_cfg(dict(cfg))
        return id(client.session), client.request_json("GET", "/me")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(80)))
    assert {session for session, _ in results} == {id(IntercomClient.from_cfg(cfg).session)}
    assert all(body == {"type": "admin"} for _, body in results) and len(rsps.calls) == 80


def test_errors_survive_pickle_and_deepcopy():
    import copy
    import pickle

    from lib.intercom.errors import ConfigurationError, ValidationError

    errors = [
        IntercomError(
            "Contact Not Found",
            status=404,
            code="not_found",
            request_id="r",
            method="GET",
            path="/contacts/x",
            attempts=1,
            errors=[{"code": "not_found"}],
        ),
        ConfigurationError("Field 'server' is bad", field="server"),
        ValidationError("CreateContact", [{"field": "requestBody.email", "rule": "type", "message": "m"}]),
    ]
    for err in errors:
        for clone in (pickle.loads(pickle.dumps(err)), copy.deepcopy(err)):  # noqa: S301 - our own bytes
            assert type(clone) is type(err) and str(clone) == str(err)
            assert clone.to_dict() == err.to_dict()


def test_non_json_success_body_is_a_clear_error(rsps, cfg):
    rsps.get(f"{US}/contacts", body="<html>proxy login</html>", content_type="text/html")
    with pytest.raises(IntercomError, match="not JSON") as info:
        IntercomClient.from_cfg(cfg).request_json("GET", "/contacts")
    assert info.value.code == "invalid_response" and info.value.status == 200


def test_unsendable_body_is_not_a_connection_error(rsps, cfg, sleeps):
    with pytest.raises(IntercomError) as info:
        IntercomClient.from_cfg(cfg).request("POST", "/contacts", json={"n": float("nan")})
    assert info.value.code == "request_error" and sleeps == [] and len(rsps.calls) == 0

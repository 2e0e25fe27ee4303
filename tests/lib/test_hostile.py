"""Issue 12, one test group per bullet: path segments, validation pre-check and agreement, answers into data
or clear errors, redaction before truncation, cfg checks, SSRF, the total deadline, CLI input files.

Every request goes to a recording server on 127.0.0.1 (or to `responses`); SSRF cases resolve names through
a monkeypatched resolver, and a guard fails the test if a connection to anything but loopback is tried.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import urllib3.util.connection
from elasticio_sailor import execute

from lib.actions import (
    delete_company,
    dettach_contact_from_a_company,
    list_admins,
    list_contacts,
    retrieve_visitor_with_user_id,
)
from lib.intercom import answers, config
from lib.intercom.client import IntercomClient
from lib.intercom.errors import ConfigurationError, IntercomError, ValidationError, cut, scrub
from lib.operation import Operation
from lib.select_models import admins, collections
from lib.triggers import companies, contacts, help_centers, segments
from lib.verify_credentials import verify
from tests.in_process import StepSelf
from tests.lib.conftest import TOKEN
from tools.fake_intercom import Answer, FakeIntercom

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server():
    with FakeIntercom(seed=False, answer=lambda request: Answer()) as srv:
        yield srv


@pytest.fixture
def local_cfg(server):
    return {"accessToken": TOKEN, "server": "custom", "otherServer": server.url, "maxRetries": 0}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail at once if anything tries to connect elsewhere than 127.0.0.1."""
    real = urllib3.util.connection.create_connection
    tried: list[tuple[str, int]] = []

    def guarded(address, *args, **kwargs):
        tried.append(address)
        assert address[0] == "127.0.0.1", f"connection attempted to {address}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guarded)
    return tried


# ------------------------------------------------------------------------------------------ path segments
@pytest.mark.parametrize("value", ["..", ".", "a/../b", "../x", "x/..", "..\\x"])
def test_dot_segments_are_refused_with_the_field_and_nothing_is_sent(server, local_cfg, value):
    with pytest.raises(ValidationError) as info:
        dettach_contact_from_a_company.process(StepSelf(), {"contact_id": value, "id": "1"}, local_cfg)
    assert info.value.errors[0]["field"] == "contact_id" and info.value.errors[0]["rule"] == "pathSegment"
    with pytest.raises(ValidationError):
        delete_company.process(StepSelf(), {"id": value}, local_cfg)
    assert server.requests == []


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("a/b", "a%2Fb"),
        ("a?b#c", "a%3Fb%23c"),
        ("%2E%2E", "%252E%252E"),
        ("a b", "a%20b"),
        ("...", "..."),
        ("x.y", "x.y"),
        ("é", "%C3%A9"),
        ("a\\b", "a%5Cb"),
        (";", "%3B"),
    ],
)
def test_a_path_parameter_is_exactly_one_segment(server, local_cfg, value, segment):
    dettach_contact_from_a_company.process(StepSelf(), {"contact_id": value, "id": "7"}, local_cfg)
    (sent,) = server.requests
    assert sent.method == "DELETE" and sent.path == f"/contacts/{segment}/companies/7"


def test_query_values_are_encoded(server, local_cfg):
    retrieve_visitor_with_user_id.process(StepSelf(), {"user_id": "a&b=c#d/../é"}, local_cfg)
    (sent,) = server.requests
    assert sent.path == "/visitors" and sent.target.split("?", 1)[1] == "user_id=a%26b%3Dc%23d%2F..%2F%C3%A9"


# ------------------------------------------------------------------------------ validation pre-check
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"id": "\ud800"}, "id"),
        ({"id": "1", "Intercom-Version": "2.8\udfff"}, "Intercom-Version"),
        ({"id": "1", "extra": {"a": ["x", "\ud83d"]}}, "extra.a[1]"),
        ({"id": "1", "\ud800key": "v"}, "\\ud800key"),
    ],
)
def test_strings_that_are_not_unicode_are_refused_with_their_field(server, local_cfg, data, field):
    with pytest.raises(ValidationError) as info:
        delete_company.process(StepSelf(), data, local_cfg)
    assert [e["field"] for e in info.value.errors] == [field] and info.value.errors[0]["rule"] == "encoding"
    json.dumps(info.value.to_dict(), ensure_ascii=False).encode("utf-8")  # the error itself can be sent
    assert server.requests == []


def test_lone_surrogate_in_metadata_is_refused(server, local_cfg):
    with pytest.raises(ValidationError) as info:
        delete_company.process(StepSelf(), {"data": {"id": "1"}, "metadata": {"oihUid": "\ud800"}}, local_cfg)
    assert info.value.errors[0]["field"] == "metadata.oihUid" and server.requests == []


def test_too_deep_message_is_refused(server, local_cfg):
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ValidationError) as info:
        delete_company.process(StepSelf(), {"id": "1", "x": deep}, local_cfg)
    assert info.value.errors[0]["rule"] == "maxDepth" and server.requests == []


def test_fast_and_reference_validators_must_agree(server, local_cfg):
    """Python's `$` matches before a final newline, Rust's does not: the message is refused, named."""
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string", "pattern": "^[0-9]+$"}},
        "required": ["id"],
    }
    operation = Operation("TestAgree", "DELETE", "/companies/{id}", path_params=("id",), schema=schema)
    with pytest.raises(ValidationError) as info:
        operation.process(StepSelf(), {"id": "123\n"}, local_cfg)
    assert info.value.errors == [
        {"field": "id", "rule": "pattern", "message": '"123\\n" does not match "^[0-9]+$"'}
    ]
    operation.process(StepSelf(), {"id": "123"}, local_cfg)
    assert [r.path for r in server.requests] == ["/companies/123"]


# -------------------------------------------------------------------------------- answers -> data/error
def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (deep_json(100_000), "nested deeper than 100 levels"),
        (deep_json(150), "nested deeper than 100 levels"),
        (b'{"data": NaN}', "not JSON"),
        (b"\xff\xfe not json", "not JSON"),
    ],
)
def test_undecodable_answers_are_clear_errors(server, local_cfg, body, expected):
    server.answer = lambda request: Answer(body=body)
    with pytest.raises(IntercomError) as info:
        list(list_admins.process(StepSelf(), {}, local_cfg))
    assert info.value.code == "invalid_response" and expected in str(info.value)
    if "nested" in expected:  # a single object's answer that is not JSON is data ("non-JSON response")
        with pytest.raises(IntercomError, match=expected):
            delete_company.process(StepSelf(), {"id": "1"}, local_cfg)


def test_a_deep_but_allowed_answer_is_data(server, local_cfg):
    server.answer = lambda request: Answer(body=b'{"id":"1","x":' + deep_json(90) + b"}")
    assert delete_company.process(StepSelf(), {"id": "1"}, local_cfg)["data"]["id"] == "1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([1, 2], "(root)"),
        ("text", "(root)"),
        ({"data": {"a": 1}}, "data"),
        ({"data": [], "pages": []}, "pages"),
        ({"data": [], "pages": {"next": 5}}, "pages.next"),
        ({"data": [], "pages": {"next": {"starting_after": ["x"]}}}, "pages.next.starting_after"),
        ({"data": [], "pages": {"page": "1", "total_pages": 3}}, "pages.page"),
    ],
)
def test_wrong_shapes_in_lists_are_named(server, local_cfg, body, field):
    server.answer = lambda request: Answer.json(body)
    with pytest.raises(IntercomError, match=rf"unexpected shape at {__import__('re').escape(field)}:"):
        list(list_contacts.process(StepSelf(), {}, {**local_cfg, "emitBehaviour": "fetchAll"}))


@pytest.mark.parametrize(
    "body",
    [[{"id": "1"}], {"data": "x"}, {"data": [1]}, {"data": [], "pages": {"next": {"starting_after": 3}}}],
)
def test_wrong_shapes_in_triggers_are_named(server, local_cfg, body):
    server.answer = lambda request: Answer.json(body)
    with pytest.raises(IntercomError, match="unexpected shape at"):
        contacts.process(StepSelf(), {}, {**local_cfg, "startTime": "2024-01-01"}, {})


def test_non_json_answer_to_a_trigger_is_a_clear_error(server, local_cfg):
    server.answer = lambda request: Answer(body=b"<html>oops</html>", headers={"Content-Type": "text/html"})
    for trigger in (contacts, companies, help_centers, segments):
        with pytest.raises(IntercomError, match="not JSON"):
            trigger.process(StepSelf(), {}, {**local_cfg, "startTime": "2024-01-01"}, {})


@pytest.mark.parametrize("body", [[1], {"admins": {"id": 1}}, "x"])
def test_wrong_shapes_in_select_models_and_verifier(server, local_cfg, body):
    server.answer = lambda request: Answer.json(body)
    with pytest.raises(IntercomError, match="unexpected shape at"):
        admins(local_cfg)
    if not isinstance(body, dict):  # (collections read "data", /me is any object)
        with pytest.raises(IntercomError, match="unexpected shape at"):
            collections(local_cfg)
        result = verify(local_cfg)
        assert result["verified"] is False and "unexpected shape at (root)" in result["reason"]


def test_labels_of_another_shape_fall_back_to_the_value(server, local_cfg):
    server.answer = lambda request: Answer.json({"admins": [{"id": 1, "name": {"x": 1}}, {"id": [2]}]})
    assert admins(local_cfg) == {"1": "1"}


def test_answer_size_limit(server, local_cfg, monkeypatch):
    monkeypatch.setattr(answers, "MAX_BYTES", 1000)
    server.answer = lambda request: Answer.json({"id": "1", "pad": "x" * 5000})
    with pytest.raises(IntercomError, match="larger than"):
        IntercomClient.from_cfg(local_cfg).request_json("GET", "/me")


# ------------------------------------------------------------------------- redaction before truncation
def token_forms(token: str) -> list[str]:
    """The plain forms the tests look for: raw and URL-encoded (base64 cores: see ``leaks``)."""
    return [token, quote(token, safe="")]


def leaks(text: str, token: str = TOKEN) -> list[str]:
    """The pieces of the token (12+ characters of any of its forms, or of their base64 core) found in text."""
    found = []
    for form in token_forms(token):
        for start in range(0, len(form) - 12 + 1, 4):
            if form[start : start + 12] in text:
                found.append(form[start : start + 12])
    raw = TOKEN.encode()
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(b"\0" * shift + raw).decode()[4 if shift else 0 : (len(raw) + shift) // 3 * 4]
            found.extend(
                core[start : start + 12]
                for start in range(0, len(core) - 12 + 1, 4)
                if core[start : start + 12] in text
            )
    return found


@pytest.mark.parametrize("position", [0, 250, 270, 285, 290, 295, 299, 320])
def test_token_echoed_anywhere_in_an_error_is_masked_even_when_cut(server, local_cfg, position):
    message = "x" * position + f"Bearer {TOKEN} " + "y" * 400
    server.answer = lambda request: Answer.json(
        {"type": "error.list", "errors": [{"code": "bad", "message": message, "detail": {"echo": TOKEN}}]},
        400,
        **{"X-Request-Id": f"req-{TOKEN}"},
    )
    with pytest.raises(IntercomError) as info:
        delete_company.process(StepSelf(), {"id": "1"}, local_cfg)
    error = info.value
    for text in (str(error), repr(error), json.dumps(error.to_dict())):
        assert not leaks(text), text


@pytest.mark.parametrize(
    "echo",
    [
        lambda t: base64.b64encode(f"Authorization: Bearer {t}".encode()).decode(),
        lambda t: base64.urlsafe_b64encode(f"x{t}".encode()).decode(),
        lambda t: quote(f"Bearer {t}", safe=""),
        lambda t: t,
    ],
)
def test_encoded_forms_of_the_token_are_masked(echo):
    text = f"the header was {echo(TOKEN)} indeed"
    assert not leaks(scrub(text, TOKEN)) and not leaks(cut(text, 40, TOKEN))


def test_cut_never_leaves_the_start_of_the_token():
    for size in range(20, 80):
        assert not leaks(cut("a" * 10 + TOKEN, size, TOKEN))


def test_non_json_error_body_and_reason_phrase_are_masked(server, local_cfg):
    server.answer = lambda request: Answer(
        500, f"upstream said: {request.headers['Authorization']}".encode(), {"Content-Type": "text/plain"}
    )
    with pytest.raises(IntercomError) as info:
        delete_company.process(StepSelf(), {"id": "1"}, local_cfg)
    assert "upstream said" in str(info.value) and not leaks(str(info.value))


def test_non_json_success_text_is_masked(server, local_cfg):
    server.answer = lambda request: Answer(
        200, f"echo {request.headers['Authorization']}".encode(), {"Content-Type": f"text/plain; x={TOKEN}"}
    )
    result = delete_company.process(StepSelf(), {"id": "1"}, local_cfg)
    assert result["data"]["result"] == "non-JSON response" and not leaks(json.dumps(result))


def test_error_events_and_logs_never_hold_the_token(server, local_cfg, caplog):
    server.answer = lambda request: Answer.json(
        {"errors": [{"code": "x", "message": "e" * 280 + request.headers["Authorization"]}]},
        422,
        **{"X-Request-Id": base64.b64encode(request.headers["Authorization"].encode()).decode()},
    )
    with caplog.at_level(logging.DEBUG):
        events = execute("deleteCompany", {"data": {"id": "1"}}, local_cfg, component_dir=ROOT)
    assert events[0]["event"] == "error" and events[0]["error"]["name"] == "IntercomError"
    assert not leaks(json.dumps(events)) and not leaks(caplog.text)


# ---------------------------------------------------------------------------------------- cfg checks
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"accessToken": "abc\r\nX-Evil: 1"}, "accessToken"),
        ({"accessToken": "tökenœ"}, "accessToken"),
        ({"accessToken": None, "auth_bearerAuth": "a\nb"}, "auth_bearerAuth"),
        ({"intercomVersion": "2.8\r\nX: y"}, "intercomVersion"),
        ({"intercomVersion": "2.8✓"}, "intercomVersion"),
        ({"server": "custom", "otherServer": "http://127.0.0.1:9\r\nX-Evil: 1"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://127.0.0.1:9/a\nb"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://127.0.0.1:99999"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://127.0.0.1:abc"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://127.0.0.1:0"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://[::1"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://[zz::1]/"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://user:s3cr3tpw@127.0.0.1:9"}, "otherServer"),
        ({"server": "custom", "otherServer": "ftp://127.0.0.1"}, "otherServer"),
        ({"server": "custom", "otherServer": "file:///etc/passwd"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://exa mple.com"}, "otherServer"),
        ({"server": "custom", "otherServer": "http://ex%41mple.com"}, "otherServer"),
        ({"server": "https://s3cr3tpw@api.intercom.io"}, "server"),
        ({"requestTimeout": "nan"}, "requestTimeout"),
        ({"requestTimeout": "1e400"}, "requestTimeout"),
        ({"maxRetries": float("inf")}, "maxRetries"),
    ],
)
def test_bad_cfg_is_refused_with_the_field(server, extra, field):
    cfg = {"accessToken": TOKEN, **extra}
    with pytest.raises(ConfigurationError) as info:
        delete_company.process(StepSelf(), {"id": "1"}, cfg)
    assert info.value.field == field and f"'{field}'" in str(info.value)
    assert "s3cr3tpw" not in str(info.value) and "\n" not in str(info.value)
    assert server.requests == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("startTime", float("inf")),
        ("startTime", float("nan")),
        ("startTime", "1e400"),
        ("startTime", "inf"),
        ("startTime", 1e300),
        ("startTime", -5),
        ("lagSeconds", float("inf")),
        ("lagSeconds", "nan"),
        ("lagSeconds", "1e400"),
        ("pageSize", float("-inf")),
        ("emitBehaviour", "everything"),
    ],
)
def test_trigger_numbers_must_be_finite(server, local_cfg, field, value):
    cfg = {**local_cfg, "startTime": "2024-01-01", field: value}
    with pytest.raises(ConfigurationError) as info:
        contacts.process(StepSelf(), {}, cfg, {})
    assert info.value.field == field and server.requests == []


# ----------------------------------------------------------------------------------------------- SSRF
FORBIDDEN_LITERALS = [
    "http://169.254.169.254",
    "http://169.254.170.2/v2",
    "http://[fe80::1]",
    "http://[fe80::1%25eth0]",
    "http://[::ffff:169.254.169.254]",
    "http://[::ffff:a9fe:a9fe]",
    "http://[64:ff9b::a9fe:a9fe]",
    "http://[2002:a9fe:a9fe::1]",
    "http://2852039166",
    "http://0xa9fea9fe",
    "http://0251.0376.0251.0376",
    "http://169.254.43518",
    "http://[fd00:ec2::254]",
    "http://100.100.100.200",
    "http://168.63.129.16",
    "http://metadata.google.internal",
    "http://METADATA.GOOGLE.INTERNAL.",
    "http://metadata",
    "http://0.0.0.0",
    "http://0",
    "http://[::]",
    "http://224.0.0.1",
    "http://255.255.255.255",
    "http://10.0.0.1",
    "http://192.168.1.1",
    "http://172.16.0.1",
    "http://[fc00::1]",
    "http://100.64.0.1",
    "http://[::ffff:10.0.0.1]",
]


@pytest.mark.parametrize("url", FORBIDDEN_LITERALS)
def test_forbidden_server_addresses_are_refused_before_anything_is_sent(url, loopback_only):
    cfg = {"accessToken": TOKEN, "server": "custom", "otherServer": url}
    with pytest.raises(ConfigurationError) as info:
        delete_company.process(StepSelf(), {"id": "1"}, cfg)
    assert info.value.field == "otherServer" and "refused" in str(info.value)
    assert loopback_only == []


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fe80::1",
        "::ffff:169.254.169.254",
        "10.1.2.3",
        "fd00:ec2::254",
        "192.168.0.10",
        "0.0.0.0",  # noqa: S104
    ],
)
def test_names_resolving_to_forbidden_addresses_are_refused_at_connect(monkeypatch, loopback_only, address):
    monkeypatch.setattr(
        config,
        "_resolve",
        lambda host, port: ["127.0.0.1", address] if host == "evil.test" else pytest.fail(f"resolved {host}"),
    )
    cfg = {"accessToken": TOKEN, "server": "custom", "otherServer": "http://evil.test:8080", "maxRetries": 0}
    with pytest.raises(ConfigurationError) as info:
        delete_company.process(StepSelf(), {"id": "1"}, cfg)
    assert info.value.field == "otherServer" and "evil.test resolves to" in str(info.value)
    assert loopback_only == []  # not even the loopback address of that name was connected to


def test_loopback_is_allowed_and_the_checked_address_is_the_one_connected(monkeypatch, server, loopback_only):
    port = server.url.rsplit(":", 1)[1]
    monkeypatch.setattr(config, "_resolve", lambda host, p: ["127.0.0.1"])
    cfg = {"accessToken": TOKEN, "server": "custom", "otherServer": f"http://intercom-proxy.test:{port}"}
    assert delete_company.process(StepSelf(), {"id": "1"}, cfg)["data"] == {}
    assert loopback_only == [("127.0.0.1", int(port))]
    assert server.requests[0].headers["Host"] == f"intercom-proxy.test:{port}"


def test_private_hosts_can_be_allowed_by_the_environment(monkeypatch, server):
    port = server.url.rsplit(":", 1)[1]
    monkeypatch.setattr(config, "_resolve", lambda host, p: ["10.9.8.7"])
    cfg = {
        "accessToken": TOKEN,
        "server": "custom",
        "otherServer": f"http://intercom.corp:{port}",
        "maxRetries": 0,
    }
    with pytest.raises(ConfigurationError, match=config.ALLOW_PRIVATE_ENV):
        delete_company.process(StepSelf(), {"id": "1"}, cfg)
    for allowed in ("10.0.0.0/8", "intercom.corp", "*", "192.168.0.0/16,10.9.8.7"):
        monkeypatch.setenv(config.ALLOW_PRIVATE_ENV, allowed)
        assert config.refusal(__import__("ipaddress").ip_address("10.9.8.7"), "intercom.corp") is None
    monkeypatch.setenv(config.ALLOW_PRIVATE_ENV, "*")
    with pytest.raises(ConfigurationError, match="link-local"):  # metadata stays refused whatever it says
        config.server_url("http://169.254.169.254", "otherServer")
    assert config.server_url("http://10.0.0.1/", "otherServer") == "http://10.0.0.1"


@pytest.mark.parametrize(
    "location",
    ["http://169.254.169.254/latest/meta-data/", "http://metadata.test/x", "http://[::ffff:a9fe:a9fe]/"],
)
def test_a_redirect_cannot_lead_to_a_forbidden_address(
    monkeypatch, server, local_cfg, loopback_only, location
):
    literal = config._resolve  # addresses written as addresses need no name service
    monkeypatch.setattr(
        config,
        "_resolve",
        lambda host, port: ["169.254.169.254"] if host == "metadata.test" else literal(host, port),
    )
    server.answer = lambda request: Answer(302, b"", {"Location": location})
    with pytest.raises(ConfigurationError, match="link-local"):
        IntercomClient.from_cfg(local_cfg).request_json("GET", "/me")
    assert [address[0] for address in loopback_only] == ["127.0.0.1"] and len(server.requests) == 1


def test_unresolvable_name_is_a_connection_error(monkeypatch):
    import socket

    def fail(host, port):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(config, "_resolve", fail)
    cfg = {"accessToken": TOKEN, "server": "custom", "otherServer": "http://nowhere.test", "maxRetries": 0}
    with pytest.raises(IntercomError) as info:
        delete_company.process(StepSelf(), {"id": "1"}, cfg)
    assert info.value.code == "connection_error"


# ------------------------------------------------------------------------------------- total deadline
def test_request_timeout_bounds_the_whole_call_body_included(server, local_cfg):
    server.answer = lambda request: Answer(body=b'{"id": "1", "pad": "' + b"x" * 400 + b'"}', drip=0.05)
    with pytest.raises(IntercomError) as info:
        delete_company.process(StepSelf(), {"id": "1"}, {**local_cfg, "requestTimeout": 1})
    assert info.value.code == "timeout" and info.value.retryable
    (drip,) = server.drips
    assert drip.sent < drip.total  # the client hung up while the server was still dripping


@pytest.mark.parametrize(
    ("prelude", "drip"),
    [
        (b"HTTP/1.1 200 OK\r\n", b"X"),  # headers, one byte at a time
        (b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"id": "', b"x"),  # a body without a length
    ],
)
def test_request_timeout_also_bounds_dripping_headers(local_cfg, prelude, drip):
    """The cut-off must not pass for a complete answer: headers ended, or a body read until the close."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    outcome: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            conn.sendall(prelude)
            for _ in range(600):  # 600 x 0.05 s: far longer than the 1 s timeout
                conn.sendall(drip)
                __import__("time").sleep(0.05)
            outcome["aborted"] = False
        except OSError:
            outcome["aborted"] = True
        finally:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    cfg = {**local_cfg, "otherServer": f"http://127.0.0.1:{port}", "requestTimeout": 1}
    with pytest.raises(IntercomError) as info:
        delete_company.process(StepSelf(), {"id": "1"}, cfg)
    thread.join(10)
    listener.close()
    assert info.value.code == "timeout" and outcome == {"aborted": True}


def test_a_finished_call_is_never_shut_down_late():
    """The watchdog may pop a deadline just as its call ends: the socket, back in the pool, must live on."""
    import socket

    from lib.intercom.transport import Deadline

    for finished in (True, False):
        ours, peer = socket.socketpair()
        entry = Deadline(0)
        entry.attach(ours)
        if finished:
            entry.finish()
        entry.expire()
        if finished:
            peer.sendall(b"x")
            ours.settimeout(5)
            assert ours.recv(1) == b"x"
        else:
            with pytest.raises(OSError):  # shut down: nothing more goes out
                ours.sendall(b"y")
        ours.close()
        peer.close()


def test_deadline_is_per_attempt_and_retries_go_on(server, local_cfg):
    calls = []

    def answer(request):
        calls.append(1)
        return Answer(body=b'{"id": "1"}', drip=0.8 if len(calls) == 1 else None)

    server.answer = answer
    result = delete_company.process(
        StepSelf(), {"id": "1"}, {**local_cfg, "requestTimeout": 2, "maxRetries": 1}
    )
    assert result["data"] == {"id": "1"} and len(calls) == 2


# ----------------------------------------------------------------------------------------- CLI input
def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "elasticio_sailor", *args, "--component", str(ROOT)],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than"),
        (b'{"a":' * 300 + b"1" + b"}" * 300, "nests deeper than"),
        (b'{"data": "\xff\xfe"}', "is not UTF-8"),
        (b"{nope", "is not JSON"),
    ],
)
def test_cli_refuses_unusable_json_files_with_one_line_and_exit_2(tmp_path, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    good = tmp_path / "cfg.json"
    good.write_text(json.dumps({"accessToken": TOKEN}))
    for args in (
        ["exec", "deleteCompany", "--cfg", str(good), "--msg", str(bad)],
        ["exec", "deleteCompany", "--cfg", str(bad), "--msg", str(good)],
        ["verify", "--cfg", str(bad)],
    ):
        done = run_cli(*args)
        assert done.returncode == 2 and done.stdout == b""
        lines = done.stderr.decode().splitlines()
        assert len(lines) == 1 and expected in lines[0], done.stderr[-500:]


def test_cli_refuses_an_unreadable_file(tmp_path):
    done = run_cli("exec", "deleteCompany", "--msg", str(tmp_path))  # a directory
    assert done.returncode == 2 and len(done.stderr.decode().splitlines()) == 1


def test_cli_exec_output_never_holds_an_echoed_token(tmp_path, server):
    server.answer = lambda request: Answer.json(
        {"errors": [{"code": "x", "message": "q" * 270 + request.headers["Authorization"]}]},
        400,
        **{"X-Request-Id": base64.b64encode(request.headers["Authorization"].encode()).decode()},
    )
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"accessToken": TOKEN, "server": "custom", "otherServer": server.url}))
    msg = tmp_path / "msg.json"
    msg.write_text(json.dumps({"data": {"id": "1"}}))
    done = run_cli("exec", "deleteCompany", "--cfg", str(cfg), "--msg", str(msg))
    assert done.returncode == 1 and b'"IntercomError"' in done.stdout and len(server.requests) == 1
    assert not leaks(done.stdout.decode()) and not leaks(done.stderr.decode())

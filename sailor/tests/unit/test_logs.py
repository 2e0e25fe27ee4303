"""JSON-lines logs with ids, LOG_LEVEL, and redaction of secrets everywhere a record can carry them."""

import io
import json
import logging

import pytest
from elasticio_sailor.logs import (
    MASK,
    bind,
    get_logger,
    level_from_env,
    redact,
    register_secrets,
    secret_values,
    setup_logging,
)


@pytest.fixture
def stream():
    buf = io.StringIO()
    handler = setup_logging(buf, logging.DEBUG)
    yield buf
    logging.getLogger().removeHandler(handler)


def lines(buf):
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_one_json_object_per_line_with_ids(stream):
    log = logging.getLogger("t.ids")
    with bind(execId="e1", stepId="s1", messageId="m1", threadId="th1"):
        log.info("hello %s", "world")
        with bind(messageId="m2", extraId=None):
            log.warning("inner")
    log.error("outside")
    first, inner, outside = lines(stream)
    assert first["message"] == "hello world" and first["level"] == "info" and first["name"] == "t.ids"
    ids = (first["execId"], first["stepId"], first["messageId"], first["threadId"])
    assert ids == ("e1", "s1", "m1", "th1")
    assert first["time"].endswith("Z")
    assert inner["messageId"] == "m2" and inner["execId"] == "e1" and "extraId" not in inner
    assert inner["level"] == "warn"
    assert "execId" not in outside and outside["level"] == "error"


def test_exception_and_extras_are_in_the_line(stream):
    try:
        raise KeyError("boom")
    except KeyError:
        logging.getLogger("t.exc").exception("failed", extra={"status": 500})
    (line,) = lines(stream)
    assert "KeyError: 'boom'" in line["exception"] and line["status"] == 500


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("debug", 10),
        ("INFO", 20),
        ("warn", 30),
        ("fatal", 50),
        ("trace", 5),
        ("40", 40),
        ("nonsense", 20),
        ("", 20),
    ],
)
def test_log_level_names(raw, level):
    assert level_from_env(raw) == level


def test_log_level_from_environment(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "error")
    assert level_from_env() == logging.ERROR
    buf = io.StringIO()
    handler = setup_logging(buf)
    try:
        logging.getLogger("t.lvl").warning("hidden")
        logging.getLogger("t.lvl").error("shown")
    finally:
        logging.getLogger().removeHandler(handler)
    assert [rec["message"] for rec in lines(buf)] == ["shown"]


def test_redact_keys_values_and_substrings():
    secrets = {"tok-123456"}
    value = {
        "Authorization": "Bearer tok-123456",
        "accessToken": "other",
        "api_key": "k",
        "PassWord": 5,
        "clientSecret": "c",
        "note": "sent tok-123456 and Bearer abcdefgh",
        "nested": [{"x-api-key": "z"}],
        "plain": "tok-123456",
        "count": 3,
        "empty_token": "",
        "keep": "keyboard",
    }
    out = redact(value, secrets)
    assert out == {
        "Authorization": MASK,
        "accessToken": MASK,
        "api_key": MASK,
        "PassWord": MASK,
        "clientSecret": MASK,
        "note": f"sent {MASK} and Bearer {MASK}",
        "nested": [{"x-api-key": MASK}],
        "plain": MASK,
        "count": 3,
        "empty_token": "",
        "keep": "keyboard",
    }
    assert value["accessToken"] == "other"  # a copy, the input is untouched


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /x?access_token=abc&b=1", f"GET /x?access_token={MASK}&b=1"),
        ("{'token': 'ab', 'n': 1}", f"{{'token': '{MASK}', 'n': 1}}"),
        ('{"clientSecret":"xyz","a":"b"}', f'{{"clientSecret":"{MASK}","a":"b"}}'),
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {MASK}"),
        ("password=hunter2 user=bob", f"password={MASK} user=bob"),
        ("tokens are counted", "tokens are counted"),
        ("amqp://guest:guest-pw@127.0.0.1:5672/", f"amqp://guest:{MASK}@127.0.0.1:5672/"),
    ],
)
def test_redact_text_patterns(text, expected):
    assert redact(text) == expected


def test_secret_values_from_credential_fields_and_key_names():
    cfg = {
        "accessToken": "abcd-token",
        "user": "someone-public",
        "region": "region-secret",
        "short": "ab",
        "nested": {"client_secret": "nested-secret"},
        "timeout": 30,
    }
    assert secret_values(cfg, ["region", "short"]) == {"abcd-token", "region-secret", "nested-secret"}
    urls = {"otherServer": "http://127.0.0.1:9/api", "proxy": "https://u:pass-word@proxy.example"}
    assert secret_values(urls, ["otherServer", "proxy"]) == {"pass-word"}


def test_filter_masks_registered_secrets_in_every_part_of_a_record(stream):
    register_secrets(["registered-s3cret"])
    log = logging.getLogger("t.redact")
    log.info("a %s b", "registered-s3cret")
    log.info({"token": "x", "v": "registered-s3cret"})
    log.info("with extra", extra={"detail": "registered-s3cret", "password": "pw-value"})
    try:
        raise RuntimeError("failed with registered-s3cret")
    except RuntimeError:
        log.exception("oops")
    text = stream.getvalue()
    assert "registered-s3cret" not in text and "pw-value" not in text
    assert text.count(MASK) >= 5


def test_component_logger_redacts_without_sailor_handler(caplog):
    register_secrets(["caplog-secret-99"])
    with caplog.at_level(logging.INFO):
        get_logger("component.x").info("value caplog-secret-99")
    assert caplog.records[-1].getMessage() == f"value {MASK}"
    assert "caplog-secret-99" not in caplog.text

"""JSON-lines logging with message ids and secret redaction.

One JSON object per line: time, level, message, name, plus execId/stepId/messageId/threadId (and any
other ids) bound with `bind(...)` for the code running in that context. Every record passes through
`RedactingFilter`, so neither a credential value (raw, URL-encoded or base64) nor a value keyed like a
secret reaches a log line.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import datetime as _dt
import functools
import json
import logging
import os
import re
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

MASK = "***"

#: Keys whose values are secrets whatever the component says (case-insensitive, anywhere in the key).
SENSITIVE_KEY = re.compile(
    r"token|passw|secret|api[-_]?key|authorization|bearer|private[-_]?key|access[-_]?key|cookie|credential",
    re.IGNORECASE,
)
#: Credentials written inline: "Bearer abc", "Basic abc".
_INLINE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
#: key=value / "key": "value" / 'key': 'value' pairs in text (query strings, reprs, JSON) with a secret key.
_KEYED = re.compile(
    r"""(?i)(["']?[\w.-]*(?:token|passw|secret|api[-_]?key|authorization|private[-_]?key|access[-_]?key)"""
    r"""[\w.-]*["']?\s*[:=]\s*)(?!(?:bearer|basic)\s)(["']?)([^"'\s,;&}\]]+)"""
)
_URL = re.compile(r"(?i)https?://(?:[^/@:\s]*(?::(?P<password>[^/@\s]*))?@)?[^\s]+")
#: user:password@ in URLs.
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/@:\s]*:)([^/@\s]+)(@)")
#: Shorter values are masked only where they are a whole value, not as substrings.
MIN_SUBSTRING = 4

_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
}
_NAMES = {
    5: "trace",
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("sailor_ids", default=None)
_secrets: set[str] = set()
_secrets_sorted: list[str] = []  # longest first, so that a secret containing another is masked whole
_secrets_lock = threading.Lock()


# --- redaction -------------------------------------------------------------------------------
def secret_values(cfg: Any, credential_fields: Iterable[str] = (), *, whole: bool = False) -> set[str]:
    """The string values in cfg that are secrets: credential fields and sensitive-looking keys, or with
    `whole` (a record of a secret store, such as the OIH secret service's) every string in it.

    Values shorter than MIN_SUBSTRING are left out: masking "30" or "2.8" wherever it occurs would
    garble every message, and such values are still masked under their key by `redact`. A plain
    http(s) URL in a credential field (a custom server) is no secret and stays readable in errors;
    the password of a URL with user info is one.
    """
    if whole:  # read once per fetched secret, not per message: nothing to remember
        return _secret_values(cfg, None)
    fields = tuple(credential_fields)
    try:  # the same flat cfg arrives with every message of a step: its answer is remembered
        key: Any = (fields, tuple(cfg.items()), tuple(map(type, cfg))) if type(cfg) is dict else None
        cached = _secret_values_cache.get(key) if key is not None else None
    except TypeError:  # a nested (unhashable) value: walk it every time
        key = cached = None
    if cached is not None:
        return set(cached)
    found = _secret_values(cfg, frozenset(fields))
    if key is not None:
        if len(_secret_values_cache) >= _SECRET_VALUES_CACHE_SIZE:
            _secret_values_cache.pop(next(iter(_secret_values_cache)), None)
        _secret_values_cache[key] = frozenset(found)
    return found


_secret_values_cache: dict[Any, frozenset[str]] = {}
_SECRET_VALUES_CACHE_SIZE = 256


def _secret_values(cfg: Any, fields: frozenset[str] | None) -> set[str]:
    """`fields` None: every string under a key is a secret."""
    found: set[str] = set()

    def walk(value: Any, key: str | None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif key is not None and isinstance(value, str) and len(value) >= MIN_SUBSTRING:
            if fields is None or SENSITIVE_KEY.search(key):
                found.add(value)
            elif key in fields:
                url = _URL.fullmatch(value)
                if url is None:
                    found.add(value)
                elif url.group("password"):
                    found.add(url.group("password"))

    walk(cfg, None)
    return found


@functools.lru_cache(maxsize=256)
def encoded_forms(secret: str) -> frozenset[str]:
    """``secret`` and the forms a server echoing it may use: URL-encoded, and base64 (standard and URL-safe
    alphabets, at the three byte alignments, so that base64 of a longer text containing the secret, such as
    an ``Authorization: Bearer ...`` header, is masked too; at most two bytes at either end stay visible)."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret, safe="")}
    raw = secret.encode("utf-8", "surrogatepass")
    for shift in range(3):
        padded = b"\0" * shift + raw
        start, end = -(-shift // 3) * 4, len(padded) // 3 * 4  # the groups made of secret bytes only
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(padded).decode("ascii")[start:end]
            if len(core) >= 2 * MIN_SUBSTRING:
                forms.add(core)
    return frozenset(forms)


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of `value` with secrets masked: values under sensitive keys, and secret substrings anywhere."""
    ordered = sorted({form for s in secrets if s for form in encoded_forms(s)}, key=len, reverse=True)
    return _redact(value, ordered)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if _sensitive_key(k, v) else _redact(v, secrets)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, secrets) for v in value]
    if isinstance(value, str):
        return redact_text(value, secrets)
    return value


def _sensitive_key(key: Any, value: Any) -> bool:
    return isinstance(key, str) and bool(SENSITIVE_KEY.search(key)) and value not in (None, "", [], {})


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask each secret (longest first) where it occurs in text, and inline Bearer/Basic credentials."""
    for secret in secrets:
        if text == secret:
            return MASK
        if len(secret) >= MIN_SUBSTRING and secret in text:
            text = text.replace(secret, MASK)
    text = _INLINE.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    return _KEYED.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def register_secrets(values: Iterable[str]) -> None:
    """Make values secret for every later log record of this process (the filter masks them)."""
    global _secrets_sorted
    new = {form for v in values if v for form in encoded_forms(str(v))} - _secrets
    if new:
        with _secrets_lock:
            _secrets.update(new)
            _secrets_sorted = sorted(_secrets, key=len, reverse=True)


def known_secrets() -> list[str]:
    """Every registered secret, longest first (the list is replaced, never mutated: safe to iterate)."""
    return _secrets_sorted


class RedactingFilter(logging.Filter):
    """Renders the record's message (and traceback) once and masks every registered secret in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = known_secrets()
        if getattr(record, "_redacted", None) == len(secrets):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact_text(message, secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, secrets)
        for key, val in list(vars(record).items()):
            if key in _EXTRA_SKIP or key.startswith("_"):
                continue
            if _sensitive_key(key, val):
                setattr(record, key, MASK)
            elif isinstance(val, (str, dict, list, tuple)):
                setattr(record, key, _redact(val, secrets))
        record._redacted = len(secrets)
        return True


# --- ids -------------------------------------------------------------------------------------
@contextlib.contextmanager
def bind(**ids: Any) -> Iterator[None]:
    """Add ids (execId, stepId, messageId, threadId, ...) to every record logged in this context."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


# --- formatting ------------------------------------------------------------------------------
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_EXTRA_SKIP = _STANDARD | {"exc_text"}


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": _NAMES.get(record.levelno, record.levelname.lower()),
            "message": record.getMessage(),
            "name": record.name,
        }
        out.update(_context.get() or {})
        for key, val in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = val
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


def level_from_env(value: str | None = None) -> int:
    """LOG_LEVEL as bunyan names it (trace..fatal) or as a number; anything else is info."""
    raw = (value if value is not None else os.environ.get("LOG_LEVEL", "info")).strip().lower()
    if raw.isdigit():
        return int(raw)
    return _LEVELS.get(raw, logging.INFO)


_HANDLER_FLAG = "_elasticio_sailor_handler"


def setup_logging(stream: Any = None, level: int | str | None = None) -> logging.Handler:
    """Install (once) a JSON-lines handler with the redacting filter on the root logger.

    Logs go to stderr by default so that the CLI's stdout carries only events.
    """
    logging.addLevelName(5, "TRACE")
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, _HANDLER_FLAG, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_FLAG, True)
    root.addHandler(handler)
    root.setLevel(level_from_env(level) if not isinstance(level, int) else level)
    return handler


def get_logger(name: str) -> logging.Logger:
    """A logger that redacts its own records even when no sailor handler is installed (e.g. under pytest)."""
    logger = _loggers.get(name)
    if logger is not None and logger.filters and type(logger.filters[-1]) is RedactingFilter:
        return logger  # asked for on every message: the common case costs a lookup
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    _loggers[name] = logger
    return logger


_loggers: dict[str, logging.Logger] = {}

"""Exceptions of the Intercom connector.

Every exception here carries JSON-safe details in ``to_dict()``, which the sailor adds to the
``error`` event. None of them ever holds the access token or the Authorization header: messages are
built from Intercom's error body, the HTTP method and the URL path only, and are scrubbed of the
token as a second line of defence (see ``scrub``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from elasticio_sailor.logs import encoded_forms

_MAX_TEXT = 300  # long bodies or values are cut in messages: an error event is not a data dump
MASK = "***"
_MIN_SECRET = 4  # shorter values would mask half of every message
_MIN_PARTIAL = 6  # a cut-off end of a secret this long is masked too


@lru_cache(maxsize=64)
def secret_forms(secret: str) -> tuple[str, ...]:
    """The ways ``secret`` can appear in an answer's text, longest first: the forms the sailor's log filter
    masks too (raw, URL-encoded, base64 at every alignment; ``elasticio_sailor.logs.encoded_forms``)."""
    return tuple(sorted((f for f in encoded_forms(secret) if len(f) >= _MIN_SECRET), key=len, reverse=True))


def scrub(text: str, *secrets: str | None) -> str:
    """Replace every form of every secret (see ``secret_forms``) in ``text`` by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET:
            for form in secret_forms(secret):
                if form in text:
                    text = text.replace(form, MASK)
    return text


def _partial(text: str, secrets: tuple[str | None, ...]) -> str:
    """Mask a secret's beginning left at the end of a cut text (and its end at the start of one)."""
    for secret in secrets:
        if not secret or len(secret) < _MIN_SECRET:
            continue
        for form in secret_forms(secret):
            for size in range(min(len(form) - 1, len(text)), _MIN_PARTIAL - 1, -1):
                if text.endswith(form[:size]):
                    text = text[:-size] + MASK
                    break
            for size in range(min(len(form) - 1, len(text)), _MIN_PARTIAL - 1, -1):
                if text.startswith(form[-size:]):
                    text = MASK + text[size:]
                    break
    return text


def cut(text: str, limit: int = _MAX_TEXT, *secrets: str | None) -> str:
    """``text`` redacted first, then cut to ``limit`` characters: a secret split by the cut cannot survive."""
    text = scrub(text, *secrets)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return _partial(text, secrets) if secrets else text


def _cut(text: str, limit: int = _MAX_TEXT) -> str:
    return cut(text, limit)


def redact_value(value: Any, *secrets: str | None) -> Any:
    """A copy of a decoded JSON value with every string (keys included) scrubbed and cut."""
    if isinstance(value, str):
        return cut(value, _MAX_TEXT, *secrets)
    if isinstance(value, dict):
        return {cut(str(k), _MAX_TEXT, *secrets): redact_value(v, *secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, *secrets) for v in value]
    return value


class IntercomError(Exception):
    """One exception type for everything that goes wrong talking to Intercom.

    HTTP errors carry ``status``, Intercom's error ``code`` and ``message``, the ``request_id`` and the
    full ``errors`` list; connection failures and timeouts have ``status=None`` and code
    ``connection_error`` / ``timeout``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.errors = errors or []
        self.method = method
        self.path = path
        self.attempts = attempts
        self.retryable = retryable
        super().__init__(self._format())

    def fields(self) -> dict[str, Any]:
        """The keyword fields: ``type(e)(other_message, **e.fields())`` is the same error saying more."""
        return {
            "status": self.status,
            "code": self.code,
            "request_id": self.request_id,
            "errors": self.errors,
            "method": self.method,
            "path": self.path,
            "attempts": self.attempts,
            "retryable": self.retryable,
        }

    def __reduce__(self) -> tuple[Any, ...]:  # pickling/deepcopy: rebuild from the keyword fields
        return (_rebuild, (type(self), (self.message,), self.fields()))

    def _format(self) -> str:
        head = "Intercom"
        if self.status is not None:
            head += f" {self.status}"
        if self.code:
            head += f" {self.code}"
        text = f"{head}: {self.message}"
        extras = []
        if self.request_id:
            extras.append(f"request_id {self.request_id}")
        if self.method and self.path:
            extras.append(f"{self.method} {self.path}")
        if self.attempts and self.attempts > 1:
            extras.append(f"after {self.attempts} attempts")
        if extras:
            text += f" ({', '.join(extras)})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe details for the error event."""
        # "message" is left to the sailor (it is str(exc)); Intercom's own text goes under intercom_message
        out: dict[str, Any] = {
            "status": self.status,
            "code": self.code,
            "intercom_message": self.message,
            "request_id": self.request_id,
            "errors": self.errors,
        }
        if self.method:
            out["method"] = self.method
        if self.path:
            out["path"] = self.path
        if self.attempts:
            out["attempts"] = self.attempts
        out["retryable"] = self.retryable
        return out

    @classmethod
    def from_response(
        cls,
        response: Any,
        *,
        method: str | None = None,
        path: str | None = None,
        attempts: int | None = None,
        token: str | None = None,
    ) -> IntercomError:
        """Build the error from an HTTP response with Intercom's ``error.list`` body (or anything else).

        Every text taken from the answer (body, request id) is redacted of the token before it is cut.
        """
        from lib.intercom import answers  # answers imports this module

        status = response.status_code
        code: str | None = None
        message: str | None = None
        request_id = response.headers.get("X-Request-Id") or response.headers.get("x-request-id")
        errors: list[dict[str, Any]] = []
        body = answers.loads_or_none(response.content)
        if isinstance(body, dict):
            request_id = body.get("request_id") or request_id
            raw_errors = body.get("errors")
            if isinstance(raw_errors, list):
                errors = [redact_value(e, token) for e in raw_errors[:20] if isinstance(e, dict)]
            if errors:
                code = str(errors[0].get("code") or "") or None
                parts = []
                for err in errors:
                    part = str(err.get("message") or err.get("code") or "")
                    if err.get("field"):
                        part += f" (field {err['field']})"
                    parts.append(part)
                message = "; ".join(p for p in parts if p) or None
            elif body.get("message"):
                message = str(body["message"])
                code = str(body.get("code") or body.get("type") or "") or None
        if not message:
            text = ""
            if body is None and response.content:
                text = response.content[: 64 * 1024].decode("utf-8", "replace").strip()
            message = text or str(response.reason or "HTTP error")
        message = cut(message, _MAX_TEXT, token)
        request_id = cut(str(request_id), 100, token) if request_id else None
        code = cut(code, 100, token) if code else _DEFAULT_CODES.get(status, f"http_{status}")
        return cls(
            message,
            status=status,
            code=code,
            request_id=request_id,
            errors=errors,
            method=method,
            path=path,
            attempts=attempts,
            retryable=status == 429 or status >= 500,
        )


_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ConfigurationError(ValueError):
    """A credential or step field is missing or invalid (never includes the field's secret value)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.message,), {"field": self.field}))

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message}


class ValidationError(Exception):
    """The incoming message does not match the action's in-schema; no request was sent.

    ``errors`` is a list of ``{"field": "requestBody.email", "rule": "type", "message": "..."}``.
    """

    def __init__(self, action_id: str, errors: list[dict[str, str]]) -> None:
        self.action_id = action_id
        self.errors = errors
        listed = "; ".join(f"{e['field']}: {e['message']} (rule {e['rule']})" for e in errors)
        super().__init__(f"Invalid message for {action_id}: {listed}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.action_id, self.errors), {}))

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action_id, "errors": self.errors}


def _rebuild(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception:
    return cls(*args, **kwargs)


def with_auth_hint(error: IntercomError) -> IntercomError:
    """A 401/403 with its likely cause added to the message (Intercom's own text is often just
    "Unauthorized"); other errors unchanged."""
    resource = (error.path or "").strip("/").split("/")[0] or "this resource"
    hints = {
        401: "the access token is invalid, expired or revoked: check the accessToken credential (a "
        "reinstalled or re-authorised app gets a new token)",
        403: f"the token is valid but may not do this: the app probably lacks the permission scope for "
        f"`{resource}` (Developer Hub > your app > Authentication > permissions), or the workspace's "
        "plan does not include this API",
    }
    hint = hints.get(error.status or 0)
    if hint is None or "Likely cause" in error.message:
        return error
    return type(error)(f"{error.message}. Likely cause: {hint}", **error.fields())

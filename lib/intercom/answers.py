"""The one place that turns an HTTP answer into data or an IntercomError with a clear message.

An answer is read under limits (``MAX_BYTES`` of body, ``MAX_DEPTH`` levels of JSON nesting: deeper JSON
would end in a RecursionError somewhere later), with every form of the token masked (should anything have
echoed it), decoded, and, where code is about to read fields from it, checked for shape: a wrong shape
is "Intercom answered an unexpected shape at <field>: expected ...".
Pagination, triggers, select models and the verifier read through ``page`` / ``expect`` / ``items``.
"""

from __future__ import annotations

import json
from typing import Any

from lib.intercom.errors import MASK, IntercomError, cut, secret_forms

MAX_BYTES = 64 * 1024 * 1024  # an Intercom page of 150 conversations is a few MB
MAX_DEPTH = 100  # Intercom objects nest about ten levels deep
_CHUNK = 64 * 1024
_KINDS: dict[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def kind_of(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


class TooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH."""


def invalid(
    message: str, response: Any = None, *, method: str | None = None, path: str | None = None
) -> IntercomError:
    """The IntercomError for an answer we cannot use (code ``invalid_response``)."""
    status = getattr(response, "status_code", None)
    return IntercomError(message, status=status, code="invalid_response", method=method, path=path)


def read_body(
    response: Any, *, method: str | None = None, path: str | None = None, limit: int | None = None
) -> bytes:
    """Read the whole (streamed) body into ``response.content``, refusing more than ``limit`` bytes."""
    limit = MAX_BYTES if limit is None else limit
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        response.close()
        raise invalid(
            f"the answer is larger than {limit // (1024 * 1024)} MB", response, method=method, path=path
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            response.close()
            raise invalid(
                f"the answer is larger than {limit // (1024 * 1024)} MB", response, method=method, path=path
            )
        chunks.append(chunk)
    response._content = b"".join(chunks)  # what requests itself does when it reads the body
    response._content_consumed = True
    return response._content


def mask(response: Any, token: str | None) -> None:
    """Replace every form of the token in the read body by ``***`` (an echoing proxy must not leak it).

    Intercom never answers with the token, so the body changes only when something echoed it.
    """
    content = response._content
    if not token or not content:
        return
    for form in secret_forms(token):
        encoded = form.encode("utf-8", "surrogatepass")
        if encoded in content:
            content = content.replace(encoded, MASK.encode())
    response._content = content


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(content: bytes) -> Any:
    """Decoded JSON (None for an empty body); ValueError for anything not JSON or nested too deeply."""
    if not content:
        return None
    try:
        value = json.loads(content, parse_constant=_refuse_constant)
    except RecursionError:
        raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    if _brackets_may_exceed(content, MAX_DEPTH) and _depth_exceeds(value, MAX_DEPTH):
        raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def _brackets_may_exceed(content: bytes, limit: int) -> bool:
    """False when the body's brackets nest at most ``limit`` deep (C-speed; brackets inside strings can only
    make the answer True, and then the decoded value is walked)."""
    brackets = content.translate(_BRACKETS, _NOT_BRACKETS)
    if len(brackets) <= 2 * limit:
        return False
    for _ in range(limit):  # each pass removes the innermost pairs: the passes needed are the depth
        brackets = brackets.replace(b"()", b"")
        if not brackets:
            return False
    return True


def loads_or_none(content: bytes) -> Any:
    """``loads``, or None when the body is not (acceptable) JSON: for error answers, read as text."""
    try:
        return loads(content)
    except ValueError:
        return None


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        children = node.values() if type(node) is dict else node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                if depth >= limit:
                    return True
                push((child, depth + 1))
    return False


def decode(
    response: Any, *, method: str | None = None, path: str | None = None, token: str | None = None
) -> Any:
    """The answer's JSON (None for an empty body), or an IntercomError that says what was wrong with it."""
    try:
        return loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = cut(str(response.headers.get("Content-Type") or "unknown"), 80, token)
        reason = str(exc) if isinstance(exc, TooDeep) else f"not JSON (Content-Type {kind})"
        request_id = cut(str(response.headers.get("X-Request-Id") or ""), 100, token) or None
        raise IntercomError(
            f"the answer is {reason}",
            status=response.status_code,
            code="invalid_response",
            method=method,
            path=path,
            request_id=request_id,
        ) from None


def expect(
    value: Any,
    kinds: type | tuple[type, ...],
    field: str,
    *,
    method: str | None = None,
    path: str | None = None,
    optional: bool = True,
) -> Any:
    """``value`` if it is of ``kinds`` (or None when ``optional``); else the shape error naming ``field``."""
    wanted = kinds if isinstance(kinds, tuple) else (kinds,)
    if value is None and optional:
        return value
    if isinstance(value, wanted) and (bool in wanted or not isinstance(value, bool)):
        return value
    expected = " or ".join(dict.fromkeys(_KINDS.get(k, k.__name__) for k in wanted))
    raise invalid(
        f"Intercom answered an unexpected shape at {field}: expected {expected}, got {kind_of(value)}",
        method=method,
        path=path,
    )


def page(
    value: Any, items_key: str, *, method: str | None = None, path: str | None = None, objects: bool = False
) -> dict[str, Any]:
    """Check the fields a list page is read by (pagination, items); ``objects``: every item an object."""
    body = expect(value, dict, "(root)", method=method, path=path, optional=False)
    items = expect(body.get(items_key), list, items_key, method=method, path=path)
    if objects and items:
        for index, item in enumerate(items):
            if type(item) is not dict:
                expect(item, dict, f"{items_key}[{index}]", method=method, path=path, optional=False)
    pages = expect(body.get("pages"), dict, "pages", method=method, path=path)
    if pages:
        nxt = expect(pages.get("next"), (str, dict), "pages.next", method=method, path=path)
        if isinstance(nxt, dict):
            expect(nxt.get("starting_after"), str, "pages.next.starting_after", method=method, path=path)
        for name in ("page", "total_pages", "per_page"):
            expect(pages.get(name), int, f"pages.{name}", method=method, path=path)
    expect(body.get("scroll_param"), str, "scroll_param", method=method, path=path)
    return body


def items(
    value: Any, key: str, *, method: str | None = None, path: str | None = None
) -> list[dict[str, Any]]:
    """The objects of a one-response list (select models): the answer an object, ``key`` a list."""
    if value is None:
        return []
    body = page(value, key, method=method, path=path)
    return [item for item in body.get(key) or () if isinstance(item, dict)]

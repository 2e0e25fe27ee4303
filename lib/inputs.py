"""Checks and encodings of message values before they reach a request (see lib.operation).

* ``precheck``: what the schema validators cannot see but the HTTP stack would trip over: strings that
  cannot be encoded as UTF-8 (lone surrogates such as ``"\\ud800"``, in keys or values) and nesting deeper
  than ``MAX_DEPTH``. Each problem is named by the field's path, as validation errors are.
* ``path_segment``: a path parameter as exactly one segment of the operation's path template: every
  character outside RFC 3986's unreserved set is percent-encoded (``/`` too), and a value that is, or
  contains as a ``/``-separated piece, ``.`` or ``..`` is refused by ``dot_segment_error``: a server or proxy
  that decodes ``%2F`` would otherwise resolve it to another operation (``DELETE /companies/{id}``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

MAX_DEPTH = 64  # Intercom's bodies nest a few levels; deeper would only exhaust the validators' recursion
_NOT_UNICODE = "is not valid Unicode text (a lone surrogate such as \\ud800 cannot be encoded as UTF-8)"
_DOT_PIECE = re.compile(r"(?:^|[/\\])\.{1,2}(?:$|[/\\])")


def printable_key(key: Any) -> str:
    """A key as it can appear in an error's field path (a lone surrogate shown as ``\\ud800``)."""
    return str(key).encode("utf-8", "backslashreplace").decode("utf-8")


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    name = printable_key(key)
    return f"{path}.{name}" if path else name


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def precheck(data: Any, root: str = "") -> list[dict[str, str]]:
    """``{field, rule, message}`` for every string that is not valid Unicode and for too deep nesting."""
    errors: list[dict[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(data, root, 0)]
    while stack and len(errors) < 20:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                errors.append({"field": path or "(root)", "rule": "encoding", "message": _NOT_UNICODE})
            continue
        if isinstance(value, dict):
            children: Any = value.items()
        elif isinstance(value, list | tuple):
            children = enumerate(value)
        else:
            continue
        if depth >= MAX_DEPTH:
            errors.append(
                {
                    "field": path or "(root)",
                    "rule": "maxDepth",
                    "message": f"nests deeper than {MAX_DEPTH} levels",
                }
            )
            continue
        for key, child in children:
            field = _join(path, key)
            if isinstance(key, str) and not _encodable(key):
                errors.append({"field": field, "rule": "encoding", "message": "this key " + _NOT_UNICODE})
                continue
            stack.append((child, field, depth + 1))
    return errors


def dot_segment_error(name: str, value: Any) -> dict[str, str] | None:
    """The validation error for a path parameter that would add or remove a path segment, else None."""
    if isinstance(value, str) and _DOT_PIECE.search(value):
        return {
            "field": name,
            "rule": "pathSegment",
            "message": "must not be '.' or '..' (or contain them between slashes): it would change "
            "which Intercom operation is called",
        }
    return None


def path_segment(value: Any) -> str:
    """``value`` percent-encoded as one path segment; dots-only values are encoded too (never as dots)."""
    text = quote(str(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text

"""JavaScript's rules for numbers and JSON, as the Node runtimes apply them on the wire.

Why one module: both dialects read numbers the way Node does (``Number(header)``, ``parseInt(env)``) and
write JSON the way ``JSON.stringify`` does (the encrypted bytes must match the Node sailor's), so the
parsing and the formatting rules live side by side.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any


# --- reading numbers ---------------------------------------------------------------------------
def js_number(value: Any) -> float:
    """JavaScript ``Number(value)`` for the header types pika hands us."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            return float(int(text, 0)) if text[:2].lower() in ("0x", "0o", "0b") else float(text)
        except ValueError:
            return math.nan
    return math.nan


_INT_RE = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|\d+)")
_DECIMAL_INT_RE = re.compile(r"\s*([+-]?)(\d+)")


def js_parse_int(value: str, radix: int | None = None) -> float:
    """JavaScript ``parseInt(value)`` (``0x`` is hex) or ``parseInt(value, 10)``: leading integer, or NaN."""
    match = (_DECIMAL_INT_RE if radix == 10 else _INT_RE).match(value)
    if not match:
        return math.nan
    sign, digits = match.groups()
    number = int(digits, 16) if digits[:2].lower() == "0x" else int(digits)
    return -number if sign == "-" else number


# --- writing numbers and JSON ------------------------------------------------------------------
_SURROGATE = re.compile("[\ud800-\udfff]")


def js_number_text(value: float | int) -> str:
    """A number as JavaScript's Number::toString writes it (shortest round-trip digits).

    Python ints are written exactly (JS would have rounded ints beyond 2**53 on parse already).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(value))).as_tuple()[1:]
    digits = "".join(map(str, digits_tuple)).rstrip("0")
    exponent += len(digits_tuple) - len(digits)  # dropped trailing zeros
    k = len(digits)
    n = exponent + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


#: Where json.dumps may have written a float other than JSON.stringify would (1.0, -0.0, 1e-07, 1e+16, inf,
#: nan; keys too). Python writes a float with an exponent or a ".0" or as Infinity/NaN exactly when JS
#: differs; the same characters inside a string are a false alarm, which costs time, not correctness.
_PY_FLOAT = re.compile(r"\d\.0(?!\d)|\de[+-]\d|Infinity|NaN")


def _may_hold_py_float(text: str) -> bool:
    # substring tests first: five C scans cost a fifth of the regex, which only confirms a hit
    return (
        ".0" in text or "e+" in text or "e-" in text or "Infinity" in text or "NaN" in text
    ) and _PY_FLOAT.search(text) is not None


def _js_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return js_number_text(key) if key is not None else "null"
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _encode(obj: Any, default: Callable[[Any], Any] | None, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif isinstance(obj, str):
        out.append(json.dumps(obj, ensure_ascii=False))
    elif isinstance(obj, (bool, int, float)):
        out.append(js_number_text(obj))
    elif isinstance(obj, dict):
        out.append("{")
        for i, (k, v) in enumerate(obj.items()):
            if i:
                out.append(",")
            out.append(json.dumps(_js_key(k), ensure_ascii=False))
            out.append(":")
            _encode(v, default, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(",")
            _encode(v, default, out)
        out.append("]")
    elif hasattr(obj, "to_dict"):
        _encode(obj.to_dict(), default, out)
    elif default is not None:
        _encode(default(obj), default, out)
    else:
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def js_json_dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """JSON.stringify(obj): compact, insertion order, no ASCII escaping, JS number format.

    The C encoder writes what JSON.stringify writes except for some floats (1.0, 1e-07, 1e+21, -0.0, inf,
    nan) and objects it cannot encode (to_dict, default). So it runs first; only when its text may hold
    such a float (`_may_hold_py_float`; a false alarm from a string costs time, not correctness) or it
    refuses the object does the exact encoder walk the value. Scanning the text costs a fraction of
    walking the value first. Lone surrogates are escaped as JS does (ES2019).
    """
    try:
        text: str | None = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):  # not plain JSON (to_dict, default, circular): the exact path
        text = None
    if text is not None and not _may_hold_py_float(text):
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    out: list[str] = []
    _encode(obj, default, out)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", "".join(out))

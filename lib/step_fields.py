"""Step fields: how the values a flow's author typed into a step are read, by actions and triggers alike.

The platform's UI sends most values as text (a number may arrive as ``"10"`` or ``10``) and an empty field
as ``""`` or not at all, which means "the default". Each rule here accepts both forms and refuses anything
else with one ``ConfigurationError`` that names the field and the rule it broke, before any request is
sent. The sailor reports that error alike wherever it is raised (an ``error`` event with its name, message
and ``to_dict()``, which carries ``field``), so an action and a trigger given the same bad value say the
same thing.

The rules: ``choice`` (``emitBehaviour`` through ``emit_behaviour``, a ticket trigger's state), matched
regardless of case and surrounding blanks, as a user of an integration platform types them, and answered
in its own spelling; ``integer``/``whole_number`` (maxPages, maxRetries, pageSize, lagSeconds, assignee
ids); ``number`` (requestTimeout); ``finite_number`` (startTime's epoch form); ``flag`` (checkboxes).
"""

from __future__ import annotations

import math
from typing import Any

from lib.intercom.errors import ConfigurationError

EMIT_BEHAVIOUR = "emitBehaviour"
EMIT_BEHAVIOURS = ("emitPage", "emitIndividually", "fetchAll")


def _refused(name: str, rule: str, value: Any) -> ConfigurationError:
    return ConfigurationError(f"Field '{name}' must be {rule}; got {str(value)[:40]!r}", field=name)


def _empty(value: Any) -> bool:
    return value is None or value == ""


def choice(cfg: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    """The step field ``name`` as one of ``choices`` in its own spelling (``default`` when empty)."""
    value = cfg.get(name)
    if _empty(value):
        return default
    if value in choices:
        return value
    if isinstance(value, str):
        folded = value.strip().lower()
        for known in choices:
            if folded == known.lower():
                return known
    raise _refused(name, f"one of {', '.join(choices)}", value)


def emit_behaviour(cfg: dict[str, Any], default: str) -> str:
    """How a list becomes messages (one of EMIT_BEHAVIOURS); the default is the caller's (actions emit pages,
    triggers objects)."""
    return choice(cfg, EMIT_BEHAVIOUR, EMIT_BEHAVIOURS, default)


def flag(cfg: dict[str, Any], name: str) -> bool:
    """A checkbox step field: ticked is ``true`` (the UI's form), or text such as "true", "1", "yes", "on"."""
    value = cfg.get(name)
    return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")


def finite_number(value: Any, name: str) -> float:
    """A finite float from a number or its text; a ConfigurationError naming the field ``name`` otherwise."""
    if isinstance(value, bool):
        raise ConfigurationError(f"Field '{name}' must be a number", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigurationError(f"Field '{name}' must be a number", field=name) from None
    if not math.isfinite(number):
        raise ConfigurationError(f"Field '{name}' must be a finite number (not inf or nan)", field=name)
    return number


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f" of at least {minimum:g}"
    if maximum is not None:
        return f" of at most {maximum:g}"
    return ""


def whole_number(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` (an int, or text or a float that is one: ``"12"``, ``12.0``, ``"1e3"``) as an int within
    the bounds; never a bool. Digits are read exactly, so a large id loses no precision."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str | float):
        try:
            number = int(value) if isinstance(value, str) else None
        except ValueError:
            pass
        if number is None:
            try:
                parsed = float(value)
            except (ValueError, OverflowError):
                parsed = math.nan
            if math.isfinite(parsed) and parsed == int(parsed):
                number = int(parsed)
    if (
        number is None
        or (minimum is not None and number < minimum)
        or (maximum is not None and number > maximum)
    ):
        raise _refused(name, "a whole number" + _bounds(minimum, maximum), value)
    return number


def integer(
    cfg: dict[str, Any], name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """The whole-number step field ``name`` (``default`` when empty); see ``whole_number``."""
    value = cfg.get(name)
    return default if _empty(value) else whole_number(value, name, minimum=minimum, maximum=maximum)


def number(cfg: dict[str, Any], name: str, default: float, *, minimum: float, maximum: float) -> float:
    """The numeric step field ``name`` (``default`` when empty), finite and within the bounds."""
    value = cfg.get(name)
    if _empty(value):
        return default
    refused = _refused(name, "a number" + _bounds(minimum, maximum), value)
    try:
        parsed = finite_number(value, name)
    except ConfigurationError:
        raise refused from None
    if not minimum <= parsed <= maximum:
        raise refused
    return parsed

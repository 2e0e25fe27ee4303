"""The one place that calls component functions: process, verify, select models, metadata, hooks.

`run_process` turns every way a `process` can answer (a value, None with its own emits, a generator,
a coroutine, an exception) into a sequence of events handed to the caller's synchronous `emit(kind,
payload)` callback, followed by exactly one `end`. Payloads handed to the callback are normalised:

    data          -> Message
    error         -> dict {name, message, stack, **exc.to_dict()}, secrets redacted
    snapshot, updateSnapshot, updateKeys, httpReply -> dict
    rebound       -> str (the reason)
    end           -> None

If the callback raises (e.g. a publish failed), the component sees that exception at its emit, later
emits are refused, and run_process raises EmitFailed: the caller must not settle the input message.
A TypeError (PayloadError) from the callback means the payload itself cannot be sent (not JSON): that
is the component's error, raised at its emit, and the run goes on (usually to an error event).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .component import Component, ComponentError
from .logs import get_logger, known_secrets, redact, register_secrets, secret_values
from .message import Message

EMIT_KINDS = ("data", "error", "snapshot", "updateSnapshot", "rebound", "updateKeys", "httpReply", "end")
EmitCallback = Callable[[str, Any], None]


class PayloadError(TypeError):
    """An emitted payload that cannot be serialised; the component's fault, not the transport's."""


class EmitFailed(Exception):
    """The caller's emit callback failed; the input message must not be acknowledged."""


@dataclass
class Outcome:
    """What happened while processing one message."""

    errors: int = 0  # error events emitted
    emitted: int = 0  # events handed to the callback, end included


class ProcessContext:
    """`self` of a component function: emit, logger, get_config, get_flow_variables."""

    def __init__(
        self,
        emit: EmitCallback,
        logger: logging.Logger,
        cfg: dict,
        secrets: set[str],
        flow_variables: dict | None = None,
    ):
        self._callback = emit
        self.logger = logger
        self._cfg = cfg
        self._secrets = secrets
        self._flow_variables = flow_variables or {}
        self._lock = threading.RLock()
        self.outcome = Outcome()
        self.ended = False
        self.failure: BaseException | None = None

    def get_config(self) -> dict:
        return copy.deepcopy(self._cfg)

    def get_flow_variables(self) -> dict:
        return copy.deepcopy(self._flow_variables)

    getConfig = get_config
    getFlowVariables = get_flow_variables

    def emit(self, kind: str, payload: Any = None) -> None:
        """Normalise and hand one event to the callback; returns once the callback has returned."""
        if kind not in EMIT_KINDS:
            raise ValueError(f"unknown emit kind {kind!r}; expected one of {', '.join(EMIT_KINDS)}")
        with self._lock:
            if self.failure is not None:
                raise EmitFailed(f"an earlier emit failed: {self.failure}") from self.failure
            if kind == "end":
                if self.ended:
                    return  # the first end counts
                self.ended = True
            value = normalise(kind, payload, self._secrets)
            try:
                self._callback(kind, value)
            except TypeError:
                raise  # PayloadError and friends: this payload cannot be sent; later emits still can
            except BaseException as exc:
                self.failure = exc
                raise
            self.outcome.emitted += 1
            if kind == "error":
                self.outcome.errors += 1


def normalise(kind: str, payload: Any, secrets: set[str] | frozenset = frozenset()) -> Any:
    """The payload the callback receives for an emit of `kind` (see the module docstring)."""
    if kind == "data":
        return Message.from_any(payload)
    if kind == "error":
        return error_payload(payload, secrets)
    if kind == "rebound":
        return str(payload) if payload is not None else ""
    if kind == "end":
        return None
    if kind in ("snapshot", "updateSnapshot", "updateKeys", "httpReply"):
        if payload is None:
            return {}
        if not isinstance(payload, dict):
            raise TypeError(f"emit({kind!r}) takes a dict, got {type(payload).__name__}")
        return payload
    raise ValueError(f"unknown emit kind {kind!r}")


def error_payload(error: Any, secrets: set[str] | frozenset = frozenset()) -> dict:
    """{name, message, stack?, **to_dict()} of an exception, dict or other value, with secrets masked."""
    if isinstance(error, BaseException):
        out: dict[str, Any] = {
            "name": type(error).__name__,
            "message": str(error),
            "stack": "".join(traceback.format_exception(error)).rstrip(),
        }
        to_dict = getattr(error, "to_dict", None)
        if callable(to_dict):
            try:
                extra = to_dict()
            except Exception as exc:  # details are a bonus; never lose the error itself
                extra = {"detailsError": f"to_dict() failed: {type(exc).__name__}"}
            if isinstance(extra, dict):
                out.update(extra)
    elif isinstance(error, dict):
        out = {"name": "Error", "message": "", **error}
        out["name"], out["message"] = str(out["name"]), str(out["message"])
    else:
        out = {"name": "Error", "message": str(error), "stack": "Not Available"}
    # JSON-safe, so that reporting an error can never fail on its details (a datetime, a set)
    return json.loads(json.dumps(redact(out, {*secrets, *known_secrets()}), default=str))


def apply_snapshot(current: dict | None, kind: str, payload: dict) -> dict:
    """The sailor's in-memory snapshot after a snapshot (replace) or updateSnapshot (shallow merge) emit."""
    if kind == "snapshot":
        return copy.deepcopy(payload)
    if kind == "updateSnapshot":
        return {**(current or {}), **copy.deepcopy(payload)}
    return current or {}


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _deepcopy(value: Any) -> Any:
    """copy.deepcopy's answer; a flat dict of plain values (a typical cfg) costs a tenth of it."""
    if type(value) is dict and set(map(type, value.values())) <= _ATOMIC and set(map(type, value)) <= _ATOMIC:
        return dict(value)  # deepcopy returns these immutable values themselves too
    return copy.deepcopy(value)


def _resolve(value: Any) -> Any:
    """Run a coroutine to completion (the processing thread has no running loop; async components
    therefore cannot be executed from inside a running event loop)."""
    if inspect.isawaitable(value):
        return asyncio.run(_await(value))
    return value


async def _await(value: Any) -> Any:
    return await value


async def _drain(items: Any, ctx: ProcessContext) -> None:
    async for item in items:
        ctx.emit("data", item)


def collect_secrets(component: Component, cfg: Any) -> set[str]:
    """The secrets of this cfg, also registered so that every later log line masks them."""
    secrets = secret_values(cfg, component.secret_fields)
    register_secrets(secrets)
    return secrets


def run_process(
    component: Component,
    function: str,
    msg: Any,
    cfg: dict | None,
    snapshot: dict | None,
    emit: EmitCallback,
    logger: logging.Logger | None = None,
    *,
    flow_variables: dict | None = None,
    secrets: set[str] | None = None,
) -> Outcome:
    """Call `function`'s process(self, msg, cfg, snapshot) and emit what it produces, then `end` once.

    `secrets`: what `collect_secrets(component, cfg)` returned, when the caller has already called it.
    """
    cfg = cfg or {}
    logger = logger or get_logger(f"component.{function}")
    if secrets is None:
        secrets = collect_secrets(component, cfg)
    ctx = ProcessContext(emit, logger, cfg, secrets, flow_variables)
    try:
        process = getattr(component.load_module(function), "process", None)
        if not callable(process):
            raise ComponentError(f"the module of {function!r} defines no process(self, msg, cfg, snapshot)")
        result = _resolve(
            process(
                ctx,
                Message.from_any(msg),
                _deepcopy(cfg),
                _deepcopy(snapshot) if snapshot is not None else {},
            )
        )
        if isinstance(result, Iterator):
            for item in result:
                ctx.emit("data", item)
        elif inspect.isasyncgen(result):
            asyncio.run(_drain(result, ctx))
        elif result is not None:
            ctx.emit("data", result)
    except Exception as exc:
        if ctx.failure is not None:
            raise EmitFailed(str(ctx.failure)) from ctx.failure
        logger.error("%s failed: %s: %s", function, type(exc).__name__, exc, exc_info=True)
        _sailor_emit(ctx, "error", exc)
    _sailor_emit(ctx, "end")
    return ctx.outcome


def _sailor_emit(ctx: ProcessContext, kind: str, payload: Any = None) -> None:
    """An emit of the sailor's own (error, end): a callback failure becomes EmitFailed."""
    if ctx.failure is None:
        try:
            ctx.emit(kind, payload)
        except Exception:
            if ctx.failure is None:
                raise
    if ctx.failure is not None:
        raise EmitFailed(str(ctx.failure)) from ctx.failure


def run_hook(component: Component, function: str, hook: str, *args: Any) -> Any:
    """Call a startup/init/shutdown hook if the module has it; its exceptions propagate."""
    fn = component.hook(function, hook)
    return _resolve(fn(*copy.deepcopy(args))) if fn else None


def run_verify(component: Component, cfg: dict | None) -> dict:
    """{"verified": bool, "reason"?}: errors and falsy answers become verified false, never an exception."""
    cfg = cfg or {}
    secrets = collect_secrets(component, cfg)
    fn = component.verifier()
    if fn is None:
        return {"verified": True}
    try:
        result = _resolve(fn(copy.deepcopy(cfg)))
    except Exception as exc:
        reason = redact(str(exc) or type(exc).__name__, secrets)
        get_logger("elasticio_sailor.verify").warning("credentials not verified: %s", reason)
        return {"verified": False, "reason": reason}
    if isinstance(result, bool):
        return {"verified": result}
    if isinstance(result, dict):
        return redact({**result, "verified": bool(result.get("verified", True))}, secrets)
    return {"verified": True}


def _call_model(component: Component, function: str, names: tuple[str, ...], cfg: dict | None) -> Any:
    module = component.load_module(function)
    fn = next((getattr(module, n) for n in names if callable(getattr(module, n, None))), None)
    if fn is None:
        raise ComponentError(f"the module of {function!r} defines no {' or '.join(names)}(cfg)")
    cfg = cfg or {}
    collect_secrets(component, cfg)
    return _resolve(fn(copy.deepcopy(cfg)))


def run_select_model(component: Component, function: str, model: str, cfg: dict | None) -> Any:
    """A select-model function `model(cfg) -> {value: label}` of the function's module."""
    return _call_model(component, function, (model,), cfg)


def run_meta_model(component: Component, function: str, cfg: dict | None) -> Any:
    """Dynamic metadata `getMetaModel(cfg) -> {"in": schema, "out": schema}` of the function's module."""
    return _call_model(component, function, ("getMetaModel", "get_meta_model"), cfg)

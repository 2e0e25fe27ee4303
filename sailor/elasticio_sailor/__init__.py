"""elasticio-sailor-py: runs elastic.io / OIH components written in Python.

In-process use (tests, benchmarks): `execute(function, msg, cfg)` returns the emitted events.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .component import Component, ComponentError
from .logs import get_logger
from .message import Message, json_copy
from .runner import (
    Outcome,
    PayloadError,
    apply_snapshot,
    collect_secrets,
    error_payload,
    run_hook,
    run_process,
)

__all__ = ["Component", "ComponentError", "Message", "component_at", "event_dict", "execute", "execute_full"]

_components: dict[str, tuple[int, Component]] = {}
_components_lock = threading.Lock()
#: (cwd or "" when absolute, component_dir) -> (resolved root, its component.json): resolved once
_roots: dict[tuple[str, str], tuple[str, str]] = {}


def component_at(component_dir: str | os.PathLike = ".") -> Component:
    """The Component for a root, re-read only when its component.json changes (one stat per call)."""
    given = os.fspath(component_dir)
    key = ("" if os.path.isabs(given) else os.getcwd(), given)
    paths = _roots.get(key)
    if paths is None:
        root = Path(given).resolve()
        paths = _roots[key] = (str(root), str(root / "component.json"))
    root_str, descriptor = paths
    try:
        mtime = os.stat(descriptor).st_mtime_ns
    except OSError:
        return Component(root_str)  # raises the clear ComponentError
    cached = _components.get(root_str)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    with _components_lock:
        cached = _components.get(root_str)
        if cached is None or cached[0] != mtime:
            cached = (mtime, Component(root_str))
            _components[root_str] = cached
        return cached[1]


_NOTHING = object()
_EVENT_KEYS = {
    "snapshot": "snapshot",
    "updateSnapshot": "snapshot",
    "rebound": "reason",
    "updateKeys": "keys",
    "httpReply": "reply",
}


def event_dict(kind: str, payload: Any) -> dict:
    """The contract's event shape for a normalised payload (see runner), as a JSON-safe copy.

    The error's stack is left out (it is in the log). Copying at emit time mirrors the wire (a
    component may reuse and mutate what it emitted) and fails early, at the emit, on data that
    could not be published. `json_copy` gives json.loads(json.dumps(...))'s answer at a third of its
    cost; data a component handed over (decoded JSON nothing else references, see message.HANDOVER_ATTR)
    is neither checked nor copied: that would cost as much as decoding it again.
    """
    handed_over: Any = _NOTHING
    if kind == "data":
        body: dict = payload.to_dict()
        if payload.data_handed_over:
            handed_over = body.pop("data")
    elif kind == "error":
        body = {"error": {k: v for k, v in payload.items() if k != "stack"}}  # the traceback is in the log
    else:
        body = {_EVENT_KEYS[kind]: payload}
    try:
        body = json_copy(body)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"emit({kind!r}) payload is not JSON-serialisable: {exc}") from None
    if handed_over is not _NOTHING:
        return {"event": kind, "data": handed_over, **body}
    return {"event": kind, **body}


def _has_init(component: Component, function: str) -> bool:
    try:
        return component.hook(function, "init") is not None
    except Exception:  # a module that cannot load is reported by run_process, as an error event
        return False


def execute_full(
    function: str,
    msg: Any = None,
    cfg: dict | None = None,
    snapshot: dict | None = None,
    component_dir: str | os.PathLike = ".",
    *,
    run_init: bool = True,
    flow_variables: dict | None = None,
) -> tuple[list[dict], dict, Outcome]:
    """Like `execute`, also returning the final in-memory snapshot and the outcome.

    An unknown function raises ComponentError (a usage error); everything else becomes events.
    Each call is one "start": the `init(cfg)` hook runs first, as the sailor runs it once when it
    starts; its failure is an error event.
    """
    component = component_at(component_dir)
    component.function_spec(function)
    secrets = collect_secrets(component, cfg or {})
    events: list[dict] = []
    state = {"snapshot": dict(snapshot or {})}

    def emit(kind: str, payload: Any) -> None:
        if kind == "end":
            return
        events.append(event_dict(kind, payload))
        if kind in ("snapshot", "updateSnapshot"):
            state["snapshot"] = apply_snapshot(state["snapshot"], kind, payload)

    if run_init and _has_init(component, function):
        try:
            run_hook(component, function, "init", cfg or {})
        except Exception as exc:
            get_logger(f"component.{function}").error("init hook failed: %s", exc, exc_info=True)
            events.append(event_dict("error", error_payload(exc, secrets)))
            return events, state["snapshot"], Outcome(errors=1, emitted=1)
    outcome = run_process(
        component, function, msg, cfg or {}, snapshot, emit, flow_variables=flow_variables, secrets=secrets
    )
    return events, state["snapshot"], outcome


def execute(
    function: str,
    msg: Any = None,
    cfg: dict | None = None,
    snapshot: dict | None = None,
    component_dir: str | os.PathLike = ".",
) -> list[dict]:
    """Run one trigger/action in-process; the emitted events in order, without `end`.

    `msg` may be a Message, a message dict {"data":..., "metadata":...} or bare data.
    """
    return execute_full(function, msg, cfg, snapshot, component_dir)[0]

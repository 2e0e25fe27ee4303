"""Running an action or trigger in-process: its ``process`` called with a small stand-in for the sailor's
``self`` (emit + logger), so a test sees every emitted event and can stop a run half-way (``crash_after``)."""

from __future__ import annotations

import copy
import logging
from typing import Any


class Crash(Exception):
    """Stands for the process dying (the sailor never sees the rest of the run)."""


class StepSelf:
    """The parts of the sailor's ``self`` a trigger uses; ``crash_after`` data events, raise Crash."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.logger = logging.getLogger("tests.in_process")
        self.crash_after = crash_after

    def emit(self, kind: str, payload: Any = None) -> None:
        if kind == "data" and self.crash_after is not None and len(self.data) >= self.crash_after:
            raise Crash()
        self.events.append((kind, copy.deepcopy(payload)))

    @property
    def data(self) -> list[Any]:
        return [p for k, p in self.events if k == "data"]

    @property
    def snapshot(self) -> dict | None:
        """The last snapshot emitted (what the platform would hand to the next run)."""
        snaps = [p for k, p in self.events if k == "snapshot"]
        return snaps[-1] if snaps else None


def run(module, cfg: dict, snapshot: dict | None = None, msg: Any = None, crash_after: int | None = None):
    """Run ``module.process`` once; returns the StepSelf (events, data, last snapshot)."""
    from elasticio_sailor import Message

    runner = StepSelf(crash_after)
    runner.crashed = False
    try:
        result = module.process(runner, Message.from_any(msg or {}), dict(cfg), copy.deepcopy(snapshot))
    except Crash:
        runner.crashed = True
        return runner
    if result is not None:
        runner.events.append(("data", result))
    return runner


def ids(runner: StepSelf) -> list[str]:
    return [m["data"]["id"] for m in runner.data]

"""Command line: the local harness (exec, verify, list, select-model, meta-model) and `run` (the worker).

    python -m elasticio_sailor exec FUNCTION --cfg CFG.json --msg MSG.json [--snapshot SNAP.json]
                                             [--snapshot-out FILE] [--component DIR]

`exec` prints one compact JSON line per emitted event (no `end`), on stdout; logs go to stderr.
A message file holds {"data": ..., "metadata": ...}; a bare object without "data" is the data.
`-` reads standard input (for one of --msg/--cfg).

Final snapshot rule: the in-memory snapshot starts as --snapshot (or {}); `snapshot` replaces it and
`updateSnapshot` merges into it (shallow), as the sailor does between messages. A `snapshot` event
line already shows the full state, so a final `{"event":"snapshot","snapshot":...,"final":true}`
line is printed only when the last of them was an `updateSnapshot` and the state differs from the
input snapshot.
--snapshot-out FILE always writes the final snapshot (handy for polling a trigger repeatedly).

Exit codes: 0 success; 1 an error event was emitted (exec), credentials not verified (verify), or
the select-model/meta-model function failed; 2 usage or configuration error (one line on stderr);
141 standard output was closed early (`list | head`).
--component defaults to $COMPONENT_PATH, else the current directory.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from . import component_at, execute_full
from .component import ComponentError
from .crypto import js_json_dumps
from .logs import get_logger, redact, setup_logging
from .runner import collect_secrets, run_meta_model, run_select_model, run_verify


class UsageError(Exception):
    """Exit 2 with a one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


#: Deeper input files are refused: a component's own copies and validators recurse over the structure.
MAX_FILE_DEPTH = 200


def _read_json(arg: str | None, what: str, default: Any = None) -> Any:
    """The JSON in file ``arg`` (``-``: standard input); a one-line UsageError for anything unusable."""
    if arg is None:
        return default
    try:
        raw = _stdin_bytes() if arg == "-" else Path(arg).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {arg}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {arg} is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text) if text.strip() else default
    except RecursionError:
        raise UsageError(f"{what} {arg} nests deeper than {MAX_FILE_DEPTH} levels") from None
    except ValueError as exc:
        raise UsageError(f"{what} {arg} is not JSON: {exc}") from None
    if _deeper_than(value, MAX_FILE_DEPTH):
        raise UsageError(f"{what} {arg} nests deeper than {MAX_FILE_DEPTH} levels")
    return value


def _stdin_bytes() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8", "surrogateescape")


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def _read_object(arg: str | None, what: str) -> dict:
    value = _read_json(arg, what, {})
    if not isinstance(value, dict):
        raise UsageError(f"{what} {arg} must hold a JSON object")
    return value


def _print(obj: Any) -> None:
    sys.stdout.write(js_json_dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _parser() -> _Parser:
    p = _Parser(
        prog="python -m elasticio_sailor", description="Run elastic.io/OIH components written in Python."
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def component_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--component",
            default=os.environ.get("COMPONENT_PATH") or ".",
            help="component root (default: $COMPONENT_PATH or .)",
        )

    ex = sub.add_parser("exec", help="run a trigger/action once; one JSON line per emitted event")
    ex.add_argument("function")
    ex.add_argument("--cfg", help="credentials + step fields, JSON file or - (default {})")
    ex.add_argument("--msg", help="message JSON file or - (default {})")
    ex.add_argument("--snapshot", help="snapshot JSON file")
    ex.add_argument("--snapshot-out", help="write the final snapshot to this file")
    component_arg(ex)

    ve = sub.add_parser("verify", help="run the credentials verifier")
    ve.add_argument("--cfg", help="credentials JSON file or -")
    component_arg(ve)

    li = sub.add_parser("list", help="list triggers and actions with titles")
    li.add_argument("--json", action="store_true", help="one JSON object per line")
    component_arg(li)

    sm = sub.add_parser("select-model", help="call a select-model function of a trigger/action")
    sm.add_argument("function")
    sm.add_argument("model")
    sm.add_argument("--cfg")
    component_arg(sm)

    mm = sub.add_parser("meta-model", help="call getMetaModel(cfg) of a trigger/action")
    mm.add_argument("function")
    mm.add_argument("--cfg")
    component_arg(mm)

    sub.add_parser("run", help="run the AMQP worker (configured by the environment)")
    return p


def _exec(args: argparse.Namespace) -> int:
    if args.cfg == "-" and args.msg == "-":
        raise UsageError("only one of --cfg and --msg can read standard input")
    cfg = _read_object(args.cfg, "--cfg")
    msg = _read_json(args.msg, "--msg", {})
    snapshot = _read_object(args.snapshot, "--snapshot")
    try:
        component_at(args.component).load_module(args.function)  # configuration errors exit 2
    except ComponentError:
        raise
    except Exception:  # noqa: S110 - an import failure is the component's error: reported as an event below
        pass
    events, final, outcome = execute_full(args.function, msg, cfg, snapshot, args.component)
    for event in events:
        _print(event)
    snapshot_kinds = [e["event"] for e in events if e["event"] in ("snapshot", "updateSnapshot")]
    if snapshot_kinds and snapshot_kinds[-1] == "updateSnapshot" and final != snapshot:
        _print({"event": "snapshot", "snapshot": final, "final": True})
    if args.snapshot_out:
        Path(args.snapshot_out).write_text(js_json_dumps(final) + "\n", encoding="utf-8")
    return 1 if outcome.errors else 0


def _function_failed(component: Any, cfg: dict, exc: Exception) -> int:
    error = {"name": type(exc).__name__, "message": str(exc)}
    _print({"error": redact(error, collect_secrets(component, cfg))})
    return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "run":
        try:
            from .worker import main as run_worker
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.worker":
                raise
            raise UsageError("the AMQP worker (elasticio_sailor.worker) is not part of this build") from None
        return run_worker() or 0
    if args.command == "exec":
        return _exec(args)
    component = component_at(args.component)
    if args.command == "list":
        for kind, table in (("trigger", component.triggers), ("action", component.actions)):
            for fid, spec in table.items():
                if args.json:
                    _print({"type": kind, "id": fid, "title": spec.get("title", "")})
                else:
                    sys.stdout.write(f"{kind:8} {fid:40} {spec.get('title', '')}\n")
        return 0
    cfg = _read_object(args.cfg, "--cfg")
    if args.command == "verify":
        result = run_verify(component, cfg)
        _print(result)
        return 0 if result.get("verified") else 1
    component.function_spec(args.function)
    try:
        if args.command == "select-model":
            result = run_select_model(component, args.function, args.model, cfg)
        else:
            result = run_meta_model(component, args.function, cfg)
    except ComponentError:
        raise
    except Exception as exc:
        get_logger("elasticio_sailor.cli").error("%s failed", args.command, exc_info=True)
        return _function_failed(component, cfg, exc)
    _print(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
        if args.command != "run":
            setup_logging()
        return _run(args)
    except (UsageError, ComponentError) as exc:
        sys.stderr.write(f"elasticio_sailor: error: {exc}\n")
        return 2
    except BrokenPipeError:
        # The reader went away (`list | head`): stop quietly with the status of a tool SIGPIPE ended, and
        # point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

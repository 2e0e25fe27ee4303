"""Reading component.json and importing the Python modules it names.

A component is a directory holding component.json; each trigger/action names a `main` file relative
to that root (lib/actions/create_contact.py), imported as the dotted module lib.actions.create_contact
with the root first on sys.path, exactly once per process.
"""

from __future__ import annotations

import difflib
import importlib
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HOOK_NAMES = ("startup", "init", "shutdown")
NON_SECRET_VIEWS = frozenset({"SelectView", "MultiSelectView", "CheckBox", "CheckBoxView", "RadioView"})

# Process-wide: one import per (root, dotted name), whatever the number of Component objects.
_MODULES: dict[tuple[str, str], ModuleType] = {}
_IMPORT_LOCK = threading.RLock()


class ComponentError(Exception):
    """The component (component.json or its modules) cannot serve the request; a configuration error."""


class Component:
    """A component root; component.json is read once, at construction."""

    def __init__(self, root: str | Path = "."):
        self.root = Path(root).resolve()
        path = self.root / "component.json"
        try:
            self.descriptor: dict = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ComponentError(f"no component.json in {self.root}") from None
        except (OSError, ValueError) as exc:
            raise ComponentError(f"cannot read {path}: {exc}") from None
        if not isinstance(self.descriptor, dict):
            raise ComponentError(f"{path} does not hold a JSON object")
        # Per function / per main path: the module and dotted name, found once (a new component.json
        # means a new Component, see component_at), so a call costs no stat or path parsing.
        self._function_modules: dict[str, ModuleType] = {}
        self._dotted_names: dict[str, str] = {}
        self._secret_fields: tuple[str, ...] | None = None

    # --- descriptor --------------------------------------------------------------------------
    @property
    def triggers(self) -> dict[str, dict]:
        return self.descriptor.get("triggers") or {}

    @property
    def actions(self) -> dict[str, dict]:
        return self.descriptor.get("actions") or {}

    def function_names(self) -> list[str]:
        return [*self.triggers, *self.actions]

    def is_trigger(self, name: str) -> bool:
        return name in self.triggers

    def function_spec(self, name: str) -> dict:
        """The trigger or action entry; triggers are searched first, as both Node runtimes do."""
        for table in (self.triggers, self.actions):
            if name in table:
                return table[name]
        close = difflib.get_close_matches(name, self.function_names(), n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ComponentError(f"no trigger or action named {name!r} in {self.root / 'component.json'}{hint}")

    @property
    def credential_fields(self) -> list[str]:
        """Names of the credential fields."""
        creds = self.descriptor.get("credentials") or {}
        return list((creds.get("fields") or {}).keys())

    @property
    def secret_fields(self) -> list[str]:
        """Credential fields whose values are redacted: all but choices from a fixed list.

        A select's value (a region URL, an API version) is not a secret, and masking it would hide
        it from every error message; anything typed in by the user may be.
        """
        if self._secret_fields is None:  # asked for on every message; component.json does not change
            fields = (self.descriptor.get("credentials") or {}).get("fields") or {}
            self._secret_fields = tuple(
                name
                for name, spec in fields.items()
                if not (isinstance(spec, dict) and spec.get("viewClass") in NON_SECRET_VIEWS)
            )
        return list(self._secret_fields)

    # --- modules -----------------------------------------------------------------------------
    def load_module(self, name: str) -> ModuleType:
        """The module of trigger/action `name` (imported once per process)."""
        module = self._function_modules.get(name)
        if module is not None:
            return module
        main = self.function_spec(name).get("main")
        if not main:
            raise ComponentError(f"{name!r} has no 'main' in component.json")
        module = self._function_modules[name] = self.import_path(main, what=repr(name))
        return module

    def import_path(self, rel_path: str, what: str = "module") -> ModuleType:
        """Import a .py path relative to the root as a dotted module (cached, thread-safe)."""
        dotted = self._dotted(rel_path, what)
        key = (str(self.root), dotted)
        module = _MODULES.get(key)
        if module is not None:
            return module
        with _IMPORT_LOCK:
            module = _MODULES.get(key)
            if module is None:
                module = self._import(dotted, rel_path, what)
                _MODULES[key] = module
        return module

    def _dotted(self, rel_path: str, what: str) -> str:
        dotted = self._dotted_names.get(rel_path)
        if dotted is None:
            dotted = self._dotted_names[rel_path] = self._find_dotted(rel_path, what)
        return dotted

    def _find_dotted(self, rel_path: str, what: str) -> str:
        rel = rel_path.replace("\\", "/")
        while rel.startswith("./"):
            rel = rel[2:]
        if rel.endswith(".js"):
            raise ComponentError(f"main of {what} is {rel_path!r}: a Node module; this sailor runs Python")
        stem = rel[:-3] if rel.endswith(".py") else rel
        file = self.root / f"{stem}.py"
        package = self.root / stem / "__init__.py"
        if not (file.is_file() or package.is_file()):
            raise ComponentError(f"main of {what} not found: {self.root / rel}")
        parts = [p for p in stem.split("/") if p]
        if not parts or any(not p.isidentifier() for p in parts):
            raise ComponentError(f"main of {what} ({rel_path!r}) is not importable as a dotted module name")
        return ".".join(parts)

    def _import(self, dotted: str, rel_path: str, what: str) -> ModuleType:
        root = str(self.root)
        if not sys.path or sys.path[0] != root:
            while root in sys.path:
                sys.path.remove(root)
            sys.path.insert(0, root)
        self._check_top_level(dotted.split(".")[0])
        importlib.invalidate_caches()
        return importlib.import_module(dotted)

    def _check_top_level(self, top: str) -> None:
        """Refuse a top-level package imported from elsewhere: it would silently run the wrong code."""
        existing = sys.modules.get(top)
        if existing is None:
            return
        locations = [getattr(existing, "__file__", None), *list(getattr(existing, "__path__", []) or [])]
        ours = {self.root / top, self.root / top / "__init__.py", self.root / f"{top}.py"}
        if any(Path(loc).resolve() in ours for loc in filter(None, locations)):
            return
        where = next(filter(None, locations), "a built-in or frozen module")
        raise ComponentError(
            f"package {top!r} is already imported from {where}; "
            f"one process can run only one component root with that package ({self.root})"
        )

    # --- optional entry points ---------------------------------------------------------------
    def verifier(self) -> Callable[[dict], Any] | None:
        """credentials.verifier's `verify` (or `verifyCredentials`); None when component.json names none."""
        path = (self.descriptor.get("credentials") or {}).get("verifier")
        if not path:
            return None
        module = self.import_path(path, what="credentials.verifier")
        fn = getattr(module, "verify", None) or getattr(module, "verifyCredentials", None)
        if not callable(fn):
            raise ComponentError(f"credentials.verifier {path!r} defines no verify(cfg) function")
        return fn

    def hook(self, name: str, hook: str) -> Callable[..., Any] | None:
        """An optional startup/init/shutdown function of the function's module."""
        if hook not in HOOK_NAMES:
            raise ValueError(f"unknown hook {hook!r}; expected one of {', '.join(HOOK_NAMES)}")
        fn = getattr(self.load_module(name), hook, None)
        return fn if callable(fn) else None

    def hooks(self, name: str) -> dict[str, Callable[..., Any]]:
        return {h: fn for h in HOOK_NAMES if (fn := self.hook(name, h)) is not None}

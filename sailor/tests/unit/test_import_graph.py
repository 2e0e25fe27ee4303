"""The sailor's modules import each other without a circle.

Why: a circle makes the import order matter (a module sees its partner half-initialised) and hides
which module depends on which; it was how the elastic.io dialect and its settings were tied. The
check reads every import statement of the package (also those inside functions; only those under
``if TYPE_CHECKING:`` are left out, they never run), and each module must also import on its own
in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import elasticio_sailor
import pytest

PACKAGE = Path(elasticio_sailor.__file__).parent
ROOT = "elasticio_sailor"


def _module_name(path: Path) -> str:
    parts = [ROOT, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules `name` imports (a `from pkg import mod` counts as importing `pkg.mod`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in MODULES and m != name}


def test_no_import_circle() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    done: set[str] = set()

    def walk(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name) :], name]
            pytest.fail("import circle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(graph[name]):
            walk(target, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        walk(name, [])


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if not m.endswith(".__main__"))
)  # that one runs the CLI
def test_each_module_imports_alone(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)


def test_the_worker_imports_only_the_dialect_that_runs() -> None:
    """Each dialect pulls its own dependencies; the one that does not run must cost no start-up time."""
    probe = (
        "import json, sys\n"
        "from elasticio_sailor.worker import select_dialect\n"
        "before = set(sys.modules)\n"
        "try:\n"
        "    select_dialect({'ELASTICIO_FLOW_ID': 'f'})\n"
        "except ValueError:\n"
        "    pass\n"  # the elastic.io settings are incomplete: importing its dialect is what counts
        "loaded = set(sys.modules)\n"
        "prefixes = ('elasticio_sailor.dialects.', 'jwt')\n"
        "ours = lambda names: sorted(m for m in names if m.startswith(prefixes))\n"
        "print(json.dumps(ours(loaded)))\n"
        "print(json.dumps(ours(before)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    after_select, at_import = (json.loads(line) for line in result.stdout.splitlines())
    assert at_import == ["elasticio_sailor.dialects.base"]
    assert "elasticio_sailor.dialects.elasticio.dialect" in after_select
    assert not [m for m in after_select if ".oih" in m or m == "jwt"], after_select

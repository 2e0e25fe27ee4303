"""Component loading: component.json, function lookup, importing `main` once, hooks, verifier."""

import json
import sys
import threading
import uuid
from pathlib import Path

import pytest
from elasticio_sailor.component import Component, ComponentError


def make_component(tmp_path: Path, modules: dict[str, str], descriptor: dict, package: str | None = None):
    """A throw-away component whose package name is unique, so imports never collide across tests."""
    package = package or f"pkg_{uuid.uuid4().hex[:10]}"
    root = tmp_path / "comp"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    for name, source in modules.items():
        (root / package / f"{name}.py").write_text(source)
    text = json.dumps(descriptor).replace("PKG", package)
    (root / "component.json").write_text(text)
    return Component(root), package


def test_reads_descriptor_and_lists_functions(fixture_dir):
    c = Component(fixture_dir)
    assert c.function_names()[:2] == ["poll", "fullSnapshot"]
    assert "echo" in c.actions and c.is_trigger("poll") and not c.is_trigger("echo")
    assert c.credential_fields == ["apiSecretValue", "server", "region"]
    assert c.secret_fields == ["apiSecretValue", "region"]  # a select's value is no secret


def test_unknown_function_names_it_and_close_matches(fixture_dir):
    with pytest.raises(ComponentError) as err:
        Component(fixture_dir).function_spec("ecko")
    assert "'ecko'" in str(err.value) and "echo" in str(err.value)


def test_missing_or_broken_component_json(tmp_path):
    with pytest.raises(ComponentError, match=r"no component\.json"):
        Component(tmp_path)
    (tmp_path / "component.json").write_text("{not json")
    with pytest.raises(ComponentError, match="cannot read"):
        Component(tmp_path)
    (tmp_path / "component.json").write_text("[]")
    with pytest.raises(ComponentError, match="JSON object"):
        Component(tmp_path)


def test_missing_main_and_node_main(fixture_dir):
    c = Component(fixture_dir)
    with pytest.raises(ComponentError, match=r"not_there\.py"):
        c.load_module("missingMain")
    with pytest.raises(ComponentError, match="Node module"):
        c.load_module("nodeMain")


def test_main_is_imported_as_dotted_module_without_extension_too(fixture_dir):
    c = Component(fixture_dir)
    assert c.load_module("echo").__name__ == "sailorfix.actions.echo"
    assert c.load_module("fullSnapshot").__name__ == "sailorfix.triggers.full_snapshot"
    assert sys.path[0] == str(fixture_dir)


def test_module_is_imported_once_per_process(fixture_dir):
    first = Component(fixture_dir).load_module("counted")
    second = Component(fixture_dir).load_module("counted")
    assert first is second
    assert sys.modules["sailorfix"].IMPORTS == 1


def test_triggers_are_searched_before_actions(tmp_path):
    descriptor = {"triggers": {"same": {"main": "PKG/t.py"}}, "actions": {"same": {"main": "PKG/a.py"}}}
    c, _ = make_component(tmp_path, {"t": "WHO = 'trigger'", "a": "WHO = 'action'"}, descriptor)
    assert c.load_module("same").WHO == "trigger"


def test_concurrent_first_imports_run_the_module_once(tmp_path):
    source = (
        "import time\nimport builtins\nbuiltins.__dict__.setdefault('_sailor_count', []).append(1)\n"
        "time.sleep(0.2)\n"
    )
    c, _ = make_component(tmp_path, {"slow": source}, {"actions": {"slow": {"main": "PKG/slow.py"}}})
    import builtins

    builtins.__dict__["_sailor_count"] = []
    results = []
    threads = [threading.Thread(target=lambda: results.append(c.load_module("slow"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert builtins.__dict__.pop("_sailor_count") == [1]


def test_package_already_imported_from_another_root_is_refused(tmp_path, fixture_dir):
    Component(fixture_dir).load_module("echo")  # sailorfix now comes from the fixture
    c, _ = make_component(
        tmp_path, {"x": "A = 1"}, {"actions": {"x": {"main": "sailorfix/x.py"}}}, package="sailorfix"
    )
    with pytest.raises(ComponentError, match="already imported"):
        c.load_module("x")


def test_main_that_is_not_a_module_name(tmp_path):
    root = tmp_path / "c"
    (root / "my-lib").mkdir(parents=True)
    (root / "my-lib" / "x.py").write_text("")
    (root / "component.json").write_text(json.dumps({"actions": {"x": {"main": "my-lib/x.py"}}}))
    with pytest.raises(ComponentError, match="dotted module"):
        Component(root).load_module("x")


def test_hooks_lookup(fixture_dir):
    c = Component(fixture_dir)
    assert set(c.hooks("poll")) == {"startup", "init", "shutdown"}
    assert c.hooks("echo") == {}
    assert c.hook("echo", "init") is None
    with pytest.raises(ValueError, match="unknown hook"):
        c.hook("poll", "teardown")


def test_verifier_lookup(fixture_dir, tmp_path):
    assert Component(fixture_dir).verifier().__name__ == "verify"
    c, _ = make_component(tmp_path, {}, {"credentials": {"fields": {}}, "actions": {}})
    assert c.verifier() is None


def test_verifier_without_verify_function(tmp_path):
    c, _ = make_component(tmp_path, {"v": "X = 1"}, {"credentials": {"verifier": "PKG/v.py"}})
    with pytest.raises(ComponentError, match="no verify"):
        c.verifier()

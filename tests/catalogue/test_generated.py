"""The generated catalogue: fresh, complete, valid JSON Schema, consistent with Intercom's description."""

from __future__ import annotations

import ast
import filecmp
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.catalogue import support

ROOT = support.ROOT
ROWS = {row["action"]: row for row in support.all_operations()}
ROWS_2_8 = {row["action"]: row for row in support.operations()}
SCHEMAS = sorted((ROOT / "schemas").glob("*.json"))


def generated_files(root: Path) -> set[str]:
    files = {"component.json"}
    files |= {str(p.relative_to(root)) for p in (root / "schemas").glob("*.json")}
    files |= {
        str(p.relative_to(root)) for p in (root / "lib" / "actions").glob("*.py") if p.name != "__init__.py"
    }
    return files


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.generate", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.timeout(120)
def test_committed_files_equal_a_fresh_generation(tmp_path: Path) -> None:
    result = generate("--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    fresh, committed = generated_files(tmp_path), generated_files(ROOT)
    assert sorted(fresh ^ committed) == []
    stale = [p for p in sorted(fresh) if not filecmp.cmp(tmp_path / p, ROOT / p, shallow=False)]
    assert stale == [], "run `python -m tools.generate`"


@pytest.mark.timeout(120)
def test_check_mode_lists_stale_and_left_over_files(tmp_path: Path) -> None:
    assert generate("--out", str(tmp_path)).returncode == 0
    assert generate("--check", "--out", str(tmp_path)).returncode == 0
    (tmp_path / "schemas" / "listTags.in.json").write_text("{}\n")
    (tmp_path / "lib" / "actions" / "old_action.py").write_text("")
    result = generate("--check", "--out", str(tmp_path))
    assert result.returncode == 1
    listed = ["stale:", "schemas/listTags.in.json", "stale:", "lib/actions/old_action.py"]
    assert result.stdout.split() == listed


def test_component_has_exactly_the_operations_action_ids() -> None:
    actions = support.component()["actions"]
    assert list(actions) == list(ROWS)
    assert len(actions) == 239 and len(ROWS_2_8) == 100 and list(actions)[:100] == list(ROWS_2_8)


def test_component_base_is_carried_over() -> None:
    base = json.loads((ROOT / "tools" / "component_base.json").read_text())
    comp = support.component()
    assert comp["credentials"] == base["credentials"]
    assert comp["triggers"] == base["triggers"]
    fields = comp["credentials"]["fields"]
    assert fields["accessToken"]["required"] is True
    assert fields["accessToken"]["viewClass"] == "PasswordFieldView"
    assert set(fields["server"]["model"]) == {
        "https://api.intercom.io",
        "https://api.eu.intercom.io",
        "https://api.au.intercom.io",
        "custom",
    }
    assert comp["credentials"]["verifier"] == "lib/verify_credentials.py"


@pytest.mark.parametrize("action_id", list(ROWS))
def test_action_entry_and_module(action_id: str) -> None:
    row = ROWS[action_id]
    entry = support.component()["actions"][action_id]
    main = ROOT / entry["main"]
    assert re.fullmatch(r"lib/actions/[a-z0-9_]+\.py", entry["main"])
    schemas = {"in": f"./schemas/{action_id}.in.json", "out": f"./schemas/{action_id}.out.json"}
    assert entry["metadata"] == schemas
    assert entry["title"].startswith(row["title"])
    assert entry["description"]
    if not row["in_current_spec"]:
        assert entry["description"].startswith("Deprecated")
    newest = row["description"] == "2.16"
    assert entry["description"].startswith("Intercom API 2.16. ") == newest
    tree = ast.parse(main.read_text())
    call = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "operation")
    declared = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    assert declared["action_id"] == action_id
    assert declared["method"] == row["method"]
    spec, path, op = spec_operation(row)
    assert declared["path"] == path
    params = [*spec["paths"][path].get("parameters", []), *op.get("parameters", [])]
    for where in ("path", "query", "header"):
        assert set(declared[f"{where}_params"]) == {p["name"] for p in params if p["in"] == where}
    assert declared["has_body"] == ("requestBody" in op)
    if declared["items_key"]:
        assert "emitBehaviour" in entry["fields"]
    binary = {"Download_data_export", "getDownloadReportingDataByJobIdentifier", "showCallRecording"}
    assert declared["response"] == ("binary" if action_id in binary else "json")
    headers = declared.get("default_headers", {})
    assert headers.get("Intercom-Version") == ("2.16" if newest else None)


def spec_operation(row: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    from tests.catalogue.test_actions import spec_operation as find

    return find(row)


def test_module_names_are_unique_snake_case() -> None:
    mains = [a["main"] for a in support.component()["actions"].values()]
    assert len(set(mains)) == len(mains) == 239


def test_select_model_fields_name_existing_functions_and_modules_import_them() -> None:
    models = {
        n.name
        for n in ast.parse((ROOT / "lib" / "select_models.py").read_text()).body
        if isinstance(n, ast.FunctionDef)
    }
    seen = set()
    for entry in support.component()["actions"].values():
        text = (ROOT / entry["main"]).read_text()
        for fld in entry["fields"].values():
            if fld.get("viewClass") == "SelectView" and isinstance(fld.get("model"), str):
                assert fld["model"] in models
                assert re.search(rf"from lib\.select_models import .*\b{fld['model']}\b", text)
                seen.add(fld["model"])
    expected = {"admins", "teams", "tags", "segments", "subscription_types", "help_centers", "collections"}
    assert expected <= seen


def test_list_pagination_styles_cover_every_kind() -> None:
    styles: dict[str, set[str]] = {}
    for entry in support.component()["actions"].values():
        found = re.search(r'pagination="(\w+)"', (ROOT / entry["main"]).read_text())
        if found:
            styles.setdefault(found[1], set()).add(entry["main"])
    assert set(styles) == {"cursor", "search", "scroll", "page", "next_cursor", "body_page"}
    assert "lib/actions/search_tickets.py" in styles["search"]
    assert "lib/actions/list_contact_merge_history.py" in styles["next_cursor"]
    assert "lib/actions/search_activity_logs.py" in styles["body_page"]
    assert "lib/actions/search_contacts.py" in styles["search"]
    assert "lib/actions/scroll_over_all_companies.py" in styles["scroll"]
    assert "lib/actions/list_contacts.py" in styles["cursor"]


def walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid_and_self_contained(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert [n["$ref"] for n in walk(schema) if "$ref" in n] == []
    assert not [n for n in walk(schema) if "nullable" in n and isinstance(n.get("nullable"), bool)]


def test_every_action_has_both_schemas() -> None:
    assert {p.name for p in SCHEMAS} == {f"{a}.{k}.json" for a in ROWS for k in ("in", "out")}


@pytest.mark.parametrize("action_id", list(ROWS))
def test_in_schema_parameters_follow_the_description(action_id: str) -> None:
    row = ROWS[action_id]
    spec, path, op = spec_operation(row)
    schema = support.schema(action_id, "in")
    props = schema["properties"]
    assert schema["title"] and schema["description"]
    fixed = {"Accept"}  # a download's Accept: sent by default (application/octet-stream), so not required
    for param in [*spec["paths"][path].get("parameters", []), *op.get("parameters", [])]:
        prop = props[param["name"]]
        assert prop["title"] and prop["description"]
        required = bool(param.get("required")) and param["name"] not in fixed
        assert (param["name"] in schema["required"]) == (required and action_id != "listCompaniesForAContact")
    if row["description"] == "2.16" and "Intercom-Version" not in props:
        assert path.startswith("/fin_voice/")  # the only 2.16 operations without the header parameter
        return
    version = props["Intercom-Version"]
    assert ("2.16" if row["description"] == "2.16" else "2.8") in version["enum"]
    assert ("requestBody" in props) == ("requestBody" in op)


def test_alias_accepts_either_name_and_requires_one() -> None:
    validator = Draft202012Validator(support.schema("listCompaniesForAContact", "in"))
    assert validator.is_valid({"id": "1"})
    assert validator.is_valid({"contact_id": "1"})
    assert not validator.is_valid({})


def test_flat_form_and_nullable_bodies_validate() -> None:
    """Body fields at the top level are validated as the body; nullable fields accept null."""
    validator = Draft202012Validator(support.schema("CreateContact", "in"))
    assert validator.is_valid({"email": "jane@example.com", "name": None})
    assert validator.is_valid({"requestBody": {"role": "user", "external_id": "x1"}})
    assert not validator.is_valid({"email": 5})
    search = Draft202012Validator(support.schema("SearchContacts", "in"))
    nested = {
        "operator": "OR",
        "value": [
            {"field": "name", "operator": "=", "value": "x"},
            {"operator": "AND", "value": [{"field": "email", "operator": "~", "value": "a"}]},
        ],
    }
    assert search.is_valid({"requestBody": {"query": nested}})
    assert not search.is_valid({"requestBody": {"query": {"operator": "XOR", "value": "x"}}})


def test_integer_path_ids_accept_numeric_strings() -> None:
    validator = Draft202012Validator(support.schema("retrieveAdmin", "in"))
    assert validator.is_valid({"id": 991267})
    assert validator.is_valid({"id": "991267"})
    assert not validator.is_valid({"id": "99x"})


def resolved(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


BODIES = [a for a in ROWS if "requestBody" in spec_operation(ROWS[a])[2]]


@pytest.mark.parametrize("action_id", BODIES)
def test_request_body_is_complete(action_id: str) -> None:
    """Every top-level field and every alternative of the described body (as corrected by tools/generate.py,
    oneOf read as anyOf) is in the in-schema."""
    from tools.generate import corrected_description

    _, path, op = spec_operation(ROWS[action_id])
    which = support.DESCRIPTION_FILES[ROWS[action_id]["description"]]
    spec = corrected_description(support.SPEC_DIR, which.name)
    op = spec["paths"][path][ROWS[action_id]["method"].lower()]
    described = resolved(spec, op["requestBody"]["content"]["application/json"]["schema"])
    ours = support.schema(action_id, "in")["properties"]["requestBody"]
    for key in ("oneOf", "anyOf"):
        assert len(ours.get(key, [])) == len(described.get(key, []))
        for mine, theirs in zip(ours.get(key, []), described.get(key, []), strict=True):
            assert set(mine.get("properties", {})) == set(resolved(spec, theirs).get("properties", {}))
    assert set(ours.get("properties", {})) == set(described.get("properties", {}))
    assert ours.get("required", []) == described.get("required", [])


def test_a_missing_description_folder_is_named_with_what_it_lacks(tmp_path: Path) -> None:
    (tmp_path / "operations.json").write_text('{"operations": []}')
    result = generate("--check", "--spec-dir", str(tmp_path))
    assert result.returncode == 2
    assert "api.intercom.io.2.16.yaml" in result.stderr and "operations.json" not in result.stderr
    assert "Traceback" not in result.stderr

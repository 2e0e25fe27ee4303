"""README.md keeps its promises: the two commands first, the actions table in step with component.json."""
import json
import re
import subprocess
from pathlib import Path

from tools.readme import actions_table, render

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_actions_table_matches_component_json():
    component = json.loads((ROOT / "component.json").read_text())
    assert render(README, component) == README, "README's actions table is stale: run python -m tools.readme"
    rows = re.findall(r"^\| `([^`]+)` \|", README, re.M)
    assert set(component["actions"]) <= set(rows)


def test_every_action_row_names_its_intercom_call():
    """Deprecated actions too: their description starts with "Deprecated: ...", the call comes after it."""
    component = json.loads((ROOT / "component.json").read_text())
    table = actions_table(component).splitlines()[2:]
    empty = [row for row in table if row.rstrip().endswith("|  |")]
    assert empty == []
    assert "| `deleteVisitor` | Delete a visitor (deprecated) | `DELETE /visitors/{id}` |" in table


def test_the_two_commands_come_first():
    demo = README.index("<!-- demo-command -->")
    tests = README.index("<!-- test-command -->")
    assert demo < tests < README.index("\n## ")
    assert "python -m tools.demo" in README[demo:tests]
    assert "-m pytest" in README[tests:README.index("\n## ")]


def test_ci_runs_exactly_the_readme_test_command():
    """.ci/run extracts the line after the marker; check the extraction finds the README's command."""
    line = README[README.index("<!-- test-command -->"):].splitlines()[2]
    script = (ROOT / ".ci" / "run").read_text()
    extraction = re.search(r"test_command=\$\((awk .*README\.md)\)", script)
    assert extraction, ".ci/run no longer reads the README's test command"
    found = subprocess.run(["bash", "-c", extraction.group(1)], cwd=ROOT, capture_output=True, text=True)
    found = found.stdout
    assert found.strip() == line.strip() and "pytest" in line

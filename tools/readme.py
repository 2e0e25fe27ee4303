"""Keep README.md's table of actions in step with component.json.

`python -m tools.readme` rewrites the block between the markers; tests/test_readme.py fails when it is stale.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- actions-table:begin -->", "<!-- actions-table:end -->"


# The generator starts each description with the call, after a "Deprecated: ...). " note where there is one.
HTTP_CALL = re.compile(r"(?:^|\. )(GET|POST|PUT|DELETE|PATCH) (/\S*?)\.(?:\s|$)")


def actions_table(component: dict) -> str:
    """One row per action: id, title, and the HTTP call (the first one its description names)."""
    rows = ["| Action id | Title | Intercom call |", "|---|---|---|"]
    for action_id, action in sorted(component["actions"].items(), key=lambda item: item[0].lower()):
        match = HTTP_CALL.search(action.get("description", ""))
        call = f"`{match[1]} {match[2]}`" if match else ""
        title = action.get("title", "").replace("|", "\\|")
        rows.append(f"| `{action_id}` | {title} | {call} |")
    return "\n".join(rows)


def render(readme: str, component: dict) -> str:
    """README text with the table block replaced."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md lacks the markers {BEGIN} ... {END}")
    return pattern.sub(lambda _: f"{BEGIN}\n{actions_table(component)}\n{END}", readme)


def main() -> None:
    readme_path = ROOT / "README.md"
    component = json.loads((ROOT / "component.json").read_text())
    readme_path.write_text(render(readme_path.read_text(), component))


if __name__ == "__main__":
    main()

"""Keep README.md's table of actions in step with component.json.

`python -m tools.readme` rewrites the block between the markers; tests/test_readme.py fails when it is stale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- actions-table:begin -->", "<!-- actions-table:end -->"


# The generator starts each description with the call, after a "Deprecated: ...). " or "Intercom API 2.16. "
# note where there is one.
HTTP_CALL = re.compile(r"(?:^|\. )(GET|POST|PUT|DELETE|PATCH) (/\S*?)\.(?:\s|$)")
VERSION = re.compile(r"^Intercom API (\d+\.\d+)\. ")

# Groups of the table: the first segment of the call's path, named; segments not listed name themselves.
GROUPS = {
    "me": "Admins",
    "admins": "Admins",
    "ai": "AI content (Fin)",
    "fin": "Fin agent",
    "fin_voice": "Calls",
    "calls": "Calls",
    "content": "Content snippets and Knowledge Hub",
    "content_snippets": "Content snippets and Knowledge Hub",
    "export": "Data exports",
    "download": "Data exports",
    "help_center": "Help Center",
    "news": "News",
    "ticket_types": "Tickets",
    "ticket_states": "Tickets",
    "tickets": "Tickets",
    "events": "Data events",
    "phone_call_redirects": "Phone calls",
    "ip_allowlist": "IP allowlist",
    "office_hours_schedules": "Office hours",
    "messages": "Messages",
}


def group_of(call: str) -> str:
    segment = call.split(" ", 1)[1].strip("/").split("/")[0] if " " in call else ""
    return GROUPS.get(segment) or segment.replace("_", " ").capitalize() or "Other"


def actions_table(component: dict) -> str:
    """The actions by group (Intercom resource), one row each: id, title, the HTTP call (the first one its
    description names) and the Intercom API version it speaks."""
    groups: dict[str, list[str]] = {}
    for action_id, action in sorted(component["actions"].items(), key=lambda item: item[0].lower()):
        description = action.get("description", "")
        match = HTTP_CALL.search(description)
        call = f"{match[1]} {match[2]}" if match else ""
        version = VERSION.match(description)
        title = action.get("title", "").replace("|", "\\|")
        api = version[1] if version else "2.8"
        row = f"| `{action_id}` | {title} | {f'`{call}`' if call else ''} | {api} |"
        groups.setdefault(group_of(call), []).append(row)
    out: list[str] = []
    for name in sorted(groups, key=str.lower):
        rows = groups[name]
        out += [
            f"### {name} ({len(rows)})",
            "",
            "| Action id | Title | Intercom call | API |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    return "\n".join(out).rstrip()


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

"""Trigger: conversations created or updated since the last poll, via POST /conversations/search."""

from lib import step_fields
from lib.select_models import admins, teams
from lib.triggers.polling import SearchResource, make_process

__all__ = ["RESOURCE", "admins", "process", "teams"]


def filters(cfg: dict) -> list[dict]:
    """Optional step fields narrowing the search: state (open|closed|snoozed), admin/team assignee."""
    out = []
    if cfg.get("state"):
        out.append({"field": "state", "operator": "=", "value": cfg["state"]})
    for key, name in (("adminAssigneeId", "admin_assignee_id"), ("teamAssigneeId", "team_assignee_id")):
        if cfg.get(key) not in (None, ""):
            out.append({"field": name, "operator": "=", "value": step_fields.whole_number(cfg[key], key)})
    return out


# Conversation search is not documented as day-truncated, but `>` has no `>=` twin on dates: ask for
# `> L - 1` (i.e. >= L) and drop the ids already emitted at second L.
RESOURCE = SearchResource(
    name="conversations", path="/conversations/search", lookback=1, items_key="conversations", filters=filters
)
process = make_process(RESOURCE)

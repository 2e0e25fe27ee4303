"""Trigger: tickets created or updated since the last poll, via POST /tickets/search (Intercom API 2.16)."""

from lib import step_fields
from lib.select_models import ticket_types
from lib.triggers.polling import SearchResource, make_process

__all__ = ["RESOURCE", "process", "ticket_types"]

STATES = ("submitted", "in_progress", "waiting_on_customer", "resolved")


def filters(cfg: dict) -> list[dict]:
    """Optional step fields narrowing the search: the ticket type, the state's category."""
    out = []
    if cfg.get("ticketTypeId") not in (None, ""):
        out.append({"field": "ticket_type_id", "operator": "=", "value": str(cfg["ticketTypeId"])})
    if cfg.get("state"):
        out.append({"field": "state", "operator": "=", "value": step_fields.choice(cfg, "state", STATES, "")})
    return out


# Ticket search is the conversation search of 2.16 (same `>` on dates, same pagination, answers under
# `tickets`), so the same rules: ask for `> L - 1` (i.e. >= L) and drop the ids already emitted at second
# L; leave changes younger than lagSeconds for the next poll (the search index lags behind writes).
RESOURCE = SearchResource(
    name="tickets",
    path="/tickets/search",
    lookback=1,
    items_key="tickets",
    filters=filters,
    headers={"Intercom-Version": "2.16"},
)
process = make_process(RESOURCE)

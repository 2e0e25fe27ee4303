"""Trigger: segments created or whose definition changed since the last poll (GET /segments, one response).

A segment's `updated_at` moves when its definition changes, not when contacts enter or leave it: membership
changes cannot be polled (use the contacts trigger with a segment filter instead).
"""

from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "process"]


def keep(cfg: dict, item: dict) -> bool:
    """Optional step field personType (user|lead)."""
    return not cfg.get("personType") or item.get("person_type") == cfg["personType"]


RESOURCE = ScanResource(name="segments", path="/segments", style=None, items_key="segments", keep=keep)
process = make_process(RESOURCE)

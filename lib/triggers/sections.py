"""Trigger: help-center sections created or updated since the last poll (GET /help_center/sections).

Listed by `updated_at` descending without a filter: filtered client-side, stopping at the first older page.
"""

from lib.select_models import collections
from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "collections", "process"]


def keep(cfg: dict, item: dict) -> bool:
    """Optional step field parentId (the collection holding the section)."""
    return not cfg.get("parentId") or str(item.get("parent_id")) == str(cfg["parentId"])


RESOURCE = ScanResource(
    name="sections", path="/help_center/sections", style="page", descending=True, per_page=50, keep=keep
)
process = make_process(RESOURCE)

"""Trigger: help-center collections created or updated since the last poll (GET /help_center/collections).

Listed by `updated_at` descending without a filter: filtered client-side, stopping at the first older page.
"""

from lib.select_models import help_centers
from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "help_centers", "process"]


def keep(cfg: dict, item: dict) -> bool:
    """Optional step field helpCenterId."""
    return not cfg.get("helpCenterId") or str(item.get("help_center_id")) == str(cfg["helpCenterId"])


RESOURCE = ScanResource(
    name="collections", path="/help_center/collections", style="page", descending=True, per_page=50, keep=keep
)
process = make_process(RESOURCE)

"""Trigger: help-center articles created or updated since the last poll (GET /articles, filtered client-side).

GET /articles has no `updated_at` filter but is documented as sorted by `updated_at` descending, so the scan
stops at the first page that reaches objects older than the last position.
"""

from lib.select_models import collections
from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "collections", "process"]


def keep(cfg: dict, item: dict) -> bool:
    """Optional step fields: state (published|draft), parentId (the collection the article sits in)."""
    if cfg.get("state") and item.get("state") != cfg["state"]:
        return False
    return not cfg.get("parentId") or str(item.get("parent_id")) == str(cfg["parentId"])


RESOURCE = ScanResource(
    name="articles", path="/articles", style="page", descending=True, per_page=50, keep=keep
)
process = make_process(RESOURCE)

"""Trigger: news items created or updated since the last poll (GET /news/news_items, every page, client-side).

The list's order is not documented, so every page is read on every poll.
"""

from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "process"]


def keep(cfg: dict, item: dict) -> bool:
    """Optional step field state (draft|live)."""
    return not cfg.get("state") or item.get("state") == cfg["state"]


RESOURCE = ScanResource(name="news_items", path="/news/news_items", style="page", per_page=50, keep=keep)
process = make_process(RESOURCE)

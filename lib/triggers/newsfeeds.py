"""Trigger: newsfeeds created or updated since the last poll (GET /news/newsfeeds, every page)."""

from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "process"]

RESOURCE = ScanResource(name="newsfeeds", path="/news/newsfeeds", style="page", per_page=50)
process = make_process(RESOURCE)

"""Trigger: help centers created or updated since the last poll (GET /help_center/help_centers)."""

from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "process"]

RESOURCE = ScanResource(name="help_centers", path="/help_center/help_centers", style=None)
process = make_process(RESOURCE)

"""Trigger: companies created or updated since the last poll.

Companies have no search endpoint, and GET/POST /companies/list sorts by `last_request_at` (not `updated_at`),
skips companies without users and stops at 10,000 results. The scroll API (GET /companies/scroll) is the one
way to see every company: the trigger scrolls through them all and keeps those with a newer `updated_at`.
Intercom allows one scroll per workspace at a time; a scroll cannot be resumed, so a crashed run starts over
and skips what it had already emitted (recorded in the snapshot).
"""

from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "process"]

RESOURCE = ScanResource(name="companies", path="/companies/scroll", style="scroll")
process = make_process(RESOURCE)

"""Trigger: contacts (users and leads) created or updated since the last poll, via POST /contacts/search."""
from lib.select_models import segments, tags
from lib.triggers.polling import SearchResource, make_process

__all__ = ["RESOURCE", "process", "segments", "tags"]


def filters(cfg: dict) -> list[dict]:
    """Optional step fields narrowing the search: role (user|lead), segmentId, tagId."""
    out = []
    if cfg.get("role"):
        out.append({"field": "role", "operator": "=", "value": cfg["role"]})
    if cfg.get("segmentId"):
        out.append({"field": "segment_id", "operator": "=", "value": str(cfg["segmentId"])})
    if cfg.get("tagId"):
        out.append({"field": "tag_id", "operator": "=", "value": str(cfg["tagId"])})
    return out


# Contact search matches timestamps by calendar day in the workspace's timezone: `updated_at > X` starts at
# the next midnight after X. Asking for `> L - 1 day` therefore covers everything from L on in any timezone.
RESOURCE = SearchResource(name="contacts", path="/contacts/search", lookback=86400, filters=filters)
process = make_process(RESOURCE)

"""Trigger: contacts (users and leads) created or updated since the last poll, via POST /contacts/search."""

import json

from lib.intercom.errors import ConfigurationError
from lib.select_models import data_attributes, segments, tags
from lib.triggers.polling import SearchResource, make_process

__all__ = ["RESOURCE", "data_attributes", "process", "segments", "tags"]


def attribute_value(text: object) -> object:
    """The attributeValue field: a JSON value when it is one (42, true, "42"), otherwise the text itself."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def filters(cfg: dict) -> list[dict]:
    """Optional step fields narrowing the search: role (user|lead), segmentId, tagId, attribute = value."""
    out = []
    if cfg.get("attribute"):
        value = cfg.get("attributeValue")
        if value in (None, ""):
            raise ConfigurationError(
                f"Field 'attributeValue' is required with 'attribute' ({cfg['attribute']})",
                field="attributeValue",
            )
        out.append({"field": cfg["attribute"], "operator": "=", "value": attribute_value(value)})
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

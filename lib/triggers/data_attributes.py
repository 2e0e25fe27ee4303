"""Trigger: data attributes (contact, company or conversation fields) created or changed since the last poll.

GET /data_attributes returns every attribute in one response; built-in attributes carry no `updated_at`
and are never emitted.
"""

from lib.triggers.polling import ScanResource, make_process

__all__ = ["RESOURCE", "process"]


def keep(cfg: dict, item: dict) -> bool:
    """Optional step field model (contact|company|conversation)."""
    return not cfg.get("model") or item.get("model") == cfg["model"]


RESOURCE = ScanResource(
    name="data_attributes",
    path="/data_attributes",
    style=None,
    params={"include_archived": "true"},
    keep=keep,
)
process = make_process(RESOURCE)

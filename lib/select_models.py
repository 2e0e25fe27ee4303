"""Select models: dropdown values for step fields where an Intercom id is chosen (`{"model": "admins"}`).

Each function takes the step's cfg (credentials + fields) and returns ``{value: label}`` in Intercom's order.
Labels add a second detail where names are often ambiguous (admins: e-mail). Paginated endpoints are followed
to the end; the others answer in one response.
"""

from __future__ import annotations

from collections.abc import Iterable

from lib.intercom import answers
from lib.intercom.client import IntercomClient

__all__ = [
    "admins",
    "collections",
    "data_attributes",
    "help_centers",
    "segments",
    "subscription_types",
    "tags",
    "teams",
    "ticket_states",
    "ticket_types",
]

API_2_16 = {"Intercom-Version": "2.16"}  # tickets are API 2.16 resources (see README, API versions)


def _items(
    cfg: dict, path: str, key: str, params: dict | None = None, headers: dict | None = None
) -> list[dict]:
    body = IntercomClient.from_cfg(cfg).request_json("GET", path, params=params, headers=headers)
    return answers.items(body, key, method="GET", path=path)


def _options(items: Iterable[dict], value: str, label) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key = item.get(value)
        if key is None or isinstance(key, dict | list):
            continue
        try:
            text = label(item)
        except (AttributeError, KeyError, TypeError):  # a detail of another shape: the value itself will do
            text = None
        out[str(key)] = text if isinstance(text, str) and text else str(key)
    return out


def admins(cfg: dict) -> dict[str, str]:
    """Teammates (GET /admins): ``id -> "Name (email)"``."""

    def label(a: dict) -> str:
        return f"{a.get('name') or a['id']} ({a['email']})" if a.get("email") else a.get("name")

    return _options(_items(cfg, "/admins", "admins"), "id", label)


def teams(cfg: dict) -> dict[str, str]:
    """Teams (GET /teams): ``id -> name``."""
    return _options(_items(cfg, "/teams", "teams"), "id", lambda t: t.get("name"))


def tags(cfg: dict) -> dict[str, str]:
    """Tags (GET /tags): ``id -> name``."""
    return _options(_items(cfg, "/tags", "data"), "id", lambda t: t.get("name"))


def segments(cfg: dict) -> dict[str, str]:
    """Segments (GET /segments): ``id -> "name (users|leads)"``."""

    def label(s: dict) -> str:
        kind = {"user": "users", "lead": "leads"}.get(s.get("person_type") or "")
        return f"{s.get('name')} ({kind})" if kind and s.get("name") else s.get("name")

    return _options(_items(cfg, "/segments", "segments"), "id", label)


def subscription_types(cfg: dict) -> dict[str, str]:
    """Subscription types (GET /subscription_types): ``id -> default translation's name``."""

    def label(s: dict) -> str:
        return ((s.get("default_translation") or {}).get("name")) or s.get("id")

    return _options(_items(cfg, "/subscription_types", "data"), "id", label)


def data_attributes(cfg: dict) -> dict[str, str]:
    """Contact attributes (GET /data_attributes?model=contact): ``full_name -> label``.

    The value is ``full_name`` (``custom_attributes.plan`` for custom ones), the name contact search and the
    contact model use; archived attributes are left out.
    """
    items = _items(cfg, "/data_attributes", "data", {"model": "contact"})
    items = [a for a in items if not a.get("archived")]

    def label(a: dict) -> str:
        text = a.get("label") or a.get("name")
        return f"{text} (custom)" if a.get("custom") else text

    return _options(items, "full_name", label)


def help_centers(cfg: dict) -> dict[str, str]:
    """Help centers (GET /help_center/help_centers): ``id -> display_name``."""
    return _options(
        _items(cfg, "/help_center/help_centers", "data"),
        "id",
        lambda h: h.get("display_name") or h.get("identifier"),
    )


def collections(cfg: dict) -> dict[str, str]:
    """Help-center collections (GET /help_center/collections, every page): ``id -> name``."""
    client = IntercomClient.from_cfg(cfg)
    items: list[dict] = []
    for page in client.paginate("GET", "/help_center/collections", style="page", params={"per_page": 150}):
        items.extend(answers.items(page, "data", method="GET", path="/help_center/collections"))
    return _options(items, "id", lambda c: c.get("name"))


def ticket_types(cfg: dict) -> dict[str, str]:
    """Ticket types (GET /ticket_types, API 2.16): ``id -> "name (category)"``; archived ones left out."""
    items = [t for t in _items(cfg, "/ticket_types", "data", headers=API_2_16) if not t.get("archived")]

    def label(t: dict) -> str:
        return f"{t.get('name')} ({t['category']})" if t.get("category") and t.get("name") else t.get("name")

    return _options(items, "id", label)


def ticket_states(cfg: dict) -> dict[str, str]:
    """Ticket states (GET /ticket_states, API 2.16): ``id -> "internal label (category)"``; archived ones
    left out. The category (submitted, in_progress, waiting_on_customer, resolved) tells like-named apart."""
    items = [s for s in _items(cfg, "/ticket_states", "data", headers=API_2_16) if not s.get("archived")]

    def label(s: dict) -> str:
        text = s.get("internal_label") or s.get("external_label")
        return f"{text} ({s['category']})" if text and s.get("category") else text

    return _options(items, "id", label)

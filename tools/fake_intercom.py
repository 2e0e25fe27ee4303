"""A fake Intercom REST API (2.8 shapes, and the 2.16 tickets and custom objects) on loopback, for tests,
benchmarks and the demo.

Why: the connector must be exercised over real HTTP without an Intercom account. The fake keeps its
data in memory, answers with Intercom-shaped JSON and errors, and logs every request it receives.

    with FakeIntercom(token="test-token", seed=True) as fake:   # seed=False: an empty workspace
        fake.url, fake.token             # http://127.0.0.1:PORT and the bearer token it accepts
        c = fake.add_contact(email="a@b.c", updated_at=1717000000)  # any field; returns a copy
        fake.add_company(company_id="acme", name="Acme", updated_at=1717000000)
        fake.add_conversation(updated_at=...); fake.add_tag(name=...); also add_admin, add_team,
        add_segment, add_subscription_type, add_data_attribute, add_help_center, add_collection, add_note,
        add_ticket_type, add_ticket_state, add_ticket (ticket_type=<a ticket type>, ticket_state=<a state>),
        add_custom_object_instance(type="Order", external_id=..., custom_attributes={...})
        fake.db["contacts"][c["id"]]     # the live store, by kind then id (edit it freely)
        fake.now = 1717000000            # clock for created_at/updated_at of API writes (None: real time)
        fake.per_page = 2                # default page size of every list (None: Intercom's defaults)
        fake.scroll_page_size = 15       # companies per scroll page
        fake.fail_next(429)              # the next request gets this error (429: X-RateLimit-Reset = now+1)
        fake.fail_next(500, times=2, path="/contacts/search")  # only requests whose path starts so
        fake.delay = 0.2                 # each answer leaves 0.2 s after its request arrived
        fake.requests                    # [Recorded(method, path, query, headers, body, ...)], oldest first
        fake.clear_requests(); fake.reset(seed=False)   # forget requests / everything (reuse a server)
        fake.cfg(maxRetries=0)           # a connector cfg pointing at the fake

A misbehaving Intercom (loops, 429 storms, hostile answers): ``FakeIntercom(answer=fn)`` records every
request and answers it with ``fn(recorded) -> Answer`` instead of the in-memory workspace (no auth check,
no faults). ``Answer.drip`` sends the body one byte at a time with a pause in between; ``fake.drips``
tells how much of each dripped body was sent and whether the client went away first.

Search (POST /contacts/search, /conversations/search): nested AND/OR queries, the operators of the
description, ``pagination: {per_page, starting_after}``, ``sort: {field, order: ascending|descending}``
(default: creation order). ``search_semantics="intercom"`` (default) follows the 2.8 description: on
contact search, date fields are matched by UTC calendar day (``>`` starts the *next* day, ``=`` is the
whole day; ``>=``, ``<=``, ``!=``, ``IN``, ``NIN`` on dates are a 400 error); on conversation search ``>``
and ``<`` include the bound. ``search_semantics="exact"``: every comparison to the second.
Data events (POST /events) are listed per contact by GET /events (type=user and user_id, email or
intercom_user_id; summary=true counts them by name); POST /contacts/{id}/companies attaches a company,
which GET /contacts/{id}/companies then lists. Companies scroll ends with an empty page; the scroll_param
then expires. Not modelled: one open scroll per app, companies without users missing from lists.

API 2.16 (the seed has two ticket types and the four ticket states): ticket types (GET/POST /ticket_types,
GET /ticket_types/{id}), ticket states (GET /ticket_states), tickets (POST /tickets with ticket_type_id
and contacts by id, external_id or email; GET/PUT/DELETE /tickets/{id}, where PUT changes attributes, state
(ticket_state_id), open, snoozed_until and assignee; POST /tickets/{id}/reply adds a ticket part;
POST /tickets/search as conversation search, under `tickets`), and custom object instances
(POST /custom_object_instances/{type} creates or updates by external_id; GET lists them by page, or finds
one by external_id; GET/DELETE /custom_object_instances/{type}/{id}; DELETE ...?external_id=).

Run it alone: ``python -m tools.fake_intercom --port 8080 [--token T] [--no-seed]``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import gzip
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partialmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

ERRORS = {
    400: ("bad_request", "Bad Request"),
    401: ("unauthorized", "Access Token Invalid"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Resource Not Found"),
    409: ("conflict", "Conflict"),
    422: ("parameter_invalid", "Unprocessable Entity"),
    429: ("rate_limit_exceeded", "Exceeded rate limit"),
    500: ("server_error", "Server Error"),
    502: ("server_error", "Bad Gateway"),
    503: ("service_unavailable", "Service Unavailable"),
}
CONTACT_DATES = {
    "created_at",
    "updated_at",
    "signed_up_at",
    "last_seen_at",
    "last_contacted_at",
    "last_replied_at",
    "last_email_opened_at",
    "last_email_clicked_at",
}
CONVERSATION_DATES = {"created_at", "updated_at", "waiting_since", "snoozed_until"}
TICKET_DATES = {"created_at", "updated_at", "snoozed_until"}
TICKET_STATES = (
    ("submitted", "Submitted"),
    ("in_progress", "In progress"),
    ("waiting_on_customer", "Waiting on customer"),
    ("resolved", "Resolved"),
)
DAY = 86400
ID = "(?P<id>[^/]+)"


def _template(kind: str, now: int) -> dict:
    """The fields a new object of `kind` has before the caller's fields are applied."""
    lst = {"type": "list", "data": [], "total_count": 0, "has_more": False}
    return copy.deepcopy(
        {
            "contacts": {
                "type": "contact",
                "workspace_id": "fake_app",
                "external_id": None,
                "role": "user",
                "email": None,
                "phone": None,
                "name": None,
                "avatar": None,
                "owner_id": None,
                "social_profiles": {"type": "list", "data": []},
                "has_hard_bounced": False,
                "marked_email_as_spam": False,
                "unsubscribed_from_emails": False,
                "created_at": now,
                "updated_at": now,
                "signed_up_at": None,
                "last_seen_at": None,
                "last_replied_at": None,
                "last_contacted_at": None,
                "last_email_opened_at": None,
                "last_email_clicked_at": None,
                "language_override": None,
                "browser": None,
                "os": None,
                "custom_attributes": {},
                "location": {"type": "location", "country": None, "region": None, "city": None},
                "tags": lst,
                "notes": lst,
                "companies": lst,
            },
            "companies": {
                "type": "company",
                "app_id": "fake_app",
                "name": None,
                "remote_created_at": None,
                "created_at": now,
                "updated_at": now,
                "last_request_at": now,
                "monthly_spend": 0,
                "session_count": 0,
                "user_count": 0,
                "size": None,
                "website": None,
                "industry": None,
                "plan": {},
                "tags": {"type": "tag.list", "tags": []},
                "segments": {"type": "segment.list", "segments": []},
                "custom_attributes": {},
            },
            "conversations": {
                "type": "conversation",
                "title": None,
                "created_at": now,
                "updated_at": now,
                "waiting_since": None,
                "snoozed_until": None,
                "open": True,
                "state": "open",
                "read": False,
                "priority": "not_priority",
                "admin_assignee_id": None,
                "team_assignee_id": None,
                "custom_attributes": {},
                "source": {
                    "type": "conversation",
                    "delivered_as": "customer_initiated",
                    "subject": "",
                    "body": "<p>Hello</p>",
                    "author": {"type": "user"},
                    "attachments": [],
                    "redacted": False,
                },
                "contacts": {"type": "contact.list", "contacts": []},
                "tags": {"type": "tag.list", "tags": []},
            },
            "admins": {
                "type": "admin",
                "name": "Ada Admin",
                "email": "ada@example.com",
                "job_title": None,
                "away_mode_enabled": False,
                "away_mode_reassign": False,
                "has_inbox_seat": True,
                "team_ids": [],
                "avatar": None,
            },
            "teams": {"type": "team", "name": "Support", "admin_ids": []},
            "tags": {"type": "tag", "name": "VIP"},
            "segments": {
                "type": "segment",
                "name": "Active",
                "created_at": now,
                "updated_at": now,
                "person_type": "user",
            },
            "subscription_types": {
                "type": "subscription",
                "state": "live",
                "consent_type": "opt_out",
                "content_types": ["email"],
                "translations": [],
                "default_translation": {"name": "News", "description": "", "locale": "en"},
            },
            "data_attributes": {
                "type": "data_attribute",
                "name": "plan",
                "full_name": "custom_attributes.plan",
                "label": "Plan",
                "description": "",
                "data_type": "string",
                "model": "contact",
                "api_writable": True,
                "ui_writable": True,
                "custom": True,
                "archived": False,
                "created_at": now,
                "updated_at": now,
            },
            "help_centers": {
                "workspace_id": "fake_app",
                "created_at": now,
                "updated_at": now,
                "identifier": "help",
                "website_turned_on": True,
                "display_name": "Help",
            },
            "collections": {
                "type": "collection",
                "workspace_id": "fake_app",
                "name": "Getting started",
                "description": None,
                "created_at": now,
                "updated_at": now,
                "url": None,
                "icon": None,
                "order": 1,
                "default_locale": "en",
                "parent_id": None,
                "help_center_id": None,
            },
            "notes": {
                "type": "note",
                "created_at": now,
                "body": "<p>Note</p>",
                "contact": None,
                "author": None,
            },
            "ticket_types": {
                "type": "ticket_type",
                "name": "Bug report",
                "description": "",
                "icon": "🐞",
                "workspace_id": "fake_app",
                "archived": False,
                "created_at": now,
                "updated_at": now,
                "is_internal": False,
                "category": "Customer",
                "ticket_type_attributes": {"type": "list", "data": []},
            },
            "ticket_states": {
                "type": "ticket_state",
                "category": "submitted",
                "internal_label": "Submitted",
                "external_label": "Submitted",
                "archived": False,
            },
            "tickets": {
                "type": "ticket",
                "category": "Customer",
                "ticket_attributes": {},
                "open": True,
                "admin_assignee_id": "0",
                "team_assignee_id": "0",
                "created_at": now,
                "updated_at": now,
                "snoozed_until": None,
                "is_shared": False,
                "contacts": {"type": "ticket_contacts", "contacts": []},
                "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
                "ticket_parts": {"type": "ticket_part.list", "ticket_parts": [], "total_count": 0},
            },
            "custom_object_instances": {
                "custom_attributes": {},
                "external_id": None,
                "external_created_at": None,
                "external_updated_at": None,
                "created_at": now,
                "updated_at": now,
            },
        }.get(kind, {})
    )


def _iso(ts: int) -> str:
    """Epoch seconds as Intercom writes them in event summaries: 2014-01-16T23:12:21.000+00:00."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(ts))


def _job(job: dict) -> dict:
    """An export job as Intercom shows it (keyed by job_identifier, no id)."""
    return {k: v for k, v in job.items() if k != "id"}


class ApiError(Exception):
    """Raised by a route to answer in Intercom's error shape."""

    def __init__(self, status: int, message: str | None = None, code: str | None = None):
        super().__init__(message)
        default_code, default_message = ERRORS.get(status, ("error", "Error"))
        self.status, self.code, self.message = status, code or default_code, message or default_message


@dataclass
class Recorded:
    """One request as received (header names keep their case: use .header(name) to look one up)."""

    method: str
    path: str  # still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON; the raw bytes if not JSON; None if empty
    at: float = field(default_factory=time.time)  # when it arrived (epoch seconds)
    target: str = ""  # the request target exactly as it arrived: path and query, still percent-encoded
    raw: bytes = b""  # the body as sent

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Answer:
    """One HTTP answer: what a route of the workspace or a scripted `answer` function replies."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    drip: float | None = None  # seconds between one-byte chunks of the body
    reason: str | None = None  # the reason phrase (None: the standard one)

    @classmethod
    def json(cls, value: Any, status: int = 200, **headers: str) -> Answer:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **headers})


@dataclass
class Drip:
    """How much of a dripped body was sent, and whether the client went away first."""

    sent: int = 0
    total: int = 0
    aborted: bool = False


@dataclass
class _Fault:
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    path: str | None = None


class FakeIntercom:
    """In-memory Intercom on 127.0.0.1 (a random port unless `port` is given); a context manager."""

    def __init__(
        self,
        token: str = "test-token",  # noqa: S107
        seed: bool = True,
        *,
        port: int = 0,
        search_semantics: str = "intercom",
        answer: Callable[[Recorded], Answer] | None = None,
    ):
        self.token, self.port, self.search_semantics = token, port, search_semantics
        self.answer = answer  # set: every request is answered by it instead of the workspace
        self.drips: list[Drip] = []
        self.delay = 0.0
        self.now: int | None = None
        self.per_page: int | None = None
        self.scroll_page_size = 15
        self.db: dict[str, dict[str, dict]] = {}
        self.events: list[dict] = []
        self._lock = threading.RLock()
        self._requests: list[Recorded] = []
        self._faults: list[_Fault] = []
        self._scrolls: dict[str, list[dict]] = {}
        self._archived: set[str] = set()
        self._attached: dict[str, list[str]] = {}  # contact id -> ids of the companies attached to it
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self.routes = [(m, re.compile(f"^{p}$"), h) for m, p, h in self._route_table()]
        if seed:
            self.seed()

    # ---- lifecycle and test controls -------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start it first: `with FakeIntercom() as fake:`"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def cfg(self, **extra: Any) -> dict[str, Any]:
        """The connector's cfg for this fake (custom server URL, its token), plus `extra` fields."""
        return {"accessToken": self.token, "server": "custom", "otherServer": self.url, **extra}

    def start(self) -> FakeIntercom:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever,
            args=(0.02,),  # quick shutdown in tests
            name="fake-intercom",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeIntercom:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self, seed: bool = False) -> None:
        """Empty workspace, no pending faults or scrolls, default knobs: reuse one server across tests."""
        with self._lock:
            for store in (self.db, self._scrolls, self._attached):
                store.clear()
            for items in (self.events, self._requests, self._faults):
                items.clear()
            self._archived.clear()
            self.delay, self.now, self.per_page, self.scroll_page_size = 0.0, None, None, 15
            if seed:
                self.seed()

    def fail_next(
        self,
        status: int,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` requests (whose path starts with `path`, if given) with `status`."""
        hdrs = dict(headers or {})
        if status == 429:
            hdrs.setdefault("X-RateLimit-Reset", str(int(time.time()) + 1))
            hdrs.setdefault("X-RateLimit-Remaining", "0")
        with self._lock:
            self._faults.append(_Fault(status, times, hdrs, body, path))

    def clock(self) -> int:
        return self.now if self.now is not None else int(time.time())

    # ---- seeding ---------------------------------------------------------------------------------
    def add(self, kind: str, **fields: Any) -> dict:
        """Store a new object of `kind` (a key of .db): the template, then `fields`; returns a copy."""
        with self._lock:
            self._counter += 1
            numeric = kind not in ("contacts", "companies", "segments")
            obj = {
                "id": str(1000 + self._counter) if numeric else f"6657a9926abd01639c{self._counter:06x}",
                **_template(kind, self.clock()),
                **fields,
            }
            obj["id"] = str(obj["id"])
            if kind == "companies":
                obj.setdefault("company_id", obj["id"])
            self.db.setdefault(kind, {})[obj["id"]] = obj
            return copy.deepcopy(obj)

    # add_contact(**fields), add_company(...), ...: `add` for one kind
    add_contact = partialmethod(add, "contacts")
    add_company = partialmethod(add, "companies")
    add_conversation = partialmethod(add, "conversations")
    add_admin = partialmethod(add, "admins")
    add_team = partialmethod(add, "teams")
    add_tag = partialmethod(add, "tags")
    add_segment = partialmethod(add, "segments")
    add_subscription_type = partialmethod(add, "subscription_types")
    add_data_attribute = partialmethod(add, "data_attributes")
    add_help_center = partialmethod(add, "help_centers")
    add_collection = partialmethod(add, "collections")
    add_note = partialmethod(add, "notes")
    add_ticket_type = partialmethod(add, "ticket_types")
    add_ticket_state = partialmethod(add, "ticket_states")
    add_custom_object_instance = partialmethod(add, "custom_object_instances")

    def add_ticket(self, **fields: Any) -> dict:
        """A ticket (2.16): the first ticket type and the first state unless given; `ticket_id` numbered."""
        with self._lock:
            types, states = self._all("ticket_types"), self._all("ticket_states")
            fields.setdefault("ticket_type", copy.deepcopy(types[0]) if types else None)
            fields.setdefault("ticket_state", self._state_ref(states[0]) if states else None)
            fields.setdefault("ticket_id", str(len(self.db.get("tickets", {})) + 1))
            return self.add("tickets", **fields)

    @staticmethod
    def _state_ref(state: dict) -> dict:
        return {k: state[k] for k in ("type", "id", "category", "internal_label", "external_label")}

    def seed(self) -> None:
        """A small deterministic workspace: 2 admins, a team, 2 tags, 5 contacts, 3 companies..."""
        base = 1717000000
        admin = self.add_admin(id="991267001")
        self.add_admin(id="991267002", name="Bob Admin", email="bob@example.com")
        self.add_team(id="5017001", admin_ids=[int(admin["id"])])
        self.add_tag(id="9001", name="VIP")
        self.add_tag(id="9002", name="Churn risk")
        self.add_segment(name="Active users")
        self.add_subscription_type(id="301")
        self.add_data_attribute(id="401")
        self.add_data_attribute(id="402", name="email", full_name="email", label="Email", custom=False)
        self.add_collection(id="601", help_center_id=int(self.add_help_center(id="501")["id"]))
        for i in range(5):
            self.add_contact(
                email=f"user{i}@example.com",
                name=f"User {i}",
                external_id=f"ext-{i}",
                created_at=base + i * 60,
                updated_at=base + i * 3600,
            )
        for i in range(3):
            self.add_company(
                company_id=f"company-{i}",
                name=f"Company {i}",
                created_at=base + i,
                updated_at=base + i * 7200,
                last_request_at=base + i * 10,
            )
            self.add_conversation(created_at=base + i, updated_at=base + i * 1800)
        self.seed_tickets()  # last: the ids of everything above stay as they were before tickets existed

    def seed_tickets(self) -> None:
        """The four ticket states and two ticket types a 2.16 workspace starts with (no tickets)."""
        for i, (category, label) in enumerate(TICKET_STATES):
            self.add_ticket_state(
                id=str(8000 + i), category=category, internal_label=label, external_label=label
            )
        self.add_ticket_type(id="88", name="Bug report", description="Something is broken")
        self.add_ticket_type(id="89", name="Refund request", description="Money back", category="Back-office")

    # ---- helpers for the routes ------------------------------------------------------------------
    def _get(self, kind: str, oid: str, what: str) -> dict:
        obj = self.db.get(kind, {}).get(oid)
        if obj is None or oid in self._archived:
            raise ApiError(404, f"{what} Not Found")
        return obj

    def _all(self, kind: str) -> list[dict]:
        return [o for o in self.db.get(kind, {}).values() if o["id"] not in self._archived]

    def _per_page(self, value: Any, default: int) -> int:
        try:
            n = int(value) if value not in (None, "") else (self.per_page or default)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "per_page must be an integer", "parameter_invalid") from exc
        if not 1 <= n <= 150:
            raise ApiError(400, "per_page must be between 1 and 150", "parameter_invalid")
        return n

    def _cursor_page(
        self, items: list, per_page: int, after: str | None, key: str = "data", type_: str = "list"
    ) -> dict:
        """Intercom's cursor lists: pages.next = {page, starting_after} while more objects remain."""
        offset, page = 0, 1
        if after:
            try:
                offset, page = json.loads(base64.urlsafe_b64decode(after.encode()))
            except (ValueError, TypeError) as exc:
                raise ApiError(400, "starting_after is invalid", "parameter_invalid") from exc
        pages: dict[str, Any] = {
            "type": "pages",
            "page": page,
            "per_page": per_page,
            "total_pages": -(-len(items) // per_page),
        }
        if offset + per_page < len(items):
            cursor = base64.urlsafe_b64encode(json.dumps([offset + per_page, page + 1]).encode()).decode()
            pages["next"] = {"page": page + 1, "starting_after": cursor}
        chunk = items[offset : offset + per_page]
        return {"type": type_, key: chunk, "total_count": len(items), "pages": pages}

    def _page_list(self, items: list, r: Recorded, default: int = 15) -> dict:
        """Page-number lists (companies, collections): pages.next links the next page, null on the last."""
        q = r.query
        per_page = self._per_page(q.get("per_page"), default)
        try:
            page = max(1, int(q.get("page") or 1))
        except ValueError as exc:
            raise ApiError(400, "page must be an integer", "parameter_invalid") from exc
        total = -(-len(items) // per_page)
        nxt = f"{self.url}{r.path}?page={page + 1}&per_page={per_page}" if page < total else None
        pages = {"type": "pages", "next": nxt, "page": page, "per_page": per_page, "total_pages": total}
        return {
            "type": "list",
            "data": items[(page - 1) * per_page : page * per_page],
            "pages": pages,
            "total_count": len(items),
        }

    @staticmethod
    def _body(r: Recorded, *required: str) -> dict:
        body = r.body if isinstance(r.body, dict) else {}
        for name in required:
            if body.get(name) in (None, ""):
                raise ApiError(400, f"{name} is required", "parameter_not_found")
        return dict(body)

    def _update(self, kind: str, oid: str, what: str, body: dict) -> dict:
        obj = self._get(kind, oid, what)
        obj.update({k: v for k, v in body.items() if k not in ("id", "type", "company_id")})
        obj["updated_at"] = self.clock()
        return obj

    def _delete(self, kind: str, oid: str, what: str) -> dict:
        self._get(kind, oid, what)
        del self.db[kind][oid]
        return {"id": oid, "object": what.lower().replace(" ", "_"), "deleted": True}

    # ---- search ----------------------------------------------------------------------------------
    def _match(self, obj: dict, query: Any, dates: set[str], by_day: bool) -> bool:
        if not isinstance(query, dict):
            raise ApiError(400, "query must be an object", "parameter_invalid")
        if "field" not in query:
            join = {"AND": all, "OR": any}.get(query.get("operator", "AND"))
            if join is None:
                raise ApiError(400, f"bad operator {query.get('operator')!r}", "parameter_invalid")
            return join([self._match(obj, q, dates, by_day) for q in query.get("value") or []])
        name, op, want = query["field"], query.get("operator", "="), query.get("value")
        have: Any = obj
        for part in name.split("."):
            have = have.get(part) if isinstance(have, dict) else None
        numeric = name in dates or (isinstance(have, int | float) and not isinstance(have, bool))
        if numeric and (want is not None or name in dates):  # a date needs a timestamp
            try:
                want = [int(w) for w in want] if isinstance(want, list) else int(want)
            except (TypeError, ValueError) as exc:
                raise ApiError(400, f"{name} expects a number, got {want!r}", "parameter_invalid") from exc
        if name in dates and self.search_semantics == "intercom":
            if by_day:  # contacts: by UTC calendar day
                if op not in ("=", ">", "<"):
                    raise ApiError(
                        400, f"Operator '{op}' is not supported on date field '{name}'", "parameter_invalid"
                    )
                day = want - want % DAY
                return (
                    have is not None
                    and {"=": day <= have < day + DAY, ">": have >= day + DAY, "<": have < day}[op]
                )
            op = {">": ">=", "<": "<="}.get(op, op)  # conversations: "Greater (or equal) than"
        text, w = str(have if have is not None else ""), str(want)
        ops: dict[str, Callable[[], bool]] = {
            "=": lambda: have == want,
            "!=": lambda: have != want,
            "IN": lambda: have in (want or []),
            "NIN": lambda: have not in (want or []),
            ">": lambda: have is not None and have > want,
            "<": lambda: have is not None and have < want,
            ">=": lambda: have is not None and have >= want,
            "<=": lambda: have is not None and have <= want,
            "~": lambda: w in text,
            "!~": lambda: w not in text,
            "^": lambda: text.startswith(w),
            "$": lambda: text.endswith(w),
        }
        if op not in ops:
            raise ApiError(400, f"Unknown operator {op!r}", "parameter_invalid")
        return ops[op]()

    def _search(
        self,
        r: Recorded,
        kind: str,
        dates: set[str],
        by_day: bool,
        key: str,
        type_: str,
        view: Callable[[dict], dict] = lambda o: o,
    ) -> dict:
        """`view`: the object as the search sees its fields (tickets: ticket_type_id, state)."""
        body = self._body(r, "query")
        self._match({}, body["query"], dates, by_day)  # validates the query even when nothing is stored
        found = [o for o in self._all(kind) if self._match(view(o), body["query"], dates, by_day)]
        sort = body.get("sort") or {}
        if sort:
            found.sort(
                key=lambda o: (o.get(sort.get("field", "updated_at")) or 0, o["id"]),
                reverse=str(sort.get("order", "ascending")).lower() in ("descending", "desc"),
            )
        paging = body.get("pagination") or {}
        per_page = self._per_page(paging.get("per_page"), 50 if kind == "contacts" else 20)
        return self._cursor_page(found, per_page, paging.get("starting_after"), key, type_)

    # ---- routes ----------------------------------------------------------------------------------
    def _route_table(self) -> list[tuple[str, str, Callable[..., Any]]]:
        def listing(kind: str, type_: str = "list", key: str = "data") -> Callable[[Recorded], dict]:
            return lambda r: {"type": type_, key: self._all(kind)}

        def getter(kind: str, what: str) -> Callable[..., dict]:
            return lambda r, id: self._get(kind, id, what)

        def cursor(kind: str, default: int, key: str = "data", type_: str = "list") -> Callable[..., dict]:
            return lambda r: self._cursor_page(
                self._all(kind),
                self._per_page(r.query.get("per_page"), default),
                r.query.get("starting_after"),
                key,
                type_,
            )

        return [
            (
                "GET",
                "/me",
                lambda r: {
                    **(self._all("admins") or [{"id": "1", **_template("admins", 0)}])[0],
                    "email_verified": True,
                    "app": {
                        "type": "app",
                        "id_code": "fake_app",
                        "name": "Fake",
                        "region": "US",
                        "timezone": "UTC",
                    },
                },
            ),
            ("GET", "/admins", listing("admins", "admin.list", "admins")),
            ("GET", f"/admins/{ID}", getter("admins", "Admin")),
            ("GET", "/contacts", cursor("contacts", 50)),
            ("POST", "/contacts", self._create_contact),
            (
                "POST",
                "/contacts/search",
                lambda r: self._search(r, "contacts", CONTACT_DATES, True, "data", "list"),
            ),
            ("GET", f"/contacts/{ID}", getter("contacts", "User")),
            ("PUT", f"/contacts/{ID}", lambda r, id: self._update("contacts", id, "User", self._body(r))),
            ("DELETE", f"/contacts/{ID}", lambda r, id: self._delete("contacts", id, "Contact")),
            ("POST", f"/contacts/{ID}/archive", lambda r, id: self._archive(id, True)),
            ("POST", f"/contacts/{ID}/unarchive", lambda r, id: self._archive(id, False)),
            (
                "GET",
                f"/contacts/{ID}/notes",
                lambda r, id: (
                    self._get("contacts", id, "User")
                    and self._cursor_page(
                        [n for n in self._all("notes") if n["contact"]["id"] == id],
                        self._per_page(r.query.get("per_page"), 50),
                        r.query.get("starting_after"),
                    )
                ),
            ),
            ("POST", f"/contacts/{ID}/notes", self._create_note),
            ("GET", f"/contacts/{ID}/companies", self._contact_companies),
            ("POST", f"/contacts/{ID}/companies", self._attach_company),
            ("GET", f"/notes/{ID}", getter("notes", "Note")),
            ("POST", "/companies", self._upsert_company),
            ("GET", "/companies", self._retrieve_companies),
            ("GET", "/companies/scroll", self._scroll_companies),
            (
                "POST",
                "/companies/list",
                lambda r: self._page_list(
                    sorted(
                        self._all("companies"),
                        key=lambda x: (x.get("last_request_at") or 0, x["id"]),
                        reverse=r.query.get("order", "desc") != "asc",
                    ),
                    r,
                ),
            ),
            ("GET", f"/companies/{ID}", getter("companies", "Company")),
            (
                "PUT",
                f"/companies/{ID}",
                lambda r, id: self._update("companies", id, "Company", self._body(r)),
            ),
            ("DELETE", f"/companies/{ID}", lambda r, id: self._delete("companies", id, "Company")),
            ("GET", "/conversations", cursor("conversations", 20, "conversations", "conversation.list")),
            (
                "POST",
                "/conversations/search",
                lambda r: self._search(
                    r, "conversations", CONVERSATION_DATES, False, "conversations", "conversation.list"
                ),
            ),
            (
                "GET",
                f"/conversations/{ID}",
                lambda r, id: {
                    **self._get("conversations", id, "Conversation"),
                    "conversation_parts": {
                        "type": "conversation_part.list",
                        "conversation_parts": [],
                        "total_count": 0,
                    },
                },
            ),
            ("GET", "/tags", listing("tags")),
            ("POST", "/tags", self._create_tag),
            ("GET", f"/tags/{ID}", getter("tags", "Tag")),
            ("DELETE", f"/tags/{ID}", lambda r, id: self._delete("tags", id, "Tag") and None),
            ("GET", "/teams", listing("teams", "team.list", "teams")),
            ("GET", f"/teams/{ID}", getter("teams", "Team")),
            ("GET", "/segments", listing("segments", "segment.list", "segments")),
            ("GET", f"/segments/{ID}", getter("segments", "Segment")),
            ("GET", "/subscription_types", listing("subscription_types")),
            (
                "GET",
                "/data_attributes",
                lambda r: {
                    "type": "list",
                    "data": [
                        a for a in self._all("data_attributes") if r.query.get("model") in (None, a["model"])
                    ],
                },
            ),
            ("GET", "/help_center/help_centers", listing("help_centers")),
            ("GET", f"/help_center/help_centers/{ID}", getter("help_centers", "Help Center")),
            ("GET", "/help_center/collections", lambda r: self._page_list(self._all("collections"), r, 50)),
            ("GET", f"/help_center/collections/{ID}", getter("collections", "Collection")),
            ("GET", "/events", self._list_events),
            ("POST", "/events", self._create_event),
            ("POST", "/export/content/data", self._create_export),
            ("GET", f"/export/content/data/{ID}", self._export_status),
            ("POST", f"/export/cancel/{ID}", self._cancel_export),
            ("GET", f"/download/content/data/{ID}", self._download_export),
            # API 2.16
            ("GET", "/ticket_types", listing("ticket_types")),
            ("POST", "/ticket_types", lambda r: self.add_ticket_type(**self._body(r, "name"))),
            ("GET", f"/ticket_types/{ID}", getter("ticket_types", "Ticket type")),
            ("GET", "/ticket_states", listing("ticket_states")),
            ("POST", "/tickets", self._create_ticket),
            (
                "POST",
                "/tickets/search",
                lambda r: self._search(
                    r,
                    "tickets",
                    TICKET_DATES,
                    False,
                    "tickets",
                    "ticket.list",
                    lambda t: {
                        **t,
                        "ticket_type_id": (t.get("ticket_type") or {}).get("id"),
                        "state": (t.get("ticket_state") or {}).get("category"),
                        "title": t["ticket_attributes"].get("_default_title_"),
                        "contact_ids": [c["id"] for c in t["contacts"]["contacts"]],
                    },
                ),
            ),
            ("GET", f"/tickets/{ID}", getter("tickets", "Ticket")),
            ("PUT", f"/tickets/{ID}", self._update_ticket),
            ("DELETE", f"/tickets/{ID}", lambda r, id: self._delete("tickets", id, "Ticket")),
            ("POST", f"/tickets/{ID}/reply", self._reply_ticket),
            ("POST", "/custom_object_instances/(?P<kind>[^/]+)", self._upsert_custom_object),
            ("GET", "/custom_object_instances/(?P<kind>[^/]+)", self._list_custom_objects),
            (
                "DELETE",
                "/custom_object_instances/(?P<kind>[^/]+)",
                lambda r, kind: self._delete_custom_object(
                    kind, self._custom_object_by_external_id(kind, r.query.get("external_id"))
                ),
            ),
            (
                "GET",
                f"/custom_object_instances/(?P<kind>[^/]+)/{ID}",
                lambda r, kind, id: self._custom_object(kind, id),
            ),
            (
                "DELETE",
                f"/custom_object_instances/(?P<kind>[^/]+)/{ID}",
                lambda r, kind, id: self._delete_custom_object(kind, self._custom_object(kind, id)),
            ),
        ]

    # ---- tickets (2.16) --------------------------------------------------------------------------
    def _contact_of(self, ref: Any) -> dict:
        """A ticket's contact given as {"id"}, {"external_id"} or {"email"} (400 when none matches)."""
        if isinstance(ref, dict):
            for key in ("id", "external_id", "email"):
                if ref.get(key) not in (None, ""):
                    found = [c for c in self._all("contacts") if str(c.get(key)) == str(ref[key])]
                    if found:
                        return found[0]
                    if key == "email":  # Intercom creates a lead for an unknown email
                        return self.add_contact(email=ref["email"], role="lead")
        raise ApiError(400, f"contact not found: {json.dumps(ref)[:80]}", "parameter_invalid")

    def _create_ticket(self, r: Recorded) -> dict:
        body = self._body(r, "ticket_type_id", "contacts")
        ticket_type = self.db.get("ticket_types", {}).get(str(body["ticket_type_id"]))
        if ticket_type is None:
            raise ApiError(400, "ticket_type_id is not a ticket type", "parameter_invalid")
        contacts = body["contacts"] if isinstance(body["contacts"], list) else []
        if not contacts:
            raise ApiError(400, "contacts must have at least one contact", "parameter_invalid")
        refs = [
            {"type": "contact", "id": c["id"], "external_id": c.get("external_id")}
            for c in map(self._contact_of, contacts)
        ]
        ticket = self.add_ticket(
            ticket_type=copy.deepcopy(ticket_type),
            ticket_attributes=dict(body.get("ticket_attributes") or {}),
            contacts={"type": "ticket_contacts", "contacts": refs},
        )
        if body.get("created_at"):
            self.db["tickets"][ticket["id"]]["created_at"] = int(body["created_at"])
        return self.db["tickets"][ticket["id"]]

    def _update_ticket(self, r: Recorded, id: str) -> dict:
        ticket = self._get("tickets", id, "Ticket")
        body = self._body(r)
        if "ticket_state_id" in body:
            state = self.db.get("ticket_states", {}).get(str(body["ticket_state_id"]))
            if state is None:
                raise ApiError(
                    400,
                    "ticket_state_id is not valid or is not associated with the ticket type",
                    "parameter_invalid",
                )
            ticket["ticket_state"] = self._state_ref(state)
            ticket["open"] = state["category"] != "resolved"
        ticket["ticket_attributes"] = {**ticket["ticket_attributes"], **(body.get("ticket_attributes") or {})}
        for key in ("open", "snoozed_until", "is_shared"):
            if key in body:
                ticket[key] = body[key]
        if body.get("assignee_id") not in (None, ""):
            ticket["admin_assignee_id"] = str(body["assignee_id"])
        ticket["updated_at"] = self.clock()
        return ticket

    def _reply_ticket(self, r: Recorded, id: str) -> dict:
        ticket = self._get("tickets", id, "Ticket")
        body = self._body(r, "message_type", "type", "body")
        if body["type"] == "admin" and body.get("admin_id") in (None, ""):
            raise ApiError(400, "admin_id is required for an admin reply", "parameter_not_found")
        author = (
            {"type": "admin", "id": str(body["admin_id"])}
            if body["type"] == "admin"
            else {"type": "user", "id": str(body.get("intercom_user_id") or body.get("user_id") or "")}
        )
        self._counter += 1
        now = self.clock()
        part = {
            "type": "ticket_part",
            "id": str(1000 + self._counter),
            "part_type": body["message_type"],
            "body": body["body"],
            "created_at": now,
            "updated_at": now,
            "author": author,
            "attachments": [],
            "redacted": False,
        }
        parts = ticket["ticket_parts"]
        parts["ticket_parts"].append(part)
        parts["total_count"] = len(parts["ticket_parts"])
        ticket["updated_at"] = now
        return part

    # ---- custom object instances (2.16) ----------------------------------------------------------
    def _custom_objects(self, kind: str) -> list[dict]:
        return [o for o in self._all("custom_object_instances") if o["type"] == kind]

    def _custom_object(self, kind: str, oid: str) -> dict:
        obj = self.db.get("custom_object_instances", {}).get(oid)
        if obj is None or obj["type"] != kind:
            raise ApiError(404, "Custom object instance not found")
        return obj

    def _custom_object_by_external_id(self, kind: str, external_id: str | None) -> dict:
        found = [o for o in self._custom_objects(kind) if external_id and o["external_id"] == external_id]
        if not found:
            raise ApiError(404, "Custom object instance not found")
        return found[0]

    def _upsert_custom_object(self, r: Recorded, kind: str) -> dict:
        body = self._body(r, "external_id")
        known = [o for o in self._custom_objects(kind) if o["external_id"] == body["external_id"]]
        if known:
            obj = known[0]
            attributes = {**obj["custom_attributes"], **(body.pop("custom_attributes", None) or {})}
            obj.update(
                {k: v for k, v in body.items() if k not in ("id", "type")},
                custom_attributes=attributes,
                updated_at=self.clock(),
            )
            return obj
        body.pop("id", None)
        body["custom_attributes"] = dict(body.get("custom_attributes") or {})
        obj = self.add_custom_object_instance(type=kind, **body)
        return self.db["custom_object_instances"][obj["id"]]

    def _list_custom_objects(self, r: Recorded, kind: str) -> dict:
        if r.query.get("external_id"):  # one instance by its external id
            return self._custom_object_by_external_id(kind, r.query["external_id"])
        page = self._page_list(self._custom_objects(kind), r, 10)
        return {**page, "type": "list"}

    def _delete_custom_object(self, kind: str, obj: dict) -> dict:
        del self.db["custom_object_instances"][obj["id"]]
        return {"id": obj["id"], "object": kind, "deleted": True}

    def _create_contact(self, r: Recorded) -> dict:
        body = self._body(r)
        if not any(body.get(k) for k in ("email", "external_id", "role")):
            raise ApiError(400, "requires email, external_id or role", "parameter_invalid")
        for other in self._all("contacts"):
            same_email = body.get("email") and (other["email"], other["role"]) == (
                body["email"],
                body.get("role", "user"),
            )
            if same_email or (body.get("external_id") and other["external_id"] == body["external_id"]):
                raise ApiError(
                    409, f"A contact matching those details already exists with id={other['id']}", "conflict"
                )
        body.pop("id", None)
        return self.add_contact(**body)

    def _archive(self, oid: str, archived: bool) -> dict:
        if oid not in self.db.get("contacts", {}):
            raise ApiError(404, "User Not Found")
        (self._archived.add if archived else self._archived.discard)(oid)
        return {"id": oid, "object": "contact", "archived": archived}

    def _create_note(self, r: Recorded, id: str) -> dict:
        body = self._body(r, "body")
        contact = self._get("contacts", id, "User")
        admin = self.db.get("admins", {}).get(str(body.get("admin_id"))) or self._all("admins")[0]
        return self.add_note(
            body=f"<p>{body['body']}</p>", author=admin, contact={"type": "contact", "id": contact["id"]}
        )

    def _upsert_company(self, r: Recorded) -> dict:
        body = self._body(r)
        found = next(
            (
                x
                for x in self._all("companies")
                if body.get("company_id") and x["company_id"] == body["company_id"]
            ),
            None,
        )
        if found:
            return self._update("companies", found["id"], "Company", body)
        return self.add_company(**{k: v for k, v in body.items() if k != "id"})

    def _retrieve_companies(self, r: Recorded) -> dict:
        items = [
            x
            for x in self._all("companies")
            if all(r.query.get(k) in (None, x.get(k)) for k in ("company_id", "name"))
        ]
        if (r.query.get("company_id") or r.query.get("name")) and not items:
            raise ApiError(404, "Company Not Found")
        return self._page_list(items, r)

    def _scroll_companies(self, r: Recorded) -> dict:
        param = r.query.get("scroll_param")
        if param and param not in self._scrolls:
            raise ApiError(404, "scroll parameter not found or expired", "not_found")
        if not param:
            param = str(uuid.uuid4())
            self._scrolls[param] = copy.deepcopy(self._all("companies"))
        remaining = self._scrolls[param]
        chunk = remaining[: self.scroll_page_size]
        del remaining[: self.scroll_page_size]
        if not chunk:
            del self._scrolls[param]  # the end was reached: the scroll expires
        return {"type": "list", "data": chunk, "pages": None, "total_count": None, "scroll_param": param}

    def _create_tag(self, r: Recorded) -> dict:
        body = self._body(r, "name")
        if body.get("id"):
            return self._update("tags", str(body["id"]), "Tag", {"name": body["name"]})
        found = next((t for t in self._all("tags") if t["name"] == body["name"]), None)
        return found or self.add_tag(name=body["name"])

    def _create_event(self, r: Recorded) -> None:
        body = self._body(r, "event_name")
        if not any(body.get(k) for k in ("user_id", "id", "email")):
            raise ApiError(400, "user_id, id or email is required", "parameter_not_found")
        self.events.append({**body, "created_at": body.get("created_at") or self.clock()})
        return None  # 202 Accepted, empty body

    def _list_events(self, r: Recorded) -> dict:
        """GET /events?type=user&user_id|email|intercom_user_id=...[&summary=true][&per_page&before]."""
        q = r.query
        if q.get("type") != "user":
            raise ApiError(400, "type must be user", "parameter_invalid")
        named = [(k, q[k]) for k in ("user_id", "email", "intercom_user_id") if q.get(k)]
        if len(named) != 1:
            raise ApiError(
                400, "one of user_id, email or intercom_user_id is required", "parameter_not_found"
            )
        ((param, value),) = named
        field = {"user_id": "external_id", "email": "email", "intercom_user_id": "id"}[param]
        contact = next((c for c in self._all("contacts") if c.get(field) == value), None)
        if contact is None:
            raise ApiError(404, "User Not Found", "not_found")
        mine = sorted(
            (e for e in self.events if self._event_of(e, contact)),
            key=lambda e: e["created_at"],
            reverse=True,
        )
        who = {
            "user_id": contact["external_id"],
            "intercom_user_id": contact["id"],
            "email": contact["email"],
        }
        if str(q.get("summary")).lower() == "true":
            times: dict[str, list[int]] = {}
            for event in mine:
                times.setdefault(event["event_name"], []).append(int(event["created_at"]))
            return {
                "type": "event.summary",
                **who,
                "events": [
                    {
                        "name": name,
                        "first": _iso(min(ts)),
                        "last": _iso(max(ts)),
                        "count": len(ts),
                        "description": "",
                    }
                    for name, ts in times.items()
                ],
            }
        if q.get("before"):
            mine = [e for e in mine if int(e["created_at"]) < int(q["before"])]
        per_page = self._per_page(q.get("per_page"), 50)
        pages = {}
        if len(mine) > per_page:  # the next page: events before the last one shown
            after = {
                **{k: v for k, v in q.items() if k != "before"},
                "before": mine[per_page - 1]["created_at"],
            }
            pages["next"] = f"{self.url}/events?" + "&".join(f"{k}={v}" for k, v in after.items())
        return {
            "type": "event.list",
            "pages": pages,
            "events": [
                {
                    "type": "event",
                    "event_name": e["event_name"],
                    "created_at": e["created_at"],
                    **who,
                    "metadata": e.get("metadata") or {},
                }
                for e in mine[:per_page]
            ],
        }

    @staticmethod
    def _event_of(event: dict, contact: dict) -> bool:
        """Whether a submitted event names this contact (by user_id, Intercom id or email)."""
        return any(
            event.get(key) and event[key] == contact[field]
            for key, field in (("user_id", "external_id"), ("id", "id"), ("email", "email"))
        )

    def _contact_companies(self, r: Recorded, id: str) -> dict:
        contact = self._get("contacts", id, "User")
        companies = self.db.get("companies", {})
        attached = [companies[c] for c in self._attached.get(contact["id"], ()) if c in companies]
        return self._page_list(attached, r, 50)

    def _attach_company(self, r: Recorded, id: str) -> dict:
        contact = self._get("contacts", id, "User")
        company = self._get("companies", str(self._body(r, "id")["id"]), "Company")
        attached = self._attached.setdefault(contact["id"], [])
        if company["id"] not in attached:
            attached.append(company["id"])
            company["user_count"] = company.get("user_count", 0) + 1
        return company

    def _create_export(self, r: Recorded) -> dict:
        self._body(r, "created_at_after", "created_at_before")
        if any(j["status"] == "pending" for j in self._all("exports")):
            raise ApiError(429, "Exceeded rate limit of 1 pending message data export jobs")
        job_id = uuid.uuid4().hex[:16]
        job = self.add(
            "exports",
            id=job_id,
            job_identifier=job_id,
            status="pending",
            download_url="",
            download_expires_at="",
        )
        return _job(job)

    def _export_status(self, r: Recorded, id: str) -> dict:
        job = self._get("exports", id, "Job")
        if job["status"] == "pending":  # a job completes at its first status check
            job.update(
                status="completed",
                download_url=f"{self.url}/download/content/data/{id}",
                download_expires_at=str(self.clock() + 2 * DAY),
            )
        return _job(job)

    def _cancel_export(self, r: Recorded, id: str) -> dict:
        job = self._get("exports", id, "Job")
        job["status"] = "canceled"
        return _job(job)

    def _download_export(self, r: Recorded, id: str) -> tuple[int, bytes, dict]:
        job = self._get("exports", id, "Job")
        if job["status"] != "completed":
            raise ApiError(404, "Export not ready")
        rows = "".join(f"m{i},{c},{self.clock()}\n" for i, c in enumerate(self.db.get("contacts", {})))
        data = gzip.compress(("message_id,contact_id,received_at\n" + rows).encode(), mtime=0)
        return 200, data, {"Content-Type": "application/octet-stream"}

    # ---- dispatch --------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict, raw: bytes) -> Answer:
        """Answer one HTTP request; runs on the server's threads."""
        path, _, query_string = target.partition("?")  # a request target, not a URL: no fragment, no host
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        rec = Recorded(method, path, query, headers, body, target=target, raw=raw)
        if self.answer is not None:
            with self._lock:
                self._requests.append(rec)
            return self.answer(rec)
        request_id = str(uuid.uuid4())
        extra = {
            "X-Request-Id": request_id,
            "X-RateLimit-Limit": "10000",
            "X-RateLimit-Remaining": "9999",
            "X-RateLimit-Reset": str(int(time.time()) + 10),
        }
        with self._lock:
            self._requests.append(rec)
            fault = next((f for f in self._faults if f.path is None or rec.path.startswith(f.path)), None)
            if fault:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
        try:
            if fault:
                extra.update(fault.headers)
                if fault.body is not None:
                    return Answer(fault.status, json.dumps(fault.body).encode(), extra)
                raise ApiError(fault.status)
            if rec.header("Authorization") != f"Bearer {self.token}":
                raise ApiError(401)
            if raw and body is raw:
                raise ApiError(400, "Request body is not valid JSON", "parameter_invalid")
            if not re.fullmatch(r"\d+\.\d+|Unstable", rec.header("Intercom-Version") or "2.8"):
                raise ApiError(400, "The requested version could not be found", "intercom_version_invalid")
            for route_method, pattern, handler in self.routes:
                match = pattern.match(rec.path)
                if match and route_method == method:
                    with self._lock:  # serialise inside the lock: results may be live store objects
                        result = handler(rec, **match.groupdict())
                        if isinstance(result, tuple):
                            return Answer(result[0], result[1], {**extra, **result[2]})
                        if result is None:
                            return Answer(202 if method == "POST" else 200, b"", extra)
                        return Answer(200, json.dumps(result, default=str).encode(), extra)
            raise ApiError(404, "Resource Not Found")
        except Exception as exc:  # a bug in a route still answers in Intercom's shape, as a 500
            err = exc if isinstance(exc, ApiError) else ApiError(500, f"{type(exc).__name__}: {exc}")
            payload = {
                "type": "error.list",
                "request_id": request_id,
                "errors": [{"code": err.code, "message": err.message}],
            }
            return Answer(err.status, json.dumps(payload).encode(), extra)


def _handler_for(fake: FakeIntercom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Intercom
        # headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK,
        # ~40 ms per request on a kept-alive connection (measured: 46 ms -> 1.7 ms per GET)
        disable_nagle_algorithm = True
        server_version = "FakeIntercom/2.8"

        def _serve(self) -> None:
            received = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            answer = fake.handle(self.command, self.path, dict(self.headers.items()), raw)
            # the answer leaves `delay` after the request arrived: the fake's own work is part of the
            # latency it models, not added to it (a latency benchmark's ideal is then reachable)
            late = fake.delay - (time.monotonic() - received)
            if late > 0:
                time.sleep(late)
            self.send_response(answer.status, answer.reason)
            if fake.answer is None:
                answer.headers.setdefault("Content-Type", "application/json; charset=utf-8")
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.drip is None:
                self.wfile.write(answer.body)
            else:
                self._drip(answer)

        def _drip(self, answer: Answer) -> None:
            drip = Drip(total=len(answer.body))
            with fake._lock:
                fake.drips.append(drip)
            try:
                for index in range(len(answer.body)):
                    self.wfile.write(answer.body[index : index + 1])
                    self.wfile.flush()
                    drip.sent += 1
                    time.sleep(answer.drip)
            except OSError:
                drip.aborted = True
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read fake.requests
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Intercom API in the foreground.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--no-seed", action="store_true", help="start with an empty workspace")
    args = parser.parse_args(argv)
    fake = FakeIntercom(token=args.token, seed=not args.no_seed, port=args.port).start()
    print(f"Fake Intercom on {fake.url} (bearer token: {args.token}); Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

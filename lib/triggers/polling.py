"""The one poller behind every polling trigger: read what changed since the last run, emit it once per change.

Position (the snapshot): ``{"updated_at": L, "ids_at_last": [...], "emitted": {id: ts}, "startTime": ...}``.
An object counts as *new* when its ``updated_at`` is newer than L, or equal to L and its id is not in
``ids_at_last``. Intercom timestamps have one-second resolution, so two objects updated in the same second
are told apart by id; an object updated twice within one second is emitted once (Intercom cannot tell us).

Two ways to find changes, depending on what the API offers:

* ``SearchResource`` (contacts, conversations): ``POST /<x>/search`` with ``updated_at > (L - lookback)``
  sorted ascending. Intercom matches timestamps in contact search by *calendar day* (workspace timezone), and
  has no ``>=`` on dates, so the query asks for a wider window and we drop already-seen objects client-side.
  Because the results are ascending, the position can advance after every page: a crash re-emits at most
  that one page. Objects newer than ``now - lagSeconds`` are left for the next run because Intercom's search
  index can lag a few minutes behind writes; emitting them now could let a late-indexed, older change fall
  behind the position and be lost.
* ``ScanResource`` (companies via scroll, help-center and news lists): the endpoint has no ``updated_at``
  filter, so every page is read and filtered client-side. Pages are not ordered by ``updated_at`` (or are
  ordered descending), so the position L cannot move until the scan is complete; meanwhile every object
  emitted with ``updated_at > L`` is recorded in ``emitted`` so a re-run after a crash skips it. After a
  complete scan started at time S, every object last changed before S has been seen, so L moves to
  ``S - CLOCK_MARGIN`` and only ``emitted`` entries newer than that are kept. (Past ``MAX_TRACKED`` emitted
  objects in one scan, progress is saved only at the end; see there.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lib import step_fields
from lib.intercom import answers
from lib.intercom.client import IntercomClient
from lib.intercom.errors import ConfigurationError
from lib.intercom.pagination import PaginationError, max_pages

DEFAULT_BEHAVIOUR = "emitIndividually"  # a trigger's consumers usually want one message per changed object
CLOCK_MARGIN = 60  # seconds of tolerated clock skew between this host and Intercom (scans only)
# A scan saves the ids it has emitted with every page's snapshot. Past this many (a first run with an old
# startTime over a large workspace) it stops saving per page, so snapshots stay small (~200 kB) and the run
# linear; the snapshot at the end of the scan is complete again. A crash past that point re-emits the rest.
MAX_TRACKED = 5000
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z


def parse_time(value: Any) -> int | None:
    """Epoch seconds from an epoch (s or ms, number or digits) or an ISO 8601 date/datetime (UTC if naive)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigurationError(
            f"Field 'startTime' must be a date or epoch seconds, got {value!r}", field="startTime"
        )
    if isinstance(value, int | float):
        number = step_fields.finite_number(value, "startTime")
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise ConfigurationError(
                    f"Field 'startTime': {text[:60]!r} is neither an ISO 8601 date (2024-05-01T00:00:00Z) "
                    "nor epoch seconds",
                    field="startTime",
                ) from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return _in_range(parsed.timestamp())
    number = step_fields.finite_number(number, "startTime")  # "inf", "nan", "1e400"
    if number > 1e11:  # milliseconds: 1e11 s is the year 5138
        number /= 1000
    return _in_range(number)


def _in_range(number: float) -> int:
    if not 0 <= number <= _LAST_SECOND:
        raise ConfigurationError("Field 'startTime' must be a date between 1970 and 9999", field="startTime")
    return int(number)


@dataclass
class Position:
    """Where the previous run stopped; see the module docstring for the rules."""

    updated_at: int
    ids_at_last: set[str] = field(default_factory=set)
    emitted: dict[str, int] = field(default_factory=dict)
    start_time: Any = None

    @classmethod
    def load(cls, snapshot: dict | None, cfg: dict, now: int) -> tuple[Position, bool]:
        """(position, first_run). A changed ``startTime`` step field restarts from the new value."""
        snapshot = snapshot or {}
        start_cfg = cfg.get("startTime") or None
        if isinstance(snapshot.get("updated_at"), int | float) and snapshot.get("startTime") == start_cfg:
            return cls(
                updated_at=int(snapshot["updated_at"]),
                ids_at_last={str(i) for i in snapshot.get("ids_at_last") or ()},
                emitted={str(k): int(v) for k, v in (snapshot.get("emitted") or {}).items()},
                start_time=start_cfg,
            ), False
        start = parse_time(start_cfg)
        return cls(updated_at=now if start is None else start, start_time=start_cfg), start is None

    def to_snapshot(self) -> dict:
        snap: dict[str, Any] = {"updated_at": self.updated_at, "ids_at_last": sorted(self.ids_at_last)}
        if self.emitted:
            snap["emitted"] = dict(self.emitted)
        if self.start_time is not None:
            snap["startTime"] = self.start_time
        return snap

    def is_new(self, oid: str, ts: int) -> bool:
        if ts < self.updated_at:
            return False
        if ts == self.updated_at:
            return oid not in self.ids_at_last
        return self.emitted.get(oid) != ts

    def advance(self, oid: str, ts: int) -> None:
        """Ascending results: everything up to ``ts`` has been seen, so the position moves to it."""
        if ts > self.updated_at:
            self.updated_at, self.ids_at_last = ts, {oid}
            self.emitted = {k: v for k, v in self.emitted.items() if v > ts}
        elif ts == self.updated_at:
            self.ids_at_last.add(oid)

    def record(self, oid: str, ts: int) -> None:
        """Unordered results: remember the emitted change without moving the position."""
        if ts == self.updated_at:
            self.ids_at_last.add(oid)
        elif ts > self.updated_at:
            self.emitted[oid] = ts

    def settle(self, watermark: int) -> None:
        """A complete scan that started at ``watermark`` (minus margin): nothing older is still unseen."""
        if watermark <= self.updated_at:
            return
        self.ids_at_last = {k for k, v in self.emitted.items() if v == watermark}
        self.emitted = {k: v for k, v in self.emitted.items() if v > watermark}
        self.updated_at = watermark


@dataclass(frozen=True)
class SearchResource:
    """A resource with a search endpoint that filters and sorts by ``updated_at`` server-side."""

    name: str  # plural, e.g. "contacts"; also the emitted list's type prefix
    path: str  # e.g. "/contacts/search"
    lookback: int  # seconds subtracted from L in the query (86400 where Intercom matches by calendar day)
    items_key: str = "data"  # the array in each result page ("conversations" for conversation search)
    filters: Callable[[dict], list[dict]] = lambda cfg: []  # extra search filters from step fields
    keep: Callable[[dict, dict], bool] = lambda cfg, item: True  # client-side filters, if any
    default_lag: int = 60
    max_page_size: int = 150
    headers: dict | None = None  # e.g. {"Intercom-Version": "2.16"} for tickets, a 2.16 resource
    ordered = True

    def pages(self, client: IntercomClient, cfg: dict, pos: Position) -> Iterator[list[dict]]:
        since = {"field": "updated_at", "operator": ">", "value": max(0, pos.updated_at - self.lookback)}
        extra = self.filters(cfg)
        query = {"operator": "AND", "value": [since, *extra]} if extra else since
        body = {
            "query": query,
            "pagination": {"per_page": page_size(cfg, self.max_page_size)},
            "sort": {"field": "updated_at", "order": "ascending"},
        }
        for page in client.paginate(
            "POST",
            self.path,
            style="search",
            json=body,
            items_key=self.items_key,
            headers=self.headers,
            max_pages=max_pages(cfg),
        ):
            yield answers.page(page, self.items_key, objects=True).get(self.items_key) or []


@dataclass(frozen=True)
class ScanResource:
    """A resource listed without an ``updated_at`` filter; changes are found client-side."""

    name: str
    path: str
    style: str  # the client's pagination style: "scroll", "page", or None for a single response
    items_key: str = "data"
    descending: bool = False  # documented as sorted by updated_at descending: stop at the first older page
    params: dict = field(default_factory=dict)
    per_page: int | None = None  # default page size for page-numbered lists
    keep: Callable[[dict, dict], bool] = lambda cfg, item: True  # client-side filters from step fields
    default_lag: int = 0
    ordered = False

    def pages(self, client: IntercomClient, cfg: dict, pos: Position) -> Iterator[list[dict]]:
        params = dict(self.params)
        if self.per_page:
            params["per_page"] = page_size(cfg, self.per_page)
        if self.style is None:
            body = client.request_json("GET", self.path, params=params or None) or {}
            yield answers.page(body, self.items_key, objects=True).get(self.items_key) or []
            return
        pages = client.paginate(
            "GET",
            self.path,
            style=self.style,
            params=params or None,
            items_key=self.items_key,
            max_pages=max_pages(cfg),
        )
        for page in pages:
            items = answers.page(page, self.items_key, objects=True).get(self.items_key) or []
            yield items
            if self.descending and any(_ts(i) is not None and _ts(i) < pos.updated_at for i in items):
                return


def page_size(cfg: dict, default: int) -> int:
    """The ``pageSize`` step field, held between 1 and the resource's own page size (``default``)."""
    return max(1, min(step_fields.integer(cfg, "pageSize", default), default))


def _ts(item: dict) -> int | None:
    value = item.get("updated_at")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _message(item: dict, cfg: dict) -> dict:
    metadata: dict[str, Any] = {}
    if item.get("id") is not None:
        metadata["recordUid"] = str(item["id"])
    if cfg.get("applicationUid"):
        metadata["applicationUid"] = cfg["applicationUid"]
    return {"data": item, "metadata": metadata}


def _list(resource: SearchResource | ScanResource, items: list[dict]) -> dict:
    data = {"type": f"{resource.name}.changes", "data": items, "total_count": len(items)}
    return {"data": data, "metadata": {}}


def poll(
    resource: SearchResource | ScanResource,
    client: IntercomClient,
    cfg: dict,
    snapshot: dict | None,
    emit: Callable[[str, Any], None],
    now: Callable[[], float] = time.time,
) -> int:
    """Run one poll: emit data and snapshot events through ``emit``; return the number of changed objects."""
    behaviour = step_fields.emit_behaviour(cfg, DEFAULT_BEHAVIOUR)
    started = int(now())
    pos, first_run = Position.load(snapshot, cfg, started)
    if first_run:  # no startTime: start from now, emit nothing older
        emit("snapshot", pos.to_snapshot())
        return 0
    cutoff = started - step_fields.integer(cfg, "lagSeconds", resource.default_lag)
    max_pages(cfg)  # a bad maxPages fails before the first request
    state = {"saved": dict(snapshot) if snapshot else None, "count": 0}
    collected: list[dict] = []

    def flush() -> None:
        """Emit what ``fetchAll`` collected, then the position if it moved."""
        if behaviour == "fetchAll" and collected:
            emit("data", _list(resource, collected))
        if pos.to_snapshot() != state["saved"]:
            emit("snapshot", pos.to_snapshot())

    try:
        _read(resource, client, cfg, pos, behaviour, cutoff, emit, collected, state)
    except PaginationError:
        # Pagination broke off (a loop, the page cap, a refused or expired scroll): what was read is
        # emitted with its position, then the error. A scan is not complete, so its position does not
        # settle: the next poll scans again and skips what `emitted` records (nothing lost, nothing twice).
        flush()
        raise
    if not resource.ordered:
        pos.settle(min(started - CLOCK_MARGIN, cutoff))
    flush()
    return state["count"]


def _read(
    resource: SearchResource | ScanResource,
    client: IntercomClient,
    cfg: dict,
    pos: Position,
    behaviour: str,
    cutoff: int,
    emit: Callable[[str, Any], None],
    collected: list[dict],
    state: dict,
) -> None:
    """Read the pages, emit (or collect) the changed objects, save the position after each page
    (``state``: the last snapshot saved and the count of changed objects, kept up to date as it goes)."""
    for items in resource.pages(client, cfg, pos):
        fresh: list[dict] = []
        reached_cutoff = False
        for item in items:
            ts, oid = _ts(item), item.get("id")
            if ts is None or oid is None:
                continue
            if ts > cutoff:
                reached_cutoff = True
                if resource.ordered:
                    break
                continue
            oid = str(oid)
            if not pos.is_new(oid, ts) or not resource.keep(cfg, item):
                continue
            fresh.append(item)
            if resource.ordered:
                pos.advance(oid, ts)
            else:
                pos.record(oid, ts)
        state["count"] += len(fresh)
        if behaviour == "fetchAll":
            collected.extend(fresh)
        else:
            if behaviour == "emitIndividually":
                for item in fresh:
                    emit("data", _message(item, cfg))
            elif fresh:
                emit("data", _list(resource, fresh))
            if len(pos.emitted) <= MAX_TRACKED:
                current = pos.to_snapshot()
                if current != state["saved"]:
                    emit("snapshot", current)
                    state["saved"] = current
        if reached_cutoff and resource.ordered:
            break


def make_process(resource: SearchResource | ScanResource) -> Callable:
    """The ``process`` function of a polling trigger module for ``resource``."""

    def process(self, msg, cfg, snapshot=None):
        """Poll Intercom once; data and snapshot events go out through ``self.emit`` as they are ready."""
        client = IntercomClient.from_cfg(cfg)
        count = poll(resource, client, cfg, snapshot, self.emit)
        self.logger.info("%s poll: %d changed object(s)", resource.name, count)

    process.__doc__ = f"Emit {resource.name} created or updated since the last poll, once per change."
    return process

"""Following Intercom's pagination: one small class per style, and the one loop that always ends.

Each pager answers two questions: does the page just received advance (``accept``: a page number that did
not grow, or a scroll page identical to an earlier one, does not, and is not yielded), and given it and the
request that fetched it, what is the next request, or none (``next``: a cursor or next-page URL already
requested is not requested again)? A ``PaginationError`` says which: a misbehaving server would otherwise
keep us requesting for ever. ``follow`` runs the loop, yields every page before any error (so the
data already fetched is emitted), and stops with ``PaginationError`` past ``max_pages`` pages.

The page cap is the step field ``maxPages`` (``max_pages(cfg)``; default ``DEFAULT_MAX_PAGES`` = 10,000
pages per call: 1.5 million contacts at 150 per page, far beyond a normal run, yet a bound).

Scrolls: Intercom allows one scroll of companies per workspace at a time and expires a ``scroll_param``
about a minute after its last use; both are answered 400 (or 404 for an unknown param), which becomes a
``PaginationError`` saying which it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from lib import step_fields
from lib.intercom.errors import IntercomError

DEFAULT_MAX_PAGES = 10_000
MAX_PAGES_FIELD = "maxPages"


class PaginationError(IntercomError):
    """Pagination stopped before the end: a loop, the page cap, or a refused scroll (the pages before it
    were yielded). Its code: pagination_loop, page_limit, scroll_in_progress or scroll_expired."""


def max_pages(cfg: dict[str, Any]) -> int:
    """The ``maxPages`` step field: a whole number >= 1 (default DEFAULT_MAX_PAGES)."""
    return step_fields.integer(cfg, MAX_PAGES_FIELD, DEFAULT_MAX_PAGES, minimum=1)


@dataclass(frozen=True)
class PageRequest:
    """One page's request: the path, the query (pairs) and the JSON body."""

    path: str
    params: list[tuple[str, Any]] | None = None
    json: Any = None

    def with_query(self, updates: list[tuple[str, Any]]) -> PageRequest:
        replaced = {key for key, _ in updates}
        base = [(k, v) for k, v in _pairs(self.params) if k not in replaced]
        return replace(self, params=base + list(updates))


def _pairs(params: Any) -> list[tuple[str, Any]]:
    if params is None:
        return []
    return list(params.items()) if isinstance(params, dict) else list(params)


def _next(page: dict[str, Any]) -> Any:
    pages = page.get("pages")
    return pages.get("next") if isinstance(pages, dict) else None


class _Pager:
    """Base: remembers what was requested so that a repeat is recognised."""

    def __init__(self, items_key: str, split_url: Callable[[str], tuple[str, list[tuple[str, str]]]]) -> None:
        self.items_key = items_key
        self.split_url = split_url
        self.seen: set[str] = set()

    def mark(self, token: str, what: str) -> None:
        if token in self.seen:
            raise PaginationError(
                f"Intercom repeated {what}; stopped to avoid a loop (the pages before were emitted)",
                code="pagination_loop",
            )
        self.seen.add(token)

    def follow_url(self, nxt: str, request: PageRequest) -> PageRequest:
        self.mark("url:" + nxt, "a next-page URL already requested")
        path, query = self.split_url(nxt)
        return replace(request, path=path).with_query(query)

    def is_end_marker(self, page: Any, first: bool) -> bool:
        return False

    def accept(self, page: dict[str, Any]) -> None:
        """Raise PaginationError when this page repeats an earlier one (it is then not yielded)."""

    def refused(self, error: IntercomError, request: PageRequest) -> IntercomError:
        return error

    def next(self, page: dict[str, Any], request: PageRequest) -> PageRequest | None:
        raise NotImplementedError


class CursorPager(_Pager):
    """``pages.next.starting_after`` into the query (a ``pages.next`` URL is followed as it is)."""

    def next(self, page: dict[str, Any], request: PageRequest) -> PageRequest | None:
        nxt = _next(page)
        if isinstance(nxt, str) and nxt:
            return self.follow_url(nxt, request)
        cursor = nxt.get("starting_after") if isinstance(nxt, dict) else None
        if not cursor:
            return None
        self.mark("cursor:" + str(cursor), "a cursor (starting_after) already requested")
        return request.with_query([("starting_after", cursor)])


class SearchPager(_Pager):
    """``pages.next.starting_after`` into the body's ``pagination.starting_after`` (the body is copied)."""

    def next(self, page: dict[str, Any], request: PageRequest) -> PageRequest | None:
        nxt = _next(page)
        cursor = nxt.get("starting_after") if isinstance(nxt, dict) else None
        if not cursor:
            return None
        self.mark("cursor:" + str(cursor), "a search cursor (starting_after) already requested")
        body = dict(request.json) if isinstance(request.json, dict) else {}
        body["pagination"] = {**(body.get("pagination") or {}), "starting_after": cursor}
        return replace(request, json=body)


class PagePager(_Pager):
    """``page`` numbers up to ``pages.total_pages``, or the ``pages.next`` URL; the number must grow."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.current: int | None = None

    def next(self, page: dict[str, Any], request: PageRequest) -> PageRequest | None:
        nxt = _next(page)
        if isinstance(nxt, str) and nxt:
            return self.follow_url(nxt, request)
        cursor = nxt.get("starting_after") if isinstance(nxt, dict) else None
        if cursor:
            self.mark("cursor:" + str(cursor), "a cursor (starting_after) already requested")
            return request.with_query([("starting_after", cursor)])
        number, total = _numbers(page)
        if number is None or total is None or number >= total:
            return None
        return request.with_query([("page", number + 1)])

    def accept(self, page: dict[str, Any]) -> None:
        number, total = _numbers(page)
        if number is None:
            return
        if self.current is not None and number <= self.current:
            raise PaginationError(
                f"Intercom answered page {number} (of {total}) again; stopped to avoid a loop",
                code="pagination_loop",
            )
        self.current = number


class BodyPagePager(PagePager):
    """Page numbers in the JSON body (``page``), as POST /admins/activity_logs/search takes them (2.16)."""

    def next(self, page: dict[str, Any], request: PageRequest) -> PageRequest | None:
        number, total = _numbers(page)
        if number is None or total is None or number >= total:
            return None
        body = dict(request.json) if isinstance(request.json, dict) else {}
        body["page"] = number + 1
        return replace(request, json=body)


class NextCursorPager(_Pager):
    """A top-level ``next_cursor`` (while ``has_more`` is not false) into the query's ``cursor``, as
    GET /contacts/{id}/merge_history answers (2.16)."""

    def next(self, page: dict[str, Any], request: PageRequest) -> PageRequest | None:
        cursor = page.get("next_cursor")
        if not cursor or page.get("has_more") is False:
            return None
        self.mark("cursor:" + str(cursor), "a cursor (next_cursor) already requested")
        return request.with_query([("cursor", cursor)])


def _numbers(page: dict[str, Any]) -> tuple[int | None, int | None]:
    # Page numbers under `pages`; a few 2.16 lists (audiences, content snippets) give them at the top level.
    pages = page.get("pages") if isinstance(page.get("pages"), dict) else page
    number, total = pages.get("page"), pages.get("total_pages")
    return (number if type(number) is int else None), (total if type(total) is int else None)


class ScrollPager(_Pager):
    """``scroll_param`` until a page has no items. The param may stay the same through a scroll, so the loop
    guard is the page itself: a page identical to an earlier one does not advance."""

    def is_end_marker(self, page: Any, first: bool) -> bool:
        return not first and isinstance(page, dict) and not page.get(self.items_key)

    def accept(self, page: dict[str, Any]) -> None:
        items = page.get(self.items_key)
        if items:
            text = json.dumps(items, sort_keys=True, default=str).encode()
            self.mark(
                "page:" + hashlib.sha1(text, usedforsecurity=False).hexdigest(),
                "a scroll page (the same objects as an earlier page)",
            )

    def next(self, page: dict[str, Any], request: PageRequest) -> PageRequest | None:
        items, scroll = page.get(self.items_key), page.get("scroll_param")
        if not items or not scroll:
            return None
        return request.with_query([("scroll_param", scroll)])

    def refused(self, error: IntercomError, request: PageRequest) -> IntercomError:
        continuing = any(k == "scroll_param" for k, _ in _pairs(request.params))
        if error.status not in ((400, 404) if continuing else (400,)):
            return error
        if continuing:
            message = (
                "the scroll expired or is unknown (Intercom expires a scroll_param about a minute "
                f"after its last use); start the scroll again. Intercom said: {error.message}"
            )
            code = "scroll_expired"
        else:
            message = (
                "Intercom allows one scroll per workspace at a time, and another is in progress "
                "(another flow, or an unfinished run: it expires about a minute after its last use); "
                f"try again later. Intercom said: {error.message}"
            )
            code = "scroll_in_progress"
        return PaginationError(message, **{**error.fields(), "code": code, "retryable": True})


PAGERS: dict[str, type[_Pager]] = {
    "cursor": CursorPager,
    "search": SearchPager,
    "scroll": ScrollPager,
    "page": PagePager,
    "next_cursor": NextCursorPager,
    "body_page": BodyPagePager,
}
STYLES = tuple(PAGERS)


def follow(
    fetch: Callable[[PageRequest], Any],
    style: str,
    first: PageRequest,
    *,
    method: str,
    items_key: str,
    split_url: Callable[[str], tuple[str, list[tuple[str, str]]]],
    limit: int = DEFAULT_MAX_PAGES,
) -> Iterator[Any]:
    """Yield each page's JSON from ``first`` on; raise PaginationError (after the pages so far) on a loop,
    past ``limit`` pages, or for a refused scroll."""
    if style not in PAGERS:
        raise ValueError(f"unknown pagination style {style!r}; expected one of {STYLES}")
    pager = PAGERS[style](items_key, split_url)
    request: PageRequest | None = first
    count = 0
    while request is not None:
        if count >= limit:
            raise PaginationError(
                f"stopped after {limit} pages (step field {MAX_PAGES_FIELD}); the pages so "
                "far were emitted, the rest were not fetched",
                code="page_limit",
                method=method,
                path=first.path,
            )
        try:
            page = fetch(request)
        except PaginationError:
            raise
        except IntercomError as exc:
            raise pager.refused(exc, request) from None
        if pager.is_end_marker(page, first=count == 0):
            return  # the empty page that ends a scroll is a marker, not data
        if not isinstance(page, dict):
            yield page
            return
        try:
            pager.accept(page)
            count += 1
            yield page
            request = pager.next(page, request)
        except PaginationError as exc:  # name the request that answered it
            raise PaginationError(exc.message, code=exc.code, method=method, path=request.path) from None

"""The one HTTP client for Intercom: session reuse, auth, versions, timeouts, retries, pagination.

Design choices (and why):

* **One ``requests.Session`` per (base URL, token, version, timeout, retry settings)**, cached by
  ``IntercomClient.from_cfg``: a flow step sends many messages with the same credentials, and reusing the
  session keeps TCP/TLS connections alive between them. The session is shared by the worker's threads
  (``prefetch`` > 1): we never mutate it after construction (default headers are set once, cookies are
  refused by policy so nothing is written to its jar) and urllib3's connection pool is thread-safe, which
  is the part requests' own docs worry about. ``pool_maxsize`` allows 16 parallel connections per host.
* **Rate limits** (lib/intercom/ratelimit.py): calls are paced from ``X-RateLimit-Remaining``/``-Reset``
  before Intercom refuses them. A 429 (rejected without processing, so every method is retried) waits
  until ``X-RateLimit-Reset`` (``Retry-After`` or backoff when absent) and does not count as a retry; one
  call waits at most ``max_rate_limit_wait`` (default 60 s) in total for 429s.
* **Retries** (at most ``maxRetries``, default 3):
  - 5xx, read timeouts and dropped connections: retried with exponential backoff and full jitter only when
    the call is idempotent (GET/PUT/DELETE/HEAD/OPTIONS, and POSTs the caller marks ``idempotent=True``:
    search and list). A plain POST may have reached Intercom and been applied, so repeating it could create
    a duplicate: it is not retried.
  - Connection failures *before the request was sent* (connection refused, DNS failure, connect timeout)
    are retried for every method: no byte of the request reached Intercom, so nothing can be duplicated.
* ``sleep`` is injectable (constructor argument, or monkeypatch ``_module_sleep``) so tests run fast.
* The environment (``HTTPS_PROXY``/``NO_PROXY``, ``REQUESTS_CA_BUNDLE``) is read once per session, not per
  request (``trust_env`` is off after that), which keeps the per-call path lean.
* The token lives only in the session's default headers; no log line or exception includes headers.
* Every attempt runs under one total deadline (``requestTimeout``, body included) over connections that check
  where they connect (``transport``); bodies are read under size and depth limits, with any echo of the token
  masked, and turned into data or a clear IntercomError (``answers``).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from lib import step_fields
from lib.intercom import answers, config, pagination, ratelimit, regions, transport
from lib.intercom.errors import ConfigurationError, IntercomError, cut, with_auth_hint

log = logging.getLogger("lib.intercom.client")

DEFAULT_VERSION = "2.8"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
MAX_RETRIES_LIMIT = 10
USER_AGENT = f"intercom-oih-connector/1.0 python-requests/{requests.__version__}"
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_CACHE_SIZE = 64
#: Every cfg field settings_from_cfg (and lib.intercom.regions) reads: together they determine the client.
_SETTINGS_FIELDS = (
    "server",
    "otherServer",
    "accessToken",
    "auth_bearerAuth",
    "intercomVersion",
    "requestTimeout",
    "maxRetries",
)


def _module_sleep(seconds: float) -> None:
    time.sleep(seconds)


def _sent_before_failure(exc: requests.RequestException) -> bool:
    """False only when the request certainly never left this machine (connect phase failed)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return True  # not retried: these are configuration problems, retrying will not help
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        inner = exc.args[0]
        if isinstance(inner, MaxRetryError) and isinstance(inner.reason, ConnectTimeoutError):
            return False  # NewConnectionError (refused, DNS) is a ConnectTimeoutError subclass in urllib3 2
    return True


class IntercomClient:
    """HTTP client bound to one Intercom workspace (base URL + token)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        version: str = DEFAULT_VERSION,
        timeout: tuple[float, float] = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT),
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_rate_limit_wait: float = ratelimit.DEFAULT_RATE_LIMIT_WAIT,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        pool_maxsize: int = 16,
    ) -> None:
        if not token:
            raise ConfigurationError("Field 'accessToken' is required", field="accessToken")
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self._token = token
        self.version = version
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_rate_limit_wait = max_rate_limit_wait
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.clock = clock
        self.pacer = ratelimit.pacer_for(self.base_url, token, clock)  # the app's window, shared in-process
        session = requests.Session()
        adapter = transport.GuardedAdapter(pool_connections=2, pool_maxsize=pool_maxsize)  # SSRF, deadline
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # keep the shared jar empty
        # The environment (proxies, CA bundle) is read once here instead of on every request, which
        # requests does when trust_env is on (a scan of os.environ per call: a third of its overhead).
        # trust_env off also stops a ~/.netrc entry from replacing our bearer token.
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            session.verify = ca_bundle
        session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "Intercom-Version": version,
                "User-Agent": USER_AGENT,
            }
        )
        self.session = session

    def __repr__(self) -> str:  # never show the token
        return f"IntercomClient({self.base_url!r}, version={self.version!r})"

    def redacted(self, text: str, limit: int) -> str:
        """An answer's ``text`` with every form of the token masked, then cut to ``limit`` characters."""
        return cut(text, limit, self._token)

    # ----------------------------------------------------------------------------------- construction
    _cache: dict[tuple[Any, ...], IntercomClient] = {}
    _cache_lock = threading.Lock()

    @classmethod
    def settings_from_cfg(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        """The constructor arguments that ``cfg`` selects (raises ConfigurationError on bad fields)."""
        version = cfg.get("intercomVersion")
        version = (
            config.header_value(version, "intercomVersion") if version not in (None, "") else DEFAULT_VERSION
        )
        read = step_fields.number(cfg, "requestTimeout", DEFAULT_READ_TIMEOUT, minimum=0.001, maximum=3600)
        retries = step_fields.integer(
            cfg, "maxRetries", DEFAULT_MAX_RETRIES, minimum=0, maximum=MAX_RETRIES_LIMIT
        )
        return {
            "base_url": regions.base_url(cfg),
            "token": regions.access_token(cfg),
            "version": version,
            "timeout": (min(DEFAULT_CONNECT_TIMEOUT, read), read),
            "max_retries": retries,
        }

    # The raw cfg values (with their types) that settings_from_cfg reads -> the client's cache key, so that
    # a message with the same cfg as an earlier one costs a tuple and two lookups, not parsing and URL checks.
    _settings_keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any]) -> IntercomClient:
        """The shared client for these credentials and settings (one Session, reused connections)."""
        raw = tuple((type(value), value) for value in map(cfg.get, _SETTINGS_FIELDS))
        try:
            key = cls._settings_keys.get(raw)
        except TypeError:  # an unhashable value (a list, a dict): settings_from_cfg will say what is wrong
            raw, key = None, None
        if key is not None:
            client = cls._cache.get(key)
            if client is not None:
                return client
        settings = cls.settings_from_cfg(cfg)
        key = tuple(settings.values())
        with cls._cache_lock:
            client = cls._cache.get(key)
            if client is None:
                if len(cls._cache) >= _CACHE_SIZE:  # drop the oldest; its session closes when unused
                    cls._cache.pop(next(iter(cls._cache)))
                client = cls(**settings)
                cls._cache[key] = client
            if raw is not None:
                if len(cls._settings_keys) >= 4 * _CACHE_SIZE:
                    cls._settings_keys.pop(next(iter(cls._settings_keys)))
                cls._settings_keys[raw] = key
            return client

    @classmethod
    def clear_cache(cls) -> None:
        """Forget cached clients (tests; credential rotation)."""
        with cls._cache_lock:
            cls._cache.clear()
            cls._settings_keys.clear()
        ratelimit.forget()

    # ---------------------------------------------------------------------------------------- calls
    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            raise ValueError("pass a path, not a URL: the token is only sent to the configured base URL")
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def _sleep(self, seconds: float) -> None:
        (self.sleep or _module_sleep)(seconds)

    def _pace(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(min(seconds, self.max_rate_limit_wait))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**(attempt-1)))."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1))))

    def _wait_for(self, response: requests.Response, attempt: int) -> float:
        """Seconds to wait before retrying this 5xx response: Retry-After, else backoff."""
        headers = response.headers
        retry_after = headers.get("Retry-After")
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_rate_limit_wait)
            except ValueError:
                pass
        return self._backoff(attempt)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one request with retries; return the 2xx/3xx response or raise IntercomError."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        url = self._url(path)
        attempt = retries = 0  # retries: of failures (maxRetries); 429s are bounded by time instead
        rate_limited = 0.0  # seconds this call has waited for 429s (at most max_rate_limit_wait)
        while True:
            attempt += 1
            self._pace(self.pacer.delay())  # proactive pacing (lib/intercom/ratelimit.py)
            self._pace(self.pacer.go())
            try:
                # requestTimeout bounds the whole attempt, body included (transport.deadline)
                with transport.deadline(self.timeout[1]) as call:
                    try:
                        response = self.session.request(
                            method,
                            url,
                            params=params,
                            json=json,
                            headers=headers,
                            timeout=self.timeout,
                            stream=True,
                        )
                        if not stream:
                            answers.read_body(response, method=method, path=path)
                            answers.mask(response, self._token)
                    except requests.RequestException:
                        if not call.expired:
                            raise
                    if call.expired:  # also when the cut-off looked like a normal end of the answer
                        raise requests.exceptions.ReadTimeout("the call's deadline passed")
            except requests.RequestException as exc:
                self.pacer.observe({})
                sent = _sent_before_failure(exc)
                connection_problem = isinstance(
                    exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                )
                if (
                    connection_problem
                    and retries < self.max_retries
                    and (idempotent or not sent)
                    and not isinstance(exc, requests.exceptions.SSLError)
                ):
                    retries += 1
                    wait = self._backoff(retries)
                    log.warning(
                        "Intercom %s %s failed (%s); retry %d/%d in %.2fs",
                        method,
                        path,
                        type(exc).__name__,
                        retries,
                        self.max_retries,
                        wait,
                    )
                    self._sleep(wait)
                    continue
                raise self._connection_error(exc, method, path, attempt, sent) from None
            self.pacer.observe(response.headers)
            status = response.status_code
            if status < 400:
                return response
            if status == 429:
                wait = ratelimit.wait_for_429(response.headers, self.clock(), self._backoff(attempt))
                if rate_limited + wait <= self.max_rate_limit_wait:
                    rate_limited += wait
                    log.warning(
                        "Intercom %s %s answered 429; waiting %.2fs (%.1fs of %gs for rate limits)",
                        method,
                        path,
                        wait,
                        rate_limited,
                        self.max_rate_limit_wait,
                    )
                    response.close()
                    self._sleep(wait)
                    continue
            elif status >= 500 and idempotent and retries < self.max_retries:
                retries += 1
                wait = self._wait_for(response, retries)
                log.warning(
                    "Intercom %s %s answered %d; retry %d/%d in %.2fs",
                    method,
                    path,
                    status,
                    retries,
                    self.max_retries,
                    wait,
                )
                response.close()
                self._sleep(wait)
                continue
            error = IntercomError.from_response(
                response, method=method, path=path, attempts=attempt, token=self._token
            )
            response.close()
            if status == 429:
                error = ratelimit.gave_up(error, rate_limited, wait, self.max_rate_limit_wait)
            raise with_auth_hint(error)

    def _connection_error(
        self, exc: requests.RequestException, method: str, path: str, attempts: int, sent: bool
    ) -> IntercomError:
        timeout = isinstance(exc, requests.exceptions.Timeout)
        if not isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            # e.g. a body that is not JSON-serialisable or an invalid header value: nothing was sent
            return IntercomError(
                cut(f"the request could not be sent: {type(exc).__name__}: {exc}", 250, self._token),
                code="request_error",
                method=method,
                path=path,
                attempts=attempts,
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            what = "connecting timed out"
        elif timeout:
            what = f"no answer within {self.timeout[1]:g} s"
        elif not sent:
            what = "could not connect"
        else:
            what = "connection failed"
        detail = type(exc).__name__
        inner = exc.args[0] if exc.args else None
        reason = getattr(inner, "reason", None) or inner
        if reason is not None and not isinstance(reason, str):
            detail += f": {type(reason).__name__}"
        message = cut(f"{what} to {self.base_url} ({detail})", 300, self._token)
        return IntercomError(
            message,
            code="timeout" if timeout else "connection_error",
            method=method,
            path=path,
            attempts=attempts,
            retryable=True,
        )

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` and decode the JSON body (None for an empty body)."""
        response = self.request(method, path, **kwargs)
        return answers.decode(response, method=method.upper(), path=path, token=self._token)

    # ----------------------------------------------------------------------------------- pagination
    def paginate(
        self,
        method: str,
        path: str,
        *,
        style: str,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        items_key: str = "data",
        idempotent: bool = True,
        logger: logging.Logger | None = None,
        max_pages: int = pagination.DEFAULT_MAX_PAGES,
    ) -> Iterator[Any]:
        """Yield each page's JSON, following ``style`` to the last page (lib.intercom.pagination: the styles,
        the loop guard and the ``max_pages`` cap, all ending in PaginationError after the pages so far).
        Listing is a read, so pages are retried as idempotent."""

        def fetch(request: pagination.PageRequest) -> Any:
            page = self.request_json(
                method,
                request.path,
                params=request.params,
                json=request.json,
                headers=headers,
                idempotent=idempotent,
            )
            answers.page(page, items_key, method=method.upper(), path=request.path)  # what pagination reads
            return page

        first = pagination.PageRequest(path, params, json)
        return pagination.follow(
            fetch,
            style,
            first,
            method=method.upper(),
            items_key=items_key,
            split_url=self._split_next_url,
            limit=max_pages,
        )

    def _split_next_url(self, url: str) -> tuple[str, list[tuple[str, str]]]:
        """Path and query of a ``pages.next`` URL, re-rooted on our base URL (the token never leaves it)."""
        parts = urlsplit(url)
        path = parts.path or "/"
        if self._base_path and path.startswith(self._base_path + "/"):
            path = path[len(self._base_path) :]
        return path, parse_qsl(parts.query, keep_blank_values=True)

"""The elastic.io platform API calls the elastic.io sailor makes (basic auth API_USERNAME:API_KEY).

- ``GET {API_URI}/v1/tasks/{flow}/steps/{step}``: step data ``{config, snapshot, is_passthrough, variables}``,
  fetched once at start;
- ``PUT {API_URI}/v1/accounts/{account}`` with ``{keys}``: the ``updateKeys`` emit;
- ``POST|GET|DELETE {API_URI}/sailor-support/hooks/task/{flow}/startup/data``: the startup hook's data.

Retries as elasticio-rest-node does: network errors and 5xx are retried (``API_REQUEST_RETRY_ATTEMPTS``
attempts in all, ``API_REQUEST_RETRY_DELAY`` ms apart); 4xx fails at once. Errors never carry the
API key (requests' basic auth is not part of any message we build).
"""

from __future__ import annotations

import time
from typing import Any

import requests

from ...http_session import environment_proxies, lean_session
from ...logs import get_logger

log = get_logger("elasticio_sailor.platform_api")


class PlatformApiError(Exception):
    """A platform API call failed; ``status_code`` is None for network errors."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        return {"statusCode": self.status_code} if self.status_code is not None else {}


class PlatformApi:
    """A small client for the calls above; one keep-alive session, safe to share across threads."""

    def __init__(
        self,
        base_uri: str,
        username: str,
        api_key: str,
        *,
        retry_attempts: int = 3,
        retry_delay_ms: int = 100,
        timeout: float = 15.0,
    ) -> None:
        self.base_uri = base_uri
        self.retry_attempts = max(1, int(retry_attempts))
        self.retry_delay = max(0, retry_delay_ms) / 1000.0
        self.timeout = timeout
        self._session = lean_session()  # the environment is read once, see http_session.py
        self._session.proxies.update(environment_proxies(base_uri))
        self._session.auth = (username, api_key)
        self._session.headers["Connection"] = "Keep-Alive"

    def _request(self, method: str, url: str, json: Any = None) -> Any:
        error: PlatformApiError | None = None
        for attempt in range(self.retry_attempts):
            if attempt:
                time.sleep(self.retry_delay)
            try:
                response = self._session.request(method, url, json=json, timeout=self.timeout)
            except requests.RequestException as exc:
                error = PlatformApiError(f"{method} {url} failed: {type(exc).__name__}")
                log.warning(
                    "platform API call failed, attempt %d of %d: %s", attempt + 1, self.retry_attempts, error
                )
                continue
            if response.status_code >= 500:
                error = PlatformApiError(
                    f"{method} {url} answered {response.status_code}: {response.text[:500]}",
                    response.status_code,
                )
                log.warning(
                    "platform API call failed, attempt %d of %d: %s", attempt + 1, self.retry_attempts, error
                )
                continue
            if response.status_code >= 400:
                raise PlatformApiError(
                    f"{method} {url} answered {response.status_code}: {_error_text(response)}",
                    response.status_code,
                )
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                return response.text
        assert error is not None
        raise error

    def retrieve_step(self, flow_id: str, step_id: str) -> dict[str, Any]:
        """The step's data; a non-object answer is an error (the Node sailor asserts it)."""
        data = self._request("GET", f"{self.base_uri.rstrip('/')}/v1/tasks/{flow_id}/steps/{step_id}")
        if not isinstance(data, dict) or not data:
            raise PlatformApiError(f"step data of flow {flow_id} step {step_id} is empty or not an object")
        return data

    def update_account(self, account_id: Any, body: dict[str, Any]) -> Any:
        """PUT the account (updateKeys). A missing id fails like the Node client's path interpolation."""
        if account_id is None or account_id == "":
            raise PlatformApiError("Missing value for parameter '{id}'. Please provide argument: 0")
        return self._request("PUT", f"{self.base_uri.rstrip('/')}/v1/accounts/{account_id}", json=body)

    def _hooks_url(self, flow_id: str) -> str:
        return f"{self.base_uri}/sailor-support/hooks/task/{flow_id}/startup/data"

    def create_startup_data(self, flow_id: str, data: Any) -> Any:
        return self._request("POST", self._hooks_url(flow_id), json=data)

    def retrieve_startup_data(self, flow_id: str) -> Any:
        return self._request("GET", self._hooks_url(flow_id))

    def delete_startup_data(self, flow_id: str) -> Any:
        return self._request("DELETE", self._hooks_url(flow_id))


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])[:500]
    return str(body)[:500]

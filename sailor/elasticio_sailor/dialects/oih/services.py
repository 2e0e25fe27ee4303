"""Clients for the OIH services the ferryman calls per message: secrets, snapshots, data hub, governance.

All calls use the token's `apiKey` (an IAM token) as bearer. Each one is optional: with its base URL unset
the feature is skipped (logged once per call site), so the connector runs outside a cluster too. Only the
secret fetch is fatal for a message (the dialect turns it into an error event: running a step without its
credentials would only fail later and less clearly); the others fail soft, exactly as the ferryman does.
Nothing here logs or raises with a secret value or the apiKey in it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from ...http_session import environment_proxies, lean_session
from ...logs import secret_values

log = logging.getLogger("elasticio_sailor.oih")

# Where the credentials field of our component (`accessToken`) may be found in an OIH secret's value:
# OAuth2 secrets store `accessToken`, API_KEY secrets `key`, and MIXED payloads often `access_token`.
ACCESS_TOKEN_ALIASES = ("accessToken", "access_token", "key", "apiKey", "token")


class SecretError(RuntimeError):
    """The step names a secret that could not be fetched. The message never contains secret values."""


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def secret_to_cfg(data: dict[str, Any]) -> dict[str, Any]:
    """Turn the secret service's `data` object into the values merged into cfg (ferryman fetchSecret).

    MIXED secrets hold a JSON text in `value.payload` (not JSON: `{payload: <text>}`); every other type is
    merged as its `value`. On top of the ferryman we copy an access token found under a known alias to
    `accessToken`, the field our credentials read, so OAuth2, API-key and MIXED secrets all work.
    """
    value = data.get("value") if isinstance(data, dict) else None
    if not isinstance(value, dict):
        value = {}
    if data.get("type") == "MIXED":
        payload = value.get("payload")
        try:
            parsed = json.loads(payload) if isinstance(payload, str) else payload
        except ValueError:
            parsed = None
        out = dict(parsed) if isinstance(parsed, dict) else {"payload": payload}
    else:
        out = dict(value)
    if not out.get("accessToken"):
        for alias in ACCESS_TOKEN_ALIASES[1:]:
            if isinstance(out.get(alias), str) and out[alias]:
                out["accessToken"] = out[alias]
                break
    return out


class OihServices:
    """HTTP clients of the OIH services, sharing one connection pool.

    The environment (proxies per service URL, CA bundle) is read once here, not on every call (see
    elasticio_sailor.http_session): the ferryman's per-message secret and snapshot fetches made a plain
    Session scan the whole environment twice per message.
    """

    def __init__(
        self,
        *,
        secret_service_url: str | None = None,
        snapshots_service_url: str | None = None,
        datahub_url: str | None = None,
        governance_service_url: str | None = None,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.secret_service_url = secret_service_url
        self.snapshots_service_url = snapshots_service_url
        self.datahub_url = datahub_url
        self.governance_service_url = governance_service_url
        self.timeout = timeout
        self.session = session or lean_session()
        urls = (secret_service_url, snapshots_service_url, datahub_url, governance_service_url)
        self._proxies = {url: environment_proxies(url) for url in urls if url}

    @classmethod
    def from_settings(cls, settings: Any) -> OihServices:
        return cls(
            secret_service_url=settings.secret_service_url,
            snapshots_service_url=settings.snapshots_service_url,
            datahub_url=settings.datahub_url,
            governance_service_url=settings.governance_service_url,
            timeout=settings.http_timeout,
        )

    def _send(
        self, method: str, base: str | None, url: str, api_key: str | None, **kwargs: Any
    ) -> requests.Response:
        """One call to the service at `base` (its proxies were read at start)."""
        return self.session.request(
            method,
            url,
            headers=_headers(api_key),
            timeout=self.timeout,
            proxies=self._proxies.get(base or ""),
            **kwargs,
        )

    def _data_of(
        self,
        what: str,
        level: int,
        method: str,
        base: str | None,
        url: str,
        api_key: str | None,
        ok: tuple[int, ...] = (200,),
        quiet: tuple[int, ...] = (404,),
        **kwargs: Any,
    ) -> dict | None:
        """A soft call answered with ``{data: {...}}``: that object, or None on any failure.

        Failures are logged at `level` as "Failed to <what>" (statuses in `quiet`, e.g. a 404 meaning
        "none yet", are not logged). Every service but the secret service fails soft, as in the ferryman.
        """
        try:
            response = self._send(method, base, url, api_key, **kwargs)
            if response.status_code not in ok:
                if response.status_code not in quiet:
                    log.log(level, "Failed to %s: status %s", what, response.status_code)
                return None
            data = response.json().get("data")
        except (requests.RequestException, ValueError, AttributeError) as exc:
            log.log(level, "Failed to %s: %s", what, type(exc).__name__)
            return None
        return data if isinstance(data, dict) else None

    # -- secrets ---------------------------------------------------------------------------------------
    def fetch_secret(self, secret_id: str, api_key: str | None) -> dict[str, Any] | None:
        """GET {SECRET_SERVICE_BASE_URL}/secrets/{secretId} -> values to merge into cfg.

        Returns None when the service URL is unset (skipped); raises SecretError on any failure.
        """
        if not self.secret_service_url:
            log.warning("SECRET_SERVICE_BASE_URL is not set: secret %s not fetched", secret_id)
            return None
        url = f"{self.secret_service_url}/secrets/{_seg(secret_id)}"
        try:
            response = self._send("GET", self.secret_service_url, url, api_key)
        except requests.RequestException as exc:
            raise SecretError(f"Could not fetch secret {secret_id}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise SecretError(
                f"Could not fetch secret {secret_id}: secret service answered {response.status_code}"
            )
        try:
            data = response.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise SecretError(f"Could not fetch secret {secret_id}: unexpected response shape") from None
        if not isinstance(data, dict):
            raise SecretError(f"Could not fetch secret {secret_id}: unexpected response shape")
        return secret_to_cfg(data)

    # -- snapshots -------------------------------------------------------------------------------------
    def fetch_snapshot(self, flow_id: str | None, step_id: str | None, api_key: str | None) -> dict | None:
        """GET {SNAPSHOTS_SERVICE_BASE_URL}/snapshots/flows/{flowId}/steps/{stepId}: body.data, 404: None."""
        if not self.snapshots_service_url or not flow_id or not step_id:
            return None
        url = f"{self.snapshots_service_url}/snapshots/flows/{_seg(flow_id)}/steps/{_seg(step_id)}"
        return self._data_of(
            "fetch the snapshot", logging.ERROR, "GET", self.snapshots_service_url, url, api_key
        )

    # -- data hub (id linking) -------------------------------------------------------------------------
    def _datahub_get(self, path: str, api_key: str | None) -> dict | None:
        if not self.datahub_url:
            return None
        return self._data_of(
            "fetch the data hub entry",
            logging.WARNING,
            "GET",
            self.datahub_url,
            f"{self.datahub_url}{path}",
            api_key,
        )

    def datahub_by_oih_uid(self, oih_uid: str, api_key: str | None) -> dict | None:
        return self._datahub_get(f"/data/{_seg(oih_uid)}", api_key)

    def datahub_by_record_uid(self, record_uid: str, api_key: str | None) -> dict | None:
        return self._datahub_get(f"/data/recordId/{_seg(record_uid)}", api_key)

    def get_id_meta(self, oih_uid: Any, record_uid: Any, api_key: str | None) -> tuple[str | None, list]:
        """The ferryman's getIdMeta: look the entry up by oihUid, else by recordUid -> (oihUid, refs)."""
        entry = None
        if oih_uid:
            entry = self.datahub_by_oih_uid(str(oih_uid), api_key)
        elif record_uid:
            entry = self.datahub_by_record_uid(str(record_uid), api_key)
        if entry and entry.get("id"):
            refs = entry.get("refs")
            return str(entry["id"]), refs if isinstance(refs, list) else []
        return None, []

    def upsert_datahub_entry(
        self, application_uid: Any, record_uid: Any, oih_uid: Any, api_key: str | None
    ) -> dict | None:
        """POST {DATAHUB}/data/recordId {applicationUid, recordUid, oihUid} -> the entry (with `id`)."""
        if not self.datahub_url:
            return None
        body = {"applicationUid": application_uid, "recordUid": record_uid, "oihUid": oih_uid or None}
        body = {k: v for k, v in body.items() if v is not None}
        return self._data_of(
            "upsert the data hub entry",
            logging.WARNING,
            "POST",
            self.datahub_url,
            f"{self.datahub_url}/data/recordId",
            api_key,
            ok=(200, 201),
            quiet=(),
            json=body,
        )

    def delete_datahub_record(
        self, oih_uid: Any, application_uid: Any, record_uid: Any, api_key: str | None
    ) -> bool | None:
        """DELETE {DATAHUB}/data/{oihUid}/{applicationUid}/{recordUid}: True, False (404), None (failed)."""
        if not self.datahub_url:
            return None
        url = f"{self.datahub_url}/data/{_seg(oih_uid)}/{_seg(application_uid)}/{_seg(record_uid)}"
        try:
            response = self._send("DELETE", self.datahub_url, url, api_key)
        except requests.RequestException as exc:
            log.warning("Failed to update the data hub entry: %s", type(exc).__name__)
            return None
        if response.status_code in (200, 201):
            return True
        return False if response.status_code == 404 else None

    # -- governance ------------------------------------------------------------------------------------
    def apply_policy(self, obj: dict, action: Any, api_key: str | None) -> tuple[bool, Any]:
        """POST {GOVERNANCE}/applyPolicy?action= -> (passes, newData). Unset URL: everything passes."""
        if not self.governance_service_url:
            log.warning("GOVERNANCE_SERVICE_BASE_URL is not set: policy not applied")
            return True, None
        try:
            response = self._send(
                "POST",
                self.governance_service_url,
                f"{self.governance_service_url}/applyPolicy",
                api_key,
                params={"action": action} if action is not None else None,
                json=obj,
            )
            if response.status_code != 200:
                return False, None
            body = response.json()
            return bool(body.get("passes")), body.get("data")
        except (requests.RequestException, ValueError, AttributeError) as exc:
            log.error("Failed to apply the policy: %s", type(exc).__name__)
            return False, None


@dataclass
class _CachedSecret:
    values: dict[str, Any]  # what the secret adds to cfg
    found: frozenset[str]  # its strings, for redaction
    expires: float  # time.monotonic()


class SecretCache:
    """Secrets as fetched from the secret service, kept per (secretId, apiKey) for `ttl` seconds.

    (The apiKey is part of the key, so a refetch after a rejection uses the bearer that fetched it.)

    Why: the ferryman fetches the secret for every message, one HTTP round trip (and ~0.5 ms CPU) per message
    for a value that changes rarely. Keyed by the token's apiKey too, so a token only ever gets a secret its
    own key was allowed to fetch. A rotated secret is picked up after at most `ttl` seconds, or at once when
    the component reports that the API refused it (``rejected``, wired to elasticio_sailor.credentials):
    the entry is dropped and fetched again, and the component retries its call with the new values. A
    failed fetch is never cached. `ttl` <= 0 disables the cache (every message fetches, as the ferryman).
    Safe to share between the worker threads; two threads missing at once may both fetch (harmless).
    """

    def __init__(
        self,
        fetch: Callable[[str, str], dict[str, Any] | None],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _CachedSecret] = {}
        self._dropped: dict[tuple[str, str], dict[str, Any]] = {}  # values of entries dropped by rejected()

    def get(self, secret_id: str, api_key: str) -> tuple[dict[str, Any], frozenset[str]] | None:
        """(values for cfg, their strings) from the cache or the service; None when the service URL is
        unset; SecretError when it cannot be fetched."""
        key = (secret_id, api_key)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires > now:
                return entry.values, entry.found
        return self._load(key)

    def _load(self, key: tuple[str, str]) -> tuple[dict[str, Any], frozenset[str]] | None:
        values = self._fetch(*key)
        if values is None:
            return None
        found = frozenset(secret_values(values, whole=True))
        if self.ttl > 0:
            with self._lock:
                if len(self._entries) >= 1024:  # a bound, not a policy: drop the oldest
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = _CachedSecret(values, found, self._clock() + self.ttl)
        return values, found

    def rejected(self, cfg: Mapping[str, Any]) -> dict[str, Any] | None:
        """The API refused the credentials in `cfg`: drop every cached secret `cfg` was built from, fetch it
        again, and return `cfg` with the new values, or None when nothing changed (or it cannot be fetched):
        then retrying would fail the same way.

        Messages in flight that were given the same secret before it was dropped come here too: the values
        a dropped entry had are remembered, so they get the entry fetched since (from the cache, no second
        fetch) instead of None."""
        with self._lock:
            keys = [key for key, entry in self._entries.items() if _built_from(cfg, entry.values)]
            for key in keys:
                self._dropped[key] = self._entries.pop(key).values
                if len(self._dropped) > 256:  # a bound, not a policy
                    self._dropped.pop(next(iter(self._dropped)))
            keys += [key for key, old in self._dropped.items() if key not in keys and _built_from(cfg, old)]
        for key in keys:
            try:
                loaded = self.get(*key)
            except SecretError as exc:
                log.warning("%s (after the API refused the cached one)", exc)
                continue
            if loaded is not None and not _built_from(cfg, loaded[0]):
                log.info("secret %s was rotated: retrying with the new one", key[0])
                return {**cfg, **loaded[0]}
        return None


def _built_from(cfg: Mapping[str, Any], values: dict[str, Any]) -> bool:
    """cfg holds every value of this secret (the dialect merged it in)."""
    return bool(values) and all(cfg.get(k) == v for k, v in values.items())


def provenance_event(
    *,
    oih_uid: Any,
    record_uid: Any,
    function: str | None,
    component_json: dict,
    connector_id: str | None,
    flow_id: str | None,
    user_id: str | None,
    tenant_id: str | None,
    start_time: str,
    end_time: str | None = None,
    delete_type: str | None = None,
    node_settings: dict | None = None,
) -> dict:
    """The ferryman's generateProvenanceEvent payload (W3C PROV-like), sent on the event bus."""
    action_type = "Unknown"
    if function and function in (component_json.get("triggers") or {}):
        action_type = "ObjectReceived"
    elif function and function in (component_json.get("actions") or {}):
        action_type = "ObjectCreated"
        if "update" in function:
            action_type = "ObjectUpdated"
        elif "delete" in function:
            action_type = "ObjectDeleted"
    if delete_type:
        if delete_type in ("pending", "confirmed", "denied", "failed"):
            action_type = "Delete" + delete_type[:1].upper() + delete_type[1:]
        else:
            action_type = "DeleteUnknown"
    event: dict[str, Any] = {
        "entity": {"id": oih_uid, "entityType": "oihUid", "alternateOf": [record_uid]},
        "activity": {
            "id": flow_id,
            "activityType": action_type,
            "used": function,
            "startedAtTime": start_time,
            "endedAtTime": end_time or now_iso(),
        },
        "agent": {"id": connector_id, "agentType": "Connector"},
        "actedOnBehalfOf": [
            {"first": True, "id": connector_id, "agentType": "Connector", "actedOnBehalfOf": user_id},
            {"id": user_id, "agentType": "User", "actedOnBehalfOf": tenant_id},
            {"id": tenant_id, "agentType": "Tenant"},
            {"id": flow_id, "agentType": "Flow"},
        ],
    }
    if node_settings and node_settings.get("applicationUid"):
        event["actedOnBehalfOf"].append(
            {
                "id": connector_id,
                "agentType": "Application",
                "actedOnBehalfOf": node_settings["applicationUid"],
            }
        )
    return event


def now_iso() -> str:
    """JavaScript's Date.toISOString(): UTC with milliseconds and a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{datetime.now(UTC).microsecond // 1000:03d}Z"

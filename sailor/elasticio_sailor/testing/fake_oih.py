"""Fake OIH services on loopback: secret service, snapshots service, data hub and governance.

One threaded HTTP server serves all four (their paths do not overlap: /secrets, /snapshots, /data,
/applyPolicy), so one URL is given to every *_BASE_URL variable. Every request is logged (method, path,
Authorization, JSON body) so tests can check what the runtime asked for and with which bearer token.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from .http import JsonHandler


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class FakeOihState:
    secrets: dict[str, dict] = field(default_factory=dict)  # secretId -> the secret's `data` object
    secret_status: dict[str, int] = field(default_factory=dict)  # secretId -> forced error status
    snapshots: dict[tuple[str, str], dict] = field(default_factory=dict)  # (flowId, stepId) -> snapshot
    datahub: dict[str, dict] = field(default_factory=dict)  # oihUid -> {"id", "refs": [...]}
    policy_passes: bool = True
    requests: list[Recorded] = field(default_factory=list)


class _Handler(JsonHandler):
    server: _Server

    def _handle(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        body = self._body()
        with self.server.lock:
            state.requests.append(Recorded(method, url.path, self.headers.get("Authorization"), body))
            status, reply = self._route(method, parts, body, state)
        self._reply(status, reply)

    def _route(self, method: str, parts: list[str], body: Any, st: FakeOihState) -> tuple[int, Any]:
        if method == "GET" and len(parts) == 2 and parts[0] == "secrets":
            sid = parts[1]
            if sid in st.secret_status:
                return st.secret_status[sid], {"errors": [{"message": "forced failure"}]}
            if sid not in st.secrets:
                return 404, {"errors": [{"message": "not found"}]}
            return 200, {"data": st.secrets[sid]}
        if len(parts) == 5 and parts[:2] == ["snapshots", "flows"] and parts[3] == "steps":
            key = (parts[2], parts[4])
            if method == "GET":
                if key not in st.snapshots:
                    return 404, {"errors": [{"message": "not found"}]}
                return 200, {"data": st.snapshots[key]}
        if parts[:1] == ["data"]:
            return self._datahub(method, parts[1:], body, st)
        if method == "POST" and parts == ["applyPolicy"]:
            return 200, {"passes": st.policy_passes, "data": None}
        return 404, {"errors": [{"message": f"no route {method} /{'/'.join(parts)}"}]}

    @staticmethod
    def _datahub(method: str, rest: list[str], body: Any, st: FakeOihState) -> tuple[int, Any]:
        if method == "GET" and len(rest) == 2 and rest[0] == "recordId":
            for entry in st.datahub.values():
                if any(ref.get("recordUid") == rest[1] for ref in entry["refs"]):
                    return 200, {"data": entry}
            return 404, {"errors": [{"message": "not found"}]}
        if method == "GET" and len(rest) == 1:
            entry = st.datahub.get(rest[0])
            return (200, {"data": entry}) if entry else (404, {"errors": [{"message": "not found"}]})
        if method == "POST" and rest == ["recordId"] and isinstance(body, dict):
            record_uid = body.get("recordUid")
            entry = st.datahub.get(str(body.get("oihUid") or "")) or next(
                (e for e in st.datahub.values() if any(r.get("recordUid") == record_uid for r in e["refs"])),
                None,
            )
            if entry is None:
                oid = uuid.uuid4().hex[:24]
                entry = st.datahub[oid] = {"id": oid, "refs": []}
            if not any(r.get("recordUid") == record_uid for r in entry["refs"]):
                entry["refs"].append({"recordUid": record_uid, "applicationUid": body.get("applicationUid")})
            return 201, {"data": entry}
        if method == "DELETE" and len(rest) == 3:
            entry = st.datahub.get(rest[0])
            if not entry:
                return 404, {"errors": []}
            before = len(entry["refs"])
            gone = (rest[1], rest[2])
            refs = entry["refs"]
            entry["refs"] = [r for r in refs if (r.get("applicationUid"), r.get("recordUid")) != gone]
            return (200, {"data": entry}) if len(entry["refs"]) < before else (404, {"errors": []})
        return 404, {"errors": [{"message": "no route"}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeOihState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.lock = threading.Lock()


class FakeOih:
    """Context manager: `with FakeOih() as oih: oih.url, oih.state, oih.requests_to('/secrets')`."""

    def __init__(self) -> None:
        self.state = FakeOihState()
        self._server = _Server(self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeOih:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_to(self, prefix: str) -> list[Recorded]:
        with self._server.lock:
            return [r for r in self.state.requests if r.path.startswith(prefix)]

    def add_oauth_secret(self, secret_id: str, access_token: str) -> None:
        self.state.secrets[secret_id] = {
            "_id": secret_id,
            "name": "intercom",
            "type": "OA2_AUTHORIZATION_CODE",
            "value": {
                "authClientId": "c1",
                "accessToken": access_token,
                "refreshToken": "r-" + access_token,
                "scope": "",
                "expires": "2099-01-01T00:00:00.000Z",
            },
        }

    def add_mixed_secret(self, secret_id: str, payload: dict) -> None:
        self.state.secrets[secret_id] = {
            "_id": secret_id,
            "name": "mixed",
            "type": "MIXED",
            "value": {"payload": json.dumps(payload)},
        }

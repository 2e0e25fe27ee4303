"""The OIH ferryman dialect: what the bytes on the wire mean for the Open Integration Hub.

Modelled on `@openintegrationhub/ferryman` 2.4.7 and the Component Orchestrator that drives it;
described in docs/wire-dialects.md.

Per delivery: the step context comes from the `orchestratorToken` header (token.py); the body is the
orchestrator's plain JSON `{data, metadata, attachments, passthrough}` (`text/json`, no encryption unless
MESSAGE_CRYPTO_PASSWORD is set); cfg = token `fields` + `nodeSettings` (under that key, as the ferryman
passes it) + the secret from the secret service (kept for ELASTICIO_SAILOR_SECRET_CACHE_SECONDS, see
services.SecretCache); the snapshot comes from the snapshots service, fetched for the functions that use
one (`_uses_snapshot`). Outputs:

    data            BACKCHANNEL_EXCHANGE / body header x-eio-routing-key, else OUTPUT_ROUTING_KEY
    error           BACKCHANNEL_EXCHANGE / ERROR_ROUTING_KEY, body {error, errorInput}
    end             BACKCHANNEL_EXCHANGE / STATE_ROUTING_KEY, body "function complete" (every end)
    rebound         NODE_EXCHANGE / REBOUND_ROUTING_KEY, the original bytes, doubling expiration
    snapshot(s)     SNAPSHOTS_EXCHANGE / SNAPSHOT_ROUTING_KEY, plain JSON
    httpReply       BACKCHANNEL_EXCHANGE / reply_to
    provenance      EVENT_BUS_EXCHANGE / GOVERNANCE_ROUTING_KEY (nodeSettings.governance)

Where the ferryman has a defect we do better, on purpose (each is an expected delta of the differential test):

* no usable token: reject without requeue (dead-letter) with a log line; the ferryman leaves the message
  unacknowledged forever, which with the default prefetch of 1 stalls the step;
* a failing secret fetch is an error event (the message is dead-lettered), never a run without credentials;
* cfg (with the secret) is never attached to anything we publish (the ferryman's `passedCfg` leaks it into
  httpReply); secrets and the IAM key are registered for redaction in logs and error events;
* no error reply is sent to `reply_to` (the ferryman sends it to an undefined exchange);
* every delivery is settled only after its publishes are confirmed (the ferryman acks before the
  "function complete" and error publishes are confirmed);
* `execId` falls back to the orchestrator's `execId` header when ELASTICIO_EXEC_ID is unset (OIH never sets
  it, so the ferryman sends none).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from ...credentials import register_source, unregister_source
from ...crypto import MessageCipher
from ...env import PREFIX, SettingsError, env_int
from ...logs import get_logger, register_secrets, secret_values
from ...message import Message
from ..base import (
    HEADER_ROUTING_KEY,
    AmqpSettings,
    BaseDialect,
    Delivery,
    Execution,
    Publication,
    RejectMessage,
    format_error,
    next_rebound_iteration,
    now_ms,
    read_incoming_headers,
    rebound_expiration,
    wire_message,
)
from . import transform
from .services import OihServices, SecretCache, SecretError, now_iso, provenance_event
from .settings import OihSettings
from .token import InvalidToken, OrchestratorToken, token_from_headers

log = get_logger("elasticio_sailor.oih")

FUNCTION_COMPLETE = "function complete"
CIPHER_ID = 1  # the ferryman's `cid` header (cipher.id)


class PreparationError(Exception):
    """The delivery is valid but cannot be run (e.g. its secret could not be fetched): an error event."""


class OihDialect(BaseDialect):
    """See the module docstring; one instance per process, shared by all worker threads."""

    name = "oih"
    function = ""  # it comes per message, from the token
    persistent = True  # the ferryman always publishes persistent messages
    checks_reply_size = False  # the ferryman checks the size of data only
    drops_empty_headers = True

    def __init__(self, env: Mapping[str, str], services: OihServices | None = None) -> None:
        for required in ("AMQP_URI", "LISTEN_MESSAGES_ON"):
            if not env.get(PREFIX + required):
                raise SettingsError(f"{PREFIX}{required} is missing")
        self.s = OihSettings.from_env(env)
        self.component_path = env.get(PREFIX + "COMPONENT_PATH") or ""
        self.protocol_version = self.s.protocol_version
        self.outgoing_size_limit = self.s.outgoing_message_size_limit
        self.additional_headers = self.s.additional_headers
        self.secrets = []
        self.amqp = AmqpSettings(
            uri=env[PREFIX + "AMQP_URI"],
            listen_queue=env[PREFIX + "LISTEN_MESSAGES_ON"],
            prefetch=env_int(env, "RABBITMQ_PREFETCH_SAILOR", 1, radix=10),
            publish_retry_delay=env_int(env, "AMQP_PUBLISH_RETRY_DELAY", 100, radix=10),
            publish_max_retry_delay=env_int(env, "AMQP_PUBLISH_MAX_RETRY_DELAY", 300_000, radix=10),
        )
        password = env.get(PREFIX + "MESSAGE_CRYPTO_PASSWORD") or None
        self.cipher = MessageCipher(
            password, env.get(PREFIX + "MESSAGE_CRYPTO_IV") or None, legacy_plaintext=True
        )
        self.services = services or OihServices.from_settings(self.s)
        self.secret_cache = SecretCache(self.services.fetch_secret, self.s.secret_cache_seconds)
        self.throttles = self._make_throttles(
            env_int(env, "OUTPUT_RATE_LIMIT", 10, radix=10),
            env_int(env, "ERROR_RATE_LIMIT", 2, radix=10),
            env_int(env, "SNAPSHOT_RATE_LIMIT", 2, radix=10),
            env_int(env, "RATE_INTERVAL", 100, radix=10),
        )
        self.component_json: dict[str, Any] = {}
        self._no_snapshot: frozenset[str] = frozenset()

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, component: Any) -> None:
        """Nothing is fetched at start in OIH (all context is per message); keep component.json for
        provenance events and the snapshot rule, and offer the secret cache to the component (a 401 from
        its API drops the cached secret, see elasticio_sailor.credentials)."""
        self.component_json = dict(getattr(component, "descriptor", None) or {})
        actions = self.component_json.get("actions")
        self._no_snapshot = frozenset(
            name
            for name, spec in (actions.items() if isinstance(actions, dict) else ())
            if not (isinstance(spec, dict) and spec.get("usesSnapshot") is True)
        )
        register_source(self._credentials_rejected)
        log.info(
            "OIH dialect ready: back-channel %s, node exchange %s",
            self.s.backchannel_exchange,
            self.s.node_exchange,
        )

    def _startup_headers(self) -> dict[str, Any]:
        """The ferryman's reportError headers: no token (the orchestrator cannot attribute the error to a
        flow; it is logged there)."""
        return {
            **self.additional_headers,
            "execId": self.s.exec_id,
            "workspaceId": self.s.workspace_id,
            "containerId": self.s.container_id,
            "compId": self.s.comp_id,
        }

    def stop(self) -> None:
        unregister_source(self._credentials_rejected)
        self.services.session.close()

    def _credentials_rejected(self, cfg: Mapping[str, Any]) -> dict[str, Any] | None:
        """credentials_rejected(cfg) from the component: the secret fetched again if it was rotated."""
        fresh = self.secret_cache.rejected(cfg)
        if fresh is not None:
            register_secrets(secret_values({k: v for k, v in fresh.items() if cfg.get(k) != v}, whole=True))
        return fresh

    def _uses_snapshot(self, function: str | None) -> bool:
        """Triggers (and unknown functions) get the step's snapshot; an action only when its component.json
        entry says `"usesSnapshot": true`. Why: the ferryman fetches it for every message, an HTTP round
        trip per message that actions, which keep no state between messages, almost never read."""
        return function not in self._no_snapshot

    # --- incoming --------------------------------------------------------------------------------
    def prepare(self, delivery: Delivery) -> Execution:
        headers = dict(delivery.headers or {})
        try:
            token = token_from_headers(headers)
        except InvalidToken as exc:
            raise RejectMessage(f"no usable orchestratorToken ({exc}); rejected without requeue") from None
        secrets = [v for v in (token.raw, token.api_key) if v]
        register_secrets(secrets)

        payload, version = self._decode_delivery(delivery)
        orig_passthrough = copy.deepcopy(payload.get("passthrough")) or {}
        ns = token.node_settings

        incoming = self._incoming_headers(headers, token)
        outgoing = self._outgoing_headers(
            incoming,
            {
                "execId": self.s.exec_id or headers.get("execId"),
                "taskId": token.flow_id,
                "workspaceId": self.s.workspace_id,
                "containerId": self.s.container_id,
                "userId": token.user_id,
                "stepId": token.step_id,
                "compId": self.s.comp_id,
                "function": token.function,
                "cid": CIPHER_ID,
                HEADER_ROUTING_KEY: delivery.routing_key,
                "orchestratorToken": token.raw,
            },
        )
        state: dict[str, Any] = {
            "token": token,
            "incoming": incoming,
            "outgoing": outgoing,
            "passthrough": orig_passthrough,
            "version": version,
            "start_time": now_iso(),
            "payload": payload,
        }

        cfg: dict[str, Any] = copy.deepcopy(token.fields)
        cfg["nodeSettings"] = copy.deepcopy(ns)
        error: BaseException | None = None

        if ns.get("idLinking"):
            self._link_incoming(payload, token)
        if transform.wants_before(ns):
            payload = self._as_payload(transform.before(payload, ns), payload)

        if token.secret_id and token.api_key:
            try:
                fetched = self.secret_cache.get(token.secret_id, token.api_key)
            except SecretError as exc:
                log.error("%s", exc)
                error = PreparationError(str(exc))
                fetched = None
            if fetched and fetched[0]:
                secret, found = fetched
                register_secrets(found)
                secrets.extend(found)
                cfg.update(secret)  # run_process gives the component a deep copy: the cache stays as fetched
        snapshot: dict[str, Any] = {}
        if self._uses_snapshot(token.function):
            snapshot = self.services.fetch_snapshot(token.flow_id, token.step_id, token.api_key) or {}

        message_id = payload.get("id") if isinstance(payload.get("id"), str) else None
        message = wire_message(payload, payload.get("data"), message_id)
        execution = Execution(
            delivery=delivery,
            function=token.function or "",
            message=message,
            cfg=cfg,
            snapshot=snapshot,
            log_context=self._log_context(incoming, token.log_context()),
            secrets=secrets,
            state=state,
        )
        if error is not None:
            execution.error = error  # the worker emits it as an error event and does not run the component
        return execution

    @staticmethod
    def _as_payload(result: Any, original: dict[str, Any]) -> dict[str, Any]:
        """A `before` transform result as the incoming message: an object with message keys is the
        message (as in the ferryman); anything else becomes its data."""
        if isinstance(result, dict) and any(k in result for k in ("data", "metadata", "attachments")):
            out = dict(result)
        else:
            out = {"data": result}
        if not isinstance(out.get("headers"), dict):
            out["headers"] = original.get("headers") or {}
        return out

    @staticmethod
    def _incoming_headers(headers: Mapping[str, Any], token: OrchestratorToken) -> dict[str, Any]:
        """readIncomingMessageHeaders, with stepId from the token and the rebound headers kept."""
        return read_incoming_headers(
            headers,
            token.step_id,
            reboundReason=headers.get("reboundReason"),
            reboundIteration=headers.get("reboundIteration"),
        )

    def _link_incoming(self, payload: dict[str, Any], token: OrchestratorToken) -> None:
        """idLinking before the component: give it the recordUid this application has for the record."""
        if not self.s.datahub_url:
            log.warning("No DATAHUB_BASE_URL defined: skipping ID linking")
            return
        meta = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
        _, refs = self.services.get_id_meta(meta.get("oihUid"), meta.get("recordUid"), token.api_key)
        ns = token.node_settings
        apps = {ns.get("applicationUid"), ns.get("alternateAppUid")} - {None}
        for ref in refs:
            if isinstance(ref, dict) and ref.get("applicationUid") in apps:
                payload["metadata"] = {**meta, "recordUid": ref.get("recordUid")}
                break

    # --- outgoing --------------------------------------------------------------------------------
    def on_end(self, execution: Execution) -> list[Publication]:
        """ "function complete" to the step-state key on every (first) end, failed or not."""
        if not self.s.state_routing_key:
            return []
        headers = self._headers(execution, protocolVersion=self.s.protocol_version)
        return [
            Publication(
                self.s.backchannel_exchange,
                self.s.state_routing_key,
                json.dumps(FUNCTION_COMPLETE).encode(),
                headers,
                self._properties(),
                kind="end",
            )
        ]

    def _route(self, kind: str, execution: Execution | None) -> tuple[str, str]:
        s = self.s
        if kind == "snapshot":
            assert execution is not None
            token: OrchestratorToken = execution.state["token"]
            key = (
                s.snapshot_routing_key
                or token.snapshot_routing_key
                or f"{s.node_exchange}.{token.step_id}.snapshot"
            )
            return s.snapshots_exchange, key
        if kind == "rebound":
            return s.node_exchange, s.rebound_routing_key
        if kind == "error":
            return s.backchannel_exchange, s.error_routing_key
        return s.backchannel_exchange, s.output_routing_key if kind == "data" else ""

    def _data_message(
        self, execution: Execution, msg: Message
    ) -> tuple[dict[str, Any], dict[str, Any], list[Publication]]:
        """``{id, data, metadata, attachments, passthrough, headers}`` after the nodeSettings steps
        (passthrough, `after` transform, idLinking), preceded by its auto-saved snapshot and its
        provenance event when nodeSettings ask for them."""
        state = execution.state
        token: OrchestratorToken = state["token"]
        ns = token.node_settings
        orig_passthrough = state["passthrough"]

        data: dict[str, Any] = {}
        if msg.id is not None:
            data["id"] = msg.id
        data["data"] = msg.data
        data["metadata"] = msg.metadata if isinstance(msg.metadata, dict) else {}
        data["attachments"] = msg.attachments or {}
        if msg.passthrough:
            data["passthrough"] = msg.passthrough
        if msg.headers:
            data["headers"] = dict(msg.headers)
        saved_meta = dict(data["metadata"])
        application_uid = ns.get("applicationUid") or saved_meta.get("applicationUid")

        headers = self._headers(execution, end=now_ms())
        if msg.id:
            headers["messageId"] = msg.id

        def own(obj: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in obj.items() if k != "passthrough"}

        if ns.get("passthrough"):
            data["passthrough"] = {**orig_passthrough, str(token.step_id): own(data)}
        if transform.wants_after(ns):
            result = transform.after(data, ns)
            data = dict(result) if isinstance(result, dict) else {"data": result}
        if ns.get("passthrough"):
            data["passthrough"] = {**orig_passthrough, str(token.step_id): own(data)}
        elif orig_passthrough:
            data["passthrough"] = orig_passthrough

        pubs: list[Publication] = []
        if ns.get("idLinking"):
            self._link_outgoing(data, saved_meta, application_uid, token)
        if ns.get("autoSaveSnapshots"):
            pubs += self._update_snapshot(execution, copy.deepcopy(data))
        if ns.get("governance"):
            pubs += self._provenance(execution, data, saved_meta, headers)

        return data, headers, pubs

    def _link_outgoing(
        self, data: dict[str, Any], saved_meta: dict[str, Any], application_uid: Any, token: OrchestratorToken
    ) -> None:
        """idLinking after the component: make sure the data hub links this record to an oihUid and
        hand the oihUid on (the ferryman then keeps only `metadata.oihUid`)."""
        if not self.s.datahub_url:
            log.warning("No DATAHUB_BASE_URL defined: skipping ID linking in onData")
            return
        meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        oih_uid, refs = self.services.get_id_meta(meta.get("oihUid"), meta.get("recordUid"), token.api_key)
        linked = any(
            isinstance(r, dict)
            and r.get("applicationUid") == application_uid
            and r.get("recordUid") == meta.get("recordUid")
            for r in refs
        )
        if not linked:
            entry = self.services.upsert_datahub_entry(
                token.node_settings.get("applicationUid"),
                meta.get("recordUid") or saved_meta.get("recordUid"),
                oih_uid or saved_meta.get("oihUid"),
                token.api_key,
            )
            oih_uid = str(entry["id"]) if entry and entry.get("id") else meta.get("oihUid")
        data["metadata"] = {"oihUid": oih_uid} if oih_uid else {}

    def _provenance(
        self, execution: Execution, data: dict[str, Any], saved_meta: dict[str, Any], headers: dict[str, Any]
    ) -> list[Publication]:
        """nodeSettings.governance: a provenance event on the event bus (and data hub delete bookkeeping)."""
        token: OrchestratorToken = execution.state["token"]
        ns = token.node_settings
        meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        oih_uid = meta.get("oihUid") or saved_meta.get("oihUid")
        delete_type = None
        inner = data.get("data") if isinstance(data.get("data"), dict) else {}
        if execution.cfg.get("deletes") and inner.get("delete"):
            delete_type = str(inner["delete"])
            if delete_type == "confirmed":
                done = self.services.delete_datahub_record(
                    oih_uid, ns.get("applicationUid"), saved_meta.get("recordUid"), token.api_key
                )
                if not done:
                    log.error("DataHub update failed for recordUid %s", saved_meta.get("recordUid"))
        event = provenance_event(
            oih_uid=oih_uid,
            record_uid=saved_meta.get("recordUid"),
            function=token.function,
            component_json=self.component_json,
            connector_id=self.s.comp_id,
            flow_id=token.flow_id,
            user_id=token.user_id,
            tenant_id=token.claims.get("tenantId") or token.tenant,
            start_time=execution.state["start_time"],
            delete_type=delete_type,
            node_settings=ns,
        )
        body = {"headers": {"name": self.s.governance_routing_key}, "payload": event}
        event_headers = {**headers, "protocolVersion": self.s.protocol_version}
        return [
            Publication(
                self.s.event_bus_exchange,
                self.s.governance_routing_key,
                self.cipher.encrypt(body, self.s.protocol_version),
                event_headers,
                self._properties(),
                kind="provenance",
            )
        ]

    def _rebound(self, execution: Execution, payload: Any) -> list[Publication]:
        """Re-send the original bytes to the node exchange with a doubling expiration; past
        REBOUND_LIMIT an error "Rebound limit exceeded" (not counted: the delivery is still acked)."""
        delivery = execution.delivery
        reason = format_error(payload)["message"]
        headers = self._headers(execution, end=now_ms(), reboundReason=reason)
        iteration = next_rebound_iteration((delivery.headers or {}).get("reboundIteration"))
        if iteration > self.s.rebound_limit:
            return self._error_publications(
                {"name": "Error", "message": "Rebound limit exceeded"}, headers, delivery, execution.secrets
            )
        headers["reboundIteration"] = iteration
        props = self._properties(expiration=rebound_expiration(iteration, self.s.rebound_initial_expiration))
        exchange, routing_key = self._route("rebound", execution)
        return [Publication(exchange, routing_key, delivery.body, headers, props, kind="rebound")]

    def _remember_snapshot(self, payload: Any, replace: bool) -> None:
        """Nothing to keep: the snapshots service stores it, and the next message fetches it there."""

    def _snapshot_headers(self, execution: Execution, event: str) -> dict[str, Any]:
        token: OrchestratorToken = execution.state["token"]
        if event == "updateSnapshot":
            return {"flowExecId": token.flow_exec_id, "tenant": token.tenant}
        return {"tenant": token.tenant}

    def _update_keys(self, execution: Execution, payload: Any) -> list[Publication]:
        log.warning("updateKeys is not supported in OIH (secrets are managed by the secret service); ignored")
        return []

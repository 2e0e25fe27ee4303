"""Decode the per-message `orchestratorToken` (a JWT) into a typed step context.

The ferryman decodes this token with `jsonwebtoken.decode`, i.e. *without* verifying the signature, and so do
we (pyjwt with `verify_signature=False`). Why that is acceptable and the only workable choice:

* the signing secret belongs to the Component Orchestrator and is never given to component containers;
* the token only reaches us through the step's input queue, which in OIH only the orchestrator may write to
  (RabbitMQ permissions are set per flow/component by the orchestrator);
* the token is passed on unchanged in the headers of everything we publish, and the orchestrator *does*
  verify it (`jwt.verify`) on every back-channel message, so a forged token cannot make it route anything.

A token that is missing, malformed, or whose payload is not a JSON object is "unusable": the dialect rejects
the message without requeue (the ferryman instead leaves it unacknowledged forever).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import jwt

TOKEN_HEADER = "orchestratorToken"  # noqa: S105 (a header name)


class InvalidToken(ValueError):
    """The message carries no usable orchestrator token; the message must be rejected, not retried."""


@dataclass(frozen=True)
class OrchestratorToken:
    """The step context the orchestrator signs into each message (ComponentOrchestrator._executeStep)."""

    raw: str
    claims: dict[str, Any]
    flow_id: str | None = None
    step_id: str | None = None
    flow_exec_id: str | None = None
    user_id: str | None = None
    tenant: str | None = None
    function: str | None = None
    secret_id: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_username: str | None = None
    snapshot_routing_key: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    node_settings: dict[str, Any] = field(default_factory=dict)
    special_flags: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print the raw token or the IAM key it contains
        return (
            f"OrchestratorToken(flow_id={self.flow_id!r}, step_id={self.step_id!r}, "
            f"flow_exec_id={self.flow_exec_id!r}, function={self.function!r}, tenant={self.tenant!r})"
        )

    def log_context(self) -> dict[str, Any]:
        """The ids the ferryman adds to its per-message logger (no secrets)."""
        ctx = {
            "flowId": self.flow_id,
            "stepId": self.step_id,
            "flowExecId": self.flow_exec_id,
            "function": self.function,
            "tenant": self.tenant,
            "userId": self.user_id,
        }
        return {k: v for k, v in ctx.items() if v is not None}


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


# OrchestratorToken field -> JWT claim: the ids and keys (as text) and the objects the orchestrator signs in.
_TEXT_CLAIMS = {
    "flow_id": "flowId",
    "step_id": "stepId",
    "flow_exec_id": "flowExecId",
    "user_id": "userId",
    "tenant": "tenant",
    "function": "function",
    "secret_id": "secretId",
    "api_key": "apiKey",
    "api_username": "apiUsername",
    "snapshot_routing_key": "snapshotRoutingKey",
}
_OBJECT_CLAIMS = {"fields": "fields", "node_settings": "nodeSettings", "special_flags": "specialFlags"}


def header_token(headers: dict[str, Any] | None) -> str:
    """Return the raw token from AMQP headers (pika may hand long strings over as bytes)."""
    value = (headers or {}).get(TOKEN_HEADER)
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidToken("orchestratorToken header is not UTF-8 text") from exc
    if not value or not isinstance(value, str):
        raise InvalidToken("message has no orchestratorToken header")
    return value


def decode_token(raw: str) -> OrchestratorToken:
    """Decode (not verify, see module doc) a token; raise InvalidToken when it is unusable."""
    if not raw or not isinstance(raw, str):
        raise InvalidToken("empty orchestratorToken")
    return _decode_cached(raw)


@functools.lru_cache(maxsize=256)
def _decode_cached(raw: str) -> OrchestratorToken:
    """The decoded token, remembered: every message of a flow step carries the same token, and PyJWT
    costs ~65 µs per decode. The token is frozen and its claims are only read (cfg takes deep copies).
    Unusable tokens raise and are not remembered."""
    try:
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"orchestratorToken is not a decodable JWT ({type(exc).__name__})") from exc
    if not isinstance(claims, dict) or not claims:
        raise InvalidToken("orchestratorToken payload is not a JSON object")
    return OrchestratorToken(
        raw=raw,
        claims=claims,
        **{name: _str_or_none(claims.get(claim)) for name, claim in _TEXT_CLAIMS.items()},
        **{name: _dict(claims.get(claim)) for name, claim in _OBJECT_CLAIMS.items()},
    )


def token_from_headers(headers: dict[str, Any] | None) -> OrchestratorToken:
    """Header lookup + decode in one step."""
    return decode_token(header_token(headers))

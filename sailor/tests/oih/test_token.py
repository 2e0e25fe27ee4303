"""The orchestrator token: decoded like the ferryman's jwt.decode (no verification), typed, never printed."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from elasticio_sailor.dialects.oih.token import InvalidToken, decode_token, header_token, token_from_headers
from elasticio_sailor.testing.oih import make_token


def test_decodes_the_orchestrator_claims() -> None:
    raw = make_token(
        flowId="f1",
        stepId="s1",
        userId="u1",
        function="echoTwist",
        flowExecId="x1",
        secretId="sec",
        fields={"mode": "m"},
        apiKey="iam",
        nodeSettings={"idLinking": True},
        tenant="t1",
        snapshotRoutingKey="flow-f1.s1.snapshot",
        specialFlags={"a": 1},
    )
    tok = decode_token(raw)
    assert (tok.flow_id, tok.step_id, tok.user_id, tok.function, tok.flow_exec_id) == (
        "f1",
        "s1",
        "u1",
        "echoTwist",
        "x1",
    )
    assert (tok.secret_id, tok.api_key, tok.tenant) == ("sec", "iam", "t1")
    assert tok.fields == {"mode": "m"} and tok.node_settings == {"idLinking": True}
    assert tok.snapshot_routing_key == "flow-f1.s1.snapshot" and tok.special_flags == {"a": 1}
    assert tok.raw == raw


def test_signature_is_not_verified_as_in_the_ferryman() -> None:
    """Containers never get the orchestrator's key; a token signed with any key decodes."""
    raw = jwt.encode({"flowId": "f"}, "some-other-key-that-is-long-enough-for-hs256!", algorithm="HS256")
    assert decode_token(raw).flow_id == "f"


def test_repr_and_log_context_hide_the_key_and_the_token() -> None:
    raw = make_token(flowId="f", apiKey="very-secret-iam-key")
    tok = decode_token(raw)
    assert "very-secret-iam-key" not in repr(tok) and raw not in repr(tok)
    assert "very-secret-iam-key" not in json.dumps(tok.log_context())


@pytest.mark.parametrize("raw", ["", "garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"])
def test_undecodable_tokens_are_invalid(raw: str) -> None:
    with pytest.raises(InvalidToken):
        decode_token(raw)


def test_a_payload_that_is_not_an_object_is_invalid() -> None:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    header = b64({"alg": "HS256", "typ": "JWT"})
    with pytest.raises(InvalidToken):
        decode_token(f"{header}.{b64([1, 2])}.c2ln")
    with pytest.raises(InvalidToken, match="not a JSON object"):
        decode_token(f"{header}.{b64({})}.c2ln")


def test_header_lookup_handles_bytes_and_absence() -> None:
    raw = make_token(flowId="f")
    assert header_token({"orchestratorToken": raw.encode()}) == raw
    assert token_from_headers({"orchestratorToken": raw}).flow_id == "f"
    with pytest.raises(InvalidToken, match="no orchestratorToken"):
        token_from_headers({})
    with pytest.raises(InvalidToken):
        token_from_headers(None)

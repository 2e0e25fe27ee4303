"""Credentials verifier: ``GET /me`` with the given credentials.

Returns ``{"verified": bool, "reason"?: str}`` and never raises: the platform shows the reason to the
user, so it must be readable (no traceback) and must never contain the token.
"""

from __future__ import annotations

import logging
from typing import Any

from lib.intercom import answers, regions
from lib.intercom.client import IntercomClient
from lib.intercom.errors import ConfigurationError, IntercomError, scrub

log = logging.getLogger("lib.verify_credentials")


def verify(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check that the token is accepted by the chosen Intercom region."""
    try:
        token = regions.access_token(cfg)
    except ConfigurationError as exc:
        return {"verified": False, "reason": str(exc)}
    try:
        client = IntercomClient.from_cfg(cfg)
        me = client.request_json("GET", "/me")
    except ConfigurationError as exc:
        return {"verified": False, "reason": scrub(str(exc), token)}
    except IntercomError as exc:
        if exc.code == "invalid_response":
            reason = f"Intercom's answer to GET /me cannot be used: {exc}"
        elif exc.status == 401:
            reason = "Invalid access token (Intercom answered 401 unauthorized)"
        elif exc.status == 403:
            reason = f"Access token not allowed to read the admin: Intercom answered 403 {exc.code or ''}"
        elif exc.status == 404:
            reason = f"No Intercom API at {client.base_url}: check the server setting ({exc})"
        elif exc.status is None:
            reason = f"Could not reach Intercom: {exc}"
        else:
            reason = f"Intercom rejected the verification request: {exc}"
        return {"verified": False, "reason": scrub(reason.strip(), token)}
    except Exception as exc:  # the verifier must answer, whatever happened
        log.warning("credential verification failed: %s", type(exc).__name__)
        return {"verified": False, "reason": scrub(f"Verification failed: {type(exc).__name__}", token)}
    if not isinstance(me, dict):
        return {
            "verified": False,
            "reason": f"Intercom answered an unexpected shape at (root) of GET /me: expected an admin "
            f"object, got {answers.kind_of(me)}",
        }
    return {"verified": True}

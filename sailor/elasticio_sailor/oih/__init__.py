"""The Open Integration Hub (ferryman) dialect of the sailor.

In OIH a connector container is driven by the Component Orchestrator: each message carries a signed
`orchestratorToken` naming the flow step to run, credentials come from the secret service, snapshots from the
snapshots service, and every output goes back to the orchestrator's back-channel exchange. `token`,
`services`, `transform` and `settings` are independent of the AMQP worker; `dialect` plugs them into it.
"""

from elasticio_sailor.oih.token import InvalidToken, OrchestratorToken, decode_token


def create_dialect(env=None):  # type: ignore[no-untyped-def]  # lazy: the dialect pulls in the worker
    """Build the OIH dialect for this environment (called by settings.select_dialect)."""
    from elasticio_sailor.oih.dialect import create_dialect as _create

    return _create(env)


__all__ = ["InvalidToken", "OrchestratorToken", "create_dialect", "decode_token"]

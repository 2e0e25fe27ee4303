"""The Open Integration Hub (ferryman) dialect of the sailor.

In OIH a connector container is driven by the Component Orchestrator: each message carries a signed
`orchestratorToken` naming the flow step to run, credentials come from the secret service, snapshots from the
snapshots service, and every output goes back to the orchestrator's back-channel exchange. The modules here
are independent of the AMQP worker (token, services, transform, settings); `dialect.py` plugs them into it.
"""

from elasticio_sailor.oih.token import InvalidToken, OrchestratorToken, decode_token

__all__ = ["InvalidToken", "OrchestratorToken", "decode_token"]

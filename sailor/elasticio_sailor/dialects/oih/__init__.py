"""The Open Integration Hub (ferryman) dialect.

In OIH a connector container is driven by the Component Orchestrator: each message carries a signed
`orchestratorToken` naming the flow step to run, credentials come from the secret service, snapshots
from the snapshots service, and every output goes back to the orchestrator's back-channel exchange.
`token`, `services`, `transform` and `settings` know nothing of the worker; `dialect` plugs them in.
"""

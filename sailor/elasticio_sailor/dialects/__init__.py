"""The platform dialects the worker speaks: elastic.io and the Open Integration Hub (ferryman).

`base` holds the seam (what the worker calls) and the behaviour both share; each dialect is one
package beside it. The environment decides which one runs (`elasticio_sailor.env.dialect_name`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..env import dialect_name
from .base import BaseDialect


def select_dialect(env: Mapping[str, str] | None = None) -> BaseDialect:
    """Build the dialect for this environment (raises SettingsError for a bad configuration).

    Only the dialect that runs is imported: each pulls its own dependencies (OIH: jwt, jsonata and the
    services' HTTP client), and the other one's would cost every worker start-up time and memory.
    """
    env = dict(os.environ if env is None else env)
    if dialect_name(env) == "oih":
        from .oih.dialect import OihDialect

        return OihDialect(env)
    from .elasticio.dialect import ElasticioDialect
    from .elasticio.settings import read_elasticio

    return ElasticioDialect(read_elasticio(env), env)

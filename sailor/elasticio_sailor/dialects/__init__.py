"""The platform dialects the worker speaks: elastic.io and the Open Integration Hub (ferryman).

`base` holds the seam (what the worker calls) and the behaviour both share; each dialect is one
package beside it. The environment decides which one runs (`elasticio_sailor.env.dialect_name`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..env import dialect_name
from .base import BaseDialect
from .elasticio.dialect import ElasticioDialect
from .elasticio.settings import read_elasticio
from .oih.dialect import OihDialect


def select_dialect(env: Mapping[str, str] | None = None) -> BaseDialect:
    """Build the dialect for this environment (raises SettingsError for a bad configuration)."""
    env = dict(os.environ if env is None else env)
    if dialect_name(env) == "oih":
        return OihDialect(env)
    return ElasticioDialect(read_elasticio(env), env)

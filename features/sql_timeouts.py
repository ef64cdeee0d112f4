"""How long a PostgreSQL connect or statement may take before it fails, as SQLAlchemy ``connect_args``.

Serving opens its stores with a limit, so a stalled or locked database turns into an error the API answers
with 503 (nothing acknowledged) instead of a request that never returns; batch jobs and exports, whose
statements may rightly run for minutes, open theirs without one.
"""

from __future__ import annotations

import math
from typing import Any


def postgres_timeout_args(timeout_seconds: float | None) -> dict[str, Any]:
    """psycopg ``connect_args``: libpq's ``connect_timeout`` (whole seconds, at least 1) and the session's
    ``statement_timeout``; none for ``None`` (no limit)."""
    if timeout_seconds is None:
        return {}
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds must be > 0, but got {timeout_seconds}")
    return {
        "connect_timeout": max(1, math.ceil(timeout_seconds)),
        "options": f"-c statement_timeout={max(1, round(timeout_seconds * 1000))}",
    }

"""PostgreSQL connect and statement limits as psycopg connect arguments (``features.sql_timeouts``)."""

from __future__ import annotations

import pytest

from features.sql_timeouts import postgres_timeout_args


def test_limits_become_libpq_connect_timeout_and_statement_timeout() -> None:
    assert postgres_timeout_args(0.5) == {"connect_timeout": 1, "options": "-c statement_timeout=500"}
    assert postgres_timeout_args(5.0) == {"connect_timeout": 5, "options": "-c statement_timeout=5000"}
    assert postgres_timeout_args(2.2)["connect_timeout"] == 3  # whole seconds, rounded up


def test_no_limit_gives_no_arguments_and_a_non_positive_limit_is_refused() -> None:
    assert postgres_timeout_args(None) == {}
    with pytest.raises(ValueError, match="timeout_seconds must be > 0"):
        postgres_timeout_args(0)

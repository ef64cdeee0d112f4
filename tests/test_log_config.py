"""Logging follows the current stderr: a stream swapped in and closed by a test runner is never written to."""

from __future__ import annotations

import io
import logging
import sys

import pytest
import structlog

from ripen.log_config import configure_logging


def test_logs_follow_a_replaced_and_closed_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    temporary = io.StringIO()
    monkeypatch.setattr(sys, "stderr", temporary)
    configure_logging(level="INFO", json=True)
    structlog.get_logger("t").info("first", contact_id="c1")
    temporary.close()

    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    structlog.get_logger("t").info("second", contact_id="c2")
    logging.getLogger("std").warning("stdlib too")

    assert '"event": "second"' in later.getvalue()
    assert "stdlib too" in later.getvalue()
    configure_logging(level="WARNING")


def test_unknown_level_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="log level must be one of"):
        configure_logging(level="LOUD")

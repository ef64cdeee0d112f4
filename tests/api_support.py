"""Helpers shared by the API test modules: an app with one key per scope, and ready-made events and blocks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi.testclient import TestClient

from ripen.log_config import configure_logging
from ripen.settings import Settings
from serving.auth import KeyFile
from serving.main import create_app


@dataclass(frozen=True)
class Keys:
    """One key per scope, plus one with every scope, as headers ready to send."""

    engine: dict[str, str]
    sales: dict[str, str]
    admin: dict[str, str]
    all: dict[str, str]


def make_keys(settings: Settings) -> Keys:
    """Create the keys in ``settings.data_dir`` the way ``ripen keys create`` does."""
    key_file = KeyFile.in_dir(settings.data_dir)

    def header(*scopes: str) -> dict[str, str]:
        return {"X-API-Key": key_file.create(scopes)[1]}

    return Keys(header("engine"), header("sales"), header("admin"), header("engine", "sales", "admin"))


@contextmanager
def running_client(settings: Settings) -> Iterator[TestClient]:
    """A TestClient over a fresh app whose lifespan (stores opened, then closed) runs around the block."""
    with TestClient(create_app(settings)) as client:
        yield client


@contextmanager
def debug_logging() -> Iterator[None]:
    """Structured DEBUG logs to (the captured) stderr inside the block; logging put back to defaults after."""
    with restored_logging():
        configure_logging(level="DEBUG")
        yield


@contextmanager
def restored_logging() -> Iterator[None]:
    """Put logging back to defaults after the block (CLI runs configure it onto streams that then close)."""
    try:
        yield
    finally:
        logging.root.handlers.clear()
        structlog.reset_defaults()


def event(n: int, contact: str = "c-1", **overrides: Any) -> dict[str, Any]:
    """A valid event dict, an hour old, with ``event_id`` ``e-<n>``."""
    record: dict[str, Any] = {
        "event_id": f"e-{n}",
        "contact_id": contact,
        "timestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "type": "email_open",
        "channel": "email",
    }
    record.update(overrides)
    return record


def block(content_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid content block dict."""
    record: dict[str, Any] = {
        "content_id": content_id,
        "title": f"Block {content_id}",
        "format": "whitepaper",
        "stages": ["information"],
        "topics": ["cloud"],
        "channels": ["email"],
    }
    record.update(overrides)
    return record

"""The app's event store, opened at start or, when its database is unreachable then, on first use.

A replica whose PostgreSQL is down at boot still starts: ``/healthz`` answers, ``/readyz`` says not ready,
routes needing the store answer 503 with ``Retry-After``, and the store opens by itself once the database is
back (at most one attempt per ``retry_interval`` seconds, so a dead database is not hammered).
"""

from __future__ import annotations

import threading
import time

import structlog

from features.event_store import EventStore, EventStoreUnavailable, open_settings_event_store
from ripen.settings import Settings

log = structlog.get_logger(__name__)


class LazyEventStore:
    """The open store, or opens it on demand; ``get`` raises ``EventStoreUnavailable`` while it can't."""

    def __init__(self, settings: Settings, retry_interval: float = 1.0) -> None:
        self.settings = settings
        self.retry_interval = retry_interval
        self.store: EventStore | None = None
        self._lock = threading.Lock()
        self._last_attempt = float("-inf")
        self._last_error = ""

    def get(self) -> EventStore:
        """The open store; opens it first if needed (blocking: call from a worker thread)."""
        store = self.store
        if store is not None:
            return store
        with self._lock:
            if self.store is not None:
                return self.store
            now = time.monotonic()
            if now - self._last_attempt < self.retry_interval:
                raise EventStoreUnavailable(self._last_error or "event store not open yet")
            self._last_attempt = now
            try:
                self.store = open_settings_event_store(self.settings, serving=True)
            except EventStoreUnavailable as exc:
                self._last_error = str(exc)
                log.warning("event_store_unavailable", profile=self.settings.profile, error=str(exc))
                raise
            log.info("event_store_opened", profile=self.settings.profile)
            return self.store

    def close(self) -> None:
        with self._lock:
            if self.store is not None:
                self.store.close()
                self.store = None

"""Hot reload of champions: a background thread polls the registry and swaps the pipeline's snapshot.

Loading a promoted model (download, unpickle, checks) happens in this thread, never on a request; requests
keep reading ``pipeline.champions`` and see either the old snapshot or the new one, whole (the swap is one
attribute assignment). A poll where no alias moved returns the same snapshot and costs three look-ups.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import structlog

from ripen.settings import Settings
from serving.metrics import ServingMetrics
from training.champions import Champions, load_champions

log = structlog.get_logger(__name__)


class HoldsChampions(Protocol):
    """What the reloader swaps: the decision pipeline's ``champions`` attribute."""

    champions: Champions


class ChampionReloader:
    """Polls ``load_champions`` every ``settings.champion_poll_seconds`` and swaps changed snapshots."""

    def __init__(self, pipeline: HoldsChampions, settings: Settings, metrics: ServingMetrics) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Publish the served versions and start polling in a daemon thread."""
        self.metrics.set_model_versions(self.pipeline.champions.versions)
        self._thread = threading.Thread(target=self._run, name="champion-reloader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling; a load in progress finishes first (up to ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def poll(self) -> bool:
        """One check of the registry; True when a new snapshot was swapped in."""
        current = self.pipeline.champions
        started = time.perf_counter()
        try:
            updated = load_champions(self.settings, current)
        except Exception as exc:  # noqa: BLE001 - a failed poll keeps the models in use and retries later
            self.metrics.count_reload("error")
            log.error("champion_poll_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            return False
        if updated is current:
            return False
        self.pipeline.champions = updated
        if (updated.versions, updated.source) == (current.versions, current.source):
            return False  # only the set of refused versions grew (logged where they were refused)
        self.metrics.set_model_versions(updated.versions)
        self.metrics.count_reload("swapped")
        log.info(
            "champions_reloaded",
            before=current.versions,
            after=updated.versions,
            source=updated.source,
            seconds=round(time.perf_counter() - started, 3),
        )
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.settings.champion_poll_seconds):
            self.poll()

"""What a running app holds between requests: settings, stores, keys, metrics, champion reloader, checks.

Created by ``serving.main.create_app`` (metrics) and its lifespan (stores, keys); read by ``serving.deps``.
One object per app, on ``app.state.ripen``, so several apps in one process (tests) share nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ripen.settings import Settings
from serving.auth import LiveKeyRing
from serving.champion_reload import ChampionReloader
from serving.metrics import ServingMetrics
from serving.pipeline import DecisionPipeline
from serving.stores import LazyEventStore

ReadinessCheck = Callable[[], str]
"""Probes one dependency: returns a short detail when usable, raises when not."""


@dataclass
class ServingState:
    """The app's long-lived parts; stores and keys are None until the lifespan has opened them."""

    settings: Settings
    metrics: ServingMetrics
    event_store: LazyEventStore | None = None
    keys: LiveKeyRing | None = None
    pipeline: DecisionPipeline | None = None
    reloader: ChampionReloader | None = None
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)

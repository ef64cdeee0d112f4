"""The FastAPI app: ``create_app(settings)`` wires routers, middleware, error handlers and lifespan.

The lifespan opens the stores and the key ring, loads the champions and starts their reloader at start, and
closes them at shutdown; nothing is opened at import time, so importing this module is free and several apps
can live in one process (tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from features.event_store import EventStoreUnavailable
from ripen.settings import Settings, get_settings
from serving.access_log import AccessLogMiddleware
from serving.auth import LiveKeyRing
from serving.champion_reload import ChampionReloader
from serving.errors import BodySizeLimitMiddleware, install_error_handlers
from serving.gc_tuning import freeze_startup_objects, thaw
from serving.metrics import ServingMetrics
from serving.pipeline import DecisionPipeline
from serving.routes import catalog, contacts, events, health, recommend, recommend_batch, rewards, sales
from serving.state import ReadinessCheck, ServingState
from serving.stores import LazyEventStore

log = structlog.get_logger(__name__)

API_VERSION = "1"
_PROBE_ID = "__readyz_probe__"


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve app for ``settings`` (``get_settings()`` when None)."""
    resolved = settings if settings is not None else get_settings()
    state = ServingState(settings=resolved, metrics=ServingMetrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _open(state)
        thresholds = freeze_startup_objects()  # models, registry and catalog are loaded: never re-scan them
        try:
            yield
        finally:
            _close(state)
            thaw(thresholds)

    app = FastAPI(
        title="ripen",
        version=API_VERSION,
        summary="Next-best-content for lead and customer nurturing.",
        description=(
            "Journey engines send engagement events and ask for the next content block; sales reads why a "
            "contact is ready. Every route but `/healthz`, `/readyz` and `/metrics` needs an `X-API-Key` "
            "with the right scope: `engine`, `sales` or `admin`."
        ),
        lifespan=lifespan,
    )
    app.state.ripen = state
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=resolved.max_request_bytes)
    app.add_middleware(AccessLogMiddleware, metrics=state.metrics)
    for router in (
        health.router,
        events.router,
        catalog.router,
        recommend.router,
        recommend_batch.router,
        rewards.router,
        contacts.router,
        sales.router,
    ):
        app.include_router(router)
    return app


async def _open(state: ServingState) -> None:
    """Open the event store and load the keys; register their readiness checks."""
    settings = state.settings
    settings.ensure_dirs()
    state.keys = LiveKeyRing(settings.data_dir, settings.api_keys)
    key_count = len(state.keys.current())
    if not key_count:
        log.warning("no_api_keys", hint="create one with `ripen keys create --scope engine`")
    state.event_store = LazyEventStore(settings)
    try:
        state.event_store.get()
    except EventStoreUnavailable:
        log.warning("starting_without_event_store", hint="routes answer 503 until the database is reachable")
    state.readiness_checks["event_store"] = _event_store_check(state.event_store, settings.profile)
    try:
        state.pipeline = DecisionPipeline.load(settings)
    except Exception as exc:  # noqa: BLE001 - recommend answers 503 until a restart can load it
        log.error("decision_pipeline_unavailable", error=str(exc)[:200])
    else:
        state.reloader = ChampionReloader(state.pipeline, settings, state.metrics)
        state.reloader.start()
        state.readiness_checks["models"] = _models_check(state)
    models = state.pipeline.champions if state.pipeline is not None else None
    log.info(
        "serving_started",
        profile=settings.profile,
        keys=key_count,
        models=models.versions if models else None,
        models_source=models.source if models else None,
    )


def _event_store_check(slot: LazyEventStore, profile: str) -> ReadinessCheck:
    def check() -> str:
        slot.get().get_content(_PROBE_ID)  # a primary-key read: proves the connection without scanning
        return profile

    return check


def _models_check(state: ServingState) -> ReadinessCheck:
    def check() -> str:
        if state.pipeline is None:
            raise RuntimeError("the decision pipeline is not loaded")
        champions = state.pipeline.champions
        served = ", ".join(f"{role}={version}" for role, version in champions.versions.items())
        source = "cache: registry unreachable" if champions.source == "cache" else champions.source
        return f"{served} ({source})"

    return check


def _close(state: ServingState) -> None:
    if state.reloader is not None:
        state.reloader.stop()
        state.reloader = None
    if state.event_store is not None:
        state.event_store.close()
        state.event_store = None
    if state.pipeline is not None:
        state.pipeline.close()
        state.pipeline = None
    state.readiness_checks.clear()
    log.info("serving_stopped")

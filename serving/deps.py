"""``Annotated`` dependencies of the routes: settings, stores, and the caller's key with its scope.

Dependencies doing no blocking I/O are ``async`` so they run on the event loop: a sync dependency costs a
thread-pool hop per request, which dominates the latency of cheap routes.

``SettingsDep`` is the app's settings: ``create_app(settings)``, or ``ripen.settings.get_settings()`` (an
``lru_cache``) when none are given; tests may still swap any dependency with ``app.dependency_overrides``.
(``create_app`` does not override ``get_settings`` itself: FastAPI re-analyses an overridden dependency's
signature on every request, milliseconds each.)

Scope checks are dependencies too: a route taking ``EngineKey`` cannot run without a valid key carrying the
``engine`` scope (401 without a key, 403 without the scope). New routes use ``EngineKey``, ``SalesKey`` or
``AdminKey`` the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from features.event_store import EventStore
from ripen.settings import Settings
from serving.access_log import KEY_ID_SCOPE
from serving.auth import Principal, Scope
from serving.metrics import ServingMetrics
from serving.state import ServingState

API_KEY_HEADER = "X-API-Key"

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="An API key created with `ripen keys create --scope engine|sales|admin`.",
    auto_error=False,
)


async def get_state(request: Request) -> ServingState:
    """The app's ``ServingState``."""
    state: ServingState = request.app.state.ripen
    return state


StateDep = Annotated[ServingState, Depends(get_state)]


async def get_app_settings(state: StateDep) -> Settings:
    """The settings the app was created with (``create_app(settings)``, else ``get_settings()``)."""
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_metrics(state: StateDep) -> ServingMetrics:
    return state.metrics


async def get_event_store(state: StateDep) -> EventStore:
    """The open event store; opened now if it could not be at start; 503 while it cannot be reached."""
    slot = state.event_store
    if slot is None:
        raise HTTPException(503, "the event store is not open yet", headers={"Retry-After": "1"})
    if slot.store is not None:
        return slot.store
    return await run_in_threadpool(slot.get)  # EventStoreUnavailable → 503 (serving.errors)


MetricsDep = Annotated[ServingMetrics, Depends(get_metrics)]
EventStoreDep = Annotated[EventStore, Depends(get_event_store)]


async def authenticate(
    request: Request, token: Annotated[str | None, Security(_api_key_header)] = None
) -> Principal:
    """The caller behind the ``X-API-Key`` header; 401 when the header is missing or the key unknown.

    The key's id (never the key) goes into the request scope, where the access log picks it up. The state is
    read from the app, not through ``StateDep``: one dependency less to solve on every authenticated request.
    """
    if not token:
        raise HTTPException(401, f"missing API key (header {API_KEY_HEADER})")
    keys = request.app.state.ripen.keys
    principal = keys.current().authenticate(token) if keys is not None else None
    if principal is None:
        raise HTTPException(401, f"unknown API key (header {API_KEY_HEADER})")
    request.scope[KEY_ID_SCOPE] = principal.key_id
    structlog.contextvars.bind_contextvars(key_id=principal.key_id)
    return principal


ApiKeyDep = Annotated[Principal, Depends(authenticate)]


def require_scope(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency passing callers whose key has ``scope``; 403 naming the scope otherwise."""

    async def check(principal: ApiKeyDep) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(403, f"this route needs an API key with scope {scope.value!r}")
        return principal

    check.__name__ = f"require_{scope.value}_scope"
    return check


EngineKey = Annotated[Principal, Depends(require_scope(Scope.ENGINE))]
SalesKey = Annotated[Principal, Depends(require_scope(Scope.SALES))]
AdminKey = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]

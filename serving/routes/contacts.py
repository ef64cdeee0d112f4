"""``DELETE /v1/contacts/{id}`` (admin: erasure everywhere) and ``GET /v1/contacts/{id}/insight`` (sales)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Header, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from features.event_store import EventStore
from serving.deps import AdminKey, EventStoreDep, SalesKey
from serving.errors import error_responses
from serving.insight import UnknownContact, build_insight, negotiate_language
from serving.pipeline import DecisionPipeline, contact_hash
from serving.routes.recommend import PipelineDep
from serving.schemas_decisions import ContactInsight, ErasureResponse

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/v1/contacts", tags=["contacts"], responses=error_responses(401, 403, 404, 422, 503)
)

ContactId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]


@router.delete("/{contact_id}", response_model=ErasureResponse, summary="Erase a contact from every store")
async def erase_contact(
    contact_id: ContactId, store: EventStoreDep, pipeline: PipelineDep, _key: AdminKey
) -> ErasureResponse:
    """Remove the contact's events, profile, online features and decisions (kept only as anonymous
    aggregates); each store writes an audit record with a hash of the id."""
    return await run_in_threadpool(_erase, contact_id, store, pipeline)


def _erase(contact_id: str, store: EventStore, pipeline: DecisionPipeline) -> ErasureResponse:
    events = store.erase_contact(contact_id)
    decisions = pipeline.decision_log.erase_contact(contact_id)
    try:
        online = pipeline.erase_online(contact_id)
    except Exception as exc:  # noqa: BLE001 - reported as 503: the caller must retry the erasure
        log.error("online_erasure_failed", contact_hash=contact_hash(contact_id), error=type(exc).__name__)
        raise HTTPException(503, "online feature store unreachable; retry the erasure") from exc
    log.info("contact_erased", contact_hash=events.contact_hash, events=events.events_deleted)
    return ErasureResponse(
        contact_hash=events.contact_hash,
        events_deleted=events.events_deleted,
        profile_deleted=events.profile_deleted,
        decisions_deleted=decisions.decisions_deleted,
        rewards_deleted=decisions.rewards_deleted,
        online_features_deleted=online,
        erased_at=events.erased_at,
    )


@router.get(
    "/{contact_id}/insight", response_model=ContactInsight, summary="Why a contact is ready or at risk"
)
async def insight(
    contact_id: ContactId,
    store: EventStoreDep,
    pipeline: PipelineDep,
    _key: SalesKey,
    accept_language: Annotated[str | None, Header()] = None,
) -> ContactInsight:
    """Readiness and churn with their top signed SHAP factors (points when no model is trained), status,
    recent timeline, consumed content, next action; sentences in German when ``Accept-Language`` prefers
    ``de``, else English. 404 for an unknown contact."""
    try:
        return await run_in_threadpool(
            build_insight, contact_id, store, pipeline, negotiate_language(accept_language)
        )
    except UnknownContact:
        raise HTTPException(404, f"contact_id: no contact {contact_id!r} is known") from None

"""``DELETE /v1/contacts/{id}`` (admin: erasure everywhere) and ``GET /v1/contacts/{id}/insight`` (sales)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Header, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from features.event_store import EventStore
from serving.deps import AdminKey, EventStoreDep, SalesKey
from serving.errors import error_responses
from serving.pipeline import DecisionPipeline, contact_hash
from serving.routes.recommend import PipelineDep
from serving.schemas_decisions import ContactInsight, ErasureResponse, Factor, ScoreInsight, TimelineEntry

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/v1/contacts", tags=["contacts"], responses=error_responses(401, 403, 404, 422, 503)
)

ContactId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
TIMELINE_LENGTH = 20

_SENTENCES = {
    "fit": {"en": "Profile fit adds {value:.0f} points", "de": "Das Profil bringt {value:.0f} Punkte"},
    "behaviour": {
        "en": "Recent engagement adds {value:.0f} points",
        "de": "Die jüngste Interaktion bringt {value:.0f} Punkte",
    },
}
_ACTIONS = {
    "call": {"en": "Call now: the contact is sales-ready", "de": "Jetzt anrufen: der Kontakt ist bereit"},
    "retain": {
        "en": "Reach out about the churn risk",
        "de": "Wegen des Abwanderungsrisikos Kontakt aufnehmen",
    },
    "nurture": {
        "en": "Keep nurturing; no sales action yet",
        "de": "Weiter pflegen; noch keine Vertriebsaktion",
    },
}


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
    """Readiness and churn with their top factors, status, recent timeline, consumed content, next action;
    sentences in German when ``Accept-Language`` prefers ``de``, else English. 404 for an unknown contact."""
    language: Literal["en", "de"] = "de" if (accept_language or "").strip().lower().startswith("de") else "en"
    return await run_in_threadpool(_insight, contact_id, store, pipeline, language)


def _insight(
    contact_id: str, store: EventStore, pipeline: DecisionPipeline, language: Literal["en", "de"]
) -> ContactInsight:
    profile = store.get_profile(contact_id)
    events = store.events_for_contact(contact_id)
    if profile is None and not events:
        raise HTTPException(404, f"contact_id: no contact {contact_id!r} is known")
    try:
        features = pipeline.features.online_features(contact_id, [], at=datetime.now(UTC))
    except Exception:  # noqa: BLE001 - the card still shows stored facts
        features = None
    readiness, churn, r_version, c_version = pipeline.scores(features, profile)
    factors = []
    if features is not None and r_version == "points":
        for name, value in (("fit", features.points.fit), ("behaviour", features.points.behaviour)):
            factors.append(
                Factor(
                    feature=name, contribution=value, sentence=_SENTENCES[name][language].format(value=value)
                )
            )
        factors.sort(key=lambda f: -abs(f.contribution))
    action = "call" if readiness >= 0.8 else "retain" if churn >= 0.6 else "nurture"
    recent = events[-TIMELINE_LENGTH:][::-1]
    return ContactInsight(
        contact_id=contact_id,
        language=language,
        readiness=ScoreInsight(probability=readiness, model_version=r_version, factors=factors),
        churn=ScoreInsight(probability=churn, model_version=c_version),
        lead_status=profile.lead_status.value if profile is not None else None,
        stage=profile.lifecycle_stage if profile is not None else None,
        timeline=[
            TimelineEntry(
                timestamp=e.timestamp, type=str(e.type), channel=str(e.channel), content_id=e.content_id
            )
            for e in recent
        ],
        consumed_content=sorted(features.consumed_content_ids) if features is not None else [],
        next_sales_action=_ACTIONS[action][language],
    )

"""``POST /v1/events``: batch ingest of engagement events, idempotent by ``event_id``, per-item results."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, HTTPException, status

from features.event_store import EventStore, IngestResult, ItemStatus
from features.ingest import validate_indexed
from serving.deps import EngineKey, EventStoreDep, MetricsDep, SettingsDep, StateDep
from serving.errors import error_responses
from serving.pipeline import DecisionPipeline
from serving.schemas import EventResult, EventsBatch, IngestResponse

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/events", tags=["events"], responses=error_responses(401, 403, 413, 422, 503))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestResponse,
    summary="Ingest a batch of engagement events",
)
def ingest_events(
    batch: EventsBatch,
    store: EventStoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    state: StateDep,
    _key: EngineKey,
) -> IngestResponse:
    """Validate each event on its own and store the valid ones; answer once they are durably committed.

    202 means: every item reported ``stored`` or ``duplicate`` is committed to the event store (re-sending
    it is harmless, ``event_id`` makes ingest idempotent); items reported ``rejected`` were not stored, with
    the field at fault and the reason. A batch larger than ``max_batch_events`` is refused whole with 413.
    The stored events are then folded into the contacts' online features, so the next decision sees them; if
    the online store cannot be written the events stay stored and reach it at the next materialize.
    """
    if len(batch.events) > settings.max_batch_events:
        raise HTTPException(
            413,
            f"events: the batch has {len(batch.events)} events, "
            f"more than the limit of {settings.max_batch_events}",
        )
    result = store.ingest(batch.events)
    metrics.count_ingested(result.stored, result.duplicates, result.rejected)
    _update_online_features(state.pipeline, store, batch, result)
    log.info("events_ingested", stored=result.stored, duplicates=result.duplicates, rejected=result.rejected)
    return IngestResponse(
        accepted=result.stored + result.duplicates,
        stored=result.stored,
        duplicates=result.duplicates,
        rejected=result.rejected,
        results=[
            EventResult(
                index=item.index,
                event_id=item.event_id,
                status=item.status.value,
                field=item.field,
                reason=item.reason,
            )
            for item in result.items
        ],
    )


def _update_online_features(
    pipeline: DecisionPipeline | None, store: EventStore, batch: EventsBatch, result: IngestResult
) -> None:
    """Fold the newly stored events into the online features (duplicates were folded when first stored)."""
    new = [batch.events[item.index] for item in result.items if item.status is ItemStatus.STORED]
    if not new or pipeline is None:
        return
    events, _ = validate_indexed(
        new,
        max_clock_skew_seconds=store.max_clock_skew_seconds,
        max_properties_bytes=store.max_properties_bytes,
    )
    try:
        pipeline.features.apply_events([event for _, event in events])
    except Exception as exc:  # noqa: BLE001 - the events are stored; materialize catches the features up
        log.warning("online_features_not_updated", events=len(events), error=type(exc).__name__)

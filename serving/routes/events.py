"""``POST /v1/events``: batch ingest of engagement events, idempotent by ``event_id``, per-item results."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, HTTPException, status

from serving.deps import EngineKey, EventStoreDep, MetricsDep, SettingsDep
from serving.errors import error_responses
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
    batch: EventsBatch, store: EventStoreDep, settings: SettingsDep, metrics: MetricsDep, _key: EngineKey
) -> IngestResponse:
    """Validate each event on its own and store the valid ones; answer once they are durably committed.

    202 means: every item reported ``stored`` or ``duplicate`` is committed to the event store (re-sending
    it is harmless, ``event_id`` makes ingest idempotent); items reported ``rejected`` were not stored, with
    the field at fault and the reason. A batch larger than ``max_batch_events`` is refused whole with 413.
    """
    if len(batch.events) > settings.max_batch_events:
        raise HTTPException(
            413,
            f"events: the batch has {len(batch.events)} events, "
            f"more than the limit of {settings.max_batch_events}",
        )
    result = store.ingest(batch.events)
    metrics.count_ingested(result.stored, result.duplicates, result.rejected)
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

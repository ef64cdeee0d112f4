"""``POST /v1/rewards/{event_id}``: an explicit reward for a logged decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from features.decision_log import RewardRecord, RewardSource
from serving.deps import EngineKey
from serving.errors import error_responses
from serving.routes.recommend import PipelineDep
from serving.schemas_decisions import RewardRequest, RewardResponse

router = APIRouter(
    prefix="/v1/rewards", tags=["decisions"], responses=error_responses(401, 403, 404, 422, 503)
)

EventId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]


@router.post("/{event_id}", response_model=RewardResponse, summary="Report the reward of a decision")
async def reward(
    event_id: EventId, body: RewardRequest, pipeline: PipelineDep, _key: EngineKey
) -> RewardResponse:
    """Store the reward; an explicit reward overrides one joined from events. 404 for an unknown decision."""
    record = RewardRecord(
        event_id=event_id,
        reward=body.reward,
        source=RewardSource.EXPLICIT,
        observed_at=_aware(body.observed_at) if body.observed_at else datetime.now(UTC),
    )
    result = await run_in_threadpool(pipeline.decision_log.record_rewards, [record])
    if result.unknown_ids:
        raise HTTPException(404, f"event_id: no decision {event_id!r} is logged")
    status: Literal["stored", "replaced", "unchanged", "superseded"] = (
        "stored"
        if result.stored
        else "replaced"
        if result.replaced
        else "unchanged"
        if result.unchanged
        else "superseded"
    )
    return RewardResponse(event_id=event_id, status=status)


def _aware(at: datetime) -> datetime:
    """A timestamp without zone is read as UTC (the decision log stores aware timestamps only)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)

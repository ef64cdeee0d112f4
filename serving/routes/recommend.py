"""``POST /v1/recommend``: the next action for one contact, decided and logged by the decision pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from features.event_store import EventStore
from serving.coalescer import RecommendCoalescer
from serving.deps import EngineKey, StateDep, get_event_store
from serving.errors import error_responses
from serving.pipeline import DecisionPipeline, Outcome, RecommendInput
from serving.schemas_decisions import (
    RecommendRequest,
    RecommendResponse,
)
from serving.state import ServingState

UNKNOWN_CONTENT = "unknown_content"
"""Reason reported for a requested candidate id the active catalog does not hold (it is ignored)."""

router = APIRouter(prefix="/v1", tags=["decisions"], responses=error_responses(401, 403, 413, 422, 503))


async def get_pipeline(state: StateDep) -> DecisionPipeline:
    """The app's decision pipeline; 503 while it could not be loaded."""
    if state.pipeline is None:
        raise HTTPException(503, "the decision pipeline is not loaded", headers={"Retry-After": "5"})
    return state.pipeline


PipelineDep = Annotated[DecisionPipeline, Depends(get_pipeline)]


@dataclass(frozen=True)
class RecommendContext:
    """What a recommend request runs on: the coalescer (holding the pipeline) and the open event store."""

    coalescer: RecommendCoalescer
    store: EventStore


async def get_recommend_context(request: Request) -> RecommendContext:
    """The pipeline's coalescer and the event store, solved as one dependency (each solved dependency costs
    CPU on every request); 503 while the pipeline or the store is unavailable.

    The coalescer is built on first use, on the event loop without awaiting, so two first requests cannot
    build two.
    """
    state: ServingState = request.app.state.ripen
    pipeline = await get_pipeline(state)
    coalescer: RecommendCoalescer | None = getattr(request.app.state, "recommend_coalescer", None)
    if coalescer is None or coalescer.pipeline is not pipeline:
        coalescer = RecommendCoalescer(
            pipeline,
            state.metrics,
            max_batch=state.settings.recommend_max_batch,
            lone_on_loop=pipeline.local_reads,
        )
        request.app.state.recommend_coalescer = coalescer
    return RecommendContext(coalescer, await get_event_store(state))


RecommendDep = Annotated[RecommendContext, Depends(get_recommend_context)]


@router.post("/recommend", response_model=RecommendResponse, summary="Decide the next content for a contact")
async def recommend(body: RecommendRequest, context: RecommendDep, _key: EngineKey) -> Response:
    """Guardrails first, then the policy; the decision is logged with its ``event_id`` before the answer.

    Unknown contacts get a cold-start decision (``cold_start: true``); when the online store is down a safe
    stage-fit fallback decides (``degraded: true``). Concurrent requests are decided together in one batch
    (``serving.coalescer``), each with its own answer.
    """
    request = RecommendInput(
        contact_id=body.contact_id or body.anonymous_id or "",
        channel=body.channel,
        stage=body.stage,
        candidate_ids=tuple(body.candidate_ids) if body.candidate_ids is not None else None,
        excluded_ids=tuple(body.excluded_ids),
        n_slots=body.n_slots,
    )
    outcome = await context.coalescer.recommend(request, context.store)
    # Validated once in ``response`` and serialized here: FastAPI would validate the model again before
    # encoding it. ``response_model`` still documents the schema.
    answer = response(outcome, context.coalescer.pipeline, explain=body.explain)
    return Response(answer.model_dump_json(), media_type="application/json")


def response(outcome: Outcome, pipeline: DecisionPipeline, *, explain: bool) -> RecommendResponse:
    """The API view of a decision, validated in one pass from plain data.

    One ``model_validate`` of a dict runs in pydantic-core; building the ~50 nested ``GuardrailReason``
    models one by one (or with ``model_construct``, which is pure Python) cost about twice the CPU.
    """
    d = outcome.decision
    reasons = [
        {"content_id": e.content_id, "reason": e.reason.value, "detail": e.detail}
        for e in d.exclusions
        if e.reason.value != "excluded_by_caller"
    ]
    reasons.extend(
        {"content_id": cid, "reason": UNKNOWN_CONTENT, "detail": "not in the active catalog"}
        for cid in outcome.unknown_candidates
    )
    return RecommendResponse.model_validate(
        {
            "event_id": d.event_id,
            "contact_id": d.contact_id,
            "action": d.action.value,
            "content_id": d.content_id,
            "probability": d.probability,
            "next_eligible_at": d.wait_until,
            "alternatives": [{"content_id": a.content_id, "score": a.score} for a in d.alternatives],
            "readiness": outcome.readiness,
            "churn_risk": outcome.churn_risk,
            "guardrail_reasons": reasons,
            "reason": d.reason,
            "versions": {
                "readiness": outcome.readiness_version,
                "churn": outcome.churn_version,
                "policy": d.policy_version,
            },
            "cold_start": outcome.cold_start,
            "degraded": outcome.degraded,
            "explanation": explanation(outcome) if explain else None,
        }
    )


def explanation(outcome: Outcome) -> list[str]:
    """Plain sentences on why this action: scores, stage and the chosen block's probability."""
    d = outcome.decision
    lines = [
        f"readiness {outcome.readiness:.2f} ({outcome.readiness_version}), "
        f"churn risk {outcome.churn_risk:.2f} ({outcome.churn_version})"
    ]
    if d.content_id is not None and d.probability is not None:
        lines.append(
            f"{d.content_id} chosen with probability {d.probability:.2f} among "
            f"{len(d.eligible_probabilities)} eligible blocks by {d.policy_version}"
        )
    if d.reason:
        lines.append(d.reason)
    if d.exclusions:
        lines.append(f"{len(d.exclusions)} candidates removed by guardrails")
    if outcome.degraded:
        lines.append("online features unavailable: stage-fit fallback")
    return lines

"""Operational endpoints without a key: liveness, readiness (stores, served models) and Prometheus metrics.

They carry no personal data: ``/metrics`` labels hold route templates, actions, reasons and model versions
only.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Response

from serving.deps import MetricsDep, StateDep
from serving.schemas import CheckOutcome, Liveness, Readiness

log = structlog.get_logger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness, summary="Liveness")
async def healthz() -> Liveness:
    """The process answers; says nothing about its stores (see ``/readyz``)."""
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "At least one check failed."}},
    summary="Readiness",
)
def readyz(state: StateDep, response: Response) -> Readiness:
    """Run every registered readiness check; 503 if any fails, so a load balancer stops sending traffic.

    The ``models`` check's detail names the served versions and where they came from (registry or cache).
    """
    outcomes: list[CheckOutcome] = []
    for name, check in state.readiness_checks.items():
        try:
            outcomes.append(CheckOutcome(name=name, ok=True, detail=check()))
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; reported, not raised
            log.warning("readiness_check_failed", check=name, error_type=type(exc).__name__)
            outcomes.append(CheckOutcome(name=name, ok=False, detail=type(exc).__name__))
    ready = bool(outcomes) and all(o.ok for o in outcomes)
    if not ready:
        response.status_code = 503
    return Readiness(status="ready" if ready else "not_ready", checks=outcomes)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text."}
    },
    summary="Prometheus metrics",
)
async def metrics(metrics: MetricsDep) -> Response:
    """Latency per route template, decisions per action, guardrail exclusions, served model versions."""
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)

"""The decision core for one contact or a whole audience: scores → contexts → guardrails → policy → log rows.

Serving's single ``recommend`` (n = 1), ``POST /v1/recommend/batch`` and the ``ripen decide`` batch job all
call ``decide_contacts``: the readiness and churn scorers read one frame per batch, the guardrails and the
policy run as matrices (``models.policy.decide.decide``), and sampling is keyed by each decision's event id,
so a contact gets the same decision alone or inside a batch of any size for the same event id and seed.
No I/O here: callers look up profiles and features and write the decision-log records this returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import structlog

from features.decision_log import DecisionRecord
from features.online import DecisionFeatures
from features.points import DEFAULT_POINTS, fit_points
from features.schemas import Channel, ContactProfile
from models.context import ContactContext, Decision, Touch
from models.policy.base import ContentPolicy
from models.policy.decide import PreparedCatalog, decide
from models.policy.decide import decision_records as policy_decision_records

log = structlog.get_logger(__name__)

POINTS_VERSION = "points"
NO_CHURN_VERSION = "none"
FALLBACK_POLICY = "stage-fit-fallback"
RUN_NAMESPACE = uuid.UUID("5b0f3c8e-6f1e-4c55-9d55-1f7a0c2a9e11")
"""Namespace of deterministic batch event ids: ``uuid5(RUN_NAMESPACE, f"{run_id}/{contact_id}")``."""


class Scorer(Protocol):
    """A loaded probability model (``training.registry.LoadedScorer``): name, version, P(label=1) per row."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray: ...


class ModelSet(Protocol):
    """The models a decision uses (``training.champions.Champions`` fits); ``None`` scorers mean fallback."""

    @property
    def readiness(self) -> Scorer | None: ...

    @property
    def churn(self) -> Scorer | None: ...

    @property
    def policy(self) -> ContentPolicy: ...

    @property
    def policy_version(self) -> str: ...


@dataclass(frozen=True)
class ContactRequest:
    """One contact to decide for, as the caller asked: optional stage override and candidate restrictions."""

    contact_id: str
    stage: str | None = None
    candidate_ids: tuple[str, ...] | None = None
    excluded_ids: tuple[str, ...] = ()
    event_id: str | None = None
    """The decision's id (keys the sampling); a random one when omitted."""


@dataclass(frozen=True)
class ContactData:
    """What the stores hold for one contact; ``features=None`` means the online store was unreachable."""

    profile: ContactProfile | None
    features: DecisionFeatures | None

    @property
    def unknown(self) -> bool:
        """Neither a stored profile nor stored engagement: a contact the stores have never seen."""
        return self.profile is None and (self.features is None or self.features.cold_start)


@dataclass(frozen=True)
class Outcome:
    """A decision and what it was made from."""

    decision: Decision
    readiness: float
    churn_risk: float
    cold_start: bool
    degraded: bool
    readiness_version: str
    churn_version: str
    features: DecisionFeatures | None
    unknown_candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchResult:
    """``decide_contacts``' answer: one outcome and one decision-log record per request, in order."""

    outcomes: list[Outcome]
    records: list[DecisionRecord] = field(default_factory=list)


def points_readiness(total: float | np.ndarray) -> np.ndarray:
    """The points score as a readiness stand-in: the share of the sales-alert threshold, clipped to [0, 1]."""
    return np.clip(np.asarray(total, dtype=float) / DEFAULT_POINTS.sales_alert, 0.0, 1.0)


def batch_event_id(run_id: str, contact_id: str) -> str:
    """The deterministic event id of ``contact_id``'s decision in batch run ``run_id`` (re-runs reuse it)."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{run_id}/{contact_id}"))


def score_contacts(
    data: Sequence[ContactData], models: ModelSet
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Readiness and churn per contact, shape (n,), with the version that produced each value.

    One frame of ``model_row``s is built per batch, and only when a champion will read it; contacts without
    features keep the fallbacks (points score from the profile's fit, churn risk 0).
    """
    n = len(data)
    points = np.array(
        [d.features.points.total if d.features is not None else fit_points(d.profile) for d in data],
        dtype=float,
    )
    readiness, churn = points_readiness(points), np.zeros(n)
    r_versions, c_versions = [POINTS_VERSION] * n, [NO_CHURN_VERSION] * n
    rows = [i for i, d in enumerate(data) if d.features is not None]
    if rows and (models.readiness is not None or models.churn is not None):
        records = [data[i].features.model_row() for i in rows]  # type: ignore[union-attr]
        for model, values, versions, kind in (
            (models.readiness, readiness, r_versions, "readiness"),
            (models.churn, churn, c_versions, "churn"),
        ):
            if model is None:
                continue
            try:
                predicted = np.clip(np.asarray(model.predict_records(records), dtype=float), 0.0, 1.0)
            except Exception as exc:  # noqa: BLE001 - a scorer failure must not fail the decisions
                log.error("scorer_failed_using_fallback", kind=kind, error=str(exc)[:200])
                continue
            values[rows] = predicted
            version = f"{model.name}/{model.version}"
            for i in rows:
                versions[i] = version
    return readiness, churn, r_versions, c_versions


def contact_context(
    request: ContactRequest, data: ContactData, readiness: float, churn: float, now: datetime
) -> ContactContext:
    """What the guardrails and policy see: the stored profile, consumed blocks, last touch and the scores."""
    features, profile = data.features, data.profile
    consumed = features.consumed_content_ids if features is not None else frozenset()
    base = profile or ContactProfile(contact_id=request.contact_id)
    stage = request.stage or base.lifecycle_stage
    touches: tuple[Touch, ...] = ()
    if features is not None and features.days_since_last_touch is not None:
        touches = (Touch(at=now - timedelta(days=features.days_since_last_touch), stage=stage),)
    context = ContactContext.from_profile(
        base, consumed_ids=consumed, touches=touches, readiness=readiness, churn_risk=churn
    )
    if request.stage is not None:
        context = ContactContext(**{**context.__dict__, "stage": request.stage})
    return context


def decide_contacts(
    requests: Sequence[ContactRequest],
    data: Sequence[ContactData],
    catalog: PreparedCatalog,
    models: ModelSet,
    *,
    channel: Channel,
    now: datetime,
    n_slots: int = 1,
    seed: int = 0,
    fallback_policy: ContentPolicy,
) -> BatchResult:
    """Decide for every request (one outcome and decision-log record each, in order).

    Contacts whose features could not be read (``features=None``) are decided by ``fallback_policy`` and
    flagged ``degraded``; if the champion policy rejects its inputs, the fallback decides for them too.
    """
    if len(requests) != len(data):
        raise ValueError(f"`data` must have {len(requests)} entries (one per request), but got {len(data)}")
    n = len(requests)
    readiness, churn, r_versions, c_versions = score_contacts(data, models)
    contexts = [
        contact_context(requests[i], data[i], float(readiness[i]), float(churn[i]), now) for i in range(n)
    ]
    known = catalog.content_ids
    excluded: list[set[str]] = []
    unknown: list[tuple[str, ...]] = []
    for request in requests:
        dropped = set(request.excluded_ids)
        missing: tuple[str, ...] = ()
        if request.candidate_ids is not None:
            missing = tuple(dict.fromkeys(c for c in request.candidate_ids if c not in known))
            dropped |= known - set(request.candidate_ids)
        excluded.append(dropped)
        unknown.append(missing)
    event_ids = [r.event_id or str(uuid.uuid4()) for r in requests]
    decisions: list[Decision | None] = [None] * n
    degraded_rows = [i for i in range(n) if data[i].features is None]
    live_rows = [i for i in range(n) if data[i].features is not None]
    groups = (
        (live_rows, models.policy, models.policy_version),
        (degraded_rows, fallback_policy, FALLBACK_POLICY),
    )
    for rows, policy, version in groups:
        if not rows:
            continue

        def run(policy: ContentPolicy, version: str, rows: list[int] = rows) -> list[Decision]:
            return decide(
                [contexts[i] for i in rows],
                catalog,
                policy,
                channel=channel,
                now=now,
                policy_version=version,
                excluded_ids=[excluded[i] for i in rows],
                event_ids=[event_ids[i] for i in rows],
                n_slots=n_slots,
                seed=seed,
            )

        try:
            chosen = run(policy, version)
        except ValueError as exc:  # a champion trained on other features: the cold-start prior decides
            log.error("policy_failed_using_fallback", policy=version, error=str(exc)[:200])
            chosen = run(fallback_policy, FALLBACK_POLICY)
        for i, decision in zip(rows, chosen, strict=True):
            decisions[i] = decision
    outcomes = [
        Outcome(
            decision=d,
            readiness=float(readiness[i]),
            churn_risk=float(churn[i]),
            cold_start=data[i].features.cold_start  # type: ignore[union-attr]
            if data[i].features is not None
            else data[i].profile is None,
            degraded=data[i].features is None,
            readiness_version=r_versions[i],
            churn_version=c_versions[i],
            features=data[i].features,
            unknown_candidates=unknown[i],
        )
        for i, d in enumerate(decisions)
        if d is not None
    ]
    return BatchResult(outcomes=outcomes, records=decision_records(outcomes, contexts, catalog))


def decision_records(
    outcomes: Sequence[Outcome], contexts: Sequence[ContactContext], catalog: PreparedCatalog
) -> list[DecisionRecord]:
    """The decision-log rows of the outcomes: ``models.policy.decide.decision_records``, the one builder."""
    return policy_decision_records([o.decision for o in outcomes], contexts, catalog)

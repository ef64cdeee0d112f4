"""The decision pipeline of ``POST /v1/recommend``: features → scores → guardrails → policy → decision log.

``DecisionPipeline.load`` runs once at app start (and the catalog again every ``catalog_ttl`` seconds): it
opens the feature store service and the decision log, loads the champion readiness, churn and policy models
from the MLflow registry when there are any, and prepares the catalog. Per request ``recommend`` does only
one online lookup, two scorer calls, the vectorised guardrails and policy, and one decision-log insert.

Fallbacks keep the engine answering: without a readiness champion the points score stands in; without a churn
champion the risk is 0; without a policy champion the cold-start policy ranks by content metadata; when the
online store is unreachable the stage-fit rule decides greedily on the stored profile and ``degraded`` is set.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import structlog

from features.decision_log import (
    DecisionLog,
    DecisionRecord,
    EligibleAction,
    ExcludedCandidate,
    open_settings_decision_log,
)
from features.event_store import EventStore
from features.online import CONTACT_VIEWS, DecisionFeatures, entity_key, redis_key
from features.points import DEFAULT_POINTS, fit_points
from features.schemas import Channel, ContactProfile
from features.store import FeatureStoreService
from models.context import Candidate, ContactContext, Decision, Touch
from models.policy.base import ContentPolicy
from models.policy.decide import PreparedCatalog, context_snapshot, decide, prepare_catalog
from models.policy.encoding import encode_contexts
from models.policy.inverse_gap_weighting import InverseGapWeighting
from ripen.settings import Settings
from serving.metrics import ServingMetrics
from training.champions import NO_CHURN_VERSION, POINTS_VERSION, Champions, load_champions

if TYPE_CHECKING:
    from training.registry import LoadedScorer

log = structlog.get_logger(__name__)

FALLBACK_POLICY = "stage-fit-fallback"


@dataclass(frozen=True)
class RecommendInput:
    """One decision request, already validated by the route."""

    contact_id: str
    channel: Channel
    stage: str | None = None
    candidate_ids: tuple[str, ...] | None = None
    excluded_ids: tuple[str, ...] = ()
    n_slots: int = 1


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


def points_readiness(total: float) -> float:
    """The points score as a readiness stand-in: the share of the sales-alert threshold, capped at 1."""
    return float(min(1.0, max(0.0, total / DEFAULT_POINTS.sales_alert)))


@dataclass
class DecisionPipeline:
    """What decisions need, loaded once; ``recommend`` is the per-request path (thread-safe)."""

    settings: Settings
    decision_log: DecisionLog
    features: FeatureStoreService
    champions: Champions = field(default_factory=Champions)
    """The models in use; replaced as a whole (never mutated) when champions change."""
    catalog_ttl: float = 30.0
    _catalog: PreparedCatalog | None = None
    _catalog_loaded: float = float("-inf")
    _fallback_policy: ContentPolicy = field(default_factory=lambda: InverseGapWeighting(greedy=True))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- loading ----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: Settings) -> DecisionPipeline:
        """Open the decision log and feature store; load champions when the registry has any."""
        pipeline = cls(
            settings=settings,
            decision_log=open_settings_decision_log(settings),
            features=FeatureStoreService(settings),
        )
        pipeline.load_champions()
        pipeline.warm_up()
        return pipeline

    def warm_up(self) -> None:
        """Open the online reader now, so the first decision does not pay for Feast's setup."""
        try:
            self.features.online_features("__warm_up__", [])
        except Exception as exc:  # noqa: BLE001 - an unreachable online store is handled per request
            log.warning("online_store_unavailable_at_start", error=type(exc).__name__)

    def load_champions(self) -> None:
        """Load the registry's champions; models that cannot be loaded keep what serves now (logged)."""
        self.champions = load_champions(self.settings, current=self.champions)

    def catalog(self, store: EventStore) -> PreparedCatalog:
        """The prepared active catalog, re-read from the event store at most every ``catalog_ttl`` seconds."""
        now = time.monotonic()
        if self._catalog is None or now - self._catalog_loaded > self.catalog_ttl:
            with self._lock:
                if self._catalog is None or now - self._catalog_loaded > self.catalog_ttl:
                    blocks = store.list_content(active_only=True)
                    self._catalog = prepare_catalog([Candidate.from_block(b) for b in blocks])
                    self._catalog_loaded = now
        return self._catalog

    def refresh_catalog(self) -> None:
        """Forget the prepared catalog so the next decision re-reads it (after catalog edits)."""
        self._catalog = None

    # -- deciding ---------------------------------------------------------------------------------------
    def recommend(
        self, request: RecommendInput, store: EventStore, metrics: ServingMetrics, now: datetime | None = None
    ) -> Outcome:
        """Decide for one contact and log the decision durably before answering."""
        now = now or datetime.now(UTC)
        catalog = self.catalog(store)
        known = {c.content_id for c in catalog.candidates}
        excluded = set(request.excluded_ids)
        unknown: tuple[str, ...] = ()
        if request.candidate_ids is not None:
            unknown = tuple(dict.fromkeys(c for c in request.candidate_ids if c not in known))
            excluded |= known - set(request.candidate_ids)
        profile = store.get_profile(request.contact_id)
        ids = (
            [c for c in request.candidate_ids if c in known]
            if request.candidate_ids is not None
            else sorted(known)
        )
        degraded = False
        features: DecisionFeatures | None = None
        try:
            features = self.features.online_features(request.contact_id, ids, at=now)
        except Exception as exc:  # noqa: BLE001 - any online-store failure means: answer from the fallback
            degraded = True
            log.warning("online_store_unavailable", error=type(exc).__name__)
        champions = self.champions  # one snapshot for the whole decision, even if a reload swaps it
        readiness, churn, r_version, c_version = self.scores(features, profile, champions)
        context = self._context(request, profile, features, readiness, churn, now)
        policy, version = (
            (self._fallback_policy, FALLBACK_POLICY)
            if degraded
            else (champions.policy, champions.policy_version)
        )
        event_id = str(uuid.uuid4())
        try:
            decision = self._decide(context, catalog, policy, version, request, excluded, event_id, now)
        except ValueError as exc:  # a champion trained on other features: the cold-start prior decides
            log.error("policy_failed_using_fallback", policy=version, error=str(exc)[:200])
            decision = self._decide(
                context, catalog, self._fallback_policy, FALLBACK_POLICY, request, excluded, event_id, now
            )
        self.decision_log.log([self._record(decision, context, catalog)])
        metrics.count_decision(decision.action.value)
        counts: dict[str, int] = {}
        for exclusion in decision.exclusions:
            counts[exclusion.reason.value] = counts.get(exclusion.reason.value, 0) + 1
        metrics.count_exclusions(counts)
        return Outcome(
            decision=decision,
            readiness=readiness,
            churn_risk=churn,
            cold_start=features.cold_start if features is not None else profile is None,
            degraded=degraded,
            readiness_version=r_version,
            churn_version=c_version,
            features=features,
            unknown_candidates=unknown,
        )

    def _decide(
        self,
        context: ContactContext,
        catalog: PreparedCatalog,
        policy: ContentPolicy,
        version: str,
        request: RecommendInput,
        excluded: set[str],
        event_id: str,
        now: datetime,
    ) -> Decision:
        return decide(
            [context],
            catalog,
            policy,
            channel=request.channel,
            now=now,
            policy_version=version,
            excluded_ids=[excluded],
            event_ids=[event_id],
            n_slots=request.n_slots,
            seed=self.settings.seed,
        )[0]

    def scores(
        self,
        features: DecisionFeatures | None,
        profile: ContactProfile | None,
        champions: Champions | None = None,
    ) -> tuple[float, float, str, str]:
        """Readiness and churn risk with the versions that produced them (points / none as fallbacks)."""
        champions = champions or self.champions
        points_total = features.points.total if features is not None else fit_points(profile)
        readiness, r_version = points_readiness(points_total), POINTS_VERSION
        churn, c_version = 0.0, NO_CHURN_VERSION
        if features is not None and (champions.readiness is not None or champions.churn is not None):
            row = pd.DataFrame([features.model_row()])  # ~5 ms: built only when a champion will read it
            readiness, r_version = _score(champions.readiness, row, readiness, r_version, "readiness")
            churn, c_version = _score(champions.churn, row, churn, c_version, "churn")
        return readiness, churn, r_version, c_version

    def _context(
        self,
        request: RecommendInput,
        profile: ContactProfile | None,
        features: DecisionFeatures | None,
        readiness: float,
        churn: float,
        now: datetime,
    ) -> ContactContext:
        consumed = features.consumed_content_ids if features is not None else frozenset()
        touches: tuple[Touch, ...] = ()
        base = profile or ContactProfile(contact_id=request.contact_id)
        stage = request.stage or base.lifecycle_stage
        if features is not None and features.days_since_last_touch is not None:
            touches = (Touch(at=now - timedelta(days=features.days_since_last_touch), stage=stage),)
        context = ContactContext.from_profile(
            base, consumed_ids=consumed, touches=touches, readiness=readiness, churn_risk=churn
        )
        if request.stage is not None:
            context = ContactContext(**{**context.__dict__, "stage": request.stage})
        return context

    def _record(
        self, decision: Decision, context: ContactContext, catalog: PreparedCatalog
    ) -> DecisionRecord:
        """The decision-log row, reusing the catalog's encoded action features (no re-encoding)."""
        position = {c.content_id: j for j, c in enumerate(catalog.candidates)}
        return DecisionRecord(
            event_id=decision.event_id,
            decided_at=decision.decided_at,
            contact_id=decision.contact_id,
            action=decision.action.value,
            policy_version=decision.policy_version,
            content_id=decision.content_id,
            probability=decision.probability,
            context=context_snapshot(context),
            context_features=tuple(float(v) for v in encode_contexts([context])[0]),
            eligible=tuple(
                EligibleAction(cid, p, tuple(float(v) for v in catalog.action_features[position[cid]]))
                for cid, p in decision.eligible_probabilities.items()
            ),
            exclusions=tuple(ExcludedCandidate(e.content_id, e.reason.value) for e in decision.exclusions),
            wait_until=decision.wait_until,
        )

    # -- erasure ----------------------------------------------------------------------------------------
    def erase_online(self, contact_id: str) -> bool:
        """Delete the contact's online rows (Redis hash or SQLite rows); True if any existed."""
        config = self.features.feast.config
        project, version = config.project, config.entity_key_serialization_version
        if config.online_store.type == "redis":
            import redis

            client = redis.Redis.from_url(self.settings.redis_url)
            try:
                return bool(client.delete(redis_key(project, "contact_id", contact_id, version)))
            finally:
                client.close()
        from feast.infra.key_encoding_utils import serialize_entity_key

        path = config.online_store.path
        db = path if path.startswith("/") else str(self.features.repo_dir / path)
        key = serialize_entity_key(entity_key("contact_id", contact_id), version)
        deleted = 0
        with sqlite3.connect(db) as conn:
            for view in CONTACT_VIEWS:
                try:
                    deleted += conn.execute(
                        f'DELETE FROM "{project}_{view}" WHERE entity_key = ?', [key]
                    ).rowcount
                except sqlite3.OperationalError:  # the view was never materialized: nothing stored
                    continue
        return deleted > 0

    def close(self) -> None:
        self.decision_log.close()


def _score(
    model: LoadedScorer | None, row: pd.DataFrame, default: float, default_version: str, kind: str
) -> tuple[float, str]:
    """``model``'s probability for ``row`` and its version; the fallback when there is none or it fails."""
    if model is None:
        return default, default_version
    try:
        value = float(np.clip(model.predict(row)[0], 0.0, 1.0))
    except Exception as exc:  # noqa: BLE001 - a scorer failure must not fail the decision
        log.error("scorer_failed_using_fallback", kind=kind, error=str(exc)[:200])
        return default, default_version
    return value, f"{model.name}/{model.version}"


def contact_hash(contact_id: str) -> str:
    """The audit's stand-in for a contact id (the same hash the stores use)."""
    return hashlib.sha256(contact_id.encode()).hexdigest()

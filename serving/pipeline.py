"""The decision pipeline of ``POST /v1/recommend`` and its batch form: stores → decision core → log.

``DecisionPipeline.load`` runs once at app start (and the catalog again every ``catalog_ttl`` seconds): it
opens the feature store service and the decision log, loads the champion readiness, churn and policy models
from the MLflow registry when there are any, and prepares the catalog. ``recommend`` is ``recommend_batch``
with one contact: read profiles and online features (one fast lookup, or bulk reads for many), hand them to
the I/O-free core ``models.decision_batch.decide_contacts`` (scores, guardrails, policy), and insert the
decision-log records before answering.

Fallbacks keep the engine answering: without a readiness champion the points score stands in; without a churn
champion the risk is 0; without a policy champion the cold-start policy ranks by content metadata; when the
online store is unreachable the stage-fit rule decides greedily on the stored profile and ``degraded`` is set.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from features.bulk_lookup import BulkReader, read_profiles
from features.decision_log import DecisionLog, DecisionRecord, open_settings_decision_log
from features.event_store import EventStore
from features.online import CONTACT_VIEWS, DecisionFeatures, entity_key, redis_client, redis_key
from features.schemas import Channel, ContactProfile
from features.store import FeatureStoreService
from models.context import Candidate
from models.decision_batch import (
    FALLBACK_POLICY,
    ContactData,
    ContactRequest,
    Outcome,
    decide_contacts,
    points_readiness,
    score_contacts,
)
from models.policy.base import ContentPolicy
from models.policy.decide import PreparedCatalog, prepare_catalog
from models.policy.inverse_gap_weighting import InverseGapWeighting
from ripen.settings import Settings
from serving.metrics import ServingMetrics
from training.champions import Champions, load_champions

log = structlog.get_logger(__name__)

__all__ = [
    "FALLBACK_POLICY",
    "DecidedBatch",
    "DecisionPipeline",
    "Outcome",
    "RecommendInput",
    "points_readiness",
]


@dataclass(frozen=True)
class RecommendInput:
    """One decision request, already validated by the route."""

    contact_id: str
    channel: Channel
    stage: str | None = None
    candidate_ids: tuple[str, ...] | None = None
    excluded_ids: tuple[str, ...] = ()
    n_slots: int = 1
    event_id: str | None = None
    """The decision's id; a random one when omitted (batch jobs pass deterministic ids)."""

    def contact_request(self) -> ContactRequest:
        return ContactRequest(
            self.contact_id, self.stage, self.candidate_ids, self.excluded_ids, event_id=self.event_id
        )


@dataclass(frozen=True)
class DecidedBatch:
    """Decisions made and not yet logged: ``outcomes`` in request order (``None``: rejected unknown
    contact) and the decision-log ``records`` that must be committed before any answer is given."""

    outcomes: list[Outcome | None]
    records: list[DecisionRecord]

    def count(self, metrics: ServingMetrics) -> None:
        """Count the actions and guardrail exclusions: one metric update per label, not per decision."""
        actions: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for outcome in self.outcomes:
            if outcome is not None:
                actions[outcome.decision.action.value] += 1
                reasons.update(e.reason.value for e in outcome.decision.exclusions)
        for action, n in actions.items():
            metrics.count_decision(action, n)
        metrics.count_exclusions(reasons)


@dataclass
class DecisionPipeline:
    """What decisions need, loaded once; ``recommend`` and ``recommend_batch`` are the per-request paths."""

    settings: Settings
    decision_log: DecisionLog
    features: FeatureStoreService
    champions: Champions = field(default_factory=Champions)
    """The models in use; replaced as a whole (never mutated) when champions change."""
    catalog_ttl: float = 30.0
    _catalog: PreparedCatalog | None = None
    _catalog_loaded: float = float("-inf")
    _fallback_policy: ContentPolicy = field(default_factory=lambda: InverseGapWeighting(greedy=True))
    _bulk_reader: BulkReader | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def local_reads(self) -> bool:
        """Whether every read of a decision is a local file (SQLite event and online stores), so a decision
        cannot hang on a stalled network server."""
        return local_reads(self.settings)

    # -- loading ----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: Settings) -> DecisionPipeline:
        """Open the decision log and feature store; load champions when the registry has any."""
        pipeline = cls(
            settings=settings,
            decision_log=open_settings_decision_log(settings, serving=True),
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
        """Decide for one contact and log the decision durably before answering (the batch path, n = 1)."""
        outcome = self.recommend_batch([request], store, metrics, now)[0]
        assert outcome is not None  # only rejected unknown contacts have none
        return outcome

    def recommend_batch(
        self,
        requests: Sequence[RecommendInput],
        store: EventStore,
        metrics: ServingMetrics,
        now: datetime | None = None,
        *,
        reject_unknown: bool = False,
    ) -> list[Outcome | None]:
        """Decide for many contacts in one vectorised pass, log every decision durably, answer in order.

        One snapshot of champions and catalog serves the whole batch; requests are grouped by channel and
        slot count (the policy decides a group at once). Callers remove duplicate contacts first. With
        ``reject_unknown`` a contact without profile and features is not decided (``None`` in its place).
        """
        decided = self.decide_batch(requests, store, now, reject_unknown=reject_unknown)
        self.decision_log.log(decided.records)
        decided.count(metrics)
        return decided.outcomes

    def decide_batch(
        self,
        requests: Sequence[RecommendInput],
        store: EventStore,
        now: datetime | None = None,
        *,
        reject_unknown: bool = False,
    ) -> DecidedBatch:
        """``recommend_batch`` before its log commit: the outcomes and the records to log before answering."""
        now = now or datetime.now(UTC)
        catalog = self.catalog(store)
        champions = self.champions  # one snapshot for the whole batch, even if a reload swaps it
        data = self.contact_data([r.contact_id for r in requests], store, catalog, now)
        outcomes: list[Outcome | None] = [None] * len(requests)
        records: list[DecisionRecord] = []
        groups: dict[tuple[Channel, int], list[int]] = {}
        for i, r in enumerate(requests):
            if not (reject_unknown and data[i].unknown):
                groups.setdefault((r.channel, r.n_slots), []).append(i)
        for (channel, n_slots), rows in groups.items():
            result = decide_contacts(
                [requests[i].contact_request() for i in rows],
                [data[i] for i in rows],
                catalog,
                champions,
                channel=channel,
                now=now,
                n_slots=n_slots,
                seed=self.settings.seed,
                fallback_policy=self._fallback_policy,
            )
            records.extend(result.records)
            for i, decided in zip(rows, result.outcomes, strict=True):
                outcomes[i] = decided
        return DecidedBatch(outcomes, records)

    def contact_data(
        self, contact_ids: Sequence[str], store: EventStore, catalog: PreparedCatalog, now: datetime
    ) -> list[ContactData]:
        """Profiles and online features of the contacts (``features=None`` when the online store is down).

        One contact goes through the single fast lookup; more are read in bulk (same rows, same maths).
        """
        ids = catalog.sorted_content_ids
        single = len(contact_ids) == 1
        profiles = (
            {contact_ids[0]: store.get_profile(contact_ids[0])}
            if single
            else read_profiles(store, contact_ids)
        )
        features: Sequence[DecisionFeatures | None]
        try:
            if single:
                features = [self.features.online_features(contact_ids[0], ids, at=now)]
            else:
                features = self._bulk().read(contact_ids, ids, now)
        except Exception as exc:  # noqa: BLE001 - any online-store failure means: answer from the fallback
            log.warning("online_store_unavailable", error=type(exc).__name__)
            features = [None] * len(contact_ids)
        return [ContactData(profiles.get(c), f) for c, f in zip(contact_ids, features, strict=True)]

    def _bulk(self) -> BulkReader:
        if self._bulk_reader is None:
            with self._lock:
                if self._bulk_reader is None:
                    self._bulk_reader = BulkReader(self.features)
        return self._bulk_reader

    def scores(
        self,
        features: DecisionFeatures | None,
        profile: ContactProfile | None,
        champions: Champions | None = None,
    ) -> tuple[float, float, str, str]:
        """Readiness and churn risk with the versions that produced them (points / none as fallbacks)."""
        readiness, churn, r_versions, c_versions = score_contacts(
            [ContactData(profile, features)], champions or self.champions
        )
        return float(readiness[0]), float(churn[0]), r_versions[0], c_versions[0]

    # -- erasure ----------------------------------------------------------------------------------------
    def erase_online(self, contact_id: str) -> bool:
        """Delete the contact's online rows (Redis hash or SQLite rows); True if any existed."""
        config = self.features.feast.config
        project, version = config.project, config.entity_key_serialization_version
        if config.online_store.type == "redis":
            client = redis_client(self.settings.redis_url, self.settings.redis_timeout_seconds)
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
        if self._bulk_reader is not None:
            self._bulk_reader.close()
        self.decision_log.close()


def local_reads(settings: Settings) -> bool:
    """True for SQLite event and online stores: their reads are local files, never a network round trip."""
    return settings.event_store_url.startswith("sqlite") and settings.online_store == "sqlite"


def contact_hash(contact_id: str) -> str:
    """The audit's stand-in for a contact id (the same hash the stores use)."""
    return hashlib.sha256(contact_id.encode()).hexdigest()

"""Point-in-time training sets for the readiness and churn scorers, built through the real feature store.

Events (from the event store or a simulation) are sampled into labelled snapshots (``training.labels``);
each snapshot's features come from Feast's as-of join (``FeatureStoreService.historical_features``), so a row
sees only events at or before its ``snapshot_time`` while its label looks only after it. The points score of
the same retrieval (``points_score_now``) is kept as ``baseline_score`` so every run can compare model and
points on the same test window.

Training rows are capped per contact (:class:`SnapshotSampling`), so long histories do not dominate the fit.
The comparison with points (:func:`compare_with_points`) scores every contact on every grid date of the test
window instead (:func:`grid_snapshots_from`), as sales would rank its leads each week: in 2,000-contact,
240-day worlds the capped sample kept a fifth of the test window's snapshots and 11 to 21 of its 35 to 51
ready contacts, too few to tell model and points apart.

The contact-profile table holds each contact's *latest* state and is joined to earlier snapshots too, so its
funnel and consent columns (``lead_status``, ``lifecycle_stage``, ``is_customer``, ``consent_email``) would
tell a snapshot its own future; they are left out of the training frame (:data:`FINAL_STATE_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import structlog

from features.event_store import EventStore, open_settings_event_store
from features.schemas import ContactProfile, ContentBlock
from features.store import FeatureStoreService
from ripen.settings import Settings
from training.labels import CHURN_HORIZON, READINESS_HORIZON, as_utc_ns, sample_snapshots
from training.score_comparison import ScoreComparison, compare_scores
from training.scorer_training import TrainingResult, fit_and_evaluate, train_and_register

log = structlog.get_logger(__name__)

ScorerKind = Literal["readiness", "churn"]
SERVICES: dict[str, str] = {"readiness": "readiness_v1", "churn": "churn_v1"}
FINAL_STATE_COLUMNS = ("lead_status", "lifecycle_stage", "is_customer", "consent_email")
"""Profile columns stored as the contact's final state: joined to past snapshots they would leak the label."""
KEY_COLUMNS = ("contact_id", "event_timestamp", "request_ts")
BASELINE_FEATURE = "points_score_now"
RETRIEVAL_CHUNK_ROWS = 10_000
"""Snapshots per Feast retrieval: its Dask join holds every row's joined tables at once (a 200k-row call of a
5,000-contact year ran out of 23 GB), so larger sets are retrieved in chunks of this many rows."""


@dataclass(frozen=True)
class SnapshotSampling:
    """How snapshots are drawn: a grid of ``every_days``, at most ``max_per_contact`` per contact."""

    every_days: int = 7
    max_per_contact: int = 4
    horizon_days: int | None = None
    """Label window; ``None`` means the kind's default (30 days readiness, 90 days churn)."""
    seed: int = 7

    def __post_init__(self) -> None:
        if self.every_days < 1:
            raise ValueError(f"`every_days` must be >= 1, but got {self.every_days}")
        if self.horizon_days is not None and self.horizon_days < 1:
            raise ValueError(f"`horizon_days` must be >= 1, but got {self.horizon_days}")

    @property
    def horizon(self) -> pd.Timedelta | None:
        return pd.Timedelta(days=self.horizon_days) if self.horizon_days is not None else None


def prepare_feature_store(
    store: FeatureStoreService,
    events: pd.DataFrame,
    profiles: Sequence[ContactProfile],
    catalog: Sequence[ContentBlock],
) -> FeatureStoreService:
    """Write catalog, profiles and the offline tables from ``events``, then register them with Feast."""
    if catalog:
        store.write_contents(catalog)
    store.build_offline(events, profiles)
    store.apply()
    return store


def events_from_store(event_store: EventStore) -> pd.DataFrame:
    """All attributable events of the event store, in the export schema."""
    return event_store.read_frame()


def point_in_time_features(
    store: FeatureStoreService, snapshots: pd.DataFrame, kind: ScorerKind
) -> pd.DataFrame:
    """Features of the kind's feature service as of each snapshot, in the order of ``snapshots``.

    Returns the model's feature columns plus ``baseline_score`` (the points score at the snapshot); string
    columns become pandas categoricals so LightGBM splits on them natively.
    """
    if kind not in SERVICES:
        raise ValueError(f"`kind` must be one of {sorted(SERVICES)}, but got {kind!r}")
    missing = [c for c in ("contact_id", "snapshot_time") if c not in snapshots.columns]
    if missing:
        raise ValueError(f"`snapshots` lacks columns {missing}")
    entity = pd.DataFrame(
        {
            "contact_id": snapshots["contact_id"].astype(str).to_numpy(),
            "event_timestamp": as_utc_ns(snapshots["snapshot_time"]).to_numpy(),
            "row": range(len(snapshots)),
        }
    )
    chunks = [
        store.historical_features(entity.iloc[start : start + RETRIEVAL_CHUNK_ROWS], SERVICES[kind])
        for start in range(0, len(entity), RETRIEVAL_CHUNK_ROWS)
    ]
    raw = pd.concat(chunks, ignore_index=True).sort_values("row").reset_index(drop=True)
    if len(raw) != len(snapshots):
        raise ValueError(
            f"feature retrieval returned {len(raw)} rows for {len(snapshots)} snapshots; "
            "duplicate (contact_id, snapshot_time) rows are not supported"
        )
    if BASELINE_FEATURE not in raw.columns:
        raise ValueError(f"feature service {SERVICES[kind]} does not provide `{BASELINE_FEATURE}`")
    drop = {*KEY_COLUMNS, "row", *FINAL_STATE_COLUMNS}
    features = raw[[c for c in raw.columns if c not in drop]].copy()
    for col in features.columns:
        values = features[col]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            features[col] = values.astype("category")
        else:
            # nullable Int64 / boolean columns become floats: NaN is missing, as LightGBM and MLflow expect
            features[col] = pd.to_numeric(values, errors="raise").astype("float64")
    features["baseline_score"] = raw[BASELINE_FEATURE].astype(float).fillna(0.0)
    return features


def labelled_snapshots(
    events: pd.DataFrame, kind: ScorerKind, sampling: SnapshotSampling | None = None
) -> pd.DataFrame:
    """The labelled snapshots (``contact_id``, ``snapshot_time``, ``label``) the training set is built on.

    Raises a clear error when no snapshot has a complete label window or all share one label.
    """
    sampling = sampling or SnapshotSampling()
    if events.empty:
        raise ValueError("`events` is empty: there is nothing to build a training set from")
    snapshots = _grid_snapshots(events, kind, sampling, sampling.max_per_contact)
    if snapshots.empty:
        times = pd.to_datetime(events["timestamp"], utc=True)
        raise ValueError(
            f"no {kind} snapshot has a complete label window: the events span {times.max() - times.min()}, "
            "shorter than the horizon plus a snapshot interval"
        )
    if snapshots["label"].nunique() < 2:
        raise ValueError(f"all {len(snapshots)} {kind} snapshots have label {snapshots['label'].iloc[0]}")
    return snapshots


def _grid_snapshots(
    events: pd.DataFrame, kind: ScorerKind, sampling: SnapshotSampling, max_per_contact: int | None
) -> pd.DataFrame:
    return sample_snapshots(
        events,
        kind,
        every=pd.Timedelta(days=sampling.every_days),
        max_per_contact=max_per_contact,
        horizon=sampling.horizon,
        seed=sampling.seed,
    ).reset_index(drop=True)


def grid_snapshots_from(
    events: pd.DataFrame, kind: ScorerKind, sampling: SnapshotSampling, start: pd.Timestamp
) -> pd.DataFrame:
    """Every labelled grid snapshot at or after ``start``, uncapped: each contact on each grid date.

    The grid is the one :func:`labelled_snapshots` draws its capped sample from (same ``every_days``, same
    per-contact start), so the capped rows at or after ``start`` are a subset of these, with the same labels.
    Rows of one contact are dependent; :func:`training.score_comparison.compare_scores` resamples contacts.
    """
    snapshots = _grid_snapshots(events, kind, sampling, None)
    return snapshots[snapshots["snapshot_time"] >= as_utc_ns(pd.Series([start])).iloc[0]].reset_index(
        drop=True
    )


def training_frame(store: FeatureStoreService, snapshots: pd.DataFrame, kind: ScorerKind) -> pd.DataFrame:
    """Point-in-time features of labelled ``snapshots`` plus ``label`` and ``snapshot_time``, row for row."""
    features = point_in_time_features(store, snapshots, kind)
    frame = features.assign(
        label=snapshots["label"].astype(int).to_numpy(),
        snapshot_time=snapshots["snapshot_time"].to_numpy(),
    )
    log.info(
        "training_set_built",
        kind=kind,
        rows=len(frame),
        contacts=int(snapshots["contact_id"].nunique()),
        positive_rate=round(float(frame["label"].mean()), 4),
        features=frame.shape[1] - 3,
    )
    return frame


def build_training_set(
    store: FeatureStoreService,
    events: pd.DataFrame,
    kind: ScorerKind,
    sampling: SnapshotSampling | None = None,
) -> pd.DataFrame:
    """One row per labelled snapshot: feature columns, ``label``, ``snapshot_time``, ``baseline_score``.

    ``store`` must already hold the offline tables for ``events`` (see :func:`prepare_feature_store`). The
    frame fits ``training.scorer_training.train_and_register`` as is.
    """
    return training_frame(store, labelled_snapshots(events, kind, sampling), kind)


@dataclass(frozen=True)
class BaselineComparison:
    """A scorer fitted on a prepared store's events and compared with the points score on its test window.

    ``comparison`` is on every grid snapshot of the test window (:func:`grid_snapshots_from`);
    ``sampled_comparison`` on the capped sample's test rows only, the rows ``ripen train`` reports on.
    ``n_rows`` and ``n_positives`` count the capped training set (train, valid and test parts).
    """

    kind: ScorerKind
    n_rows: int
    n_positives: int
    comparison: ScoreComparison
    sampled_comparison: ScoreComparison
    test_start: pd.Timestamp


def compare_with_points(
    store: FeatureStoreService,
    events: pd.DataFrame,
    kind: ScorerKind,
    sampling: SnapshotSampling | None = None,
    *,
    seed: int = 7,
    n_resamples: int = 1000,
) -> BaselineComparison:
    """Fit on the purged time split (no MLflow) and compare model and points score on the test window.

    The scorer is fitted and early-stopped on the capped sample's train and valid parts, as in training; the
    test window starts at the capped sample's first test row and holds every contact on every grid date from
    there (:func:`grid_snapshots_from`), so the comparison rests on all ready contacts of the window, not a
    fifth of them. Both parts are fixed before any model is fitted; the purge gap lies before the window as
    before. The bootstrap resamples contacts (``training.score_comparison``); nothing is logged or registered.
    """
    sampling = sampling or SnapshotSampling()
    snapshots = labelled_snapshots(events, kind, sampling)
    # the contact id as index: the time split keeps it, so the bootstrap can resample contacts
    frame = training_frame(store, snapshots, kind).set_axis(snapshots["contact_id"].to_numpy())
    horizon = sampling.horizon or (READINESS_HORIZON if kind == "readiness" else CHURN_HORIZON)
    held_out = fit_and_evaluate(frame, horizon=horizon, seed=seed)
    sampled = held_out.test
    test_start = pd.Timestamp(pd.to_datetime(sampled["snapshot_time"], utc=True).min())
    window = grid_snapshots_from(events, kind, sampling, test_start)
    test = training_frame(store, window, kind).set_axis(window["contact_id"].to_numpy())
    probability = held_out.scorer.predict_proba(test[held_out.features])[:, 1]

    def compare(rows: pd.DataFrame, model_score: np.ndarray) -> ScoreComparison:
        return compare_scores(
            rows["label"].to_numpy(),
            model_score,
            rows["baseline_score"].to_numpy(),
            groups=rows.index.to_numpy(),
            n_resamples=n_resamples,
            seed=seed,
        )

    return BaselineComparison(
        kind,
        len(frame),
        int(frame["label"].sum()),
        compare(test, probability),
        compare(sampled, held_out.probability),
        test_start,
    )


@dataclass(frozen=True)
class StoreTrainingOutcome:
    """A training run on the project's stores: the frame's size and the registered, gated result."""

    kind: ScorerKind
    n_rows: int
    positive_rate: float
    result: TrainingResult

    def summary(self) -> dict[str, object]:
        """Model and points-score metrics on the same test window, plus registration and gate outcome."""
        out: dict[str, object] = {
            "model": self.kind,
            "n_rows": self.n_rows,
            "positive_rate": round(self.positive_rate, 5),
            "test_window": self.result.window.test_label,
            **{k: v for k, v in self.result.test.as_dict().items() if v is not None},
        }
        if self.result.baseline is not None:
            out.update(
                {f"baseline_{k}": v for k, v in self.result.baseline.as_dict().items() if v is not None}
            )
        out.update(
            registered_version=self.result.version,
            promoted=self.result.gate.promoted,
            gate_reason=self.result.gate.reason,
        )
        return out


def train_on_events(
    settings: Settings,
    store: FeatureStoreService,
    events: pd.DataFrame,
    kind: ScorerKind,
    sampling: SnapshotSampling | None = None,
    dask_scheduler: str | None = None,
) -> StoreTrainingOutcome:
    """Build the training set from a prepared feature store and train, register and gate the scorer."""
    sampling = sampling or SnapshotSampling()
    frame = build_training_set(store, events, kind, sampling)
    result = train_and_register(
        frame, kind=kind, settings=settings, horizon=sampling.horizon, dask_scheduler=dask_scheduler
    )
    return StoreTrainingOutcome(kind, len(frame), float(frame["label"].mean()), result)


def train_from_stores(
    settings: Settings,
    kind: ScorerKind,
    sampling: SnapshotSampling | None = None,
    dask_scheduler: str | None = None,
) -> StoreTrainingOutcome:
    """Read events, profiles and catalog from the event store ``settings`` names, rebuild the offline
    feature tables from them, then train, register and gate (``ripen train readiness|churn`` without
    ``--data``)."""
    with open_settings_event_store(settings) as event_store:
        events = events_from_store(event_store)
        profiles = event_store.list_profiles()
        catalog = event_store.list_content(active_only=False)
    if events.empty:
        raise ValueError("the event store has no events: ingest some (or run `ripen demo`) before training")
    store = prepare_feature_store(FeatureStoreService(settings), events, profiles, catalog)
    return train_on_events(settings, store, events, kind, sampling, dask_scheduler)

"""The end-to-end demo pipeline behind `ripen demo`: simulate, ingest, log decisions, materialize, train the
scorers and the content policy, report the champions.

Each step is a small function that takes what the previous ones produced and reports what it did, so the CLI
can show progress and print a summary (human or JSON). Every step is safe to re-run on the same stores:
events and decisions are stored once by id, and a retrained model is registered as a new version that moves
the ``champion`` alias only if it passes its gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import structlog

from features.decision_log import DecisionRecord, EligibleAction, open_settings_decision_log
from features.event_store import EventStore, open_settings_event_store
from features.ingest import ingest_file
from features.schemas import Channel, LeadStatus
from features.store import FeatureStoreService
from models.context import Candidate, ContactContext
from models.policy.decide import context_snapshot
from models.policy.encoding import encode_candidates, encode_contexts
from ripen.settings import Settings
from training.rewards import RewardConfig
from training.simulation import (
    WAIT,
    FixedRulePolicy,
    JourneySimulator,
    ReferencePolicy,
    SimulationResult,
    UniformRandomPolicy,
)

if TYPE_CHECKING:  # training_sets imports MLflow and LightGBM: loaded when a scorer is trained
    from training.training_sets import SnapshotSampling

log = structlog.get_logger(__name__)

LoggingPolicy = Literal["random", "fixed"]
LOGGING_POLICY_VERSION = "demo-uniform-random"
"""``policy_version`` of the simulated decisions in the decision log."""
NURTURE_STAGES = ("awareness", "information", "consultation")
Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: how far a long step is; the CLI draws bars from it."""


@dataclass(frozen=True)
class DemoConfig:
    """Size of the demo world. The default world keeps positives in every part of the readiness time split
    (1,000 contacts did not); it takes about two minutes of CPU, mostly Feast's point-in-time retrieval."""

    contacts: int = 2_000
    days: int = 180
    seed: int = 7
    logging_policy: LoggingPolicy = "random"
    """Uniform-random logging gives the exact propensities off-policy evaluation needs."""
    readiness_horizon_days: int = 14
    churn_horizon_days: int = 21
    """Label windows: shorter than the production defaults (30/90 days) so that 180 simulated days leave a
    validation part longer than the window for the time split."""
    snapshots_per_contact: int = 2
    """Few snapshots per contact keep Feast's point-in-time retrieval inside the demo's time budget."""
    policy_decisions: int = 8_000
    """The latest simulated sends logged for the content policy: enough for a clear offline comparison."""
    end: date | None = None
    """The day the world ends on (at its midnight, UTC): today when None. Serving scores at wall-clock time,
    so a world ending today shows contacts as recently active as the simulation left them (a fixed past end
    made every contact look long inactive: served readiness ~1e-06). Only the dates depend on it: the same
    seed simulates the same journeys."""

    def start(self) -> datetime:
        """The first simulated day's midnight, UTC: ``days`` days before the world's end."""
        end = self.end or datetime.now(UTC).date()
        return datetime(end.year, end.month, end.day, tzinfo=UTC) - timedelta(days=self.days)


@dataclass
class StepReport:
    """What one step did: its name, wall time and a few numbers worth printing."""

    name: str
    seconds: float = 0.0
    numbers: dict[str, float | int | str] = field(default_factory=dict)


@dataclass
class DemoReport:
    """Everything the demo did, in order, the registry's champions after it and a contact worth showing."""

    data_dir: Path
    steps: list[StepReport] = field(default_factory=list)
    champions: dict[str, str | None] = field(default_factory=dict)
    contact_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "data_dir": str(self.data_dir),
            "seconds": round(sum(s.seconds for s in self.steps), 3),
            "steps": [{"name": s.name, "seconds": round(s.seconds, 3), **s.numbers} for s in self.steps],
            "champions": dict(self.champions),
            "contact_id": self.contact_id,
        }


@contextmanager
def _timed(report: DemoReport, name: str) -> Iterator[StepReport]:
    step = StepReport(name)
    started = time.perf_counter()
    yield step
    step.seconds = time.perf_counter() - started
    report.steps.append(step)
    log.info("demo_step", step=name, seconds=round(step.seconds, 3), **step.numbers)


def simulator(config: DemoConfig) -> JourneySimulator:
    """The demo's simulator, ending on ``config.end`` (today); it records each decision's eligible set, which
    the decision log keeps."""
    return JourneySimulator(
        n_contacts=config.contacts,
        n_days=config.days,
        seed=config.seed,
        start=config.start(),
        record_context=True,
    )


def simulate(sim: JourneySimulator, config: DemoConfig, progress: Progress) -> SimulationResult:
    """Run the journey simulator with the logging policy; the result has events, profiles, decisions."""
    policy: ReferencePolicy = (
        UniformRandomPolicy(seed=config.seed) if config.logging_policy == "random" else FixedRulePolicy()
    )
    return sim.run(policy, progress=lambda day: progress("simulate", day + 1, config.days))


def ingest(store: EventStore, result: SimulationResult, out_dir: Path, progress: Progress) -> dict[str, int]:
    """Load catalog, profiles and events into the event store (events through the CLI's file path)."""
    paths = result.write(out_dir)
    store.upsert_content(list(result.catalog))
    n_profiles = store.upsert_profiles(result.profiles())
    total = len(result.events)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress("ingest", done, total)

    summary = ingest_file(store, paths["events.parquet"], batch_size=5_000, on_batch=advance)
    return {
        "content_blocks": len(result.catalog),
        "profiles": n_profiles,
        "events_stored": summary.stored,
        "events_duplicate": summary.duplicates,
        "events_rejected": summary.rejected,
    }


def simulated_decisions(
    sim: JourneySimulator, result: SimulationResult, config: DemoConfig
) -> list[DecisionRecord]:
    """The simulation's latest sends as decision-log rows, encoded the way serving encodes its decisions.

    Only sends whose reward window closed inside the simulated period are kept, the latest
    ``config.policy_decisions`` of them. Each row keeps the uniform logger's exact probability (1 / eligible
    blocks) and the whole eligible set. Readiness and churn were not scored at simulated decision time: they
    are logged as 0, so the learned policy reads stage and funnel position, not the scores.
    """
    if config.logging_policy != "random":
        raise ValueError("`logging_policy` must be 'random' to log propensities a policy can learn from")
    if result.eligible is None:
        raise ValueError("the simulation must run with `record_context=True` to log eligible sets")
    frame = result.decisions
    window_days = -(-RewardConfig().window // timedelta(days=1))
    day = frame["day"].to_numpy()
    sends = np.flatnonzero((frame["chosen"].to_numpy() != WAIT) & (day < config.days - window_days))
    rows = sends[len(sends) - min(len(sends), config.policy_decisions) :]
    candidates = [Candidate.from_block(block) for block in result.catalog]
    action_features = [tuple(float(v) for v in row) for row in encode_candidates(candidates)]
    contact_ids = frame["contact_id"].astype(str).to_numpy()[rows]
    contexts = [
        ContactContext(
            contact_id=contact_id,
            stage=str(stage),
            lead_status=LeadStatus(str(status)),
            consents=frozenset({Channel.EMAIL}) if consent else frozenset(),
        )
        for contact_id, stage, status, consent in zip(
            contact_ids,
            frame["stage"].astype(str).to_numpy()[rows],
            frame["lead_status"].astype(str).to_numpy()[rows],
            frame["email_consent"].to_numpy()[rows],
            strict=True,
        )
    ]
    encoded = encode_contexts(contexts)
    chosen = frame["chosen"].to_numpy()
    propensity = frame["propensity"].to_numpy()
    records = []
    for k, (i, context) in enumerate(zip(rows, contexts, strict=True)):
        p = float(propensity[i])
        records.append(
            DecisionRecord(
                event_id=f"demo-{config.seed}-{int(day[i])}-{context.contact_id}",
                decided_at=sim.start + timedelta(days=int(day[i])),
                contact_id=context.contact_id,
                action="content",
                policy_version=LOGGING_POLICY_VERSION,
                content_id=candidates[int(chosen[i])].content_id,
                probability=p,
                context=context_snapshot(context),
                context_features=tuple(float(v) for v in encoded[k]),
                eligible=tuple(
                    EligibleAction(candidates[j].content_id, p, action_features[j])
                    for j in np.flatnonzero(result.eligible[i])
                ),
            )
        )
    return records


def log_decisions(
    settings: Settings, sim: JourneySimulator, result: SimulationResult, config: DemoConfig
) -> dict[str, float | int | str]:
    """Store the simulated sends in the decision log (once by id), where ``ripen train policy`` reads them."""
    try:
        records = simulated_decisions(sim, result, config)
    except ValueError as exc:
        log.warning("demo_decisions_skipped", reason=str(exc))
        return {"skipped": str(exc)}
    with open_settings_decision_log(settings) as decision_log:
        logged = decision_log.log(records)
        in_log = decision_log.count()
    return {
        "decisions": len(records),
        "stored": logged.stored,
        "duplicates": logged.duplicates,
        "decisions_in_log": in_log,
        "policy_version": LOGGING_POLICY_VERSION,
    }


def materialize(
    settings: Settings, store: EventStore, progress: Progress
) -> tuple[FeatureStoreService, pd.DataFrame]:
    """Build the offline feature tables from the event store, register them with Feast, fill the online
    store."""
    from training.training_sets import events_from_store, prepare_feature_store

    events = events_from_store(store)
    features = prepare_feature_store(
        FeatureStoreService(settings),
        events,
        store.list_profiles(),
        store.list_content(active_only=False),
    )
    end = pd.to_datetime(events["timestamp"], utc=True).max().to_pydatetime() + timedelta(seconds=1)
    views: list[str] = []

    def advance(name: str) -> None:
        views.append(name)
        progress("materialize", len(views), len(features.feast.list_feature_views()))

    features.materialize(end=end, progress=advance)
    return features, events


def check_trainable(
    events: pd.DataFrame, kind: Literal["readiness", "churn"], sampling: SnapshotSampling
) -> None:
    """Raise ``ValueError`` when training would fail on its snapshots (a time split that leaves a part empty,
    or a train or validation part without positives), before Feast's point-in-time retrieval, the slow part,
    runs for nothing. The snapshots are the ones training samples: same events, sampling and seed."""
    from training.labels import sample_snapshots, time_split

    snapshots = sample_snapshots(
        events,
        kind,
        every=pd.Timedelta(days=sampling.every_days),
        max_per_contact=sampling.max_per_contact,
        horizon=sampling.horizon,
        seed=sampling.seed,
    )
    if snapshots.empty or sampling.horizon is None:
        return  # training reports these cases itself, before any retrieval
    train, valid, _ = time_split(snapshots, "snapshot_time", gap=sampling.horizon)
    for name, part in (("train", train), ("validation", valid)):
        labels = part["label"].astype(int).unique()
        if len(labels) < 2:
            raise ValueError(
                f"the {name} part of the time split has only label {int(labels[0])} in {len(part)} "
                f"{kind} snapshots: a scorer needs positives and negatives (simulate more contacts)"
            )


def train_scorer(
    settings: Settings,
    features: FeatureStoreService,
    events: pd.DataFrame,
    kind: Literal["readiness", "churn"],
    config: DemoConfig,
) -> dict[str, float | int | str]:
    """Train, register and gate one scorer on point-in-time snapshots; model and points score side by side.

    A world too small or too short for a labelled, time-split training set is reported as skipped (with the
    reason), not as a failure of the demo.
    """
    from training.training_sets import SnapshotSampling, train_on_events

    horizon = config.readiness_horizon_days if kind == "readiness" else config.churn_horizon_days
    sampling = SnapshotSampling(
        every_days=7, max_per_contact=config.snapshots_per_contact, horizon_days=horizon, seed=config.seed
    )
    try:
        check_trainable(events, kind, sampling)
        outcome = train_on_events(settings, features, events, kind, sampling)
    except ValueError as exc:
        log.warning("demo_training_skipped", kind=kind, reason=str(exc))
        return {"skipped": str(exc)}
    test, base = outcome.result.test, outcome.result.baseline
    numbers: dict[str, float | int | str] = {
        "rows": outcome.n_rows,
        "positive_rate": round(outcome.positive_rate, 4),
        "horizon_days": horizon,
        "test_window": outcome.result.window.test_label,
        "roc_auc": round(test.roc_auc, 4),
        "pr_auc": round(test.pr_auc, 4),
        "version": outcome.result.version,
        "promoted": str(outcome.result.gate.promoted),
    }
    if base is not None:
        numbers.update(points_roc_auc=round(base.roc_auc, 4), points_pr_auc=round(base.pr_auc, 4))
    return numbers


def train_content_policy(settings: Settings, config: DemoConfig) -> dict[str, float | int | str]:
    """``ripen train policy`` on the logged decisions: rewards joined from the events, fit, offline
    estimate against the champion (or the logger), register, gate; too few decisions is a skip."""
    from training.policy_training import PolicyTrainingConfig, train_policy

    try:
        result = train_policy(settings, PolicyTrainingConfig(seed=config.seed))
    except ValueError as exc:
        log.warning("demo_policy_skipped", reason=str(exc))
        return {"skipped": str(exc)}
    report = result.report
    numbers: dict[str, float | int | str] = {
        "n_train": result.n_train,
        "n_eval": result.n_eval,
        "logged_value": round(report.logged.value, 4),
        "policy_value_dr": round(report.dr.value, 4),
        "policy_value_dr_ci_low": round(report.dr.ci_low, 4),
        "version": result.version,
        "promoted": str(result.promoted),
        "gate": result.reason,
    }
    if result.rewards_joined is not None:
        numbers["rewarded"] = result.rewards_joined.rewarded
    return numbers


def champion_versions(settings: Settings) -> dict[str, str | None]:
    """The version holding each model's ``champion`` alias (None: serving uses the fallback)."""
    from training.champions import CHURN_MODEL, READINESS_MODEL
    from training.policy_training import POLICY_MODEL_NAME
    from training.registry import champion_version
    from training.tracking import mlflow_client

    client = mlflow_client(settings)
    names = (READINESS_MODEL, CHURN_MODEL, POLICY_MODEL_NAME)
    return {name: champion_version(client, name) for name in names}


def showcase_contact(result: SimulationResult) -> str | None:
    """A contact the demo's examples use: a lead in nurturing with email consent and a median-or-busier
    engagement history (the first such id), so recommend picks content and the card has a timeline."""
    profiles = result.profiles_frame
    nurtured = profiles[
        (profiles["lead_status"] == LeadStatus.LEAD.value)
        & profiles["lifecycle_stage"].isin(NURTURE_STAGES)
        & profiles["consent_email"].astype(bool)
    ]["contact_id"]
    counts = result.events["contact_id"].value_counts()
    counts = counts[counts.index.isin(nurtured)]
    if counts.empty:
        return None
    busy = counts[counts >= counts.median()]
    return str(min(busy.index))


def run_demo(settings: Settings, config: DemoConfig, progress: Progress) -> DemoReport:
    """Run every demo step against the stores ``settings`` names; re-running is safe (idempotent ingest)."""
    settings.ensure_dirs()
    report = DemoReport(data_dir=settings.data_dir)
    sim = simulator(config)
    with _timed(report, "simulate") as step:
        result = simulate(sim, config, progress)
        s = result.summary
        step.numbers.update(
            contacts=s.n_contacts,
            days=s.n_days,
            events=s.n_events,
            decisions=s.n_decisions,
            sends=s.n_sends,
            reward=round(s.reward, 2),
            purchases=s.purchases,
            unsubscribes=s.unsubscribes,
        )
    with open_settings_event_store(settings) as store, _timed(report, "ingest") as step:
        step.numbers.update(ingest(store, result, settings.data_dir / "simulation", progress))
        step.numbers["events_in_store"] = store.count()
    with _timed(report, "log_decisions") as step:
        step.numbers.update(log_decisions(settings, sim, result, config))
    with open_settings_event_store(settings) as store, _timed(report, "materialize") as step:
        features, events = materialize(settings, store, progress)
        step.numbers.update(feature_views=len(features.feast.list_feature_views()), events=len(events))
    kinds: tuple[Literal["readiness", "churn"], ...] = ("readiness", "churn")
    for kind in kinds:
        with _timed(report, f"train_{kind}") as step:
            step.numbers.update(train_scorer(settings, features, events, kind, config))
    with _timed(report, "train_policy") as step:
        step.numbers.update(train_content_policy(settings, config))
    report.champions = champion_versions(settings)
    report.contact_id = showcase_contact(result)
    return report

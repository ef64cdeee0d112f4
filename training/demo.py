"""The end-to-end demo pipeline behind `ripen demo`: simulate, ingest, materialize, train the scorers.

Each step is a small function that takes what the previous ones produced and reports what it did, so the CLI
can show progress and print a summary (human or JSON).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pandas as pd
import structlog

from features.event_store import EventStore, open_settings_event_store
from features.ingest import ingest_file
from features.store import FeatureStoreService
from ripen.settings import Settings
from training.simulation import (
    FixedRulePolicy,
    JourneySimulator,
    ReferencePolicy,
    SimulationResult,
    UniformRandomPolicy,
)

log = structlog.get_logger(__name__)

LoggingPolicy = Literal["random", "fixed"]
Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: how far a long step is; the CLI draws bars from it."""


@dataclass(frozen=True)
class DemoConfig:
    """Size of the demo world; the defaults run in about a minute on two cores."""

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


@dataclass
class StepReport:
    """What one step did: its name, wall time and a few numbers worth printing."""

    name: str
    seconds: float = 0.0
    numbers: dict[str, float | int | str] = field(default_factory=dict)


@dataclass
class DemoReport:
    """Everything the demo did, in order."""

    data_dir: Path
    steps: list[StepReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "data_dir": str(self.data_dir),
            "steps": [{"name": s.name, "seconds": round(s.seconds, 3), **s.numbers} for s in self.steps],
        }


@contextmanager
def _timed(report: DemoReport, name: str) -> Iterator[StepReport]:
    step = StepReport(name)
    started = time.perf_counter()
    yield step
    step.seconds = time.perf_counter() - started
    report.steps.append(step)
    log.info("demo_step", step=name, seconds=round(step.seconds, 3), **step.numbers)


def simulate(config: DemoConfig, progress: Progress) -> SimulationResult:
    """Run the journey simulator with the logging policy; the result has events, profiles, decisions."""
    sim = JourneySimulator(n_contacts=config.contacts, n_days=config.days, seed=config.seed)
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


def run_demo(settings: Settings, config: DemoConfig, progress: Progress) -> DemoReport:
    """Run every demo step against the stores ``settings`` names; re-running is safe (idempotent ingest)."""
    settings.ensure_dirs()
    report = DemoReport(data_dir=settings.data_dir)
    with _timed(report, "simulate") as step:
        result = simulate(config, progress)
        s = result.summary
        step.numbers.update(
            contacts=s.n_contacts,
            days=s.n_days,
            events=s.n_events,
            decisions=s.n_decisions,
            reward=round(s.reward, 2),
            purchases=s.purchases,
            unsubscribes=s.unsubscribes,
        )
    with open_settings_event_store(settings) as store, _timed(report, "ingest") as step:
        step.numbers.update(ingest(store, result, settings.data_dir / "simulation", progress))
        step.numbers["events_in_store"] = store.count()
    with open_settings_event_store(settings) as store, _timed(report, "materialize") as step:
        features, events = materialize(settings, store, progress)
        step.numbers.update(feature_views=len(features.feast.list_feature_views()), events=len(events))
    kinds: tuple[Literal["readiness", "churn"], ...] = ("readiness", "churn")
    for kind in kinds:
        with _timed(report, f"train_{kind}") as step:
            step.numbers.update(train_scorer(settings, features, events, kind, config))
    return report

"""The end-to-end demo pipeline behind `ripen demo`: simulate, ingest, and (as they land) features, training.

Each step is a small function that takes what the previous ones produced and reports what it did, so the CLI
can show progress and print a summary (human or JSON).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from features.event_store import EventStore, open_settings_event_store
from features.ingest import ingest_file
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
    return report

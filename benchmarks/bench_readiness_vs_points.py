"""Benchmark the readiness model against the classic points score on simulated worlds.

Per seed: simulate a world (uniform-random content policy), build the Feast offline tables, sample labelled
point-in-time snapshots, fit on a purged time split and score the latest part; the points score is
evaluated on the same test rows. Prints one table row per seed and the mean ± sd. Not a test. Run:
``python benchmarks/bench_readiness_vs_points.py --contacts 5000 --days 365 --seeds 7 8 9``.

No ``from __future__ import annotations`` here: Feast re-reads the on-demand view's function with
``get_type_hints`` in this script's namespace, where postponed annotations of ``__main__`` fail to resolve.
"""

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from features.store import FeatureStoreService
from models.metrics import BinaryMetrics
from ripen.settings import Settings
from training.scorer_training import fit_and_evaluate
from training.simulation import JourneySimulator, UniformRandomPolicy
from training.training_sets import SnapshotSampling, build_training_set, prepare_feature_store


@dataclass(frozen=True)
class SeedResult:
    """Model and points score on one world's test window."""

    seed: int
    rows: int
    positives: int
    test_rows: int
    test_positives: int
    model: BinaryMetrics
    points: BinaryMetrics
    seconds: float


def run_seed(
    contacts: int, days: int, seed: int, sampling: SnapshotSampling, root: Path, progress: Progress
) -> SeedResult:
    """One simulated world through the real feature store, scorer and metrics."""
    started = time.perf_counter()
    task = progress.add_task(f"seed {seed}: simulate", total=4)
    world = JourneySimulator(n_contacts=contacts, n_days=days, seed=seed).run(UniformRandomPolicy(seed=seed))
    progress.update(task, advance=1, description=f"seed {seed}: feature tables")
    settings = Settings(data_dir=root / f"seed{seed}")
    settings.ensure_dirs()
    catalog = list(world.catalog)
    store = prepare_feature_store(FeatureStoreService(settings), world.events, world.profiles(), catalog)
    progress.update(task, advance=1, description=f"seed {seed}: point-in-time snapshots")
    frame = build_training_set(store, world.events, "readiness", sampling)
    progress.update(task, advance=1, description=f"seed {seed}: fit and score")
    assert sampling.horizon is not None
    held_out = fit_and_evaluate(frame, horizon=sampling.horizon, seed=seed)
    progress.update(task, advance=1, description=f"seed {seed}: done")
    assert held_out.baseline is not None
    return SeedResult(
        seed=seed,
        rows=len(frame),
        positives=int(frame["label"].sum()),
        test_rows=len(held_out.test),
        test_positives=int(held_out.test["label"].sum()),
        model=held_out.metrics,
        points=held_out.baseline,
        seconds=time.perf_counter() - started,
    )


def print_table(results: list[SeedResult], title: str) -> None:
    """Per-seed rows plus mean ± sd of every metric and of the model's margin over points."""
    table = Table(title=title)
    for col in ("seed", "rows (pos)", "test rows (pos)", "model ROC", "points ROC", "model PR", "points PR"):
        table.add_column(col, justify="right")
    table.add_column("s", justify="right")
    for r in results:
        table.add_row(
            str(r.seed),
            f"{r.rows} ({r.positives})",
            f"{r.test_rows} ({r.test_positives})",
            f"{r.model.roc_auc:.4f}",
            f"{r.points.roc_auc:.4f}",
            f"{r.model.pr_auc:.4f}",
            f"{r.points.pr_auc:.4f}",
            f"{r.seconds:.0f}",
        )

    def mean_sd(values: list[float]) -> str:
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return f"{np.mean(values):.4f} ± {sd:.4f}"

    table.add_row(
        "mean ± sd",
        "",
        "",
        mean_sd([r.model.roc_auc for r in results]),
        mean_sd([r.points.roc_auc for r in results]),
        mean_sd([r.model.pr_auc for r in results]),
        mean_sd([r.points.pr_auc for r in results]),
        "",
    )
    console = Console()
    console.print(table)
    console.print(
        "model - points: ROC AUC "
        + mean_sd([r.model.roc_auc - r.points.roc_auc for r in results])
        + ", PR AUC "
        + mean_sd([r.model.pr_auc - r.points.pr_auc for r in results])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--horizon-days", type=int, default=30)
    parser.add_argument("--every-days", type=int, default=7)
    parser.add_argument("--max-per-contact", type=int, default=6)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sampling_args = dict(
        every_days=args.every_days, max_per_contact=args.max_per_contact, horizon_days=args.horizon_days
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp, Progress() as progress:
        for seed in args.seeds:
            sampling = SnapshotSampling(**sampling_args, seed=seed)
            results.append(run_seed(args.contacts, args.days, seed, sampling, Path(tmp), progress))
    print_table(
        results,
        f"readiness vs points: {args.contacts} contacts x {args.days} days, horizon {args.horizon_days} d, "
        f"snapshots every {args.every_days} d (<= {args.max_per_contact} per contact)",
    )


if __name__ == "__main__":
    main()

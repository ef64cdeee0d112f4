"""Benchmark the readiness model against the classic points score on simulated worlds.

Per seed: simulate a world (uniform-random content policy), build the Feast offline tables, sample labelled
point-in-time snapshots (capped per contact), fit on a purged time split and score the test window: every
contact on every grid date from the capped sample's first test row on (``compare_with_points``); the points
score is evaluated on the same test rows. Per seed, model and points ROC AUC, PR AUC and top-decile lift with
a 95% bootstrap CI of model - points (contacts resampled, stratified by having a positive:
``training.score_comparison``); then the mean ± sd over seeds. A second table gives the same fit on the capped
sample's test rows only (the rows ``ripen train`` reports on; this benchmark's only table before). Prints the
load average and CPU seconds. Not a test.
Run: ``python benchmarks/bench_readiness_vs_points.py --contacts 2000 --days 240 --seeds 7 8 9``.

No ``from __future__ import annotations`` here: Feast re-reads the on-demand view's function with
``get_type_hints`` in this script's namespace, where postponed annotations of ``__main__`` fail to resolve.
"""

import argparse
import logging
import os
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
from ripen.settings import Settings
from training.score_comparison import METRICS, ScoreComparison
from training.simulation import JourneySimulator, UniformRandomPolicy
from training.training_sets import SnapshotSampling, compare_with_points, prepare_feature_store


@dataclass(frozen=True)
class SeedResult:
    """Model and points score on one world's test window."""

    seed: int
    rows: int
    positives: int
    comparison: ScoreComparison
    sampled_comparison: ScoreComparison
    seconds: float
    cpu_seconds: float


def run_seed(
    contacts: int,
    days: int,
    seed: int,
    sampling: SnapshotSampling,
    root: Path,
    progress: Progress,
    n_resamples: int,
) -> SeedResult:
    """One simulated world through the real feature store, scorer and metrics."""
    started, cpu = time.perf_counter(), time.process_time()
    task = progress.add_task(f"seed {seed}: simulate", total=3)
    world = JourneySimulator(n_contacts=contacts, n_days=days, seed=seed).run(UniformRandomPolicy(seed=seed))
    progress.update(task, advance=1, description=f"seed {seed}: feature tables")
    settings = Settings(data_dir=root / f"seed{seed}")
    settings.ensure_dirs()
    catalog = list(world.catalog)
    store = prepare_feature_store(FeatureStoreService(settings), world.events, world.profiles(), catalog)
    progress.update(task, advance=1, description=f"seed {seed}: snapshots, fit, bootstrap")
    result = compare_with_points(
        store, world.events, "readiness", sampling, seed=seed, n_resamples=n_resamples
    )
    progress.update(task, advance=1, description=f"seed {seed}: done")
    return SeedResult(
        seed=seed,
        rows=result.n_rows,
        positives=result.n_positives,
        comparison=result.comparison,
        sampled_comparison=result.sampled_comparison,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
    )


def print_table(results: list[SeedResult], title: str, sampled: bool = False) -> None:
    """Per-seed model, points and CI of the difference per metric, then mean ± sd over seeds; ``sampled``:
    on the capped sample's test rows instead of the whole test window."""

    def of(r: SeedResult) -> ScoreComparison:
        return r.sampled_comparison if sampled else r.comparison

    console = Console(width=220)
    table = Table(title=title)
    for col in ("seed", "sampled rows (pos)", "test rows (pos; contacts with pos)"):
        table.add_column(col, justify="right")
    for metric in METRICS:
        table.add_column(f"{metric}\nmodel | points", justify="right")
        table.add_column(f"{metric}\nmodel - points [95% CI]", justify="right")
    table.add_column("s (cpu s)", justify="right")
    for r in results:
        c = of(r)
        cells = []
        for metric in METRICS:
            m = c[metric]
            cells += [
                f"{m.model:.3f} | {m.baseline:.3f}",
                f"{m.difference:+.3f} [{m.ci_low:+.3f}, {m.ci_high:+.3f}]",
            ]
        table.add_row(
            str(r.seed),
            f"{r.rows} ({r.positives})",
            f"{c.n_rows} ({c.n_positives}; {c.n_positive_groups})",
            *cells,
            f"{r.seconds:.0f} ({r.cpu_seconds:.0f})",
        )
    console.print(table)

    def mean_sd(values: list[float]) -> str:
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return f"{np.mean(values):.3f} ± {sd:.3f}"

    for metric in METRICS:
        model = [of(r)[metric].model for r in results]
        points = [of(r)[metric].baseline for r in results]
        diff = [of(r)[metric].difference for r in results]
        above = sum(of(r).model_clearly_better(metric) for r in results)
        console.print(
            f"{metric}: model {mean_sd(model)}, points {mean_sd(points)}, model - points {mean_sd(diff)}; "
            f"CI of the difference above 0 in {above} of {len(results)} seeds"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--horizon-days", type=int, default=30)
    parser.add_argument("--every-days", type=int, default=7)
    parser.add_argument("--max-per-contact", type=int, default=6)
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per seed")
    args = parser.parse_args()
    load_before = os.getloadavg()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sampling_args = dict(
        every_days=args.every_days, max_per_contact=args.max_per_contact, horizon_days=args.horizon_days
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp, Progress() as progress:
        for seed in args.seeds:
            sampling = SnapshotSampling(**sampling_args, seed=seed)
            results.append(
                run_seed(args.contacts, args.days, seed, sampling, Path(tmp), progress, args.resamples)
            )
    world = (
        f"{args.contacts} contacts x {args.days} days, horizon {args.horizon_days} d, "
        f"snapshots every {args.every_days} d"
    )
    print_table(
        results,
        f"readiness vs points, whole test window (every contact every {args.every_days} d): {world}, "
        f"training rows <= {args.max_per_contact} per contact",
    )
    print_table(
        results,
        f"the same fits on the capped sample's test rows only (<= {args.max_per_contact} per contact): "
        + world,
        sampled=True,
    )
    Console(width=220).print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{v:.2f}" for v in load_before)
        + "; after "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )


if __name__ == "__main__":
    main()

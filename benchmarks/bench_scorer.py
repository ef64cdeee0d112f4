"""Benchmark the readiness scorer: training time on N training rows and batch scoring throughput.

Synthetic contacts with 12 engagement counts, 3 recency features and 4 categorical profile fields. Prints
numbers; not a test. Run: ``python benchmarks/bench_scorer.py --rows 1000000 --score-rows 1000000``.
LightGBM's OpenMP threads spin-wait: on a shared, busy machine use ``--threads 1`` or expect noisy numbers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.metrics import binary_metrics
from models.scorer import BinaryScorer

ENGAGEMENT = [
    f"{event}_{window}d"
    for event in (
        "page_view",
        "email_open",
        "email_click",
        "webinar_attend",
        "content_download",
        "form_submit",
    )
    for window in (7, 30)
]


def synthetic_contacts(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Contacts whose readiness rises with engagement, recency and a few profile levels."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    logit = np.full(n, -3.5)
    for i, col in enumerate(ENGAGEMENT):
        counts = rng.poisson(0.5 + 0.3 * (i % 4), n).astype(float)
        data[col] = counts
        logit += 0.15 * counts * (1 + (i % 3))
    for col in ("days_since_last_activity", "days_since_first_seen", "days_in_stage"):
        days = rng.exponential(30, n)
        data[col] = days
        logit -= 0.01 * days if col == "days_since_last_activity" else 0.0
    for col, levels in (("role", 12), ("industry", 20), ("country", 30), ("company_size_band", 6)):
        codes = rng.integers(0, levels, n)
        data[col] = pd.Categorical.from_codes(codes, pd.Index([f"{col}_{k}" for k in range(levels)]))
        logit += rng.normal(0, 0.4, levels)[codes]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(data), y


STATIC_PROFILE = ["persona", "seniority", "industry", "company_size", "country"]


def snapshot_features(
    events: pd.DataFrame, snapshots: pd.DataFrame, half_life_days: float = 30.0
) -> pd.DataFrame:
    """As-of features per snapshot: decayed counters (``{type}_30d``) and 30-day counts, only events <= t.

    A stand-in for the feature store's point-in-time join until that path is wired in.
    """
    ev = events[["contact_id", "timestamp", "type"]].copy()
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True)
    snaps = snapshots[["contact_id", "snapshot_time"]].reset_index()
    joined = snaps.merge(ev, on="contact_id")
    joined = joined[joined["timestamp"] <= joined["snapshot_time"]]
    age_days = (joined["snapshot_time"] - joined["timestamp"]).dt.total_seconds() / 86_400
    joined["decayed"] = np.exp(-np.log(2) * age_days / half_life_days)
    joined["recent"] = (age_days <= 30).astype(float)
    decayed = joined.pivot_table(
        index="index", columns="type", values="decayed", aggfunc="sum", fill_value=0.0
    )
    recent = joined.pivot_table(index="index", columns="type", values="recent", aggfunc="sum", fill_value=0.0)
    last = joined.groupby("index")["timestamp"].max()
    out = pd.concat([decayed.add_suffix("_30d"), recent.add_suffix("_count_30d")], axis=1)
    out = out.reindex(snaps["index"]).fillna(0.0)
    out["days_since_last_activity"] = ((snaps.set_index("index")["snapshot_time"] - last).dt.days).astype(
        float
    )
    return out


def simulated_readiness(n_contacts: int, n_days: int, threads: int) -> None:
    """Readiness model vs points score on the journey simulator's events, same time-split test rows."""
    import tempfile

    from features.points import behaviour_points_frame, fit_points
    from ripen.settings import Settings
    from training.labels import sample_snapshots
    from training.scorer_training import train_and_register
    from training.simulation.engine import JourneySimulator
    from training.simulation.policies import FixedRulePolicy

    result = JourneySimulator(n_contacts=n_contacts, n_days=n_days, seed=11).run(FixedRulePolicy())
    snaps = sample_snapshots(result.events, "readiness", max_per_contact=6)
    features = snapshot_features(result.events, snaps)
    profiles = result.profiles_frame.set_index("contact_id")[STATIC_PROFILE]
    static = profiles.reindex(snaps["contact_id"]).reset_index(drop=True)
    static.index = features.index
    static["company_size"] = pd.to_numeric(static["company_size"], errors="coerce").astype(float)
    for col in ("persona", "seniority", "industry", "country"):
        static[col] = static[col].astype("category")
    fit = static.apply(
        lambda r: fit_points({"seniority": r["seniority"], "company_size": r["company_size"]}), axis=1
    )
    frame = pd.concat([features, static], axis=1)
    frame["baseline_score"] = behaviour_points_frame(features) + fit.to_numpy()
    frame["label"] = snaps["label"].to_numpy()
    frame["snapshot_time"] = snaps["snapshot_time"].to_numpy()
    engagement = [c for c in features.columns if c.endswith("_30d") and "unsubscribe" not in c]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        settings.ensure_dirs()
        run = train_and_register(
            frame,
            kind="readiness",
            settings=settings,
            params={"n_jobs": threads, "monotone_increasing": engagement},
        )
    print(
        f"simulated readiness: {n_contacts} contacts x {n_days} days, {len(frame)} snapshots, "
        f"positive rate {frame['label'].mean():.3f}, test window {run.window.test_label}"
    )
    assert run.baseline is not None
    for name in ("roc_auc", "pr_auc", "top_decile_lift"):
        print(
            f"  {name:16s} model {getattr(run.test, name):.4f}"
            f"   points score {getattr(run.baseline, name):.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows")
    parser.add_argument("--score-rows", type=int, default=1_000_000, help="contacts to score")
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads")
    parser.add_argument("--max-trees", type=int, default=1000)
    parser.add_argument(
        "--simulated", type=int, default=0, help="also compare with points on N simulated contacts"
    )
    parser.add_argument("--days", type=int, default=365, help="simulated days")
    args = parser.parse_args()
    if args.simulated:
        simulated_readiness(args.simulated, args.days, args.threads)
    if args.rows == 0:
        return

    X, y = synthetic_contacts(args.rows, seed=1)
    scorer = BinaryScorer(n_jobs=args.threads, n_estimators=args.max_trees, learning_rate=0.1, num_leaves=31)
    start = time.perf_counter()
    scorer.fit(X, y)
    train_seconds = time.perf_counter() - start
    print(f"training: {args.rows:,} rows x {X.shape[1]} features, {args.threads} threads")
    print(f"  fit (early stopping + calibration): {train_seconds:.1f} s, {scorer.best_iteration_} trees")

    X_score, y_score = synthetic_contacts(args.score_rows, seed=2)
    start = time.perf_counter()
    probability = scorer.predict_proba(X_score)[:, 1]
    score_seconds = time.perf_counter() - start
    print(f"batch scoring: {args.score_rows:,} contacts in {score_seconds:.1f} s")
    print(f"  throughput: {args.score_rows / score_seconds:,.0f} contacts/s")
    print(f"  held-out ROC AUC: {binary_metrics(y_score, probability).roc_auc:.4f}")


if __name__ == "__main__":
    main()

"""Readiness and churn champions for tests that serve real models: synthetic snapshots whose columns are the
online model row's own feature names, trained with LightGBM, logged, registered and promoted in MLflow.

Engagement raises readiness and lowers churn risk; a long silence does the opposite. Contacts of
``tests.decision_world`` (a download and an open ten days ago, no page views) therefore get factors pushing
both ways.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ripen.settings import Settings
from training.scorer_training import TrainingResult, train_and_register

CHAMPION_FEATURES = (
    "content_download_30d_now",
    "email_open_30d_now",
    "page_view_30d_now",
    "days_since_last_touch",
    "seniority",
)
SMALL_MODEL = {"n_estimators": 150, "learning_rate": 0.1, "early_stopping_rounds": 20}


def champion_frame(kind: Literal["readiness", "churn"], n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Labelled snapshots over 1000 days with the feature columns above, ``baseline_score`` and ``label``."""
    rng = np.random.default_rng(seed)
    fade = rng.uniform(0.3, 1.0, n)
    downloads = rng.poisson(0.6, n) * fade
    opens = rng.poisson(1.5, n) * fade
    views = rng.poisson(2.0, n) * fade
    silence = rng.exponential(20.0, n)
    seniority = rng.choice(["c_level", "manager", "staff"], n, p=[0.2, 0.4, 0.4])
    engagement = 1.6 * downloads + 0.5 * opens + 0.4 * views - 0.04 * silence
    logit = -1.5 + engagement + np.where(seniority == "c_level", 0.8, 0.0)
    if kind == "churn":
        logit = -1.0 - engagement
    frame = pd.DataFrame(
        {
            "content_download_30d_now": downloads,
            "email_open_30d_now": opens,
            "page_view_30d_now": views,
            "days_since_last_touch": silence,
            "seniority": pd.Categorical(seniority),
            "label": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
            "baseline_score": 10 * downloads + 5 * opens + 5 * views,
            "snapshot_time": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(rng.uniform(0, 1000, n), "D"),
        }
    )
    return frame.sort_values("snapshot_time").reset_index(drop=True)


def train_champion(settings: Settings, kind: Literal["readiness", "churn"]) -> TrainingResult:
    """Train, register and promote a ``kind`` champion in the registry of ``settings`` (the first version
    of a name is always promoted)."""
    result = train_and_register(champion_frame(kind), kind=kind, settings=settings, params=SMALL_MODEL)
    if not result.gate.promoted:
        raise RuntimeError(f"{kind} champion not promoted: {result.gate.reason}")
    return result

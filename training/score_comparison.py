"""Model against baseline on the same labelled rows, with bootstrap confidence intervals of the difference.

"The model beats the points score" is a statement about a sample: a few dozen positives in a test window
can make either win by chance. :func:`compare_scores` gives ROC AUC, PR AUC and top-decile lift of both
scores and a percentile bootstrap CI (``scipy.stats.bootstrap``) of *model minus baseline* for each.

Rows of one contact (several snapshots) are not independent, so the bootstrap resamples contacts, not rows
(a cluster bootstrap), and it resamples contacts with at least one positive row separately from the others
(stratified), so every resample holds both classes and the number of positive contacts stays fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import bootstrap, rankdata

from models.metrics import top_decile_lift

METRICS = ("roc_auc", "pr_auc", "top_decile_lift")


@dataclass(frozen=True)
class MetricComparison:
    """One metric of model and baseline, and the CI of their difference (model - baseline)."""

    metric: str
    model: float
    baseline: float
    ci_low: float
    ci_high: float

    @property
    def difference(self) -> float:
        return self.model - self.baseline


@dataclass(frozen=True)
class ScoreComparison:
    """Model vs baseline on one labelled set, per metric of :data:`METRICS`."""

    metrics: tuple[MetricComparison, ...]
    n_rows: int
    n_positives: int
    n_groups: int
    n_positive_groups: int
    confidence: float
    n_resamples: int

    def __getitem__(self, metric: str) -> MetricComparison:
        for m in self.metrics:
            if m.metric == metric:
                return m
        raise KeyError(f"`metric` must be one of {METRICS}, but got {metric!r}")

    def model_clearly_better(self, metric: str = "roc_auc") -> bool:
        """Whether the whole CI of model - baseline lies above 0."""
        return self[metric].ci_low > 0.0


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``[roc_auc, pr_auc, top_decile_lift]``, equal to scikit-learn's ``roc_auc_score`` and
    ``average_precision_score`` (ties included) without their input validation, which took ~90% of a
    bootstrap's CPU; ``y`` holds 0/1 with both present (checked once by :func:`compare_scores`)."""
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    ranks = rankdata(score)  # Mann-Whitney: average ranks count ties as half
    roc = (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    order = np.argsort(-score, kind="stable")
    ordered = score[order]
    last = np.r_[np.flatnonzero(np.diff(ordered)), len(y) - 1]  # last row of each distinct threshold
    tps = np.cumsum(y[order])[last]
    precision = tps / (last + 1.0)
    recall = tps / n_pos
    pr = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    return np.array([roc, pr, top_decile_lift(y, score)], float)


def compare_scores(
    y_true: ArrayLike,
    model_score: ArrayLike,
    baseline_score: ArrayLike,
    groups: ArrayLike | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> ScoreComparison:
    """ROC AUC, PR AUC and top-decile lift of both scores, with bootstrap CIs of model - baseline.

    y_true: shape (n,), 0/1. model_score, baseline_score: shape (n,), higher means more likely positive.
    groups: shape (n,), the unit resampled together (the contact id); ``None`` resamples single rows.
    """
    y = np.asarray(y_true)
    model = np.asarray(model_score, float)
    base = np.asarray(baseline_score, float)
    if not (y.shape == model.shape == base.shape) or y.ndim != 1:
        raise ValueError(
            "`y_true`, `model_score` and `baseline_score` must be 1-d of one length, but got shapes "
            f"{y.shape}, {model.shape} and {base.shape}"
        )
    if not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
        raise ValueError("`y_true` must hold 0 and 1, both present")
    if np.isnan(model).any() or np.isnan(base).any():
        raise ValueError("`model_score` and `baseline_score` must not contain NaN")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1), but got {confidence}")
    y = y.astype(int)
    keys = np.arange(len(y)) if groups is None else np.asarray(groups)
    if keys.shape != y.shape:
        raise ValueError(f"`groups` must have shape {y.shape}, but got {keys.shape}")
    codes = np.unique(keys, return_inverse=True)[1].ravel()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(codes.max() + 2))
    rows_of = [order[bounds[g] : bounds[g + 1]] for g in range(codes.max() + 1)]
    positive = np.array([y[r].any() for r in rows_of])
    pos_groups, neg_groups = np.flatnonzero(positive), np.flatnonzero(~positive)

    def statistic(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
        idx = np.concatenate([rows_of[int(g)] for g in (*pos, *neg)])
        return ranking_metrics(y[idx], model[idx]) - ranking_metrics(y[idx], base[idx])

    samples = (pos_groups, neg_groups) if len(neg_groups) else (pos_groups,)
    result = bootstrap(
        samples,
        statistic if len(neg_groups) else (lambda pos: statistic(pos, np.array([], int))),
        paired=False,
        vectorized=False,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        random_state=seed,
    )
    low, high = result.confidence_interval
    on_model, on_base = ranking_metrics(y, model), ranking_metrics(y, base)
    return ScoreComparison(
        metrics=tuple(
            MetricComparison(name, float(on_model[k]), float(on_base[k]), float(low[k]), float(high[k]))
            for k, name in enumerate(METRICS)
        ),
        n_rows=len(y),
        n_positives=int(y.sum()),
        n_groups=len(rows_of),
        n_positive_groups=len(pos_groups),
        confidence=confidence,
        n_resamples=n_resamples,
    )

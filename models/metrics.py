"""Metrics for binary scorers: ranking (ROC AUC, PR AUC, top-decile lift) and probabilities (Brier, log loss).

All computed with scikit-learn. Probability metrics are only defined for scores in [0, 1]; for an unbounded
score such as the classic points score they are ``None``, so a report can still show it side by side with the
model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


@dataclass(frozen=True)
class BinaryMetrics:
    """Quality of one score on one labelled set."""

    roc_auc: float
    pr_auc: float
    top_decile_lift: float
    brier: float | None
    log_loss: float | None
    n_rows: int
    positive_rate: float

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain dict for JSON output and MLflow logging."""
        return asdict(self)


def _check_inputs(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"`y_true` and `y_score` must be 1-d, but got shapes {y.shape} and {s.shape}")
    if len(y) != len(s):
        raise ValueError(f"`y_true` and `y_score` must have the same length, but got {len(y)} and {len(s)}")
    if len(y) == 0:
        raise ValueError("`y_true` is empty: metrics need at least one row of each class")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(
            f"`y_true` must hold only 0 and 1, but got values {sorted(set(np.unique(y)) - {0, 1})}"
        )
    if len(np.unique(y)) < 2:
        raise ValueError(f"`y_true` must contain both classes, but got only {int(y[0])}")
    if np.isnan(s).any():
        raise ValueError(f"`y_score` must not contain NaN, but got {int(np.isnan(s).sum())} NaN values")
    return y.astype(int), s


def top_decile_lift(y_true: ArrayLike, y_score: ArrayLike, fraction: float = 0.1) -> float:
    """Positive rate among the top ``fraction`` of scores divided by the overall positive rate.

    Ties at the cut are broken by a stable sort, so the top group has exactly ``ceil(fraction * n)`` rows.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"`fraction` must be in (0, 1], but got {fraction}")
    y, s = _check_inputs(y_true, y_score)
    k = max(1, int(np.ceil(fraction * len(y))))
    top = np.argsort(-s, kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def binary_metrics(y_true: ArrayLike, y_score: ArrayLike) -> BinaryMetrics:
    """ROC AUC, PR AUC (average precision), top-decile lift; Brier and log loss for probabilities."""
    y, s = _check_inputs(y_true, y_score)
    is_probability = bool(s.min() >= 0.0 and s.max() <= 1.0)
    return BinaryMetrics(
        roc_auc=float(roc_auc_score(y, s)),
        pr_auc=float(average_precision_score(y, s)),
        top_decile_lift=top_decile_lift(y, s),
        brier=float(brier_score_loss(y, s)) if is_probability else None,
        log_loss=float(log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1])) if is_probability else None,
        n_rows=int(len(y)),
        positive_rate=float(y.mean()),
    )

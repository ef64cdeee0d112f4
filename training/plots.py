"""Evaluation plots for a scorer run: ROC, calibration, lift and global SHAP summary, as matplotlib figures.

Figures are drawn with the non-interactive Agg backend (selected per call, never at import time) so they work
on servers and in CI; callers log them to MLflow and close them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_curve


def _figure() -> tuple[Figure, Axes]:
    # Figure() without pyplot uses the Agg canvas and no global state: safe in threads and servers
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def roc_figure(y_true: ArrayLike, scores: Mapping[str, ArrayLike]) -> Figure:
    """ROC curves of several scores (e.g. model and points score) on the same rows."""
    fig, ax = _figure()
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y_true, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return fig


def calibration_figure(y_true: ArrayLike, probability: ArrayLike, n_bins: int = 10) -> Figure:
    """Reliability diagram: mean predicted probability against observed rate per quantile bin."""
    fig, ax = _figure()
    observed, predicted = calibration_curve(y_true, probability, n_bins=n_bins, strategy="quantile")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration")
    ax.legend(loc="upper left")
    return fig


def lift_figure(y_true: ArrayLike, scores: Mapping[str, ArrayLike], n_bins: int = 10) -> Figure:
    """Lift per score decile (highest scores first) for several scores."""
    fig, ax = _figure()
    y = np.asarray(y_true, dtype=float)
    width = 0.8 / max(1, len(scores))
    for i, (name, s) in enumerate(scores.items()):
        order = np.argsort(-np.asarray(s, dtype=float), kind="stable")
        lifts = [y[part].mean() / y.mean() for part in np.array_split(order, n_bins)]
        ax.bar(np.arange(1, n_bins + 1) + i * width, lifts, width=width, label=name)
    ax.axhline(1.0, color="grey", linestyle="--")
    ax.set(xlabel="score decile (1 = highest)", ylabel="lift", title="Lift by decile")
    ax.legend()
    return fig


def shap_summary_figure(contributions: pd.DataFrame, top: int = 15) -> Figure:
    """Mean |SHAP| per feature (global importance), largest on top; ``contributions`` is rows × features."""
    fig, ax = _figure()
    mean_abs = contributions.abs().mean().sort_values().tail(top)
    ax.barh(mean_abs.index.astype(str), mean_abs.to_numpy())
    ax.set(xlabel="mean |SHAP value| (log-odds)", title="SHAP summary")
    return fig

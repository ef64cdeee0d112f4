"""Scorer training: cross-validation of your own tables, and fit → evaluate → log → register → gate.

The pipeline takes any DataFrame with feature columns, a 0/1 label, a snapshot timestamp and a
``baseline_score`` column (the classic points score), so the simulated feature-store path and real exports
share one code path. The baseline is evaluated on the same test rows as the model in every run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
import structlog
from sklearn.model_selection import StratifiedKFold, train_test_split

from models.metrics import BinaryMetrics, binary_metrics
from models.scorer import BinaryScorer, check_binary_label
from ripen.settings import Settings
from training.labels import time_split
from training.registry import MODEL_NAMES, GateMetric, GateResult, gate
from training.tracking import DataWindow, ensure_experiment, log_scorer_model, mlflow_client, model_card

log = structlog.get_logger(__name__)

SUMMARY_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift")


@dataclass(frozen=True)
class CVReport:
    """Per-fold test metrics of one cross-validation, with the scheme used."""

    folds: tuple[BinaryMetrics, ...]
    n_rows: int
    n_features: int
    scheme: str
    baseline_folds: tuple[BinaryMetrics, ...] = field(default=())
    chosen_params: tuple[dict[str, Any], ...] = field(default=())  # per fold, when an inner search ran
    blend_weights: tuple[float, ...] = field(default=())  # per fold: the booster's share of the margin

    def summary(self) -> dict[str, Any]:
        """Mean and standard deviation over folds of every metric, plus table sizes: the ``--json`` object."""
        out: dict[str, Any] = {
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "folds": len(self.folds),
            "cv": self.scheme,
        }
        if self.chosen_params:
            out["chosen_params"] = list(self.chosen_params)
        if self.blend_weights:
            out["blend_weights"] = list(self.blend_weights)
        for prefix, folds in (("", self.folds), ("baseline_", self.baseline_folds)):
            for name in SUMMARY_METRICS:
                values = [getattr(m, name) for m in folds]
                if not values or any(v is None for v in values):
                    continue
                out[f"{prefix}{name}"] = float(np.mean(values))
                out[f"{prefix}{name}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return out


def make_scorer(
    params: Mapping[str, Any] | None, seed: int, dask_scheduler: str | None = None
) -> BinaryScorer:
    """A fresh local scorer, or its Dask twin when a scheduler address is given."""
    merged = {"random_state": seed, **(params or {})}
    if dask_scheduler:
        from training.dask_training import DaskBinaryScorer

        return DaskBinaryScorer(scheduler=dask_scheduler, **merged)
    return BinaryScorer(**merged)


def _fold_indices(
    y: np.ndarray, folds: int, times: pd.Series | None, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if times is None:
        yield from StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
        return
    # forward chaining: fold k trains on everything before the k-th of (folds + 1) time blocks, tests on it
    order = np.argsort(pd.to_datetime(times, utc=True).to_numpy(), kind="stable")
    blocks = np.array_split(order, folds + 1)
    for k in range(1, folds + 1):
        yield np.concatenate(blocks[:k]), blocks[k]


def cross_validate(
    X: pd.DataFrame,
    y: Any,
    *,
    folds: int = 5,
    params: Mapping[str, Any] | None = None,
    times: pd.Series | None = None,
    baseline: pd.Series | None = None,
    seed: int = 7,
    dask_scheduler: str | None = None,
) -> CVReport:
    """Fit a fresh ``BinaryScorer(**params)`` per fold and score its test part.

    Stratified K-fold when ``times`` is None; otherwise forward-chaining time folds, so no fold is tested on
    rows older than its training rows. Each fold's scorer holds out its own validation rows from the training
    part (early stopping and calibration), so test rows are never seen before scoring. ``baseline`` (e.g. the
    points score), if given, is evaluated on the same test rows. ``dask_scheduler`` boosts every fold on that
    cluster.
    """
    if folds < 2:
        raise ValueError(f"`folds` must be >= 2, but got {folds}")
    y_arr = check_binary_label(y, "label")
    if len(X) != len(y_arr):
        raise ValueError(
            f"`X` and the label must have the same number of rows, but got {len(X)} and {len(y_arr)}"
        )
    minority = int(min(y_arr.sum(), len(y_arr) - y_arr.sum()))
    if times is None and minority < folds * 4:
        raise ValueError(f"the label's smaller class has {minority} rows: too few for {folds}-fold CV")
    results: list[BinaryMetrics] = []
    baseline_results: list[BinaryMetrics] = []
    chosen: list[dict[str, Any]] = []
    blend_weights: list[float] = []
    for k, (train_idx, test_idx) in enumerate(_fold_indices(y_arr, folds, times, seed)):
        scorer = make_scorer(params, seed, dask_scheduler)
        scorer.fit(X.iloc[train_idx], y_arr[train_idx])
        metrics = binary_metrics(y_arr[test_idx], scorer.predict_proba(X.iloc[test_idx])[:, 1])
        results.append(metrics)
        if len(getattr(scorer, "search_results_", ())) > 1:
            chosen.append(scorer.best_params_)
        blend_weights.append(round(float(scorer.blend_weight_), 4))
        if baseline is not None:
            baseline_results.append(binary_metrics(y_arr[test_idx], baseline.to_numpy()[test_idx]))
        log.info("cv_fold_done", fold=k, roc_auc=round(metrics.roc_auc, 4), trees=scorer.best_iteration_)
    return CVReport(
        folds=tuple(results),
        n_rows=len(y_arr),
        n_features=X.shape[1],
        scheme="time-forward" if times is not None else "stratified",
        baseline_folds=tuple(baseline_results),
        chosen_params=tuple(chosen),
        blend_weights=tuple(blend_weights),
    )


@dataclass(frozen=True)
class TrainingResult:
    """What one fit → evaluate → log → register → gate run produced."""

    scorer: BinaryScorer
    model_name: str
    version: str
    run_id: str
    test: BinaryMetrics
    baseline: BinaryMetrics | None
    gate: GateResult
    window: DataWindow


def _window(part: pd.DataFrame, time_column: str) -> tuple[str, str, int]:
    times = pd.to_datetime(part[time_column], utc=True)
    return times.min().isoformat(), times.max().isoformat(), len(part)


def _split(
    frame: pd.DataFrame, label: str, time_column: str, horizon: pd.Timedelta, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    if time_column in frame.columns:
        return time_split(frame, time_column, gap=horizon)
    # no timestamps (a plain export): a stratified split stands in, with a row-number "time" for the card
    frame = frame.assign(**{time_column: pd.Timestamp("1970-01-01", tz="UTC")})
    rest, test = train_test_split(frame, test_size=0.2, stratify=frame[label], random_state=seed)
    train, valid = train_test_split(rest, test_size=0.2, stratify=rest[label], random_state=seed)
    return train, valid, test


@dataclass(frozen=True)
class HeldOutEvaluation:
    """A scorer fitted on a time split and its test metrics next to the baseline's on the same rows."""

    scorer: BinaryScorer
    features: list[str]
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    probability: np.ndarray
    metrics: BinaryMetrics
    baseline: BinaryMetrics | None


def fit_and_evaluate(
    frame: pd.DataFrame,
    *,
    horizon: pd.Timedelta,
    seed: int,
    label: str = "label",
    time_column: str = "snapshot_time",
    baseline_column: str = "baseline_score",
    params: Mapping[str, Any] | None = None,
    dask_scheduler: str | None = None,
) -> HeldOutEvaluation:
    """Fit on the earliest part, early-stop/calibrate on the next, score the latest; baseline on those rows.

    frame: one row per snapshot with feature columns, ``label`` (0/1), ``time_column`` (optional: without it a
    stratified split is used) and ``baseline_column`` (optional: the points score). Rows whose label window
    (``horizon``) reaches into the next part are purged (:func:`training.labels.time_split`). Without a time
    column the train and validation parts are given to the scorer together, so a small table is cross-fitted
    (see ``BinaryScorer.inner_folds``) exactly as in :func:`cross_validate`.
    """
    if label not in frame.columns:
        raise ValueError(f"label column `{label}` is not in the training frame")
    if frame.empty:
        raise ValueError("the training frame has no rows")
    train, valid, test = _split(frame, label, time_column, horizon, seed)
    features = [c for c in frame.columns if c not in {label, time_column, baseline_column}]
    scorer = make_scorer(params, seed, dask_scheduler)
    if time_column in frame.columns:
        scorer.fit(train[features], train[label], valid[features], valid[label])
    else:
        # no time order to respect: the scorer may cross-fit on train + valid, as in `cross_validate`
        rest = pd.concat([train, valid])
        scorer.fit(rest[features], rest[label])
    probability = scorer.predict_proba(test[features])[:, 1]
    baseline = (
        binary_metrics(test[label], test[baseline_column].astype(float))
        if baseline_column in test.columns
        else None
    )
    return HeldOutEvaluation(
        scorer, features, train, valid, test, probability, binary_metrics(test[label], probability), baseline
    )


def train_and_register(
    frame: pd.DataFrame,
    *,
    kind: Literal["readiness", "churn"],
    settings: Settings,
    label: str = "label",
    time_column: str = "snapshot_time",
    baseline_column: str = "baseline_score",
    params: Mapping[str, Any] | None = None,
    horizon: pd.Timedelta | None = None,
    dask_scheduler: str | None = None,
    gate_metric: GateMetric = "roc_auc",
) -> TrainingResult:
    """Fit on the earliest part, early-stop/calibrate on the next, test on the latest; log, register, gate.

    frame: one row per snapshot with feature columns, ``label`` (0/1), ``time_column`` (optional: without it a
    stratified split is used) and ``baseline_column`` (optional: the points score, evaluated side by side).
    ``horizon`` is the label window; training rows whose window reaches into the next part are dropped.
    """
    from training.labels import CHURN_HORIZON, READINESS_HORIZON

    if kind not in MODEL_NAMES:
        raise ValueError(f"`kind` must be one of {sorted(MODEL_NAMES)}, but got {kind!r}")
    horizon = (
        horizon if horizon is not None else (READINESS_HORIZON if kind == "readiness" else CHURN_HORIZON)
    )
    held_out = fit_and_evaluate(
        frame,
        horizon=horizon,
        seed=settings.seed,
        label=label,
        time_column=time_column,
        baseline_column=baseline_column,
        params=params,
        dask_scheduler=dask_scheduler,
    )
    scorer, features, probability = held_out.scorer, held_out.features, held_out.probability
    train, valid, test = held_out.train, held_out.valid, held_out.test
    test_metrics, baseline = held_out.metrics, held_out.baseline
    window = DataWindow(_window(train, time_column), _window(valid, time_column), _window(test, time_column))
    model_name = MODEL_NAMES[kind]

    client = mlflow_client(settings)
    experiment_id = ensure_experiment(client, model_name, settings)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        run_params = {k: str(v) for k, v in scorer.get_params().items() if k != "scheduler"}
        mlflow.log_params(
            {
                **run_params,
                **window.as_params(),
                "best_iteration": scorer.best_iteration_,
                "calibration_method": scorer.calibration_method_,
                "blend_weight": scorer.blend_weight_,
                "n_features": len(features),
                "dask": bool(dask_scheduler),
            }
        )
        mlflow.log_dict({"features": features}, "features.json")
        if hasattr(scorer, "search_results_"):
            mlflow.log_dict(
                {"best_params": scorer.best_params_, "candidates": scorer.search_results_},
                "inner_cv_search.json",
            )
        mlflow.log_metrics(
            {f"test_{k}": float(v) for k, v in test_metrics.as_dict().items() if v is not None}
        )
        if baseline is not None:
            mlflow.log_metrics(
                {f"baseline_{k}": float(v) for k, v in baseline.as_dict().items() if v is not None}
            )
        _log_plots(
            scorer,
            test[features],
            test[label].to_numpy(),
            probability,
            test[baseline_column].astype(float).to_numpy() if baseline is not None else None,
        )
        info = log_scorer_model(scorer, test[features])
        mlflow.log_text(
            model_card(model_name, window, features, test_metrics, baseline, run_params), "model_card.md"
        )
        version = mlflow.register_model(info.model_uri, model_name)
        run_id = run.info.run_id
    result = gate(
        client,
        model_name,
        str(version.version),
        test[features],
        test[label].to_numpy(),
        probability,
        window.test_label,
        metric=gate_metric,
    )
    log.info(
        "scorer_trained",
        model=model_name,
        version=version.version,
        roc_auc=round(test_metrics.roc_auc, 4),
        promoted=result.promoted,
    )
    return TrainingResult(
        scorer, model_name, str(version.version), run_id, test_metrics, baseline, result, window
    )


def _log_plots(
    scorer: BinaryScorer,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    probability: np.ndarray,
    baseline: np.ndarray | None,
) -> None:
    from models.explainer import ScorerExplainer
    from training.plots import calibration_figure, lift_figure, roc_figure, shap_summary_figure

    scores = {"model": probability, **({"points score": baseline} if baseline is not None else {})}
    sample = X_test.sample(min(len(X_test), 2000), random_state=0)
    contributions = ScorerExplainer(scorer).contributions(sample).drop(columns="bias")
    figures = {
        "plots/roc.png": roc_figure(y_test, scores),
        "plots/calibration.png": calibration_figure(y_test, probability),
        "plots/lift.png": lift_figure(y_test, scores),
        "plots/shap_summary.png": shap_summary_figure(contributions),
    }
    for path, fig in figures.items():
        mlflow.log_figure(fig, path)

"""A calibrated LightGBM binary scorer for sales readiness and churn: the probability sales reads.

LightGBM (Ke et al., "LightGBM: A Highly Efficient Gradient Boosting Decision Tree", NeurIPS 2017) is fitted
with early stopping, class weights for imbalance and native categorical splits. Its scores are then
calibrated (isotonic regression, Zadrozny & Elkan 2002, or Platt scaling, Platt 1999), so that "0.3" means
roughly three in ten contacts like this one convert. Small tables are cross-fitted (rounds and calibrator from
inner folds, one booster on every row), and their booster's margin is blended with a spline additive logistic
model's when the inner folds say it pays; large ones and explicit validation sets use held-out parts
(docs/training.md). No I/O happens here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.interpolate import BSpline
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

Calibration = Literal["isotonic", "sigmoid", "auto", "none"]
# Isotonic regression's steps tie many scores, which costs ranking (ROC/PR AUC); measured on Leads and Telco
# with 5.6k-7.4k out-of-fold calibration rows, Platt scaling kept more AUC and had the lower Brier and log
# loss (docs/training.md). Isotonic is chosen by "auto" only with far more calibration rows than that.
ISOTONIC_MIN_ROWS = 20_000
SEARCHABLE = frozenset({"learning_rate", "num_leaves", "min_child_samples", "reg_lambda", "colsample_bytree"})
# A small grid for the inner-CV search (``candidates``): the defaults, an additive model of stumps (nearly
# additive tables such as churn exports), deeper trees with smaller leaves (interactions). Off by default: on
# Leads and Telco it cost 3x the time and moved 5-fold ROC AUC by less than 0.001 (docs/training.md).
SEARCH_GRID: tuple[Mapping[str, Any], ...] = (
    {},
    {"num_leaves": 2, "learning_rate": 0.1},
    {"num_leaves": 15, "min_child_samples": 20},
)
BLEND_WEIGHTS = np.linspace(0.0, 1.0, 21)
"""The booster's shares ``w`` of the margin ``w * booster + (1 - w) * additive`` tried on inner folds."""


def check_binary_label(y: Any, name: str = "y") -> np.ndarray:
    """Return ``y`` as an int array of 0/1, or raise naming ``name`` and what was wrong."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-d, but got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError(f"`{name}` is empty: training needs rows")
    if pd.isna(arr).any():
        raise ValueError(f"`{name}` must not be missing, but {int(pd.isna(arr).sum())} rows are")
    bad = sorted({str(v) for v in np.unique(arr.astype(object)) if v not in (0, 1, True, False)})
    if bad:
        raise ValueError(f"`{name}` must be binary (0/1), but got values {bad[:5]}")
    arr = arr.astype(int)
    classes = np.unique(arr)
    if len(classes) < 2:
        raise ValueError(
            f"`{name}` has only one class ({int(classes[0])}): a scorer needs positives and negatives"
        )
    return arr


class SplineAdditiveModel:
    """A logistic generalized additive model: the margin is a sum of one shape function per feature column.

    Numeric columns get cubic B-splines on ``n_knots`` quantile knots (constant beyond the outer knots) plus a
    missing indicator; categorical columns (given as category codes, NaN for missing) get one indicator per
    level with at least ``min_frequency`` rows, one for the rarer levels and one for missing. All indicator
    and basis columns are standardized and fitted jointly by L2-penalised logistic regression (inverse
    strength ``C``), in the spirit of Eilers & Marx, "Flexible smoothing with B-splines and penalties",
    Statistical Science 1996, and Hastie & Tibshirani, "Generalized Additive Models", 1990.

    Because each column's shape function is centred (mean 0 over the training rows), ``contributions`` are
    its exact additive explanation: the value of each shape function plus the intercept, summing to the
    margin.
    """

    def __init__(
        self, categorical: Sequence[bool], *, n_knots: int = 10, C: float = 1.0, min_frequency: int = 10
    ) -> None:
        self.categorical = tuple(bool(c) for c in categorical)
        self.n_knots = n_knots
        self.C = C
        self.min_frequency = min_frequency

    def fit(
        self, M: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> SplineAdditiveModel:
        """M: float matrix, shape (n_rows, n_columns) (category codes for categoricals); y: 0/1, (n_rows,)."""
        self._check_matrix(M)
        self.levels_: list[np.ndarray] = []
        self.medians_: list[float] = []
        self.knots_: list[np.ndarray | None] = []
        self.has_missing_: list[bool] = []
        for j, is_cat in enumerate(self.categorical):
            x = M[:, j]
            missing = np.isnan(x)
            self.has_missing_.append(bool(missing.any()))
            if is_cat:
                values, counts = np.unique(x[~missing], return_counts=True)
                self.levels_.append(values[counts >= self.min_frequency])
                self.medians_.append(0.0)
                self.knots_.append(None)
                continue
            median = float(np.median(x[~missing])) if (~missing).any() else 0.0
            filled = np.where(missing, median, x)
            knots = np.unique(np.quantile(filled, np.linspace(0.0, 1.0, self.n_knots)))
            self.levels_.append(np.empty(0))
            self.medians_.append(median)
            self.knots_.append(_padded_knots(knots) if len(knots) >= 2 else None)
        blocks = self._blocks(M)
        design = np.hstack(blocks)
        self.mean_ = design.mean(axis=0)
        scale = design.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        regression = LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=200)
        # one BLAS thread: the design has ~100 columns, and on the shared 2-core machine two OpenBLAS threads
        # took 4-5x the CPU time of one (measured on Telco) for the same fit
        with threadpool_limits(limits=1, user_api="blas"):
            regression.fit((design - self.mean_) / self.scale_, y, sample_weight=sample_weight)
        self.intercept_ = float(regression.intercept_[0])
        self.coef_ = regression.coef_[0] / self.scale_
        self.slices_ = np.cumsum([0, *(b.shape[1] for b in blocks)])
        self._compile_shapes()
        return self

    def _compile_shapes(self) -> None:
        """Fold the standardized design and its coefficients into one shape function per column: a B-spline
        (numeric) or a table of level values (categorical), plus a missing value and a centring offset, so
        that scoring evaluates each column once instead of rebuilding the design (the request path)."""
        self.offsets_: list[float] = []
        self.splines_: list[BSpline | None] = []
        for j, is_cat in enumerate(self.categorical):
            lo, hi = self.slices_[j], self.slices_[j + 1]
            self.offsets_.append(-float(self.mean_[lo:hi] @ self.coef_[lo:hi]))
            knots = self.knots_[j]
            if is_cat or knots is None:
                self.splines_.append(None)
                continue
            n_basis = len(knots) - SPLINE_DEGREE - 1
            self.splines_.append(
                BSpline(knots, self.coef_[lo : lo + n_basis], SPLINE_DEGREE, extrapolate=False)
            )

    def _check_matrix(self, M: np.ndarray) -> None:
        if M.ndim != 2 or M.shape[1] != len(self.categorical):
            raise ValueError(f"`M` must have {len(self.categorical)} columns, but got shape {M.shape}")

    def _blocks(self, M: np.ndarray) -> list[np.ndarray]:
        """Per column its unscaled design columns, shape (n_rows, k_j) each."""
        blocks = []
        for j, is_cat in enumerate(self.categorical):
            x = M[:, j]
            missing = np.isnan(x)
            if is_cat:
                levels = self.levels_[j]
                known = (x.reshape(-1, 1) == levels.reshape(1, -1)).astype(float)
                rare = (~missing & (known.sum(axis=1) == 0)).astype(float).reshape(-1, 1)
                block = np.hstack([known, rare])
            else:
                knots = self.knots_[j]
                filled = np.where(missing, self.medians_[j], x)
                block = _spline_basis(filled, knots) if knots is not None else np.empty((len(x), 0))
            if self.has_missing_[j] or is_cat:
                block = np.hstack([block, missing.astype(float).reshape(-1, 1)])
            blocks.append(block)
        return blocks

    def contributions(self, M: np.ndarray) -> np.ndarray:
        """Each column's centred shape-function value, then the intercept: shape (n_rows, n_columns + 1)."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("this SplineAdditiveModel is not fitted yet: call `fit` first")
        self._check_matrix(M)
        out = np.empty((len(M), len(self.categorical) + 1))
        for j, is_cat in enumerate(self.categorical):
            x = M[:, j]
            missing = np.isnan(x)
            coef = self.coef_[self.slices_[j] : self.slices_[j + 1]]
            if is_cat:
                levels = self.levels_[j]
                n = len(levels)
                at = np.minimum(np.searchsorted(levels, x), max(n - 1, 0))
                known = levels[at] == x if n else np.zeros(len(x), dtype=bool)
                value = np.where(missing, coef[n + 1], np.where(known, coef[at] if n else 0.0, coef[n]))
            else:
                value = coef[-1] * missing if self.has_missing_[j] else np.zeros(len(x))
                spline, knots = self.splines_[j], self.knots_[j]
                if spline is not None and knots is not None:
                    filled = np.where(missing, self.medians_[j], x)
                    value = value + spline(np.clip(filled, knots[SPLINE_DEGREE], knots[-SPLINE_DEGREE - 1]))
            out[:, j] = value + self.offsets_[j]
        out[:, -1] = self.intercept_
        return out

    def decision_function(self, M: np.ndarray) -> np.ndarray:
        """The margin, shape (n_rows,): the row sums of ``contributions``."""
        return np.asarray(self.contributions(M).sum(axis=1))


SPLINE_DEGREE = 3


def _padded_knots(knots: np.ndarray) -> np.ndarray:
    """The knot vector of cubic B-splines on sorted unique ``knots``: ``SPLINE_DEGREE`` more on each side,
    spaced like the outermost pair (as scikit-learn's ``SplineTransformer`` pads)."""
    steps = np.arange(1, SPLINE_DEGREE + 1)
    low = knots[0] - (knots[1] - knots[0]) * steps[::-1]
    high = knots[-1] + (knots[-1] - knots[-2]) * steps
    return np.concatenate([low, knots, high])


def _spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """B-spline basis values, shape (n_rows, n_knots + SPLINE_DEGREE - 1); constant beyond the outer knots.

    Evaluated with SciPy directly: ``SplineTransformer.transform`` spent ~0.2 ms per call validating its
    input, which the request path pays per numeric column.
    """
    inner = np.clip(x, knots[SPLINE_DEGREE], knots[-SPLINE_DEGREE - 1])
    return np.asarray(BSpline.design_matrix(inner, knots, SPLINE_DEGREE).toarray())


class BinaryScorer(ClassifierMixin, BaseEstimator):
    """LightGBM classifier: early stopping, class weighting, native categoricals, calibrated output.

    Parameters are LightGBM's (``learning_rate``, ``num_leaves``, ...) plus:

    - ``inner_folds``: when ``fit`` gets no explicit validation set and has fewer than ``cross_fit_below``
      rows, the rounds are chosen by this many stratified inner folds, the calibrator is fitted on their
      out-of-fold margins and the one served booster is boosted on every row (0: always a holdout). Small
      tables lose nothing to a holdout this way (Leads/Telco figures in docs/training.md).
    - ``candidates``: LightGBM settings (``SEARCHABLE`` keys) compared on the same inner folds, lowest log
      loss wins (``SEARCH_GRID`` is a small grid); empty means the constructor's settings only.
    - ``validation_fraction``: share of the training rows held out (stratified) when ``fit`` gets no explicit
      validation set and does not cross-fit; half of it drives early stopping, the other half fits the
      calibrator.
    - ``calibration``: ``"isotonic"``, ``"sigmoid"`` (Platt), ``"auto"`` (isotonic from ``ISOTONIC_MIN_ROWS``
      calibration rows, else sigmoid) or ``"none"``.
    - ``monotone_increasing``: numeric features whose increase must never lower the score (engagement counts).
    - ``additive_blend``: when cross-fitting, also fit a :class:`SplineAdditiveModel` (``spline_knots``,
      ``additive_C``) and serve the margin ``w * booster + (1 - w) * additive``, ``w`` from ``BLEND_WEIGHTS``
      by the inner folds' out-of-fold log loss (``w = 1``: the booster alone). Contributions stay exact:
      ``w`` times the booster's TreeSHAP values plus ``1 - w`` times the additive model's shape functions, per
      column. Monotone constraints hold for the booster only, so a scorer with ``monotone_increasing`` does
      not blend.

    Learned state: ``booster_``, ``feature_names_in_``, ``categories_`` (levels per categorical column; unseen
    levels at predict time become missing), ``best_iteration_``, ``calibrator_``, ``calibration_rows_``,
    ``base_rate_``, ``blend_weight_`` (the booster's share ``w``, 1.0 without a blend) and ``additive_`` (the
    fitted additive model or None); after cross-fitting also ``best_params_`` (the winning candidate) and
    ``search_results_`` (each candidate's inner-CV log loss and rounds).
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.03,
        num_leaves: int = 7,
        min_child_samples: int = 50,
        reg_lambda: float = 5.0,
        colsample_bytree: float = 0.7,
        subsample: float = 0.8,
        cat_smooth: float = 10.0,
        min_data_per_group: int = 50,
        max_cat_to_onehot: int = 4,
        n_estimators: int = 3000,
        early_stopping_rounds: int = 100,
        class_weight: Literal["balanced"] | None = "balanced",
        calibration: Calibration = "auto",
        validation_fraction: float = 0.2,
        inner_folds: int = 5,
        cross_fit_below: int = 100_000,
        candidates: Sequence[Mapping[str, Any]] = (),
        monotone_increasing: Sequence[str] = (),
        additive_blend: bool = True,
        spline_knots: int = 10,
        additive_C: float = 1.0,
        n_jobs: int = 1,
        random_state: int = 7,
    ) -> None:
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.cat_smooth = cat_smooth
        self.min_data_per_group = min_data_per_group
        self.max_cat_to_onehot = max_cat_to_onehot
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.class_weight = class_weight
        self.calibration = calibration
        self.validation_fraction = validation_fraction
        self.inner_folds = inner_folds
        self.cross_fit_below = cross_fit_below
        self.candidates = candidates
        self.monotone_increasing = monotone_increasing
        self.additive_blend = additive_blend
        self.spline_knots = spline_knots
        self.additive_C = additive_C
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"`learning_rate` must be in (0, 1], but got {self.learning_rate}")
        if self.num_leaves < 2:
            raise ValueError(f"`num_leaves` must be >= 2, but got {self.num_leaves}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"`validation_fraction` must be in (0, 1), but got {self.validation_fraction}")
        if self.inner_folds == 1 or self.inner_folds < 0:
            raise ValueError(f"`inner_folds` must be 0 (holdout) or >= 2, but got {self.inner_folds}")
        unknown = sorted({k for c in self.candidates for k in c} - SEARCHABLE)
        if unknown:
            raise ValueError(f"`candidates` may set only {sorted(SEARCHABLE)}, but got {unknown}")
        if self.calibration not in ("isotonic", "sigmoid", "auto", "none"):
            raise ValueError(
                f"`calibration` must be isotonic, sigmoid, auto or none, but got {self.calibration!r}"
            )
        if self.spline_knots < 2:
            raise ValueError(f"`spline_knots` must be >= 2, but got {self.spline_knots}")
        if not self.additive_C > 0:
            raise ValueError(f"`additive_C` must be > 0, but got {self.additive_C}")
        if self.class_weight not in ("balanced", None):
            raise ValueError(f"`class_weight` must be 'balanced' or None, but got {self.class_weight!r}")

    def _learn_schema(self, X: pd.DataFrame) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"`X` must be a pandas DataFrame, but got {type(X).__name__}")
        if X.shape[1] == 0:
            raise ValueError("`X` has no feature columns")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.categories_: dict[str, list[Any]] = {}
        for col in X.columns:
            if not pd.api.types.is_numeric_dtype(X[col]) or isinstance(X[col].dtype, pd.CategoricalDtype):
                values = (
                    X[col].astype("category") if not isinstance(X[col].dtype, pd.CategoricalDtype) else X[col]
                )
                self.categories_[str(col)] = list(values.cat.categories)
        unknown = sorted(set(self.monotone_increasing) - set(self.feature_names_in_))
        if unknown:
            raise ValueError(f"`monotone_increasing` names columns not in X: {unknown}")
        categorical_monotone = sorted(set(self.monotone_increasing) & set(self.categories_))
        if categorical_monotone:
            raise ValueError(
                f"`monotone_increasing` must name numeric columns, but {categorical_monotone} are not"
            )

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """Columns in training order and dtypes; unseen categories become missing; raises on gaps."""
        check_is_fitted(self, "feature_names_in_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"`X` must be a pandas DataFrame, but got {type(X).__name__}")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"`X` lacks feature columns the scorer was trained on: {missing}")
        out = {}
        for col in self.feature_names_in_:
            values = X[col]
            if col in self.categories_:
                out[col] = pd.Categorical(
                    values.astype(object).where(values.notna(), None), categories=self.categories_[col]
                )
            else:
                try:
                    out[col] = pd.to_numeric(values, errors="raise").astype(float)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"feature `{col}` must be numeric, as in training, but: {exc}") from None
        return pd.DataFrame(out, index=X.index)

    def lgb_params(self) -> dict[str, Any]:
        """LightGBM training parameters derived from the hyperparameters and the learned schema."""
        constraints = [1 if c in set(self.monotone_increasing) else 0 for c in self.feature_names_in_]
        params: dict[str, Any] = {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "reg_lambda": self.reg_lambda,
            "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample,
            "subsample_freq": 1 if self.subsample < 1 else 0,
            "cat_smooth": self.cat_smooth,
            "min_data_per_group": self.min_data_per_group,
            "max_cat_to_onehot": self.max_cat_to_onehot,
            "n_jobs": self.n_jobs,
            "seed": self.random_state,
            "verbosity": -1,
        }
        if any(constraints):
            params["monotone_constraints"] = constraints
            params["monotone_constraints_method"] = "advanced"
        return params

    def sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        """Per-row weights that give both classes equal total weight (``class_weight="balanced"``)."""
        if self.class_weight is None:
            return None
        pos = y.mean()
        return np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        X_valid: pd.DataFrame | None = None,
        y_valid: Any = None,
    ) -> BinaryScorer:
        """Fit on ``X, y``; early-stop and calibrate on ``X_valid, y_valid`` (split from ``X`` if absent).

        X: DataFrame, shape (n_rows, n_features); y: 0/1 labels, shape (n_rows,). A given validation set is
        split in halves (stratified): one for early stopping, one for the calibrator, so neither sees training
        rows.
        """
        self._check_params()
        y_arr = check_binary_label(y, "y")
        if len(X) != len(y_arr):
            raise ValueError(
                f"`X` and `y` must have the same number of rows, but got {len(X)} and {len(y_arr)}"
            )
        self._learn_schema(X)
        X = self.prepare(X)
        self.classes_ = np.array([0, 1])
        self.blend_weight_ = 1.0
        self.additive_: SplineAdditiveModel | None = None
        if X_valid is None and self.inner_folds >= 2 and len(X) < self.cross_fit_below:
            return self._fit_cross_fitted(X, y_arr)
        if X_valid is None:
            X, X_valid, y_arr, y_valid_arr = train_test_split(
                X, y_arr, test_size=self.validation_fraction, stratify=y_arr, random_state=self.random_state
            )
        else:
            X_valid = self.prepare(X_valid)
            y_valid_arr = check_binary_label(y_valid, "y_valid")
            check_binary_label(y_arr, "y")
        X_stop, X_cal, y_stop, y_cal = train_test_split(
            X_valid, y_valid_arr, test_size=0.5, stratify=y_valid_arr, random_state=self.random_state
        )
        self.base_rate_ = float(np.mean(y_arr))
        self.booster_, self.best_iteration_ = self._train_booster(X, y_arr, X_stop, y_stop)
        self._fit_calibrator(self.decision_function(X_cal), y_cal)
        return self

    def _fit_cross_fitted(self, X: pd.DataFrame, y: np.ndarray) -> BinaryScorer:
        """Pick the candidate and rounds by inner CV, calibrate out of fold, boost one model on all rows.

        Every entry of ``candidates`` is boosted on the same ``inner_folds`` stratified folds of the training
        rows with early stopping on the mean weighted log loss (``lightgbm.cv``); the lowest loss wins. The
        final booster sees every training row for the winner's rounds, and the calibrator is fitted on the
        winner's out-of-fold margins, as scikit-learn's ``CalibratedClassifierCV(ensemble=False)`` does. One
        booster is served, so SHAP explains it exactly; no test row takes part in any choice. With
        ``additive_blend`` the same folds also choose the blend weight (:meth:`_fit_blend`).
        """
        folds = list(
            StratifiedKFold(self.inner_folds, shuffle=True, random_state=self.random_state).split(X, y)
        )
        data = lgb.Dataset(
            X,
            y,
            weight=self.sample_weight(y),
            categorical_feature="auto",
            free_raw_data=False,
            params={"feature_pre_filter": False},  # candidates may lower min_child_samples
        )
        self.search_results_: list[dict[str, Any]] = []
        best: tuple[float, dict[str, Any], lgb.CVBooster] | None = None
        for candidate in self.candidates or ({},):
            params = {**self.lgb_params(), **candidate}
            result = lgb.cv(
                params,
                data,
                num_boost_round=self.n_estimators,
                folds=folds,
                callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
                return_cvbooster=True,
            )
            losses = result["valid binary_logloss-mean"]  # cut at the best round by early stopping
            cv_booster = result["cvbooster"]
            assert isinstance(losses, list) and isinstance(cv_booster, lgb.CVBooster)
            loss, rounds = float(losses[-1]), int(cv_booster.best_iteration)
            self.search_results_.append({"params": dict(candidate), "log_loss": loss, "rounds": rounds})
            if best is None or loss < best[0]:
                best = (loss, dict(candidate), cv_booster)
        assert best is not None
        _, self.best_params_, cv_booster = best
        rounds = int(cv_booster.best_iteration)
        oof = np.empty(len(y))
        for booster, (_, held_out) in zip(cv_booster.boosters, folds, strict=True):
            oof[held_out] = booster.predict(X.iloc[held_out], num_iteration=rounds, raw_score=True)
        self.base_rate_ = float(np.mean(y))
        self.booster_ = lgb.train({**self.lgb_params(), **self.best_params_}, data, num_boost_round=rounds)
        self.best_iteration_ = rounds
        if self.additive_blend and not self.monotone_increasing:
            oof = self._fit_blend(X, y, oof, folds)
        self._fit_calibrator(oof, y)
        return self

    def _fit_blend(
        self, X: pd.DataFrame, y: np.ndarray, oof: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
    ) -> np.ndarray:
        """Choose the booster's share of the margin on the inner folds; return the blended oof margins.

        The additive model is fitted on each inner training part and scores its held-out part; every weight
        in ``BLEND_WEIGHTS`` is scored by the log loss of a Platt fit on the blended out-of-fold margins, the
        lowest wins (ties: the larger booster share). Below 1 the additive model is refitted on every row.
        """
        M = self.matrix(X)
        weight = self.sample_weight(y)
        categorical = [c in self.categories_ for c in self.feature_names_in_]
        oof_additive = np.empty(len(y))
        for train, held_out in folds:
            part = self._additive(categorical).fit(
                M[train], y[train], None if weight is None else weight[train]
            )
            oof_additive[held_out] = part.decision_function(M[held_out])
        best: tuple[float, float] | None = None
        for w in BLEND_WEIGHTS[::-1]:
            blended = (w * oof + (1 - w) * oof_additive).reshape(-1, 1)
            platt = LogisticRegression(C=1e6, solver="newton-cholesky").fit(blended, y)
            loss = float(log_loss(y, platt.predict_proba(blended)[:, 1]))
            if best is None or loss < best[0] - 1e-12:
                best = (loss, float(w))
        assert best is not None
        self.blend_weight_ = best[1]
        if self.blend_weight_ < 1.0:
            self.additive_ = self._additive(categorical).fit(M, y, weight)
        return np.asarray(self.blend_weight_ * oof + (1 - self.blend_weight_) * oof_additive)

    def _additive(self, categorical: Sequence[bool]) -> SplineAdditiveModel:
        return SplineAdditiveModel(categorical, n_knots=self.spline_knots, C=self.additive_C)

    def _train_booster(
        self, X: pd.DataFrame, y: np.ndarray, X_stop: pd.DataFrame, y_stop: np.ndarray
    ) -> tuple[lgb.Booster, int]:
        """Boost on ``X, y``; stop once the weighted log loss on ``X_stop`` stops improving."""
        train_set = lgb.Dataset(X, y, weight=self.sample_weight(y), categorical_feature="auto")
        stop_set = lgb.Dataset(X_stop, y_stop, weight=self.sample_weight(y_stop), reference=train_set)
        booster = lgb.train(
            self.lgb_params(),
            train_set,
            num_boost_round=self.n_estimators,
            valid_sets=[stop_set],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        return booster, int(booster.best_iteration or self.n_estimators)

    def _fit_calibrator(self, margin: np.ndarray, y: np.ndarray) -> None:
        method = self.calibration
        if method == "auto":
            method = "isotonic" if len(y) >= ISOTONIC_MIN_ROWS else "sigmoid"
        self.calibration_method_: str = method
        self.calibration_rows_ = len(y)
        self.calibrator_: IsotonicRegression | LogisticRegression | None
        if method == "isotonic":
            self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(margin, y)
        elif method == "sigmoid":
            self.calibrator_ = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), y)
            if self.calibrator_.coef_[0, 0] <= 0:
                # A handful of held-out positives can fit a non-positive slope, which would invert the
                # booster's ranking: keep its order and only shift the intercept to the observed base rate.
                self.calibration_method_ = "sigmoid_intercept"
                self.calibrator_.coef_ = np.array([[1.0]])
                self.calibrator_.intercept_ = np.array([_intercept_shift(margin, y)])
        else:
            self.calibrator_ = None

    # -- scoring ---------------------------------------------------------------------------------------------

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw margin (log-odds under the training weights), shape (n_rows,): the booster's, blended with the
        additive model's when one was fitted."""
        check_is_fitted(self, "booster_")
        prepared = X if self._is_prepared(X) else self.prepare(X)
        tree = np.asarray(self.booster_.predict(prepared, num_iteration=self.best_iteration_, raw_score=True))
        return self.blend(tree, prepared)

    def matrix(self, prepared: pd.DataFrame) -> np.ndarray:
        """A prepared frame as the booster reads it, shape (n_rows, n_features): categories as their codes
        (NaN for missing), numbers as floats."""
        columns = []
        for col in self.feature_names_in_:
            values = prepared[col]
            if col in self.categories_:
                codes = values.cat.codes.to_numpy().astype(float)
                columns.append(np.where(codes < 0, np.nan, codes))
            else:
                columns.append(values.to_numpy(dtype=float))
        return np.column_stack(columns) if columns else np.empty((len(prepared), 0))

    def blend(self, tree: np.ndarray, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The served output from the booster's: ``tree`` is its margins, shape (n_rows,), or its TreeSHAP
        contributions, shape (n_rows, n_features + 1), on ``X`` (a prepared frame or its :meth:`matrix`).

        Without an additive model this is ``tree`` itself; with one, ``w * tree + (1 - w) * additive`` with
        the additive model's margins or per-column contributions (bias last), so contributions still sum to
        the margin.
        """
        additive = getattr(self, "additive_", None)  # scorers pickled before the blend have none
        if additive is None:
            return tree
        M = X if isinstance(X, np.ndarray) else self.matrix(X)
        linear = additive.contributions(M)
        w = self.blend_weight_
        return np.asarray(w * tree + (1 - w) * (linear if tree.ndim == 2 else linear.sum(axis=1)))

    def _is_prepared(self, X: pd.DataFrame) -> bool:
        return (
            list(X.columns) == list(self.feature_names_in_)
            and all(isinstance(X[c].dtype, pd.CategoricalDtype) for c in self.categories_)
            and all(X[c].dtype == float for c in self.feature_names_in_ if c not in self.categories_)
        )

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n_rows, 2): column 1 is P(label = 1)."""
        margin = self.decision_function(X)
        if self.calibrator_ is None:
            p = 1.0 / (1.0 + np.exp(-margin))
        elif isinstance(self.calibrator_, IsotonicRegression):
            p = self.calibrator_.predict(margin)
        else:
            p = self.calibrator_.predict_proba(margin.reshape(-1, 1))[:, 1]
        p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Hard 0/1 decisions at probability 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def feature_importances(self) -> pd.Series:
        """Total gain per feature, largest first."""
        check_is_fitted(self, "booster_")
        gain = self.booster_.feature_importance(importance_type="gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.feature_names_in_).sort_values(ascending=False)


def _intercept_shift(margin: np.ndarray, y: np.ndarray) -> float:
    """Maximum-likelihood ``b`` of ``P(y=1) = sigmoid(margin + b)``: mean probability equals the base rate."""
    from scipy.optimize import brentq
    from scipy.special import expit

    def excess(b: float) -> float:
        return float(expit(margin + b).sum() - y.sum())

    span = float(np.abs(margin).max()) + 50.0
    return float(brentq(excess, -span, span))

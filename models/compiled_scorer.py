"""A fitted :class:`BinaryScorer` flattened for the request path: records in, calibrated probabilities out.

``BinaryScorer.predict_proba`` goes through pandas column by column (categoricals, dtype checks), which costs
milliseconds for one row of ~100 features; a decision needs two such scores. ``CompiledScorer`` does the same
arithmetic on a NumPy matrix built straight from the feature records: category values become the booster's
category codes (unseen or missing → NaN, as ``prepare`` makes them), numbers become floats (missing or
non-numeric → NaN), the scorer's additive model (if it blends one) reads the same matrix, and the scorer's
own calibrator maps the margin to a probability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from models.scorer import BinaryScorer
from models.single_row import SingleRowPredictor

NAN = math.nan
COLUMNAR_FROM = 256
"""Above this many records a column is converted with pandas in one call, below value by value."""


def _as_float(value: Any) -> float:
    """A feature value as the booster reads it: None, text and non-finite garbage are missing."""
    if value is None:
        return NAN
    try:
        return float(value)
    except (TypeError, ValueError):
        return NAN


class CompiledScorer:
    """Scores feature records (feature name → value) with a fitted scorer's booster and calibrator.

    Parameters: ``scorer``, a fitted :class:`BinaryScorer`; ``num_threads``, LightGBM threads per call (1: a
    request scores a handful of rows, and threads would fight the server's workers for the two cores).
    """

    def __init__(self, scorer: BinaryScorer, num_threads: int = 1) -> None:
        check_is_fitted(scorer, "booster_")
        self.scorer = scorer
        self.num_threads = num_threads
        self.features_: tuple[str, ...] = tuple(str(c) for c in scorer.feature_names_in_)
        self.codes_: dict[str, dict[Any, float]] = {
            col: {value: float(code) for code, value in enumerate(categories)}
            for col, categories in scorer.categories_.items()
        }
        calibrator = scorer.calibrator_
        self._platt: tuple[np.ndarray, np.ndarray] | None = None
        """(coef_.T, intercept_) of a binary Platt calibrator: its sklearn ``predict_proba`` spends ~1 ms
        per call validating a one-column input; the same matrix product and ``expit`` give the same bits."""
        if isinstance(calibrator, LogisticRegression) and calibrator.coef_.shape == (1, 1):
            self._platt = (calibrator.coef_.T.copy(), calibrator.intercept_.copy())
        self._single = SingleRowPredictor(scorer.booster_, len(self.features_), scorer.best_iteration_)
        """One record's margin (every decision): LightGBM's single-row fast path, the same raw score."""
        self._columns = tuple((col, self.codes_.get(col)) for col in self.features_)
        self._categorical = tuple(
            (j, self.codes_[col]) for j, col in enumerate(self.features_) if col in self.codes_
        )
        """(position, value → code) of the categorical features: the only values converted in Python."""

    def matrix(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The booster's input, shape (n_records, n_features); a feature absent from a record is missing."""
        if len(records) <= COLUMNAR_FROM:
            try:
                return self._rows_matrix(records)
            except (TypeError, ValueError):  # text or objects where numbers belong: value by value below
                pass
            code = self._code
            rows = [
                [
                    _as_float(r.get(col)) if codes is None else code(codes, r.get(col))
                    for col, codes in self._columns
                ]
                for r in records
            ]
            return np.array(rows, dtype=np.float64).reshape(len(records), len(self.features_))
        out = np.empty((len(records), len(self.features_)), dtype=np.float64)
        for j, col in enumerate(self.features_):  # a batch: one vectorised conversion per column
            series = pd.Series([r.get(col) for r in records], dtype=object)
            codes = self.codes_.get(col)
            out[:, j] = (
                pd.to_numeric(series, errors="coerce").astype(np.float64)
                if codes is None
                else series.map(lambda v, c=codes: self._code(c, v)).astype(np.float64)  # type: ignore[misc]
            )
        return out

    def _rows_matrix(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """A request's few records: the values fetched in C, categories coded, one NumPy conversion.

        NumPy turns None into NaN and numbers or numeric text into the floats ``float`` gives; anything it
        cannot convert raises (or changes the shape), and ``matrix`` then converts value by value.
        """
        shape = (len(records), len(self.features_))
        rows = []
        for r in records:
            values = list(map(r.get, self.features_))
            for j, codes in self._categorical:
                values[j] = self._code(codes, values[j])
            rows.append(values)
        out = np.array(rows, dtype=np.float64)
        if out.shape != shape:  # a list-valued feature: not a number
            raise ValueError(f"records do not form a {shape} matrix")
        return out

    @staticmethod
    def _code(codes: Mapping[Any, float], value: Any) -> float:
        if value is None:
            return NAN
        code = codes.get(value)
        if code is None and not isinstance(value, str):
            code = codes.get(str(value))
        return NAN if code is None else code

    def decision_function(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Raw LightGBM margin per record, shape (n_records,): equal to the scorer's ``decision_function``."""
        if len(records) == 1:
            matrix = self.matrix(records)
            return self.scorer.blend(np.array([self._single.predict(matrix[0])]), matrix)
        return self._booster_predict(records, raw_score=True)

    def predict_proba(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Calibrated P(label = 1) per record, shape (n_records,): as ``scorer.predict_proba(...)[:, 1]``."""
        if not records:
            return np.empty(0)
        margin = self.decision_function(records)
        calibrator = self.scorer.calibrator_
        if self._platt is not None:
            coef_t, intercept = self._platt
            p = expit((margin.reshape(-1, 1) @ coef_t + intercept).reshape(-1))
        elif calibrator is None:
            p = 1.0 / (1.0 + np.exp(-margin))
        elif isinstance(calibrator, IsotonicRegression):
            p = calibrator.predict(margin)
        else:
            p = calibrator.predict_proba(margin.reshape(-1, 1))[:, 1]
        return np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)

    def contributions(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Exact contributions per record, shape (n_records, n_features + 1): LightGBM's TreeSHAP values
        (``pred_contrib``), blended with the additive model's as ``BinaryScorer.blend`` does; one column per
        feature in ``features_`` order, then the bias; each row sums to the record's margin.

        The same values as ``ScorerExplainer.contributions`` on the scorer's frame, without pandas.
        """
        if not records:
            return np.empty((0, len(self.features_) + 1))
        return self._booster_predict(records, pred_contrib=True)

    def _booster_predict(self, records: Sequence[Mapping[str, Any]], **kind: bool) -> np.ndarray:
        """The served output on the records' matrix (``kind``: what the booster predicts), at the fitted
        iteration and blended as the scorer blends."""
        matrix = self.matrix(records)
        tree = np.asarray(
            self.scorer.booster_.predict(
                matrix,
                num_iteration=self.scorer.best_iteration_,
                num_threads=self.num_threads,
                **kind,
            ),
            dtype=float,
        )
        return self.scorer.blend(tree, matrix)

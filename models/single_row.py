"""LightGBM's single-row fast prediction (``LGBM_BoosterPredictForMatSingleRowFast``) for one record.

``Booster.predict`` on a one-row matrix spends most of its time in Python (argument checks, a predictor
object, array conversions) around microseconds of tree traversal; a decision scores one contact with two
boosters. LightGBM's C API has a path made for this: the prediction configuration is parsed once
(``...FastInit``) and each call only passes a pointer to the row. The trees, the missing-value and
categorical handling are LightGBM's own, so the raw score is the one ``Booster.predict(raw_score=True)``
returns.
"""

from __future__ import annotations

import ctypes
import threading

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call

_PREDICT_RAW_SCORE = 1  # C_API_PREDICT_RAW_SCORE
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRowPredictor:
    """Raw LightGBM margin of one float64 row, through a fast configuration kept for the booster.

    Parameters: ``booster``, a trained booster (kept alive as long as this predictor); ``n_features``, the
    row length; ``num_iteration``, trees to use (``None`` or <= 0: all, as ``Booster.predict``). The
    configuration holds the output buffer, so calls are serialized by a lock (an uncontended lock costs far
    less than the call).
    """

    def __init__(self, booster: lgb.Booster, n_features: int, num_iteration: int | None = None) -> None:
        self.booster = booster
        self.n_features = n_features
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_RAW_SCORE),
                ctypes.c_int(0),
                ctypes.c_int(num_iteration if num_iteration and num_iteration > 0 else -1),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(n_features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(handle),
            )
        )
        self._handle: ctypes.c_void_p | None = handle
        self._out = np.empty(1, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()
        self._lock = threading.Lock()

    def predict(self, row: np.ndarray) -> float:
        """The raw score (margin) of ``row``, a float64 array of ``n_features`` values (NaN: missing)."""
        if row.dtype != np.float64 or row.shape != (self.n_features,):
            raise ValueError(
                f"`row` must be float64 of shape ({self.n_features},), but got {row.dtype} {row.shape}"
            )
        data = np.ascontiguousarray(row)
        with self._lock:
            if self._handle is None:
                raise RuntimeError("the predictor was freed")
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    self._handle,
                    data.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._out_len),
                    self._out_ptr,
                )
            )
            return float(self._out[0])

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value is not None:
            _LIB.LGBM_FastConfigFree(handle)
        self._handle = None

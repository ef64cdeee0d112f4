"""A bilinear ridge reward model: expected reward of showing action ``a`` in context ``x``.

r(x, a) = [1, x]^T W [1, a]: a linear model on the crossed (outer-product) features of context and action,
fitted by ridge regression from sufficient statistics, so ``partial_fit`` gives exactly the model a full
refit on all rows seen so far would. Scoring every candidate for many contacts is two matrix products,
which is what makes a decision over 50 candidates take microseconds.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

_CHUNK = 4096


def _with_bias(values: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((values.shape[0], 1)), values])


def check_bandit_arrays(
    context: np.ndarray, action_features: np.ndarray, actions: np.ndarray, rewards: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate logged-bandit training arrays; errors name the argument, expectation and finding."""
    X = np.asarray(context, dtype=float)
    A = np.asarray(action_features, dtype=float)
    a = np.asarray(actions)
    r = np.asarray(rewards, dtype=float)
    if X.ndim != 2 or A.ndim != 2:
        raise ValueError(f"`context` and `action_features` must be 2-D, but got {X.ndim}-D and {A.ndim}-D")
    if a.shape != (X.shape[0],) or r.shape != (X.shape[0],):
        raise ValueError(
            f"`actions` and `rewards` must have shape ({X.shape[0]},), but got {a.shape} and {r.shape}"
        )
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"`actions` must be integer indices into `action_features`, but got dtype {a.dtype}")
    outside = int(((a < 0) | (a >= A.shape[0])).sum())
    if outside:
        raise ValueError(f"`actions` must be in [0, {A.shape[0]}), but {outside} rows are outside")
    for name, arr in (("context", X), ("action_features", A), ("rewards", r)):
        bad = int((~np.isfinite(arr)).sum())
        if bad:
            raise ValueError(f"`{name}` must be finite, but got {bad} missing or infinite values")
    return X, A, a.astype(np.int64), r


class BilinearRewardModel(BaseEstimator):  # type: ignore[misc]
    """Ridge regression on crossed context x action features.

    Parameters
    ----------
    alpha: ridge penalty (> 0) on every coefficient but the intercept, so rare rewards and unseen crossings
        shrink towards the mean reward rather than to zero.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _crossed(self, X1: np.ndarray, A1: np.ndarray, actions: np.ndarray) -> sp.csr_matrix:
        rows = X1[:, :, None] * A1[actions][:, None, :]
        return sp.csr_matrix(rows.reshape(X1.shape[0], -1))

    def _accumulate(self, X: np.ndarray, A: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        X1, A1 = _with_bias(X), _with_bias(A)
        for start in range(0, X.shape[0], _CHUNK):
            stop = start + _CHUNK
            Z = self._crossed(X1[start:stop], A1, actions[start:stop])
            self.gram_ += (Z.T @ Z).toarray()
            self.moment_ += Z.T @ rewards[start:stop]
        self.n_rows_ += X.shape[0]
        p = self.gram_.shape[0]
        penalty = self.alpha * np.eye(p)
        penalty[0, 0] = 1e-9 * self.alpha  # the intercept is (almost) free: shrink towards the mean reward
        coef = np.linalg.solve(self.gram_ + penalty, self.moment_)
        self.coef_ = coef.reshape(X.shape[1] + 1, A.shape[1] + 1)

    def fit(
        self, context: np.ndarray, action_features: np.ndarray, actions: np.ndarray, rewards: np.ndarray
    ) -> Self:
        """Fit on logged rows.

        context: shape (n_rows, n_context_features); action_features: shape (n_actions, n_action_features);
        actions: int indices into ``action_features``, shape (n_rows,); rewards: shape (n_rows,).
        """
        if not (isinstance(self.alpha, int | float) and self.alpha > 0):
            raise ValueError(f"`alpha` must be a number > 0, but got {self.alpha!r}")
        X, A, a, r = check_bandit_arrays(context, action_features, actions, rewards)
        p = (X.shape[1] + 1) * (A.shape[1] + 1)
        self.n_context_features_ = X.shape[1]
        self.n_action_features_ = A.shape[1]
        self.gram_ = np.zeros((p, p))
        self.moment_ = np.zeros(p)
        self.n_rows_ = 0
        self._accumulate(X, A, a, r)
        return self

    def partial_fit(
        self, context: np.ndarray, action_features: np.ndarray, actions: np.ndarray, rewards: np.ndarray
    ) -> Self:
        """Add rows to the sufficient statistics and re-solve (the online update); fits if not fitted yet."""
        if not hasattr(self, "coef_"):
            return self.fit(context, action_features, actions, rewards)
        X, A, a, r = check_bandit_arrays(context, action_features, actions, rewards)
        self._check_widths(X, A)
        self._accumulate(X, A, a, r)
        return self

    def _check_widths(self, X: np.ndarray, A: np.ndarray) -> None:
        if X.shape[1] != self.n_context_features_ or A.shape[1] != self.n_action_features_:
            raise ValueError(
                f"expected {self.n_context_features_} context and {self.n_action_features_} action features, "
                f"but got {X.shape[1]} and {A.shape[1]}"
            )

    def predict(self, context: np.ndarray, action_features: np.ndarray) -> np.ndarray:
        """Expected reward of every action in every context, shape (n_contexts, n_actions)."""
        if not hasattr(self, "coef_"):
            check_is_fitted(self, "coef_")  # raises sklearn's NotFittedError with its usual message
        X = np.asarray(context, dtype=float)
        A = np.asarray(action_features, dtype=float)
        if X.shape[1] != self.n_context_features_ or A.shape[1] != self.n_action_features_:
            self._check_widths(X, A)
        W = self.coef_
        # [1, x] W [1, a]^T written out so no bias columns are allocated per call. einsum, not BLAS: a
        # matrix product sums a 1-row and an n-row input in different orders, so a contact decided alone
        # and in a batch got probabilities a bit apart; einsum sums each row the same way at any n.
        left = W[0] + np.einsum("ij,jk->ik", X, W[1:], optimize=False)
        return np.asarray(left[:, :1] + np.einsum("ij,kj->ik", left[:, 1:], A, optimize=False))

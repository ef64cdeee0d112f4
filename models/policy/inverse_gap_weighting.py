"""Inverse gap weighting (Abe & Long 1999; SquareCB, Foster & Rakhlin, "Beyond UCB", ICML 2020).

Among K eligible actions with best score s_b, every other action gets p(a) = 1 / (K + gamma * (s_b - s(a)))
and the best gets the rest, so probabilities are exact, positive on every eligible action and sum to one.
Larger ``gamma`` explores less; ``gamma = 0`` is uniform over eligible actions.
"""

from __future__ import annotations

import numpy as np

from models.policy.base import ContentPolicy, best_eligible


class InverseGapWeighting(ContentPolicy):
    """SquareCB-style exploration over a bilinear ridge reward model."""

    def __init__(
        self, gamma: float = 50.0, alpha: float = 1.0, greedy: bool = False, random_state: int = 0
    ) -> None:
        self.gamma = gamma
        self.alpha = alpha
        self.greedy = greedy
        self.random_state = random_state

    def _validate_params(self) -> None:
        if not (isinstance(self.gamma, int | float) and np.isfinite(self.gamma) and self.gamma >= 0):
            raise ValueError(f"`gamma` must be a finite number >= 0, but got {self.gamma!r}")
        if not (isinstance(self.alpha, int | float) and self.alpha > 0):
            raise ValueError(f"`alpha` must be a number > 0, but got {self.alpha!r}")

    def probabilities(self, scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        n = scores.shape[0]
        k_eligible = eligible.sum(axis=1, keepdims=True)
        best = best_eligible(scores, eligible)
        best_score = scores[np.arange(n), best][:, None]
        gap = np.maximum(best_score - scores, 0.0)
        with np.errstate(divide="ignore"):
            probs = np.where(eligible, 1.0 / (k_eligible + self.gamma * gap), 0.0)
        probs[np.arange(n), best] = 0.0
        rows = np.flatnonzero(k_eligible[:, 0] > 0)
        probs[rows, best[rows]] = 1.0 - probs[rows].sum(axis=1)
        return probs

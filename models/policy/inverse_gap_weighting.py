"""Inverse gap weighting (Abe & Long 1999; SquareCB, Foster & Rakhlin, "Beyond UCB", ICML 2020).

Among K eligible actions with best score s_b, every other action gets p(a) = 1 / (K + gamma * (s_b - s(a)))
and the best gets the rest, so probabilities are exact, positive on every eligible action and sum to one.
Larger ``gamma`` explores less; ``gamma = 0`` is uniform over eligible actions.
"""

from __future__ import annotations

import numpy as np

from models.policy.base import ContentPolicy


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
        rows = np.arange(scores.shape[0])
        best = np.where(eligible, scores, -np.inf).argmax(axis=1)
        gap = np.maximum(scores[rows, best][:, None] - scores, 0.0)  # ineligible entries are zeroed below
        k_eligible = np.maximum(eligible.sum(axis=1, keepdims=True), 1)
        probs = eligible / (k_eligible + self.gamma * gap)
        probs[rows, best] = 0.0
        probs[rows, best] = np.where(eligible[rows, best], 1.0 - probs.sum(axis=1), 0.0)
        return np.asarray(probs)

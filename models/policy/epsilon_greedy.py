"""Epsilon-greedy exploration: the best eligible action with probability 1 - epsilon + epsilon / K, every
other eligible action with epsilon / K (exact probabilities, summing to one over the K eligible actions)."""

from __future__ import annotations

import numpy as np

from models.policy.base import ContentPolicy


class EpsilonGreedy(ContentPolicy):
    """Epsilon-greedy over a bilinear ridge reward model; ``epsilon`` is the exploration rate in [0, 1]."""

    def __init__(
        self, epsilon: float = 0.1, alpha: float = 1.0, greedy: bool = False, random_state: int = 0
    ) -> None:
        self.epsilon = epsilon
        self.alpha = alpha
        self.greedy = greedy
        self.random_state = random_state

    def _validate_params(self) -> None:
        if not (isinstance(self.epsilon, int | float) and 0.0 <= self.epsilon <= 1.0):
            raise ValueError(f"`epsilon` must be in [0, 1], but got {self.epsilon!r}")
        if not (isinstance(self.alpha, int | float) and self.alpha > 0):
            raise ValueError(f"`alpha` must be a number > 0, but got {self.alpha!r}")

    def probabilities(self, scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        rows = np.arange(scores.shape[0])
        best = np.where(eligible, scores, -np.inf).argmax(axis=1)
        k_eligible = np.maximum(eligible.sum(axis=1, keepdims=True), 1)
        probs = eligible * (self.epsilon / k_eligible)
        probs[rows, best] = 0.0
        probs[rows, best] = np.where(eligible[rows, best], 1.0 - probs.sum(axis=1), 0.0)
        return np.asarray(probs)

"""The abstract content policy: a reward model plus an exploration rule with exact probabilities.

Policies work on arrays so one code path serves a single contact and a million (rows are contacts):
``context``: shape (n_contexts, n_context_features); ``action_features``: shape (n_actions,
n_action_features); ``eligible``: bool, shape (n_contexts, n_actions), what the guardrails left per contact;
``prior``: cold-start scores, shape (n_contexts, n_actions). Until a reward model is fitted the policy scores
with the prior (content metadata and stage fit), so it works from the first request.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np

from models.policy.reward_model import BilinearRewardModel


@dataclass(frozen=True)
class ActionDistribution:
    """Exact probabilities of every action per context; rows sum to 1 over eligible actions (0 elsewhere).

    probabilities, scores: shape (n_contexts, n_actions); eligible: bool, same shape. A row with no eligible
    action has all-zero probabilities.
    """

    probabilities: np.ndarray
    scores: np.ndarray
    eligible: np.ndarray


@dataclass(frozen=True)
class Selection:
    """Chosen actions: ``actions[:, 0]`` is sampled from the distribution, further slots are the remaining
    eligible actions by score. ``actions`` is -1 where a row has fewer eligible actions than slots;
    ``probabilities`` (shape (n_contexts,)) is the exact probability of the first slot (0 if none)."""

    actions: np.ndarray
    probabilities: np.ndarray
    distribution: ActionDistribution


def decision_uniforms(keys: Sequence[str], seed: int) -> np.ndarray:
    """One uniform number in [0, 1) per key (e.g. the decision's event id), reproducible from key and seed.

    Keyed randomness makes a decision independent of batch size and order: deciding one contact alone or
    inside a batch of a million draws the same number.
    """
    out = np.empty(len(keys))
    for i, key in enumerate(keys):
        digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
        out[i] = (int.from_bytes(digest, "big") >> 11) / float(1 << 53)
    return out


def _as_mask(eligible: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if eligible is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(eligible, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"`eligible` must have shape {shape}, but got {mask.shape}")
    return mask


def best_eligible(scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Index of the highest-scoring eligible action per row (lowest index on ties; 0 for empty rows)."""
    return np.asarray(np.argmax(np.where(eligible, scores, -np.inf), axis=1))


class ContentPolicy(abc.ABC):
    """A contextual-bandit content policy. Subclasses define ``probabilities`` (the exploration rule).

    Parameters shared by all policies
    ---------------------------------
    alpha: ridge penalty of the reward model.
    greedy: deterministic mode: all probability on the best eligible action (for tests and evaluation).
    random_state: seed of the sampling when no per-decision uniforms are given.
    """

    alpha: float
    greedy: bool
    random_state: int

    @abc.abstractmethod
    def _validate_params(self) -> None:
        """Raise ValueError naming a bad hyperparameter."""

    @abc.abstractmethod
    def probabilities(self, scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Exploration rule: probabilities from scores, shape (n_contexts, n_actions), exact over eligible."""

    # -- learning --------------------------------------------------------------------------------
    def fit(
        self,
        context: np.ndarray,
        action_features: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
    ) -> Self:
        """Learn the reward model from logged rows (``actions`` index ``action_features``); returns self."""
        self._validate_params()
        model = BilinearRewardModel(alpha=self.alpha)
        self.reward_model_ = model.fit(context, action_features, actions, rewards)
        return self

    def update(
        self,
        context: np.ndarray,
        action_features: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
    ) -> Self:
        """Online update for a single node: add rows to the reward model (exactly equal to refitting)."""
        if not self.is_fitted:
            return self.fit(context, action_features, actions, rewards)
        self.reward_model_.partial_fit(context, action_features, actions, rewards)
        return self

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "reward_model_")

    # -- deciding --------------------------------------------------------------------------------
    def scores(
        self, context: np.ndarray, action_features: np.ndarray, prior: np.ndarray | None = None
    ) -> np.ndarray:
        """Expected reward per context and action; the prior (or zeros) before any fit: cold start."""
        n, k = np.asarray(context).shape[0], np.asarray(action_features).shape[0]
        if self.is_fitted:
            return self.reward_model_.predict(context, action_features)
        if prior is None:
            return np.zeros((n, k))
        prior = np.asarray(prior, dtype=float)
        if prior.shape != (n, k):
            raise ValueError(f"`prior` must have shape {(n, k)}, but got {prior.shape}")
        return prior

    def action_distribution(
        self,
        context: np.ndarray,
        action_features: np.ndarray,
        eligible: np.ndarray | None = None,
        prior: np.ndarray | None = None,
    ) -> ActionDistribution:
        """Exact probability of every action for every context (zero for ineligible actions)."""
        self._validate_params()
        scores = self.scores(context, action_features, prior)
        mask = _as_mask(eligible, scores.shape)
        if self.greedy:
            probs = np.zeros(scores.shape)
            rows = np.flatnonzero(mask.any(axis=1))
            probs[rows, best_eligible(scores, mask)[rows]] = 1.0
        else:
            probs = self.probabilities(scores, mask)
        return ActionDistribution(probabilities=probs, scores=scores, eligible=mask)

    def select_action(
        self,
        context: np.ndarray,
        action_features: np.ndarray,
        eligible: np.ndarray | None = None,
        prior: np.ndarray | None = None,
        *,
        n_slots: int = 1,
        uniforms: np.ndarray | None = None,
    ) -> Selection:
        """Sample the first slot from the action distribution and rank the rest by score.

        uniforms: shape (n_contexts,), numbers in [0, 1) driving the sampling (see ``decision_uniforms``);
        drawn from ``random_state`` when omitted, so equal inputs give equal choices.
        """
        if n_slots < 1:
            raise ValueError(f"`n_slots` must be >= 1, but got {n_slots}")
        dist = self.action_distribution(context, action_features, eligible, prior)
        probs, mask = dist.probabilities, dist.eligible
        n, k = probs.shape
        if uniforms is None:
            u = np.asarray(np.random.default_rng(self.random_state).random(n), dtype=float)
        else:
            u = np.asarray(uniforms, dtype=float)
            if u.shape != (n,) or ((u < 0) | (u >= 1)).any():
                raise ValueError(f"`uniforms` must have shape ({n},) with values in [0, 1)")
        rows = np.arange(n)
        has_any = np.asarray(mask.any(axis=1), dtype=bool)
        # The first cumulative probability above u is always an action with positive probability; rounding
        # can leave the total a hair below u, so clamp to the last action with positive probability.
        first = (np.cumsum(probs, axis=1) <= u[:, None]).sum(axis=1)
        last_positive = k - 1 - np.argmax(probs[:, ::-1] > 0, axis=1)
        first = np.minimum(first, last_positive)
        actions = np.full((n, n_slots), -1, dtype=np.int64)
        actions[:, 0] = np.where(has_any, first, -1)
        chosen_p = probs[rows, first] * has_any
        if n_slots > 1:
            rest = np.where(mask, dist.scores, -np.inf)
            rest[rows, first] = -np.inf
            order = np.argsort(-rest, axis=1, kind="stable")[:, : n_slots - 1]
            valid = np.asarray(np.take_along_axis(rest, order, axis=1) > -np.inf)
            actions[:, 1:] = np.where(valid & has_any[:, None], order, -1)
        return Selection(actions=actions, probabilities=chosen_p, distribution=dist)

"""Reference policies to compare ripen's content policy against inside the simulator (issue 5 §6).

- ``UniformRandomPolicy``: a block drawn uniformly among the eligible ones, at most once per ``min_gap_days``;
- ``FixedRulePolicy``: the next eligible block of the stage in catalog order, one mail a week;
- ``AggressiveSalesPolicy``: a sales offer every day when one is eligible ("five sales mails in a row");
- ``OraclePolicy``: the eligible block of highest TRUE expected reward, or wait when none beats ``threshold``.

Each returns ``(chosen, propensity)``: the probability the policy had of the action it took (1 for
deterministic choices and for waiting).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from training.simulation.catalog_arrays import SALES_FORMATS
from training.simulation.engine import JourneySimulator
from training.simulation.observation import WAIT, Observation


@dataclass
class ReferencePolicy(abc.ABC):
    """Shared cadence rule: a contact touched fewer than ``min_gap_days`` ago waits."""

    min_gap_days: int = 7

    def __post_init__(self) -> None:
        if not isinstance(self.min_gap_days, int) or self.min_gap_days < 1:
            raise ValueError(f"`min_gap_days` must be an integer >= 1, but got {self.min_gap_days!r}")

    def choose(self, obs: Observation) -> np.ndarray:
        """Chosen content index per due contact, ``WAIT`` (-1) for no send; shape (n_due,)."""
        return self.choose_with_propensity(obs)[0]

    def _may_send(self, obs: Observation) -> np.ndarray:
        return (obs.days_since_last_touch >= self.min_gap_days) & obs.eligible.any(axis=1)

    @abc.abstractmethod
    def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """``(chosen, propensity)``, both shape (n_due,)."""


@dataclass
class UniformRandomPolicy(ReferencePolicy):
    """Uniform among eligible blocks; its randomness is fixed by ``seed`` and the day, so runs repeat."""

    seed: int = 0

    def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, obs.day])
        keys = rng.random(obs.eligible.shape)
        keys[~obs.eligible] = -1.0
        send = self._may_send(obs)
        chosen = np.where(send, keys.argmax(axis=1), WAIT)
        n_eligible = obs.eligible.sum(axis=1)
        propensity = np.where(send, 1.0 / np.maximum(n_eligible, 1), 1.0)
        return chosen, propensity


@dataclass
class FixedRulePolicy(ReferencePolicy):
    """The next eligible block of the contact's stage in catalog order, one mail every ``min_gap_days``.

    "Next" means the least-sent eligible block, first in catalog order among equals: the rule walks through
    the stage's blocks and only then starts over with reminders.
    """

    def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        order = obs.times_sent.astype(np.int64) * obs.n_content + np.arange(obs.n_content)[None, :]
        order = np.where(obs.eligible, order, np.iinfo(np.int64).max)
        chosen = np.where(self._may_send(obs), order.argmin(axis=1), WAIT)
        return chosen, np.ones(obs.n_due)


@dataclass
class AggressiveSalesPolicy(ReferencePolicy):
    """A sales offer (consultation, up-sell, cross-sell) every day if one is eligible, else the first eligible
    block: the "five sales mails in a row" practice the nurture playbook warns against."""

    min_gap_days: int = 1

    def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        sales = np.array([b.format in SALES_FORMATS for b in obs.catalog])
        # Prefer sales offers, then catalog order: eligible sales score 2, other eligible blocks 1.
        score = obs.eligible * (1 + sales[None, :])
        chosen = np.where(self._may_send(obs), score.argmax(axis=1), WAIT)
        return chosen, np.ones(obs.n_due)


@dataclass
class OraclePolicy(ReferencePolicy):
    """Argmax of the simulator's TRUE expected reward over eligible blocks; waits if the best <= threshold.

    It is myopic (today's reward only), the upper reference a learned content policy is measured against. At
    the default cadence of one mail a week it picks the best content; sending daily it loses to weekly
    policies, because fatigue (which it does not plan for) eats tomorrow's reward.
    """

    simulator: JourneySimulator | None = None
    threshold: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.simulator is None:
            raise ValueError("`simulator` is required: the oracle reads the true expected reward from it")

    def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        assert self.simulator is not None
        may = self._may_send(obs)
        rows = np.flatnonzero(may)
        er = self.simulator.expected_reward(
            obs.contact_indices[rows, None], np.arange(obs.n_content)[None, :]
        )
        er = np.where(obs.eligible[rows], er, -np.inf)
        best = er.argmax(axis=1)
        chosen = np.full(obs.n_due, WAIT, np.int64)
        chosen[rows] = np.where(er[np.arange(len(rows)), best] > self.threshold, best, WAIT)
        return chosen, np.ones(obs.n_due)

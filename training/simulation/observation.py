"""What a policy sees of the simulated world when it decides, and the interface a policy offers the simulator.

The observation holds only what a journey engine could know: profile facts, lead status and stage, consent,
what was sent and consumed, decayed engagement counts, and the eligibility mask of the basic guardrails.
Hidden state (readiness, interests, fatigue, churn risk) stays in the world.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np

from features.schemas import ContentBlock

WAIT = -1
"""The action "send nothing now"."""
NEVER_TOUCHED = 10_000
"""``days_since_last_touch`` of a contact who was never sent anything."""


@dataclass(frozen=True)
class Observation:
    """One day's decision batch: n_due contacts whose nurture step is due, C content blocks."""

    day: int
    timestamp: datetime
    contact_indices: np.ndarray
    """int, shape (n_due,): simulator indices of the due contacts."""
    contact_ids: np.ndarray
    """object, shape (n_due,)."""
    stage: np.ndarray
    """int, shape (n_due,): index into ``stage_ids``."""
    lead_status: np.ndarray
    """int, shape (n_due,): index into ``lead_statuses``."""
    persona: np.ndarray
    """int, shape (n_due,): index into ``persona_names``."""
    consent: np.ndarray
    """bool, shape (n_due, len(channels)): opt-in per channel now."""
    tracking_consent: np.ndarray
    """bool, shape (n_due,)."""
    consumed: np.ndarray
    """bool, shape (n_due, C): blocks the contact clicked, downloaded or attended."""
    times_sent: np.ndarray
    """int, shape (n_due, C): how often each block was sent to the contact."""
    days_since_last_touch: np.ndarray
    """int, shape (n_due,): ``NEVER_TOUCHED`` if never sent anything."""
    engagement: np.ndarray
    """float, shape (n_due, 3): 30-day-decayed counts of opens, clicks and consumptions."""
    eligible: np.ndarray
    """bool, shape (n_due, C): basic guardrails (consent, stage fit, no repeats of consumed, prerequisites,
    customer programs for customers only)."""
    catalog: tuple[ContentBlock, ...]
    stage_ids: tuple[str, ...]
    lead_statuses: tuple[str, ...]
    persona_names: tuple[str, ...]
    channels: tuple[str, ...]

    @property
    def n_due(self) -> int:
        return len(self.contact_indices)

    @property
    def n_content(self) -> int:
        return len(self.catalog)


@runtime_checkable
class Policy(Protocol):
    """Anything that picks, per due contact, a content index or ``WAIT`` (-1)."""

    def choose(self, obs: Observation) -> np.ndarray:
        """Chosen content index per due contact, shape (n_due,), ``WAIT`` for no send."""
        ...


@runtime_checkable
class PropensityPolicy(Policy, Protocol):
    """A policy that also reports the probability it had of taking each chosen action."""

    def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """``(chosen, propensity)``, both shape (n_due,); propensity in (0, 1]."""
        ...


@runtime_checkable
class LearningPolicy(Policy, Protocol):
    """A policy that learns online: after each day's sends it gets the immediate rewards of its choices."""

    def update(self, obs: Observation, chosen: np.ndarray, reward: np.ndarray) -> None:
        """``chosen`` and ``reward`` have shape (n_due,); waits carry reward 0."""
        ...

"""The journey simulator: synthetic contacts, a hidden ground truth, and a day loop running any policy.

Typical use::

    sim = JourneySimulator(n_contacts=10_000, n_days=180, seed=7)
    result = sim.run(FixedRulePolicy())
    result.events            # event-store export schema
    result.decisions         # day, contact, chosen, propensity, expected_reward, reward, ..., converted
    result.profiles()        # final ContactProfile objects

Policies implement ``choose(obs) -> ndarray`` (optionally ``choose_with_propensity`` and, to learn online,
``update(obs, chosen, reward)``); an oracle reads
``sim.expected_reward(contact_indices, content_indices, day)``.
With ``record_context=True``, ``result.true_value(action_dist)`` is the true value of any policy on the logged
decisions, the truth off-policy estimates are checked against.
"""

from training.simulation.engine import (
    DECISION_COLUMNS,
    JourneySimulator,
    SimulationResult,
    SimulationSummary,
)
from training.simulation.events import EVENT_COLUMNS, EVENT_SCHEMA, iter_engagement_events, write_events
from training.simulation.observation import (
    NEVER_TOUCHED,
    WAIT,
    LearningPolicy,
    Observation,
    Policy,
    PropensityPolicy,
)
from training.simulation.personas import DEFAULT_PERSONAS, Persona
from training.simulation.policies import (
    AggressiveSalesPolicy,
    FixedRulePolicy,
    OraclePolicy,
    ReferencePolicy,
    UniformRandomPolicy,
)
from training.simulation.world import RewardWeights

__all__ = [
    "DECISION_COLUMNS",
    "DEFAULT_PERSONAS",
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "NEVER_TOUCHED",
    "WAIT",
    "AggressiveSalesPolicy",
    "FixedRulePolicy",
    "JourneySimulator",
    "LearningPolicy",
    "Observation",
    "OraclePolicy",
    "Persona",
    "Policy",
    "PropensityPolicy",
    "ReferencePolicy",
    "RewardWeights",
    "SimulationResult",
    "SimulationSummary",
    "UniformRandomPolicy",
    "iter_engagement_events",
    "write_events",
]

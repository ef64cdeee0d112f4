"""ripen's content policy inside the journey simulator: exact propensities, eligibility, online learning,
reward against the references, and calibration of the DR estimate against the simulator's truth."""

from __future__ import annotations

import numpy as np
import pytest

from training.policy_simulation import (
    SimulatorContentPolicy,
    compare_policies,
    decisions_contexts,
    ope_check,
    ope_coverage,
    sample_actions,
)
from training.simulation import WAIT, JourneySimulator, Observation, UniformRandomPolicy


class Recorder(SimulatorContentPolicy):
    """The adapter, keeping every observation and answer it gave (to check them after the run)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.seen: list[tuple[Observation, np.ndarray, np.ndarray, np.ndarray]] = []

    def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        probs, _ = self.action_distribution(obs)
        chosen, propensity = super().choose_with_propensity(obs)
        self.seen.append((obs, probs, chosen, propensity))
        return chosen, propensity


@pytest.fixture(scope="module")
def recorded() -> tuple[Recorder, JourneySimulator]:
    policy = Recorder(seed=3, refit_every_days=8)
    sim = JourneySimulator(n_contacts=300, n_days=40, seed=3)
    sim.run(policy)
    return policy, sim


def test_probabilities_are_exact_and_respect_eligibility(recorded: tuple[Recorder, JourneySimulator]) -> None:
    policy, _ = recorded
    n_sends = 0
    for obs, probs, chosen, propensity in policy.seen:
        assert (probs[~obs.eligible] == 0).all()
        sums = probs.sum(axis=1)
        assert np.allclose(sums[sums > 0], 1.0)
        send = chosen != WAIT
        rows = np.flatnonzero(send)
        assert obs.eligible[rows, chosen[rows]].all()
        assert np.allclose(propensity[rows], probs[rows, chosen[rows]])
        assert (propensity[~send] == 1.0).all() and (sums[~send] == 0).all()
        # cadence: nobody touched fewer than min_gap_days ago is sent anything
        assert (obs.days_since_last_touch[rows] >= policy.min_gap_days).all()
        n_sends += len(rows)
    assert n_sends > 500
    assert policy.policy_.is_fitted and policy.n_updates_ >= 4


def test_sampling_frequencies_match_the_stated_probabilities(
    recorded: tuple[Recorder, JourneySimulator],
) -> None:
    """Re-drawing one day's choice for one contact under many uniforms reproduces its stated distribution."""
    policy, _ = recorded
    obs, probs, _, _ = next(s for s in policy.seen[::-1] if (s[1] > 0).any())
    row = probs[[int(np.argmax((probs > 0).sum(axis=1)))]]
    n = 20_000
    u = np.random.default_rng(0).random(n)
    chosen, propensity = sample_actions(np.repeat(row, n, axis=0), u)
    counts = np.bincount(chosen, minlength=obs.n_content)
    assert (counts[row[0] == 0] == 0).all()
    assert np.abs(counts / n - row[0]).max() < 0.015
    assert np.allclose(propensity, row[0][chosen])
    waits, p_wait = sample_actions(np.zeros((3, obs.n_content)), np.array([0.1, 0.5, 0.9]))
    assert (waits == WAIT).all() and (p_wait == 1.0).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_gap_days": 0}, "min_gap_days"),
        ({"refit_every_days": 0}, "refit_every_days"),
        ({"gamma": -1.0}, "gamma"),
        ({"alpha": 0.0}, "alpha"),
    ],
)
def test_bad_parameters_name_the_field(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimulatorContentPolicy(**kwargs)  # type: ignore[arg-type]


def test_coverage_needs_seeds() -> None:
    with pytest.raises(ValueError, match="`seeds` must name at least one seed"):
        ope_coverage([])


def test_ripen_beats_uniform_random_on_a_small_world() -> None:
    ripen = SimulatorContentPolicy(seed=5, refit_every_days=10)
    table = compare_policies(n_contacts=400, n_days=60, seed=5, policy=ripen)
    assert list(table.index) == [
        "ripen",
        "uniform_random",
        "fixed_rule",
        "aggressive_sales",
        "oracle_weekly",
        "oracle_3d",
    ]
    ratio, share = table["ratio_to_random"].to_dict(), table["share_of_oracle"].to_dict()
    assert ratio["ripen"] > 1.1
    assert ratio["aggressive_sales"] < 1.0
    assert ratio["uniform_random"] == pytest.approx(1.0)
    assert share["oracle_weekly"] == pytest.approx(1.0)


def test_logged_contexts_match_the_live_encoding() -> None:
    """The OPE path encodes logged decisions exactly as the adapter encodes observations."""
    live: list[np.ndarray] = []

    class Spy(UniformRandomPolicy):
        def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
            from training.policy_simulation import observation_contexts

            live.append(observation_contexts(obs))
            return super().choose_with_propensity(obs)

    result = JourneySimulator(n_contacts=100, n_days=20, seed=2).run(Spy(seed=2))
    assert np.allclose(np.concatenate(live), decisions_contexts(result))


def test_dr_interval_covers_the_true_value_on_one_seed() -> None:
    row = ope_check(seed=1, n_contacts=300, n_days=40, n_bootstrap=200)
    assert row.covered, row
    assert row.n_eval > 1000 and row.ess > 0.3 * row.n_eval


@pytest.mark.slow
def test_dr_coverage_over_seeds() -> None:
    coverage = ope_coverage([11, 12, 13, 14, 15], n_contacts=600, n_days=60, n_bootstrap=200)
    assert coverage.coverage >= 0.8, coverage.frame()

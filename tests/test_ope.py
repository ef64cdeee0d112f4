"""Off-policy estimators: unbiased on synthetic logs with known truth, honest CIs, strict input checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from models.policy.reward_model import BilinearRewardModel
from training.ope import PoorSupportWarning, check_ope_inputs, evaluate_policy

K = 5


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def world(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Context-dependent click probabilities; logging and evaluation policies are different softmaxes."""
    rng = np.random.default_rng(1000)  # same world for every seed; only the logs differ
    W_true = rng.normal(size=(3, K))
    W_log = rng.normal(scale=0.5, size=(3, K))
    W_eval = W_true * 2.0
    return W_true, W_log, W_eval


def simulate(seed: int, n: int = 2000) -> tuple[np.ndarray, ...]:
    W_true, W_log, W_eval = world(seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    mean = 1 / (1 + np.exp(-(X @ W_true) + 1.0))
    mu = softmax(X @ W_log)
    actions = (mu.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)
    rewards = (rng.random(n) < mean[np.arange(n), actions]).astype(float)
    pi = softmax(X @ W_eval)
    return X, actions, rewards, mu[np.arange(n), actions], pi


def true_value() -> float:
    W_true, _, W_eval = world(0)
    X = np.random.default_rng(999).normal(size=(400_000, 3))
    mean = 1 / (1 + np.exp(-(X @ W_true) + 1.0))
    return float((softmax(X @ W_eval) * mean).sum(axis=1).mean())


def test_estimators_cover_the_true_value_in_at_least_90_percent_of_seeds() -> None:
    truth = true_value()
    covered = {"ips": 0, "snips": 0, "dr": 0}
    seeds = range(40)
    for seed in seeds:
        X, actions, rewards, propensities, pi = simulate(seed)
        half = len(rewards) // 2
        # the reward model for DM/DR is fitted on other rows than those evaluated (cross-fitting)
        model = BilinearRewardModel(alpha=1.0).fit(X[:half], np.eye(K), actions[:half], rewards[:half])
        q = model.predict(X[half:], np.eye(K))
        report = evaluate_policy(
            rewards[half:],
            actions[half:],
            propensities[half:],
            pi[half:],
            q,
            n_bootstrap=300,
            random_state=seed,
        )
        for name in covered:
            est = getattr(report, name)
            covered[name] += est.ci_low <= truth <= est.ci_high
    coverage = {k: v / len(seeds) for k, v in covered.items()}
    assert all(c >= 0.9 for c in coverage.values()), coverage


def test_estimates_are_close_to_truth_on_a_large_log_and_differ_from_logged_value() -> None:
    truth = true_value()
    X, actions, rewards, propensities, pi = simulate(5, n=40_000)
    q = BilinearRewardModel().fit(X, np.eye(K), actions, rewards).predict(X, np.eye(K))
    report = evaluate_policy(rewards, actions, propensities, pi, q, n_bootstrap=100)
    assert abs(report.dr.value - truth) < 0.01
    assert abs(report.snips.value - truth) < 0.015
    assert report.logged.ci_high < truth  # the evaluation policy is better than the logger
    assert report.ips.ci_low < report.ips.value < report.ips.ci_high
    assert 0 < report.ess < report.n_eval == 40_000


def test_on_policy_evaluation_has_unit_weights_and_full_ess() -> None:
    X, actions, rewards, propensities, pi = simulate(1)
    mu_full = np.zeros_like(pi)
    mu_full[np.arange(len(actions)), actions] = 1.0
    report = evaluate_policy(
        rewards, actions, np.ones(len(actions)), mu_full, np.zeros_like(pi), n_bootstrap=50
    )
    assert report.ips.value == pytest.approx(rewards.mean())
    assert report.snips.value == pytest.approx(rewards.mean())
    assert report.ess == pytest.approx(len(rewards))
    flat = report.flat()
    for key in ("policy_value_ips", "policy_value_snips_ci_low", "policy_value_dr_ci_high", "logged_value"):
        assert key in flat


def test_poor_support_warns() -> None:
    n = 1000
    rewards = np.zeros(n)
    actions = np.zeros(n, dtype=int)
    propensities = np.full(n, 0.5)
    pi = np.tile([0.0, 1.0], (n, 1))
    pi[0] = [1.0, 0.0]  # the evaluation policy agrees with the log on one row only
    with pytest.warns(PoorSupportWarning, match="effective sample size"):
        report = evaluate_policy(rewards, actions, propensities, pi, np.zeros((n, 2)), n_bootstrap=20)
    assert report.poor_support
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_policy(
            rewards, actions, propensities, np.tile([1.0, 0.0], (n, 1)), np.zeros((n, 2)), n_bootstrap=20
        )


def _inputs() -> dict[str, np.ndarray]:
    return {
        "rewards": np.array([1.0, 0.0, 1.0, 0.0]),
        "actions": np.array([0, 1, 1, 0]),
        "propensities": np.array([0.5, 0.5, 0.25, 0.5]),
        "action_dist": np.tile([0.5, 0.5], (4, 1)),
    }


@pytest.mark.parametrize(
    "field, value, match",
    [
        (
            "propensities",
            np.array([0.5, 0.0, 0.0, 0.5]),
            r"`propensities` must be in \(0, 1\], but got 2 rows",
        ),
        ("propensities", np.array([0.5, np.nan, 0.2, 0.5]), "`propensities` must not be missing, but got 1"),
        ("propensities", np.array([0.5, 1.5, 0.2, 0.5]), r"`propensities` must be in \(0, 1\]"),
        ("actions", np.array([0, 2, 3, 0]), r"`actions` must be in \[0, 2\) \(the catalog\), but 2 rows"),
        ("actions", np.array([0.0, 1.0, 1.0, 0.0]), "integer"),
        ("rewards", np.array([1.0, np.nan, 1.0, 0.0]), "`rewards` must not be missing, but got 1"),
        ("rewards", np.array([1.0, 0.0]), r"shape \(2,\)"),
        ("action_dist", np.tile([0.7, 0.7], (4, 1)), "summing to 1, but 4 rows"),
    ],
)
def test_bad_inputs_are_rejected_with_counts(field: str, value: np.ndarray, match: str) -> None:
    inputs = _inputs()
    inputs[field] = value
    with pytest.raises(ValueError, match=match):
        check_ope_inputs(**inputs)

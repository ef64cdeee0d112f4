"""Content policies: exact probabilities over eligible candidates, determinism, cold start, learning."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from features.schemas import Channel, ContentFormat, LeadStatus
from models.context import ActionKind, Candidate, ContactContext
from models.policy.base import ContentPolicy, decision_uniforms
from models.policy.decide import decide
from models.policy.epsilon_greedy import EpsilonGreedy
from models.policy.inverse_gap_weighting import InverseGapWeighting
from models.policy.reward_model import BilinearRewardModel

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def synthetic_log(n: int = 3000, k: int = 10, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Rewards depend on context x action, so a bilinear model can learn the best action per context."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    A = np.eye(k)
    W = rng.normal(size=(4, k))
    actions = rng.integers(0, k, n)
    mean = (X @ W)[np.arange(n), actions]
    rewards = mean + rng.normal(scale=0.1, size=n)
    return X, A, actions, rewards, W


POLICIES = [InverseGapWeighting(gamma=10.0), InverseGapWeighting(gamma=0.0), EpsilonGreedy(epsilon=0.2)]


@pytest.mark.parametrize("policy", POLICIES, ids=["igw", "igw-uniform", "eps-greedy"])
def test_probabilities_are_exact_and_sum_to_one_over_eligible(policy: ContentPolicy) -> None:
    X, A, actions, rewards, _ = synthetic_log()
    policy.fit(X, A, actions, rewards)
    rng = np.random.default_rng(1)
    eligible = rng.random((500, A.shape[0])) < 0.4
    eligible[np.arange(500), rng.integers(0, A.shape[0], 500)] = True
    eligible[0] = False  # nothing eligible: an all-zero row, not an error
    eligible[1] = False
    eligible[1, 3] = True  # a single eligible action gets probability 1
    dist = policy.action_distribution(X[:500], A, eligible)
    sums = dist.probabilities.sum(axis=1)
    assert sums[0] == 0.0
    np.testing.assert_allclose(sums[1:], 1.0, atol=1e-12)
    assert (dist.probabilities[~eligible] == 0).all()
    assert (dist.probabilities[eligible] > 0).all()  # every eligible action keeps support
    assert dist.probabilities[1, 3] == 1.0


def test_igw_matches_the_formula_on_a_small_case() -> None:
    scores = np.array([[1.0, 0.5, 0.0, 9.0]])
    eligible = np.array([[True, True, True, False]])
    probs = InverseGapWeighting(gamma=4.0).probabilities(scores, eligible)
    expected_rest = [1 / (3 + 4 * 0.5), 1 / (3 + 4 * 1.0)]
    np.testing.assert_allclose(probs[0, 1:3], expected_rest)
    assert probs[0, 0] == pytest.approx(1 - sum(expected_rest))
    assert probs[0, 3] == 0.0


def test_epsilon_greedy_matches_the_formula() -> None:
    scores = np.array([[0.1, 0.9, 0.3]])
    probs = EpsilonGreedy(epsilon=0.3).probabilities(scores, np.ones((1, 3), dtype=bool))
    np.testing.assert_allclose(probs[0], [0.1, 0.8, 0.1])


def test_sampling_follows_the_logged_probabilities() -> None:
    scores = np.tile([[0.0, 0.2, 0.4]], (20000, 1))
    policy = InverseGapWeighting(gamma=5.0)
    selection = policy.select_action(np.zeros((20000, 1)), np.zeros((3, 1)), prior=scores)
    frequencies = np.bincount(selection.actions[:, 0], minlength=3) / 20000
    np.testing.assert_allclose(frequencies, selection.distribution.probabilities[0], atol=0.015)
    chosen_p = selection.distribution.probabilities[np.arange(20000), selection.actions[:, 0]]
    np.testing.assert_array_equal(selection.probabilities, chosen_p)


def test_determinism_same_seed_same_choices_and_greedy_mode() -> None:
    X, A, actions, rewards, W = synthetic_log()
    a = InverseGapWeighting(gamma=5.0, random_state=3).fit(X, A, actions, rewards)
    b = InverseGapWeighting(gamma=5.0, random_state=3).fit(X, A, actions, rewards)
    np.testing.assert_array_equal(a.select_action(X, A).actions, b.select_action(X, A).actions)
    greedy = InverseGapWeighting(greedy=True).fit(X, A, actions, rewards)
    sel = greedy.select_action(X, A)
    assert (sel.probabilities == 1.0).all()
    # the learned greedy choice is the truly best action for almost every context
    assert (sel.actions[:, 0] == np.argmax(X @ W, axis=1)).mean() > 0.95


def test_keyed_uniforms_do_not_depend_on_batch() -> None:
    keys = [f"evt-{i}" for i in range(100)]
    together = decision_uniforms(keys, seed=7)
    alone = np.concatenate([decision_uniforms([k], seed=7) for k in keys])
    np.testing.assert_array_equal(together, alone)
    assert ((together >= 0) & (together < 1)).all()
    assert not np.array_equal(together, decision_uniforms(keys, seed=8))


def test_multi_slot_is_top_k_without_replacement() -> None:
    X, A, actions, rewards, _ = synthetic_log()
    policy = InverseGapWeighting(gamma=5.0).fit(X, A, actions, rewards)
    eligible = np.ones((200, A.shape[0]), dtype=bool)
    eligible[:, 5:] = False
    eligible[0, 2:] = False  # only two eligible: third slot empty
    sel = policy.select_action(X[:200], A, eligible, n_slots=3)
    for row in sel.actions[1:]:
        assert len(set(row)) == 3 and (row < 5).all()
        scores = sel.distribution.scores
        assert scores is not None
    assert sel.actions[0, 2] == -1 and set(sel.actions[0, :2]) == {0, 1}
    # later slots are ordered by score
    later = sel.distribution.scores[np.arange(1, 200)[:, None], sel.actions[1:, 1:]]
    assert (later[:, 0] >= later[:, 1]).all()


def test_online_update_equals_refit() -> None:
    X, A, actions, rewards, _ = synthetic_log()
    full = BilinearRewardModel(alpha=2.0).fit(X, A, actions, rewards)
    online = BilinearRewardModel(alpha=2.0).fit(X[:1000], A, actions[:1000], rewards[:1000])
    online.partial_fit(X[1000:], A, actions[1000:], rewards[1000:])
    np.testing.assert_allclose(online.predict(X[:50], A), full.predict(X[:50], A), atol=1e-9)


CATALOG = [
    Candidate("aw-blog", ContentFormat.BLOG, ("awareness",)),
    Candidate("info-wp", ContentFormat.WHITEPAPER, ("information",)),
    Candidate("info-wide", ContentFormat.EBOOK, ("information", "consultation", "closing")),
    Candidate("cons-offer", ContentFormat.CONSULTATION_OFFER, ("consultation",)),
]


def contact(i: int, **kw: object) -> ContactContext:
    base: dict[str, object] = {
        "contact_id": f"c-{i}",
        "stage": "information",
        "consents": frozenset({Channel.EMAIL}),
    }
    base.update(kw)
    return ContactContext(**base)  # type: ignore[arg-type]


def test_cold_start_uses_stage_fit_and_metadata() -> None:
    decisions = decide(
        [contact(0)],
        CATALOG,
        InverseGapWeighting(greedy=True),
        channel=Channel.EMAIL,
        now=NOW,
        policy_version="cold",
    )
    d = decisions[0]
    assert d.action is ActionKind.CONTENT
    assert d.content_id == "info-wp"  # fits the stage and is the most specific
    assert set(d.eligible_probabilities) == {"info-wp", "info-wide"}
    assert d.probability == 1.0
    assert {e.content_id for e in d.exclusions} == {"aw-blog", "cons-offer"}


def test_decide_batch_equals_single_and_reports_non_content_actions() -> None:
    contexts = [contact(i) for i in range(30)]
    contexts[3] = contact(3, demo_requested=True)
    contexts[4] = contact(4, consents=frozenset())
    contexts[5] = contact(5, lead_status=LeadStatus.MQL, readiness=0.9)
    ids = [f"evt-{i}" for i in range(30)]
    policy = EpsilonGreedy(epsilon=0.5)
    kwargs: dict[str, Any] = {"channel": Channel.EMAIL, "now": NOW, "policy_version": "v1", "seed": 11}
    batch = decide(contexts, CATALOG, policy, event_ids=ids, **kwargs)
    single = [
        decide([c], CATALOG, policy, event_ids=[e], **kwargs)[0] for c, e in zip(contexts, ids, strict=True)
    ]
    assert batch == single
    assert batch[3].action is ActionKind.HANDOFF_TO_SALES
    assert batch[4].action is ActionKind.NOTHING_ELIGIBLE and batch[4].exclusions
    assert batch[5].action is ActionKind.HANDOFF_TO_SALES
    chosen = {d.content_id for d in batch if d.action is ActionKind.CONTENT}
    assert chosen == {"info-wp", "info-wide"}  # epsilon 0.5 explores both eligible blocks
    for d in batch:
        if d.action is ActionKind.CONTENT:
            assert d.probability == d.eligible_probabilities[d.content_id]  # type: ignore[index]
            assert sum(d.eligible_probabilities.values()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "policy, match",
    [
        (InverseGapWeighting(gamma=-1.0), "gamma"),
        (InverseGapWeighting(alpha=0.0), "alpha"),
        (EpsilonGreedy(epsilon=1.5), "epsilon"),
    ],
)
def test_bad_hyperparameters_name_the_field(policy: ContentPolicy, match: str) -> None:
    X, A, actions, rewards, _ = synthetic_log(n=50)
    with pytest.raises(ValueError, match=match):
        policy.fit(X, A, actions, rewards)


@pytest.mark.parametrize(
    "change, match",
    [
        ("action_out_of_range", r"`actions` must be in \[0, 10\), but 1 rows"),
        ("nan_reward", "`rewards` must be finite, but got 1"),
        ("float_actions", "integer"),
    ],
)
def test_bad_training_arrays_are_rejected_with_counts(change: str, match: str) -> None:
    X, A, actions, rewards, _ = synthetic_log(n=50)
    if change == "action_out_of_range":
        actions = actions.copy()
        actions[0] = 10
    elif change == "nan_reward":
        rewards = rewards.copy()
        rewards[4] = np.nan
    else:
        actions = actions.astype(float)
    with pytest.raises(ValueError, match=match):
        InverseGapWeighting().fit(X, A, actions, rewards)


def test_metadata_prior_scores_stage_fit_persona_and_specificity() -> None:
    from models.policy.encoding import metadata_prior

    blocks = [
        Candidate("now-cto", ContentFormat.BLOG, ("awareness",), personas=("cto",)),
        Candidate("now-all", ContentFormat.BLOG, ("awareness", "closing")),
        Candidate("next-all", ContentFormat.BLOG, ("information",)),
        Candidate("later", ContentFormat.BLOG, ("closing",), personas=("cfo",)),
    ]
    ctx = [
        ContactContext("a", stage="awareness", persona="cto"),
        ContactContext("b", stage="reactivation"),  # the last stage has no next one
    ]
    prior = metadata_prior(ctx, blocks)
    np.testing.assert_allclose(prior[0], [1.0 + 0.25 + 0.1, 1.0 + 0.1 + 0.05, 0.5 + 0.1 + 0.1, 0.0 + 0.1])
    np.testing.assert_allclose(prior[1], [0.1, 0.1 + 0.05, 0.1 + 0.1, 0.1])


def test_policy_update_learns_online_like_a_refit() -> None:
    X, A, actions, rewards, _ = synthetic_log()
    online = InverseGapWeighting(gamma=5.0)
    for start in range(0, len(rewards), 500):
        online.update(X[start : start + 500], A, actions[start : start + 500], rewards[start : start + 500])
    batch = InverseGapWeighting(gamma=5.0).fit(X, A, actions, rewards)
    np.testing.assert_allclose(
        online.action_distribution(X[:100], A).probabilities,
        batch.action_distribution(X[:100], A).probabilities,
        atol=1e-9,
    )

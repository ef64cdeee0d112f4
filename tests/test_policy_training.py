"""The learning loop end to end: decisions logged by the cold-start policy, rewards joined from real events
in the event store, a new policy fitted, evaluated offline against the champion, registered and gated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from features.decision_log import open_settings_decision_log
from features.event_store import open_settings_event_store
from features.schemas import Channel, ContentFormat, EngagementEvent, EventType
from models.context import Candidate, ContactContext
from models.policy.decide import decide, decision_records
from models.policy.inverse_gap_weighting import InverseGapWeighting
from ripen.cli import app
from ripen.settings import Settings
from training.policy_training import (
    CHAMPION,
    POLICY_MODEL_NAME,
    PolicyTrainingConfig,
    champion_policy,
    decision_log_data,
    load_policy,
    train_policy,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CATALOG = [
    Candidate(f"b-{fmt.value}", fmt, ("information",))
    for fmt in (ContentFormat.WHITEPAPER, ContentFormat.EBOOK, ContentFormat.CHECKLIST, ContentFormat.VIDEO)
]


def click_probability(feature: float, content_id: str) -> float:
    """Videos work for one kind of contact, whitepapers for the other, the rest for nobody in particular."""
    if content_id == "b-video":
        return 0.6 if feature > 0 else 0.05
    if content_id == "b-whitepaper":
        return 0.6 if feature <= 0 else 0.05
    return 0.1


def log_uniform_decisions(settings: Settings, n: int = 600, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    contexts = [
        ContactContext(
            f"c-{i}",
            stage="information",
            consents=frozenset({Channel.EMAIL}),
            features=(float(rng.normal()),),
        )
        for i in range(n)
    ]
    logger = InverseGapWeighting(gamma=0.0)  # uniform among eligible: the cold-start logging policy
    decisions, events = [], []
    for i, ctx in enumerate(contexts):
        d = decide(
            [ctx], CATALOG, logger, channel=Channel.EMAIL, now=T0 + timedelta(hours=2 * i),
            policy_version="uniform", event_ids=[f"d-{i}"],
        )[0]  # fmt: skip
        decisions.append(d)
        assert d.content_id is not None
        if rng.random() < click_probability(ctx.features[0], d.content_id):
            events.append(
                EngagementEvent(
                    event_id=f"ev-{i}",
                    contact_id=ctx.contact_id,
                    timestamp=d.decided_at + timedelta(hours=3),
                    type=EventType.EMAIL_CLICK,
                    content_id=d.content_id,
                    channel=Channel.EMAIL,
                )  # fmt: skip
            )
    with open_settings_decision_log(settings) as log:
        assert log.log(decision_records(decisions, contexts, CATALOG)).stored == n
    with open_settings_event_store(settings) as store:
        assert store.append(events, now=T0 + timedelta(days=100)).stored == len(events)


@pytest.mark.slow
def test_train_gate_register_and_reload(settings: Settings) -> None:
    log_uniform_decisions(settings)
    config = PolicyTrainingConfig(gamma=50.0, n_bootstrap=200)
    first = train_policy(settings, config, now=T0 + timedelta(days=100))
    assert first.rewards_joined is not None and first.rewards_joined.rewarded > 50
    assert first.rewards_joined.defaulted + first.rewards_joined.rewarded == 600
    assert first.n_train == 420 and first.n_eval == 180
    # the learned policy picks the right block per kind of contact: far better than the uniform logger
    assert first.report.logged.value < 0.3 < first.report.dr.value
    assert first.promoted, first.reason
    client = MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    assert str(client.get_model_version_by_alias(POLICY_MODEL_NAME, CHAMPION).version) == first.version
    tags = client.get_model_version(POLICY_MODEL_NAME, first.version).tags
    assert tags["gate.verdict"] == "promoted" and tags["gate.champion_version"] == ""

    # the same data again cannot beat the champion by its lower bound: registered, not promoted
    second = train_policy(settings, config, join_events=False, now=T0 + timedelta(days=100))
    assert not second.promoted and second.champion_version == first.version
    assert str(client.get_model_version_by_alias(POLICY_MODEL_NAME, CHAMPION).version) == first.version
    assert client.get_model_version(POLICY_MODEL_NAME, second.version).tags["gate.verdict"] == "rejected"

    champion = champion_policy(client)
    assert champion is not None and champion[0] == first.version
    with open_settings_decision_log(settings) as log:
        data, _ = decision_log_data(log.decisions(), log.rewards())
    dist = champion[1].action_distribution(data.context[:50], data.action_features, data.eligible[:50])
    np.testing.assert_allclose(dist.probabilities.sum(axis=1), 1.0, atol=1e-12)
    assert isinstance(load_policy(client, second.version), InverseGapWeighting)

    # `ripen evaluate policy` without --log evaluates on the decision log itself
    result = CliRunner().invoke(
        app, ["evaluate", "policy", "--data-dir", str(settings.data_dir), "--n-bootstrap", "50", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["source"] == "decision_log" and out["n_eval"] == 180 and out["without_reward"] == 0
    assert out["policy_value_dr_ci_low"] <= out["policy_value_dr"] <= out["policy_value_dr_ci_high"]
    assert out["logged_value"] < out["policy_value_dr"]


def test_too_few_rewarded_decisions_is_a_clear_error(settings: Settings) -> None:
    log_uniform_decisions(settings, n=20)
    with pytest.raises(ValueError, match="waiting for one"):
        train_policy(settings, PolicyTrainingConfig(), join_events=False, now=T0)
    with pytest.raises(ValueError, match="training needs at least 50"):
        train_policy(settings, PolicyTrainingConfig(), now=T0 + timedelta(days=100))

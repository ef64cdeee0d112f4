"""Each registered scorer and policy version carries a model card with the numbers of its own run."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from mlflow import MlflowClient

from ripen.settings import Settings
from tests.test_policy_training import log_uniform_decisions
from tests.test_registry import snapshot_frame
from training.model_card import CARD_FILE, DataWindow, load_card
from training.policy_training import POLICY_MODEL_NAME, PolicyTrainingConfig, train_policy
from training.scorer_training import train_and_register
from training.tracking import mlflow_client


def _row(card: str, name: str) -> list[str]:
    """Cells of the Markdown table row starting with ``name``."""
    line = next(line for line in card.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.slow
def test_scorer_version_card_holds_its_window_features_and_test_metrics(settings: Settings) -> None:
    frame = snapshot_frame(1500)
    params = {"n_estimators": 40}
    result = train_and_register(
        frame, kind="churn", settings=settings, params=params, horizon=pd.Timedelta(days=21)
    )
    card = load_card("ripen-churn", result.version)

    assert card.startswith("# Model card: ripen-churn")
    assert "cancel or fail to renew" in card  # the churn use, not the readiness one
    for part, (start, end, rows) in (("train", result.window.train), ("test", result.window.test)):
        assert f"- {part}: {start} .. {end}, {rows} rows" in card
    features = re.search(r"## Features \((\d+)\)\n(.*)\n", card)
    assert features is not None
    assert int(features.group(1)) == len(result.scorer.feature_names_in_)
    assert all(f"`{f}`" in features.group(2) for f in result.scorer.feature_names_in_)
    assert result.baseline is not None
    assert _row(card, "roc_auc") == [
        "roc_auc",
        f"{result.test.roc_auc:.4f}",
        f"{result.baseline.roc_auc:.4f}",
    ]
    assert _row(card, "brier")[1:] == [f"{result.test.brier:.4f}", "n/a"]  # points are no probability
    assert "## Known limits" in card and "## Intended use" in card
    # the run holds the same card, next to the version's copy
    run_card = MlflowClient(settings.mlflow_tracking_uri).download_artifacts(result.run_id, CARD_FILE)
    assert open(run_card).read().strip() == card.strip()


def test_data_window_survives_the_run_params() -> None:
    window = DataWindow(("2026-01-01", "2026-02-01", 10), ("2026-02-15", "2026-03-01", 4), ("a", "b", 3))
    assert DataWindow.from_params(window.as_params()) == window
    assert DataWindow.from_params({"data.train.start": "x"}) is None


@pytest.mark.slow
def test_policy_version_card_holds_the_ope_estimates_and_the_verdict(settings: Settings) -> None:
    log_uniform_decisions(settings, n=300)
    config = PolicyTrainingConfig(n_bootstrap=50)
    result = train_policy(settings, config)
    card = load_card(POLICY_MODEL_NAME, result.version)
    report = result.report

    assert card.startswith(f"# Model card: {POLICY_MODEL_NAME}")
    assert _row(card, "DR") == [
        "DR",
        f"{report.dr.value:.4f}",
        f"{report.dr.ci_low:.4f}",
        f"{report.dr.ci_high:.4f}",
    ]
    assert _row(card, "SNIPS")[1] == f"{report.snips.value:.4f}"
    assert f"effective sample size: {report.ess:.1f} of {report.n_eval} decisions" in card
    assert f", {result.n_train} rewarded decisions" in card
    assert f", {result.n_eval} rewarded decisions" in card
    assert f"- gate: {result.reason}" in card
    assert "4 content blocks: b-checklist, b-ebook, b-video, b-whitepaper" in card
    tags = mlflow_client(settings).get_model_version(POLICY_MODEL_NAME, result.version).tags
    assert tags["gate.verdict"] == ("promoted" if result.promoted else "rejected")

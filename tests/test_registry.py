"""MLflow pipeline: runs logged, versions registered, only better models promoted.

The gate compares on the same test window, and a corrupted or incompatible champion is refused while the
previous one stays in use."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from ripen.settings import Settings
from tests.test_scorer import make_frame
from training.registry import CHAMPION, ModelLoadError, champion_version, load_champion, load_version
from training.scorer_training import train_and_register
from training.tracking import mlflow_client

WEAK = {"n_estimators": 1, "num_leaves": 2, "early_stopping_rounds": 1}


def snapshot_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Snapshots over 400 days with a points score that counts engagement but ignores the role."""
    X, y = make_frame(n, seed)
    rng = np.random.default_rng(seed)
    frame = X.assign(label=y)
    frame["snapshot_time"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        rng.uniform(0, 400, n), "D"
    )
    frame["baseline_score"] = 10 * X["webinar_attend_30d"] + 5 * X["page_view_30d"]
    return frame.sort_values("snapshot_time").reset_index(drop=True)


@pytest.mark.slow
def test_pipeline_logs_registers_and_gates(settings: Settings) -> None:
    frame = snapshot_frame()
    first = train_and_register(frame, kind="readiness", settings=settings, params={"n_estimators": 200})
    client = mlflow_client(settings)
    assert first.model_name == "ripen-readiness"
    assert first.gate.promoted and first.gate.reason == "no champion yet"
    assert champion_version(client, "ripen-readiness") == first.version
    # model vs points score on the same test rows: the model sees the role, the points score does not
    assert first.baseline is not None
    assert first.test.roc_auc > first.baseline.roc_auc + 0.01
    run = client.get_run(first.run_id)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(first.test.roc_auc)
    assert "baseline_roc_auc" in run.data.metrics
    assert run.data.params["data.test.rows"] == str(first.window.test[2])
    artifacts = {a.path for a in client.list_artifacts(first.run_id)} | {
        a.path for a in client.list_artifacts(first.run_id, "plots")
    }
    assert {"model_card.md", "features.json", "plots/roc.png", "plots/shap_summary.png"} <= artifacts
    card = mlflow.artifacts.load_text(f"runs:/{first.run_id}/model_card.md")
    assert "## Known limits" in card and "webinar_attend_30d" in card
    # the train window ends a horizon before validation starts: no label leaks across the split
    assert pd.Timestamp(first.window.train[1]) + pd.Timedelta(days=30) < pd.Timestamp(first.window.valid[0])

    worse = train_and_register(frame, kind="readiness", settings=settings, params=WEAK)
    assert not worse.gate.promoted
    assert worse.gate.champion_version == first.version
    assert worse.gate.champion_value == pytest.approx(
        first.test.roc_auc
    )  # champion re-scored on the same rows
    tags = client.get_model_version("ripen-readiness", worse.version).tags
    assert tags["gate.verdict"] == "rejected"
    assert float(tags["gate.candidate_value"]) < float(tags["gate.champion_value"])
    assert champion_version(client, "ripen-readiness") == first.version

    loaded = load_champion(client, "ripen-readiness")
    test_rows = frame.drop(columns=["label", "snapshot_time", "baseline_score"]).tail(50)
    np.testing.assert_allclose(loaded.predict(test_rows), first.scorer.predict_proba(test_rows)[:, 1])


def _scorer_artifact(version_source: str | None) -> Path:
    assert version_source is not None
    model_id = version_source.removeprefix("models:/")
    location = mlflow.get_logged_model(model_id).artifact_location
    files = list(Path(location.removeprefix("file://")).rglob("scorer.pkl"))
    assert len(files) == 1, files
    return files[0]


@pytest.mark.slow
def test_corrupted_or_incompatible_champion_is_refused(settings: Settings) -> None:
    frame = snapshot_frame(1500)
    short = pd.Timedelta(days=20)
    first = train_and_register(
        frame, kind="churn", settings=settings, params={"n_estimators": 60}, horizon=short
    )
    second = train_and_register(frame, kind="churn", settings=settings, params=WEAK, horizon=short)
    client = mlflow_client(settings)
    current = load_champion(client, "ripen-churn")
    assert current.version == first.version
    _scorer_artifact(client.get_model_version("ripen-churn", second.version).source).write_bytes(
        b"not a pickle"
    )
    client.set_registered_model_alias("ripen-churn", CHAMPION, second.version)  # someone forces the bad one
    kept = load_champion(client, "ripen-churn", current=current)
    assert kept is current
    with pytest.raises(ModelLoadError, match=f"cannot load ripen-churn version {second.version}"):
        load_champion(client, "ripen-churn")
    with pytest.raises(ModelLoadError, match=r"incompatible with the current features: missing \['tenure'\]"):
        load_version(
            "ripen-churn", first.version, expected_features=[*first.scorer.feature_names_in_, "tenure"]
        )


def test_pipeline_bad_input(settings: Settings) -> None:
    frame = snapshot_frame(300)
    with pytest.raises(ValueError, match="label column `converted`"):
        train_and_register(frame, kind="readiness", settings=settings, label="converted")
    with pytest.raises(ValueError, match="`kind`"):
        train_and_register(frame, kind="upsell", settings=settings)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.postgres
def test_registry_and_gate_on_postgres_backend(settings: Settings, postgres_url: str) -> None:
    pg = settings.model_copy(
        update={"mlflow_tracking_uri": postgres_url.replace("postgresql://", "postgresql+psycopg://")}
    )
    frame = snapshot_frame(1500)
    first = train_and_register(frame, kind="readiness", settings=pg, params={"n_estimators": 60})
    worse = train_and_register(frame, kind="readiness", settings=pg, params=WEAK)
    client = mlflow_client(pg)
    assert first.gate.promoted and not worse.gate.promoted
    assert champion_version(client, "ripen-readiness") == first.version
    assert client.get_model_version("ripen-readiness", worse.version).tags["gate.verdict"] == "rejected"

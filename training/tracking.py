"""MLflow tracking for scorer runs: where runs go, the typed pyfunc wrapper of a scorer, and its model card.

Tracking and registry URIs come from ``Settings`` and are set inside functions, never at import time.
"""

from __future__ import annotations

import pickle
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModel

from models.scorer import BinaryScorer
from ripen.settings import Settings
from training.model_card import DataWindow, attach_card, scorer_card, scorer_card_from_run

__all__ = ["DataWindow", "ensure_experiment", "log_scorer_model", "mlflow_client", "model_card"]

model_card = scorer_card
"""The scorer card renderer under its historical name (``training.model_card.scorer_card``)."""

MODEL_FORMAT = "ripen-scorer/1"
SCORER_ARTIFACT = "scorer"


def mlflow_client(settings: Settings) -> MlflowClient:
    """Point MLflow's tracking and registry at ``settings`` and return a client bound to them."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, settings: Settings) -> str:
    """Id of experiment ``name``, created with the configured artifact root if it does not exist yet."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    return str(client.create_experiment(name, artifact_location=f"{settings.mlflow_artifact_root}/{name}"))


def as_model_input(X: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as plain strings (None for missing): the column types MLflow signatures support."""
    out = X.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype) or out[col].dtype == object:
            out[col] = out[col].astype(object).where(out[col].notna(), None).astype(object)
            out[col] = out[col].map(lambda v: None if v is None else str(v))
    return out


class ScorerModel(PythonModel):
    """Serving wrapper of a :class:`BinaryScorer`: loads the pickled scorer, returns P(label = 1) per row."""

    def load_context(self, context: Any) -> None:
        path = Path(context.artifacts[SCORER_ARTIFACT])
        with path.open("rb") as fh:
            scorer = pickle.load(fh)  # noqa: S301 - our own artifact, written by log_scorer_model
        if not isinstance(scorer, BinaryScorer) or not hasattr(scorer, "booster_"):
            raise TypeError(
                f"artifact {path.name} holds a {type(scorer).__name__}, not a fitted BinaryScorer"
            )
        self.scorer = scorer

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Calibrated probabilities, shape (n_rows,)."""
        return np.asarray(self.scorer.predict_proba(model_input)[:, 1])


def log_scorer_model(scorer: BinaryScorer, example: pd.DataFrame, name: str = "model") -> ModelInfo:
    """Log ``scorer`` in the active run as a pyfunc with signature, input example, format metadata and a
    model card rendered from what the run logged before (window params, test and baseline metrics)."""
    model_input = as_model_input(example.head(5))
    signature = infer_signature(model_input, scorer.predict_proba(example.head(5))[:, 1])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scorer.pkl"
        with path.open("wb") as fh:
            pickle.dump(scorer, fh)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=ScorerModel(),
            artifacts={SCORER_ARTIFACT: str(path)},
            signature=signature,
            input_example=model_input,
            metadata={"ripen_format": MODEL_FORMAT, "features": list(scorer.feature_names_in_)},
            pip_requirements=[f"{p}=={version(p)}" for p in ("lightgbm", "scikit-learn", "pandas", "mlflow")],
        )
    attach_card(_card_for_active_run(scorer), info.model_id)
    return info


def _card_for_active_run(scorer: BinaryScorer) -> str:
    """The scorer's card from the active run; the run's experiment is named after the registered model."""
    active = mlflow.active_run()
    client = MlflowClient()
    run = client.get_run(active.info.run_id) if active is not None else None
    experiment = client.get_experiment(run.info.experiment_id) if run is not None else None
    params = {k: str(v) for k, v in scorer.get_params().items() if k != "scheduler"}
    model_name = experiment.name if experiment is not None else "scorer"
    return scorer_card_from_run(run, model_name, list(scorer.feature_names_in_), params)

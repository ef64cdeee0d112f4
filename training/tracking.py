"""MLflow tracking for scorer runs: where runs go, the typed pyfunc wrapper of a scorer, and the model card.

Tracking and registry URIs come from ``Settings`` and are set inside functions, never at import time.
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass
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

from models.metrics import BinaryMetrics
from models.scorer import BinaryScorer
from ripen.settings import Settings

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
    """Log ``scorer`` in the active run as a pyfunc with signature, input example and format metadata."""
    model_input = as_model_input(example.head(5))
    signature = infer_signature(model_input, scorer.predict_proba(example.head(5))[:, 1])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scorer.pkl"
        with path.open("wb") as fh:
            pickle.dump(scorer, fh)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=ScorerModel(),
            artifacts={SCORER_ARTIFACT: str(path)},
            signature=signature,
            input_example=model_input,
            metadata={"ripen_format": MODEL_FORMAT, "features": list(scorer.feature_names_in_)},
            pip_requirements=[f"{p}=={version(p)}" for p in ("lightgbm", "scikit-learn", "pandas", "mlflow")],
        )


@dataclass(frozen=True)
class DataWindow:
    """Time range and size of each part of a training set, for the run and the model card."""

    train: tuple[str, str, int]
    valid: tuple[str, str, int]
    test: tuple[str, str, int]

    def as_params(self) -> dict[str, str]:
        """Flat MLflow parameters: ``data.train.start`` etc."""
        out = {}
        for part in ("train", "valid", "test"):
            start, end, rows = getattr(self, part)
            out.update({f"data.{part}.start": start, f"data.{part}.end": end, f"data.{part}.rows": str(rows)})
        return out

    @property
    def test_label(self) -> str:
        """The test window as one string, used to compare models on the same rows."""
        return f"{self.test[0]}..{self.test[1]} ({self.test[2]} rows)"


def model_card(
    model_name: str,
    window: DataWindow,
    features: list[str],
    model: BinaryMetrics,
    baseline: BinaryMetrics | None,
    params: dict[str, Any],
) -> str:
    """Markdown model card: intended use, data window, features, metrics next to the points score, limits."""

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    rows = ["| metric | model | points score |", "|---|---|---|"]
    for name in ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift"):
        rows.append(
            f"| {name} | {fmt(getattr(model, name))} | {fmt(getattr(baseline, name) if baseline else None)} |"
        )
    use = (
        "Rank contacts by the probability that they reach SQL, ask for a demo or consultation, or get an "
        "opportunity within the horizon, so sales calls them when they are ripe."
        if "readiness" in model_name
        else "Rank customers by the probability that they cancel or fail to renew within the horizon, so "
        "customer success can act first."
    )
    return "\n".join(
        [
            f"# Model card: {model_name}",
            "",
            "## Intended use",
            use,
            "Not for automated decisions about individuals without a human in the loop; not for credit, "
            "pricing or employment decisions.",
            "",
            "## Data window",
            *(
                f"- {part}: {s} .. {e}, {n} rows"
                for part, (s, e, n) in (
                    ("train", window.train),
                    ("valid", window.valid),
                    ("test", window.test),
                )
            ),
            "",
            f"## Features ({len(features)})",
            ", ".join(f"`{f}`" for f in features),
            "",
            "## Metrics on the test window",
            *rows,
            "",
            "## Training",
            ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
            "",
            "## Known limits",
            "- Probabilities are calibrated on a held-out slice of the validation window; drift after the "
            "test window is not covered.",
            "- Contacts and customers unlike the training population (new segments, new categories) get "
            "scores from missing-value branches: unseen categories are treated as missing.",
            "- SHAP factors explain the model, not the world: they are associations, not causes.",
        ]
    )

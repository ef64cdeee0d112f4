"""MLflow model registry for scorers: register, gate (``champion`` alias) and load champions safely.

Promotion gate: a new version gets the ``champion`` alias only if it beats the current champion on the *same*
test rows: the champion is loaded and re-scored on the candidate's test window, never compared by numbers
measured on another window. The verdict and both numbers are recorded as version tags. Loading a champion
checks the model's format and runs it on its own input example; a corrupted or incompatible version is refused
with a clear message and the previously loaded champion stays in use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
import structlog
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from models.compiled_scorer import CompiledScorer
from models.metrics import binary_metrics
from training.tracking import MODEL_FORMAT, as_model_input

log = structlog.get_logger(__name__)

CHAMPION = "champion"
MODEL_NAMES: dict[str, str] = {"readiness": "ripen-readiness", "churn": "ripen-churn"}
GateMetric = Literal["roc_auc", "pr_auc"]


class ModelLoadError(RuntimeError):
    """A registered model version cannot be used: missing, corrupted or built for another format."""


@dataclass(frozen=True)
class GateResult:
    """The promotion gate's verdict for one candidate version."""

    promoted: bool
    reason: str
    metric: str
    candidate_value: float
    champion_value: float | None
    champion_version: str | None

    def as_tags(self, test_window: str) -> dict[str, str]:
        """Version tags recording the decision and the numbers it rested on."""
        return {
            "gate.verdict": "promoted" if self.promoted else "rejected",
            "gate.reason": self.reason,
            "gate.metric": self.metric,
            "gate.candidate_value": f"{self.candidate_value:.6f}",
            "gate.champion_value": "" if self.champion_value is None else f"{self.champion_value:.6f}",
            "gate.champion_version": self.champion_version or "",
            "gate.test_window": test_window,
        }


@dataclass(frozen=True)
class LoadedScorer:
    """A champion in use: registry name, version and the loaded pyfunc."""

    name: str
    version: str
    model: PyFuncModel

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """P(label = 1) per row; numeric columns are cast to the signature's float type first."""
        frame = as_model_input(X)
        for col in self._numeric_columns:
            if col in frame.columns and frame[col].dtype != np.float64:
                # online rows carry ints, bools and None where training saw floats and NaN: same values
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
        return np.asarray(self.model.predict(frame), dtype=float)

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """P(label = 1) per feature record, without pandas or pyfunc checks (the request path).

        The same booster and calibrator as ``predict``; the model's format and its own input example were
        checked when the version was loaded.
        """
        return self.compiled.predict_proba(records)

    @cached_property
    def compiled(self) -> CompiledScorer:
        """The wrapped :class:`BinaryScorer`, compiled for record scoring."""
        wrapped = self.model.unwrap_python_model()
        return CompiledScorer(wrapped.scorer)

    @cached_property
    def _numeric_columns(self) -> tuple[str, ...]:
        """Columns the model's signature declares as double or float."""
        schema = self.model.metadata.get_input_schema()
        if schema is None or not schema.has_input_names():
            return ()
        return tuple(
            str(spec.name)
            for spec in schema.inputs
            if str(getattr(spec, "type", "")).endswith(("double", "float"))
        )


def champion_version(client: MlflowClient, name: str) -> str | None:
    """Version number currently holding the ``champion`` alias, or None."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def load_version(
    name: str, version: str, expected_features: list[str] | None = None, uri: str | None = None
) -> LoadedScorer:
    """Load and check one version (from ``uri``, e.g. a local copy, if given); raise ModelLoadError if bad."""
    uri = uri or f"models:/{name}/{version}"
    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle or read means "cannot use"
        raise ModelLoadError(f"cannot load {name} version {version}: {type(exc).__name__}: {exc}") from exc
    metadata = model.metadata.metadata or {}
    if metadata.get("ripen_format") != MODEL_FORMAT:
        raise ModelLoadError(
            f"{name} version {version} has format {metadata.get('ripen_format')!r}, expected {MODEL_FORMAT!r}"
        )
    features = list(metadata.get("features", []))
    if expected_features is not None and sorted(features) != sorted(expected_features):
        missing = sorted(set(expected_features) - set(features))
        extra = sorted(set(features) - set(expected_features))
        raise ModelLoadError(
            f"{name} version {version} is incompatible with the current features: "
            f"missing {missing}, extra {extra}"
        )
    loaded = LoadedScorer(name=name, version=version, model=model)
    example = model.input_example
    if isinstance(example, pd.DataFrame):
        try:
            scores = loaded.predict(example)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"{name} version {version} fails on its own input example: {exc}") from exc
        if not np.all((scores >= 0) & (scores <= 1)):
            raise ModelLoadError(f"{name} version {version} returns scores outside [0, 1]")
        try:
            records = [{str(k): v for k, v in row.items()} for row in example.to_dict("records")]
            fast = loaded.predict_records(records)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"{name} version {version} cannot be scored record by record: {exc}"
            ) from exc
        if not np.allclose(fast, scores, rtol=0, atol=1e-9):
            raise ModelLoadError(f"{name} version {version} scores its input example differently per record")
    return loaded


def load_champion(
    client: MlflowClient,
    name: str,
    current: LoadedScorer | None = None,
    expected_features: list[str] | None = None,
) -> LoadedScorer:
    """The ``champion`` of ``name``; if unusable, keep ``current`` (logged) or raise ModelLoadError."""
    version = champion_version(client, name)
    try:
        if version is None:
            raise ModelLoadError(
                f"{name} has no version with the alias '{CHAMPION}' yet: train and promote one"
            )
        if current is not None and current.version == version:
            return current
        return load_version(name, version, expected_features)
    except ModelLoadError as exc:
        if current is None:
            raise
        log.error(
            "champion_refused_keeping_previous",
            model=name,
            refused=version,
            kept=current.version,
            reason=str(exc),
        )
        return current


def gate(
    client: MlflowClient,
    name: str,
    version: str,
    X_test: pd.DataFrame,
    y_test: Any,
    candidate_scores: np.ndarray,
    test_window: str,
    metric: GateMetric = "roc_auc",
    min_gain: float = 0.0,
) -> GateResult:
    """Promote ``version`` to champion only if it beats the champion, re-scored on the same ``X_test`` rows.

    A champion that cannot be loaded or scored on these rows is no bar: the candidate is promoted, and the
    reason says why. Ties (gain <= ``min_gain``) keep the champion.
    """
    candidate_value = float(getattr(binary_metrics(y_test, candidate_scores), metric))
    current = champion_version(client, name)
    champion_value: float | None = None
    if current is None:
        result = GateResult(True, "no champion yet", metric, candidate_value, None, None)
    else:
        try:
            champion = load_version(name, current)
            champion_value = float(getattr(binary_metrics(y_test, champion.predict(X_test)), metric))
        except (ModelLoadError, ValueError, KeyError) as exc:
            result = GateResult(
                True,
                f"champion v{current} unusable on this window: {exc}",
                metric,
                candidate_value,
                None,
                current,
            )
        else:
            gain = candidate_value - champion_value
            promoted = gain > min_gain
            reason = (
                f"{metric} {candidate_value:.4f} vs champion v{current} {champion_value:.4f} "
                f"({'+' if gain >= 0 else ''}{gain:.4f}) on {test_window}"
            )
            result = GateResult(promoted, reason, metric, candidate_value, champion_value, current)
    for key, value in result.as_tags(test_window).items():
        client.set_model_version_tag(name, version, key, value)
    if result.promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    log.info("promotion_gate", model=name, version=version, promoted=result.promoted, reason=result.reason)
    return result

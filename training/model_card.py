"""Model cards: short Markdown facts (intended use, data window, features, metrics, limits) per model version.

A card is rendered from what the training run knows and stored with the logged model (``model_card.md`` in
the model's artifacts, so ``models:/<name>/<version>`` carries it) and in the run. Scorer cards are built by
``training.tracking.log_scorer_model``; policy cards by ``training.policy_training.train_policy``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Run

from models.metrics import BinaryMetrics
from training.ope import OPEReport

CARD_FILE = "model_card.md"
SCORER_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift")

_LIMITS_SCORER = (
    "Probabilities are calibrated on a held-out slice of the validation window; drift after the test window "
    "is not covered.",
    "Contacts and customers unlike the training population (new segments, new categories) get scores from "
    "missing-value branches: unseen categories are treated as missing.",
    "SHAP factors explain the model, not the world: they are associations, not causes.",
)
_LIMITS_POLICY = (
    "Off-policy estimates hold only where the logging policy gave the new policy's choices some probability; "
    "a small effective sample size means the estimate rests on few decisions.",
    "Rewards are joined from events inside the reward window; effects that show later are not counted.",
    "Blocks added to the catalog after the evaluation window have no logged evidence yet.",
)
_NOT_FOR = (
    "Not for automated decisions about individuals without a human in the loop; not for credit, pricing or "
    "employment decisions."
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

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> DataWindow | None:
        """The window recorded by :meth:`as_params`, or None when a part is missing."""
        try:
            parts = [
                (params[f"data.{p}.start"], params[f"data.{p}.end"], int(params[f"data.{p}.rows"]))
                for p in ("train", "valid", "test")
            ]
        except (KeyError, ValueError):
            return None
        return cls(*parts)

    @property
    def test_label(self) -> str:
        """The test window as one string, used to compare models on the same rows."""
        return f"{self.test[0]}..{self.test[1]} ({self.test[2]} rows)"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _card(
    title: str, use: str, window: Sequence[str], features: Sequence[str], metrics: Sequence[str], **extra: Any
) -> str:
    training = extra.get("training")
    limits: Sequence[str] = extra["limits"]
    return "\n".join(
        [
            f"# Model card: {title}",
            "",
            "## Intended use",
            use,
            _NOT_FOR,
            "",
            "## Data window",
            *window,
            "",
            f"## Features ({len(features)})",
            ", ".join(f"`{f}`" for f in features) or "none recorded",
            "",
            "## Metrics",
            *metrics,
            *(["", "## Training", training] if training else []),
            "",
            "## Known limits",
            *(f"- {limit}" for limit in limits),
            "",
        ]
    )


def scorer_card(
    model_name: str,
    window: DataWindow | None,
    features: Sequence[str],
    model: BinaryMetrics | None,
    baseline: BinaryMetrics | None,
    params: Mapping[str, Any],
) -> str:
    """Card of a readiness or churn scorer: test-window metrics next to the points score on the same rows."""
    use = (
        "Rank contacts by the probability that they reach SQL, ask for a demo or consultation, or get an "
        "opportunity within the horizon, so sales calls them when they are ripe."
        if "readiness" in model_name
        else "Rank customers by the probability that they cancel or fail to renew within the horizon, so "
        "customer success can act first."
    )
    parts = (("train", window.train), ("valid", window.valid), ("test", window.test)) if window else ()
    lines = [f"- {part}: {s} .. {e}, {n} rows" for part, (s, e, n) in parts] or ["- not recorded"]
    rows = ["Measured on the test window.", "", "| metric | model | points score |", "|---|---|---|"]
    for name in SCORER_METRICS:
        m = getattr(model, name) if model else None
        b = getattr(baseline, name) if baseline else None
        rows.append(f"| {name} | {_fmt(m)} | {_fmt(b)} |")
    return _card(
        model_name,
        use,
        lines,
        list(features),
        rows,
        training=", ".join(f"{k}={v}" for k, v in sorted(params.items())),
        limits=_LIMITS_SCORER,
    )


def _metrics_with_prefix(metrics: Mapping[str, float], prefix: str) -> BinaryMetrics | None:
    """The :class:`BinaryMetrics` a run logged as ``<prefix><name>``; None when it logged none."""
    if f"{prefix}roc_auc" not in metrics:
        return None
    return BinaryMetrics(
        roc_auc=metrics[f"{prefix}roc_auc"],
        pr_auc=metrics.get(f"{prefix}pr_auc", float("nan")),
        top_decile_lift=metrics.get(f"{prefix}top_decile_lift", float("nan")),
        brier=metrics.get(f"{prefix}brier"),
        log_loss=metrics.get(f"{prefix}log_loss"),
        n_rows=int(metrics.get(f"{prefix}n_rows", 0)),
        positive_rate=metrics.get(f"{prefix}positive_rate", float("nan")),
    )


def scorer_card_from_run(
    run: Run | None, model_name: str, features: Sequence[str], params: Mapping[str, Any]
) -> str:
    """Scorer card from what ``run`` logged so far: ``data.*`` window params, ``test_*``/``baseline_*``
    metrics."""
    logged_params = run.data.params if run else {}
    metrics = run.data.metrics if run else {}
    return scorer_card(
        model_name,
        DataWindow.from_params(logged_params),
        features,
        _metrics_with_prefix(metrics, "test_"),
        _metrics_with_prefix(metrics, "baseline_"),
        params,
    )


class DecisionPart(Protocol):
    """The slice of logged decisions a policy run learned or was evaluated on (``DecisionLogData``)."""

    @property
    def context(self) -> np.ndarray: ...

    @property
    def action_ids(self) -> tuple[str, ...]: ...

    @property
    def decided_at(self) -> tuple[datetime, ...]: ...

    @property
    def n_rows(self) -> int: ...


@dataclass(frozen=True)
class PolicyEvidence:
    """What a policy training run knows: its two time parts, the OPE report and the gate's verdict."""

    train_window: tuple[datetime, datetime, int]
    eval_window: tuple[datetime, datetime, int]
    n_context_features: int
    action_ids: tuple[str, ...]
    report: OPEReport
    bar: str
    verdict: str

    @classmethod
    def from_parts(
        cls, train: DecisionPart, test: DecisionPart, report: OPEReport, bar: str, verdict: str
    ) -> PolicyEvidence:
        """Evidence from the learn and evaluation parts of the decision log."""

        def window(part: DecisionPart) -> tuple[datetime, datetime, int]:
            return min(part.decided_at), max(part.decided_at), part.n_rows

        return cls(
            window(train), window(test), int(train.context.shape[1]), train.action_ids, report, bar, verdict
        )


def policy_card(model_name: str, evidence: PolicyEvidence, params: Mapping[str, Any]) -> str:
    """Card of a content policy: OPE estimates with CIs on the evaluation part, ESS and the gate's verdict."""
    r = evidence.report
    window = [
        f"- {part}: {s.isoformat()} .. {e.isoformat()}, {n} rewarded decisions"
        for part, (s, e, n) in (("train", evidence.train_window), ("evaluation", evidence.eval_window))
    ]
    level = f"{r.confidence:.0%}"
    rows = [
        f"Off-policy estimates on the evaluation part ({level} bootstrap CIs).",
        "",
        "| estimator | value | CI low | CI high |",
        "|---|---|---|---|",
        *(
            f"| {name.upper()} | {_fmt(e.value)} | {_fmt(e.ci_low)} | {_fmt(e.ci_high)} |"
            for name, e in (("ips", r.ips), ("snips", r.snips), ("dm", r.dm), ("dr", r.dr))
        ),
        f"| logged policy (observed) | {_fmt(r.logged.value)} | {_fmt(r.logged.ci_low)} | "
        f"{_fmt(r.logged.ci_high)} |",
        "",
        f"- effective sample size: {r.ess:.1f} of {r.n_eval} decisions (max weight {r.max_weight:.2f})"
        + (", POOR SUPPORT" if r.poor_support else ""),
        f"- bar: {evidence.bar}",
        f"- gate: {evidence.verdict}",
    ]
    features = [
        f"{evidence.n_context_features} context features",
        f"{len(evidence.action_ids)} content blocks: " + ", ".join(evidence.action_ids),
    ]
    return _card(
        model_name,
        "Choose the next content block for a contact among the blocks the guardrails allow, with an exact "
        "probability for every choice so later policies can be evaluated on its logs.",
        window,
        features,
        rows,
        training=", ".join(f"{k}={v}" for k, v in sorted(params.items())),
        limits=_LIMITS_POLICY,
    )


def attach_card(text: str, model_id: str | None = None) -> None:
    """Store ``text`` as ``model_card.md`` in the active run and, given ``model_id``, in that logged model."""
    if mlflow.active_run() is not None:
        mlflow.log_text(text, CARD_FILE)
    if model_id is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / CARD_FILE
        path.write_text(text)
        MlflowClient().log_model_artifact(model_id, str(path))


def log_policy_card(
    model_id: str,
    model_name: str,
    parts: tuple[DecisionPart, DecisionPart],
    report: OPEReport,
    gate: tuple[str, str],
    params: Mapping[str, Any],
) -> None:
    """Render the policy's card from the run's parts, report and gate (``bar``, ``verdict``) and attach it."""
    evidence = PolicyEvidence.from_parts(*parts, report, *gate)
    attach_card(policy_card(model_name, evidence, params), model_id)


def load_card(name: str, version: str) -> str:
    """The card stored with registered model ``name`` version ``version``."""
    return mlflow.artifacts.load_text(f"models:/{name}/{version}/{CARD_FILE}")

"""Per-contact explanations: exact TreeSHAP contributions turned into signed, readable factors for sales.

Contributions come from LightGBM's own TreeSHAP (``pred_contrib=True``; Lundberg et al., "From local
explanations to global understanding with explainable AI for trees", Nature MI 2020); when the scorer blends
its booster with an additive model, they are the same blend of the booster's TreeSHAP values and the additive
model's per-column shape functions (``BinaryScorer.blend``). They add up, with the bias, to the model's raw
log-odds; the score shown next to them is the calibrated probability. Sentences come
from templates keyed by feature name (English and German), with a generic fallback for features without a
template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from models.scorer import BinaryScorer

Language = Literal["en", "de"]
LANGUAGES: tuple[Language, ...] = ("en", "de")

# {value} is the feature's value: numbers are formatted with :g, categories as text
DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "webinar_attend_30d": {
        "en": "{value} webinar visits in the last 30 days",
        "de": "{value} Webinar-Besuche in den letzten 30 Tagen",
    },
    "page_view_30d": {
        "en": "{value} page views in the last 30 days",
        "de": "{value} Seitenaufrufe in den letzten 30 Tagen",
    },
    "email_click_30d": {
        "en": "{value} email clicks in the last 30 days",
        "de": "{value} E-Mail-Klicks in den letzten 30 Tagen",
    },
    "email_open_30d": {
        "en": "{value} email opens in the last 30 days",
        "de": "{value} E-Mail-Öffnungen in den letzten 30 Tagen",
    },
    "content_download_30d": {
        "en": "{value} content downloads in the last 30 days",
        "de": "{value} Content-Downloads in den letzten 30 Tagen",
    },
    "days_since_last_activity": {
        "en": "last activity {value} days ago",
        "de": "letzte Aktivität vor {value} Tagen",
    },
    "role": {"en": "Role: {value}", "de": "Rolle: {value}"},
    "seniority": {"en": "Seniority: {value}", "de": "Hierarchiestufe: {value}"},
    "industry": {"en": "Industry: {value}", "de": "Branche: {value}"},
    "company_size": {
        "en": "Company size: {value} employees",
        "de": "Unternehmensgröße: {value} Mitarbeitende",
    },
    "points_score": {"en": "lead score of {value} points", "de": "Lead-Score von {value} Punkten"},
}
UNKNOWN: dict[str, str] = {"en": "unknown", "de": "unbekannt"}


@dataclass(frozen=True)
class Factor:
    """One feature's signed push on the score: ``contribution`` in log-odds; positive raises it."""

    feature: str
    value: Any
    contribution: float
    text: str

    @property
    def direction(self) -> Literal["+", "-"]:
        return "+" if self.contribution >= 0 else "-"


@dataclass(frozen=True)
class Explanation:
    """Why one contact got its score: calibrated ``score``, the training ``base_rate`` and the top factors."""

    score: float
    base_rate: float
    bias: float
    factors: tuple[Factor, ...]
    language: Language

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with each factor's sign spelled out."""
        out = asdict(self)
        for factor, raw in zip(self.factors, out["factors"], strict=True):
            raw["direction"] = factor.direction
        return out


def _format_value(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def factor_text(
    feature: str,
    value: Any,
    language: Language,
    templates: Mapping[str, Mapping[str, str]] = DEFAULT_TEMPLATES,
) -> str:
    """The sentence for one feature value; falls back to "feature name: value" when no template exists."""
    if language not in LANGUAGES:
        raise ValueError(f"`language` must be one of {LANGUAGES}, but got {language!r}")
    shown = UNKNOWN[language] if value is None or (not isinstance(value, str) and pd.isna(value)) else value
    template = templates.get(feature, {}).get(language)
    if template is None:
        return f"{feature.replace('_', ' ')}: {_format_value(shown)}"
    return template.format(value=_format_value(shown))


class ScorerExplainer:
    """Explain a fitted :class:`BinaryScorer` contact by contact.

    Parameters: ``scorer`` (fitted), ``top_k`` factors per contact, ``templates`` (feature → language → text
    with ``{value}``), merged over :data:`DEFAULT_TEMPLATES`.
    """

    def __init__(
        self,
        scorer: BinaryScorer,
        top_k: int = 5,
        templates: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        check_is_fitted(scorer, "booster_")
        if top_k < 1:
            raise ValueError(f"`top_k` must be >= 1, but got {top_k}")
        self.scorer = scorer
        self.top_k = top_k
        self.templates: dict[str, Mapping[str, str]] = {**DEFAULT_TEMPLATES, **(templates or {})}

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact contributions, shape (n_rows, n_features + 1): one column per feature plus ``bias``.

        The booster's TreeSHAP values, blended with the additive model's when the scorer has one; each row
        sums to the scorer's raw margin (``decision_function``).
        """
        prepared = self.scorer.prepare(X)
        tree = self.scorer.booster_.predict(
            prepared, num_iteration=self.scorer.best_iteration_, pred_contrib=True
        )
        raw = self.scorer.blend(np.asarray(tree, dtype=float), prepared)
        columns = [*self.scorer.feature_names_in_, "bias"]
        return pd.DataFrame(np.asarray(raw), columns=columns, index=X.index)

    def explain(self, X: pd.DataFrame, language: Language = "en") -> list[Explanation]:
        """Top ``top_k`` factors by absolute contribution for every row of ``X``, with score and base rate."""
        if language not in LANGUAGES:
            raise ValueError(f"`language` must be one of {LANGUAGES}, but got {language!r}")
        contrib = self.contributions(X)
        scores = self.scorer.predict_proba(X)[:, 1]
        features = list(self.scorer.feature_names_in_)
        out = []
        for i, (_, row) in enumerate(contrib.iterrows()):
            values = row[features].to_numpy(dtype=float)
            top = np.argsort(-np.abs(values), kind="stable")[: self.top_k]
            factors = tuple(
                Factor(
                    feature=features[j],
                    value=X.iloc[i][features[j]],
                    contribution=float(values[j]),
                    text=factor_text(features[j], X.iloc[i][features[j]], language, self.templates),
                )
                for j in top
            )
            out.append(
                Explanation(
                    score=float(scores[i]),
                    base_rate=self.scorer.base_rate_,
                    bias=float(row["bias"]),
                    factors=factors,
                    language=language,
                )
            )
        return out

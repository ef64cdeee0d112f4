"""Explanations: pred_contrib agrees with SHAP's own TreeSHAP; factors are signed, sorted, readable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from shap.explainers._tree import TreeEnsemble

from models.explainer import ScorerExplainer, factor_text
from models.scorer import BinaryScorer
from tests.test_scorer import make_frame


@pytest.fixture(scope="module")
def scorer() -> BinaryScorer:
    X, y = make_frame(3000)
    return BinaryScorer(n_estimators=150).fit(X, y)


def test_pred_contrib_agrees_with_shap_tree_explainer() -> None:
    # numeric features so shap can rebuild the trees and run its own TreeSHAP, independent of LightGBM's;
    # the booster alone (no additive blend), so its TreeSHAP values are the whole explanation
    X, y = make_frame(3000)
    X = X.drop(columns=["role"])
    numeric = BinaryScorer(n_estimators=150, additive_blend=False).fit(X, y)
    ours = ScorerExplainer(numeric).contributions(X.head(200))
    ensemble = TreeEnsemble(numeric.booster_)
    trees = [
        {
            "children_left": t.children_left,
            "children_right": t.children_right,
            "children_default": t.children_default,
            "features": t.features,
            "thresholds": t.thresholds,
            "values": t.values,
            "node_sample_weight": t.node_sample_weight,
        }
        for t in ensemble.trees[: numeric.best_iteration_]
    ]
    independent = shap.TreeExplainer({"trees": trees})
    assert independent.model.model_type == "internal"  # shap's algorithm, not a call back into LightGBM
    theirs = independent.shap_values(numeric.prepare(X.head(200)).to_numpy())
    np.testing.assert_allclose(ours.drop(columns="bias").to_numpy(), theirs, atol=1e-9)
    np.testing.assert_allclose(ours["bias"].to_numpy(), np.ravel(independent.expected_value)[0], atol=1e-9)
    # and the public shap.TreeExplainer on the booster gives the same values too
    public = shap.TreeExplainer(numeric.booster_).shap_values(numeric.prepare(X.head(200)))
    np.testing.assert_allclose(ours.drop(columns="bias").to_numpy(), np.asarray(public), atol=1e-9)


def test_contributions_sum_to_margin_with_categorical(scorer: BinaryScorer) -> None:
    X, _ = make_frame(50, seed=4)
    contrib = ScorerExplainer(scorer).contributions(X)
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), scorer.decision_function(X), atol=1e-9)


def test_blended_contributions_are_the_blend_of_treeshap_and_shape_functions(scorer: BinaryScorer) -> None:
    assert scorer.additive_ is not None  # the additive truth of make_frame: the inner folds blend
    X, _ = make_frame(50, seed=4)
    prepared = scorer.prepare(X)
    tree = scorer.booster_.predict(prepared, num_iteration=scorer.best_iteration_, pred_contrib=True)
    shape = scorer.additive_.contributions(scorer.matrix(prepared))
    w = scorer.blend_weight_
    contrib = ScorerExplainer(scorer).contributions(X)
    np.testing.assert_allclose(contrib.to_numpy(), w * tree + (1 - w) * shape, atol=1e-12)
    assert (contrib.drop(columns=["bias", "noise"]).abs() > 1e-6).any().all()


def test_explain_gives_signed_sorted_factors_in_two_languages(scorer: BinaryScorer) -> None:
    X, _ = make_frame(20, seed=5)
    X.loc[0, ["webinar_attend_30d", "page_view_30d"]] = [3.0, 8.0]
    X.loc[0, "role"] = "Head of IT"
    explainer = ScorerExplainer(scorer, top_k=3)
    en = explainer.explain(X.head(1), language="en")[0]
    de = explainer.explain(X.head(1), language="de")[0]
    assert en.score == pytest.approx(scorer.predict_proba(X.head(1))[0, 1])
    assert en.base_rate == pytest.approx(scorer.base_rate_)
    assert len(en.factors) == 3
    magnitudes = [abs(f.contribution) for f in en.factors]
    assert magnitudes == sorted(magnitudes, reverse=True)
    texts_en = {f.feature: f.text for f in en.factors}
    texts_de = {f.feature: f.text for f in de.factors}
    assert texts_en["webinar_attend_30d"] == "3 webinar visits in the last 30 days"
    assert texts_de["webinar_attend_30d"] == "3 Webinar-Besuche in den letzten 30 Tagen"
    webinar = next(f for f in en.factors if f.feature == "webinar_attend_30d")
    assert webinar.contribution > 0 and webinar.direction == "+"
    payload = en.as_dict()
    assert payload["factors"][0]["direction"] in {"+", "-"}


def test_factor_text_templates_and_fallback() -> None:
    assert factor_text("role", "Head of IT", "de") == "Rolle: Head of IT"
    assert factor_text("role", "Head of IT", "en") == "Role: Head of IT"
    assert factor_text("noise_level", 0.25, "en") == "noise level: 0.25"
    assert factor_text("role", None, "de") == "Rolle: unbekannt"
    assert factor_text("page_view_30d", np.nan, "en") == "unknown page views in the last 30 days"
    with pytest.raises(ValueError, match="`language`"):
        factor_text("role", "x", "fr")  # type: ignore[arg-type]


def test_explainer_bad_input(scorer: BinaryScorer) -> None:
    with pytest.raises(ValueError, match="`top_k`"):
        ScorerExplainer(scorer, top_k=0)
    X, _ = make_frame(5)
    with pytest.raises(ValueError, match="lacks feature columns"):
        ScorerExplainer(scorer).explain(X.drop(columns=["role"]))
    with pytest.raises(ValueError, match="`language`"):
        ScorerExplainer(scorer).explain(X, language="fr")  # type: ignore[arg-type]
    X_bad = pd.DataFrame(X)
    assert len(ScorerExplainer(scorer).explain(X_bad)) == 5

"""The compiled request-path scorer gives the fitted scorer's own probabilities, record by record."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import shap
from shap.explainers._tree import TreeEnsemble

from models.compiled_scorer import CompiledScorer
from models.explainer import ScorerExplainer
from models.scorer import BinaryScorer

TREE_FIELDS = (
    "children_left",
    "children_right",
    "children_default",
    "features",
    "thresholds",
    "values",
    "node_sample_weight",
)


def _table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    role = rng.choice(["Head of IT", "CFO", "Developer", "Analyst"], size=n)
    visits = rng.poisson(2.0, size=n).astype(float)
    visits[rng.random(n) < 0.1] = np.nan
    recency = rng.exponential(20.0, size=n)
    logit = 0.6 * np.nan_to_num(visits) - 0.05 * recency + np.where(role == "Head of IT", 1.2, 0.0) - 1.0
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"role": role, "webinar_visits": visits, "days_since_touch": recency})
    return frame, y


@pytest.mark.parametrize("calibration", ["isotonic", "sigmoid", "none"])
def test_records_score_like_the_scorer(calibration: Any) -> None:
    X, y = _table(3_000, seed=1)
    scorer = BinaryScorer(calibration=calibration, n_estimators=200, min_child_samples=20).fit(X, y)
    test, _ = _table(300, seed=2)
    records = test.astype(object).where(test.notna(), None).to_dict("records")
    # the shapes online rows really have: ints, bools, a category never seen in training, absent keys
    records[0]["webinar_visits"] = 3
    records[1]["webinar_visits"] = True
    records[2]["role"] = "Chief Bananas Officer"
    records[3].pop("days_since_touch")
    expected_frame = pd.DataFrame.from_records(records, columns=list(X.columns))

    assert scorer.additive_ is not None  # served: the booster blended with the additive model
    compiled = CompiledScorer(scorer)
    got = compiled.predict_proba(records)

    np.testing.assert_allclose(got, scorer.predict_proba(expected_frame)[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        compiled.decision_function(records), scorer.decision_function(expected_frame), rtol=0, atol=1e-12
    )
    assert len(np.unique(got.round(6))) > 10  # a real spread of scores, not one constant


@pytest.mark.parametrize(("rounds", "blend"), [(None, False), (7, False), (None, True)])
def test_one_record_fast_path_gives_the_served_margin(rounds: int | None, blend: bool) -> None:
    X, y = _table(3_000, seed=5)
    scorer = BinaryScorer(
        calibration="sigmoid", n_estimators=120, min_child_samples=20, additive_blend=blend
    ).fit(X, y)
    if rounds is not None:  # the served iteration may be below the trees the booster holds
        scorer.best_iteration_ = rounds
    assert (getattr(scorer, "additive_", None) is not None) == blend
    if blend:
        scorer.blend_weight_ = 0.5  # whatever the inner folds chose, the additive part must count
    test, _ = _table(200, seed=6)
    records = test.astype(object).where(test.notna(), None).to_dict("records")
    records[0]["role"] = "Chief Bananas Officer"  # unseen category: missing, as in the batch path
    records[1] = {}  # every feature missing
    compiled = CompiledScorer(scorer)
    one_by_one = np.array([compiled.decision_function([r])[0] for r in records])  # the single-row C API
    tree = scorer.booster_.predict(
        compiled.matrix(records), raw_score=True, num_iteration=scorer.best_iteration_
    )
    if not blend:  # the booster's own margin, bit for bit
        np.testing.assert_array_equal(one_by_one, tree)
    frame = pd.DataFrame.from_records(records, columns=list(X.columns))
    np.testing.assert_allclose(one_by_one, scorer.decision_function(frame), rtol=0, atol=1e-12)
    np.testing.assert_allclose(one_by_one, compiled.decision_function(records), rtol=0, atol=1e-12)
    assert len(np.unique(one_by_one.round(6))) > 10


def test_unseen_and_missing_categories_are_missing_not_errors() -> None:
    X, y = _table(2_000, seed=3)
    scorer = BinaryScorer(n_estimators=100, min_child_samples=20).fit(X, y)
    compiled = CompiledScorer(scorer)
    matrix = compiled.matrix([{"role": "nobody", "webinar_visits": "not a number"}, {"role": None}])
    assert np.isnan(matrix).all()
    # a list where a number belongs is missing too, not its element (NumPy would nest it)
    listed = compiled.matrix([{"webinar_visits": [3]}, {"webinar_visits": [4]}])
    assert listed.shape == (2, len(compiled.features_)) and np.isnan(listed).all()
    assert np.isnan(compiled.matrix([{"webinar_visits": ""}])).all()
    assert compiled.predict_proba([]).shape == (0,)


def test_batches_convert_columns_like_single_records(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _table(2_000, seed=4)
    scorer = BinaryScorer(n_estimators=100, min_child_samples=20).fit(X, y)
    compiled = CompiledScorer(scorer)
    test, _ = _table(50, seed=5)
    records = test.astype(object).where(test.notna(), None).to_dict("records")
    records[0].update(webinar_visits=True, role="unseen")
    records[1].update(webinar_visits="2.5", days_since_touch=None)
    records[2].update(webinar_visits="garbage", role=None)
    records[3].pop("role")
    one_by_one = compiled.matrix(records)
    monkeypatch.setattr("models.compiled_scorer.COLUMNAR_FROM", 0)
    np.testing.assert_array_equal(compiled.matrix(records), one_by_one)
    assert one_by_one[1, list(compiled.features_).index("webinar_visits")] == 2.5


def test_contributions_are_the_explainers_treeshap_and_add_up_to_the_margin() -> None:
    X, y = _table(3_000, seed=6)
    scorer = BinaryScorer(n_estimators=150, min_child_samples=20).fit(X, y)
    assert scorer.additive_ is not None  # blended: TreeSHAP values and shape functions, as the explainer has
    test, _ = _table(200, seed=7)
    records = test.astype(object).where(test.notna(), None).to_dict("records")
    records[0]["role"] = "Chief Bananas Officer"  # unseen category: missing, as on the frame path
    records[1].pop("webinar_visits")
    frame = pd.DataFrame.from_records(records, columns=list(X.columns))
    compiled = CompiledScorer(scorer)

    got = compiled.contributions(records)

    assert got.shape == (200, len(compiled.features_) + 1)
    expected = ScorerExplainer(scorer).contributions(frame)[[*compiled.features_, "bias"]]
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), compiled.decision_function(records), rtol=0, atol=1e-9)
    assert (np.abs(got[:, :-1]) > 1e-6).any(axis=0).all()  # every feature pushes some contact
    assert compiled.contributions([]).shape == (0, len(compiled.features_) + 1)


def test_contributions_agree_with_shaps_own_treeshap() -> None:
    X, y = _table(3_000, seed=8)
    X = X.drop(columns="role")  # numeric: shap rebuilds the trees and runs its own algorithm
    scorer = BinaryScorer(n_estimators=150, min_child_samples=20, additive_blend=False).fit(X, y)
    test, _ = _table(100, seed=9)
    test = test.drop(columns="role")
    records = test.astype(object).where(test.notna(), None).to_dict("records")

    got = CompiledScorer(scorer).contributions(records)

    ensemble = TreeEnsemble(scorer.booster_)
    trees = [{key: getattr(t, key) for key in TREE_FIELDS} for t in ensemble.trees[: scorer.best_iteration_]]
    independent = shap.TreeExplainer({"trees": trees})
    assert independent.model.model_type == "internal"  # shap's algorithm, not a call back into LightGBM
    theirs = independent.shap_values(scorer.prepare(test).to_numpy())
    np.testing.assert_allclose(got[:, :-1], theirs, atol=1e-9)
    np.testing.assert_allclose(got[:, -1], np.ravel(independent.expected_value)[0], atol=1e-9)

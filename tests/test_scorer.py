"""BinaryScorer and metrics: bad input named, calibration helps on held-out data, direction holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from models.metrics import binary_metrics, top_decile_lift
from models.scorer import BinaryScorer, SplineAdditiveModel


def make_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic contacts: engagement raises readiness, a role shifts it, ``noise`` is irrelevant.

    The frame's ``attrs["true_logit"]`` holds the generating log-odds, the best score any model could reach.
    """
    rng = np.random.default_rng(seed)
    webinar = rng.poisson(1.0, n).astype(float)
    visits = rng.poisson(3.0, n).astype(float)
    role = rng.choice(["Head of IT", "Developer", "Student"], n, p=[0.3, 0.5, 0.2])
    logit = (
        -3.0
        + 0.8 * webinar
        + 0.25 * visits
        + np.where(role == "Head of IT", 1.0, 0.0)
        + rng.normal(0, 0.3, n)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame(
        {
            "webinar_attend_30d": webinar,
            "page_view_30d": visits,
            "role": pd.Categorical(role),
            "noise": rng.normal(size=n),
        }
    )
    X.attrs["true_logit"] = logit
    return X, y


@pytest.fixture(scope="module")
def fitted() -> tuple[BinaryScorer, pd.DataFrame, np.ndarray]:
    X, y = make_frame(4000)
    scorer = BinaryScorer(n_estimators=300, monotone_increasing=("webinar_attend_30d", "page_view_30d")).fit(
        X, y
    )
    return scorer, X, y


def test_learns_signal_and_calibrated_probabilities(
    fitted: tuple[BinaryScorer, pd.DataFrame, np.ndarray],
) -> None:
    scorer, _, _ = fitted
    X_test, y_test = make_frame(3000, seed=1)
    p = scorer.predict_proba(X_test)
    assert p.shape == (3000, 2)
    assert np.allclose(p.sum(axis=1), 1.0)
    m = binary_metrics(y_test, p[:, 1])
    oracle = binary_metrics(y_test, X_test.attrs["true_logit"]).roc_auc
    assert m.roc_auc > oracle - 0.04  # 4000 noisy rows: close to, not at, the oracle
    assert m.roc_auc > 0.7
    assert abs(p[:, 1].mean() - y_test.mean()) < 0.03  # calibrated: mean prediction near the base rate
    assert scorer.best_iteration_ < 300


def test_calibration_improves_brier_on_held_out_data() -> None:
    X, y = make_frame(4000)
    X_test, y_test = make_frame(3000, seed=2)
    raw = BinaryScorer(n_estimators=300, calibration="none").fit(X, y)
    calibrated = BinaryScorer(n_estimators=300, calibration="sigmoid").fit(X, y)
    brier_raw = binary_metrics(y_test, raw.predict_proba(X_test)[:, 1]).brier
    brier_cal = binary_metrics(y_test, calibrated.predict_proba(X_test)[:, 1]).brier
    assert brier_raw is not None and brier_cal is not None
    # class weighting makes raw scores overconfident for the positive class; calibration must repair that
    assert brier_cal < brier_raw - 0.01


def test_small_tables_cross_fit_and_large_ones_hold_out() -> None:
    """Below ``cross_fit_below`` rows the calibrator sees every training row out of fold and the booster is
    boosted on all of them; above it, 10% of the rows calibrate and 10% early-stop."""
    X, y = make_frame(4000)
    X_test, y_test = make_frame(3000, seed=3)
    crossed = BinaryScorer(n_estimators=300).fit(X, y)
    held_out = BinaryScorer(n_estimators=300, cross_fit_below=1000).fit(X, y)
    assert crossed.calibration_rows_ == 4000 and held_out.calibration_rows_ == 400
    assert [r["params"] for r in crossed.search_results_] == [{}] and crossed.best_params_ == {}
    assert crossed.best_iteration_ == crossed.search_results_[0]["rounds"] == crossed.booster_.num_trees()
    assert not hasattr(held_out, "search_results_")
    assert held_out.additive_ is None and held_out.blend_weight_ == 1.0  # the blend needs inner folds
    p = crossed.predict_proba(X_test)[:, 1]
    assert abs(p.mean() - y_test.mean()) < 0.03  # out-of-fold calibration still lands on the base rate


def test_additive_blend_is_chosen_on_inner_folds_and_served() -> None:
    """On an additive truth the inner folds give the spline model a share; the served margin is the blend
    of the very booster an unblended scorer serves and the additive model."""
    X, y = make_frame(3000)
    blended = BinaryScorer(n_estimators=300).fit(X, y)
    alone = BinaryScorer(n_estimators=300, additive_blend=False).fit(X, y)
    assert blended.additive_ is not None and 0.0 <= blended.blend_weight_ < 1.0
    assert alone.additive_ is None and alone.blend_weight_ == 1.0

    X_test, _ = make_frame(500, seed=6)
    prepared = blended.prepare(X_test)
    tree = blended.booster_.predict(prepared, num_iteration=blended.best_iteration_, raw_score=True)
    additive = blended.additive_.decision_function(blended.matrix(prepared))
    w = blended.blend_weight_
    np.testing.assert_allclose(blended.decision_function(X_test), w * tree + (1 - w) * additive, atol=1e-12)
    np.testing.assert_allclose(tree, alone.decision_function(X_test), atol=1e-12)


def test_monotone_scorer_does_not_blend(fitted: tuple[BinaryScorer, pd.DataFrame, np.ndarray]) -> None:
    scorer, _, _ = fitted  # the spline model is not constrained, so it would void the monotone guarantee
    assert scorer.additive_ is None and scorer.blend_weight_ == 1.0


def test_spline_additive_model_contributions_are_centred_and_add_up() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    visits = rng.poisson(3.0, n).astype(float)
    visits[rng.random(n) < 0.1] = np.nan
    role = rng.choice([0.0, 1.0, 2.0, 3.0], n, p=[0.5, 0.3, 0.197, 0.003])  # code 3 is rare
    role[rng.random(n) < 0.05] = np.nan
    M = np.column_stack([visits, role, np.ones(n), np.full(n, np.nan)])  # a constant and an empty column
    logit = 0.5 * np.nan_to_num(visits, nan=1.0) + np.where(role == 1.0, 1.0, 0.0) - 2.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = SplineAdditiveModel([False, True, False, False], n_knots=6).fit(M, y)

    contrib = model.contributions(M)
    assert contrib.shape == (n, 5)
    np.testing.assert_allclose(contrib[:, :4].mean(axis=0), 0.0, atol=1e-9)  # centred on training rows
    np.testing.assert_allclose(contrib.sum(axis=1), model.decision_function(M), atol=1e-12)
    np.testing.assert_allclose(contrib[:, 4], model.intercept_)
    np.testing.assert_allclose(contrib[:, 2:4], 0.0, atol=1e-12)  # no variation, no push
    seen = ~np.isnan(visits)
    assert np.corrcoef(visits[seen], contrib[seen, 0])[0, 1] > 0.9  # more visits, more readiness
    unseen = M[:6].copy()
    unseen[:, 1] = [7.0, -1.0, 3.0, 0.5, np.nan, 2.0]  # never-seen codes count as the rare level
    unseen[:, 0] = [-5.0, 1e6, np.nan, 0.0, 2.5, 12.0]  # beyond the knots: the boundary value
    probe = np.vstack([M, unseen])
    # the compiled shape functions are the standardized design times the coefficients, column by column
    design = np.hstack(model._blocks(probe)) - model.mean_
    slices = zip(model.slices_[:-1], model.slices_[1:], strict=True)
    by_design = [design[:, lo:hi] @ model.coef_[lo:hi] for lo, hi in slices]
    np.testing.assert_allclose(model.contributions(probe)[:, :4], np.column_stack(by_design), atol=1e-12)
    assert np.isfinite(model.contributions(unseen)).all()
    with pytest.raises(ValueError, match="`M` must have 4 columns"):
        model.decision_function(M[:, :3])


def test_inner_cv_search_keeps_the_lower_loss_candidate() -> None:
    X, y = make_frame(2000)
    scorer = BinaryScorer(n_estimators=60, candidates=({"learning_rate": 0.001}, {"num_leaves": 3})).fit(X, y)
    losses = [r["log_loss"] for r in scorer.search_results_]
    assert len(losses) == 2 and losses[1] < losses[0]  # 60 rounds at 0.001 barely leave the prior
    assert scorer.best_params_ == {"num_leaves": 3}
    assert scorer.booster_.dump_model()["tree_info"][0]["num_leaves"] <= 3  # the winner is what is served


def test_more_engagement_never_lowers_readiness(
    fitted: tuple[BinaryScorer, pd.DataFrame, np.ndarray],
) -> None:
    scorer, X, _ = fitted
    base = X.head(300).copy()
    before = scorer.predict_proba(base)[:, 1]
    for col in ("webinar_attend_30d", "page_view_30d"):
        more = base.copy()
        more[col] = more[col] + 2
        assert (scorer.predict_proba(more)[:, 1] >= before - 1e-12).all(), col
        assert (scorer.decision_function(more) >= scorer.decision_function(base) - 1e-12).all(), col


def test_unseen_category_and_column_order_handled(
    fitted: tuple[BinaryScorer, pd.DataFrame, np.ndarray],
) -> None:
    scorer, X, _ = fitted
    rows = X.head(5)[list(reversed(X.columns))].copy()
    rows["role"] = ["Astronaut", "Head of IT", None, "Developer", "Student"]
    p = scorer.predict_proba(rows)[:, 1]
    assert np.isfinite(p).all()
    same = X.head(5).copy()
    same["role"] = pd.Categorical(["Developer", "Head of IT", "Developer", "Developer", "Student"])
    assert scorer.predict_proba(same)[[1, 3, 4], 1] == pytest.approx(p[[1, 3, 4]])


def test_constant_feature_is_harmless() -> None:
    X, y = make_frame(1500)
    X["constant"] = 1.0
    scorer = BinaryScorer(n_estimators=100).fit(X, y)
    assert scorer.feature_importances()["constant"] == 0.0


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda X, y: (X, np.zeros(len(y), dtype=int)), ValueError, "only one class"),
        (lambda X, y: (X.iloc[:0], y[:0]), ValueError, "empty"),
        (lambda X, y: (X, np.where(y == 1, 2, 0)), ValueError, "must be binary"),
        (lambda X, y: (X, y[:-1]), ValueError, "same number of rows"),
        (lambda X, y: (X.to_numpy(), y), TypeError, "must be a pandas DataFrame"),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 0, np.nan, y)), ValueError, "must not be missing"),
    ],
)
def test_bad_training_input(mutate, error, match) -> None:  # type: ignore[no-untyped-def]
    X, y = make_frame(200)
    X_bad, y_bad = mutate(X, y)
    with pytest.raises(error, match=match):
        BinaryScorer(n_estimators=10).fit(X_bad, y_bad)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"learning_rate": 0.0}, "`learning_rate`"),
        ({"validation_fraction": 1.0}, "`validation_fraction`"),
        ({"calibration": "magic"}, "`calibration`"),
        ({"inner_folds": 1}, "`inner_folds` must be 0"),
        ({"candidates": ({"objective": "regression"},)}, r"`candidates` may set only .*'objective'"),
        ({"monotone_increasing": ("nope",)}, "`monotone_increasing` names columns not in X"),
        ({"monotone_increasing": ("role",)}, "must name numeric columns"),
        ({"spline_knots": 1}, "`spline_knots` must be >= 2"),
        ({"additive_C": 0.0}, "`additive_C` must be > 0"),
    ],
)
def test_bad_params(params: dict, match: str) -> None:  # type: ignore[type-arg]
    X, y = make_frame(200)
    with pytest.raises(ValueError, match=match):
        BinaryScorer(n_estimators=10, **params).fit(X, y)


def test_prediction_input_errors(fitted: tuple[BinaryScorer, pd.DataFrame, np.ndarray]) -> None:
    scorer, X, _ = fitted
    with pytest.raises(ValueError, match=r"lacks feature columns .*noise"):
        scorer.predict_proba(X.drop(columns=["noise"]))
    bad = X.head(3).copy()
    bad["noise"] = ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature `noise` must be numeric"):
        scorer.predict_proba(bad)


def test_metrics_values_and_errors() -> None:
    y = np.array([0, 0, 1, 1, 0, 1, 0, 0, 0, 0])
    s = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.4, 0.05])
    m = binary_metrics(y, s)
    assert m.roc_auc == 1.0
    assert m.top_decile_lift == pytest.approx(1 / 0.3)
    assert m.brier is not None and m.log_loss is not None
    points = binary_metrics(y, s * 200)
    assert points.brier is None and points.roc_auc == 1.0
    assert top_decile_lift(y, -s) == 0.0
    with pytest.raises(ValueError, match="both classes"):
        binary_metrics(np.zeros(4), np.ones(4) * 0.5)
    with pytest.raises(ValueError, match="same length"):
        binary_metrics(y, s[:-1])
    with pytest.raises(ValueError, match="NaN"):
        binary_metrics(y, np.where(y == 1, np.nan, 0.1))


def test_sigmoid_calibration_never_inverts_the_ranking() -> None:
    """Few held-out positives can fit a negative Platt slope; calibration must keep the booster's order."""
    margin = np.linspace(-3.0, 3.0, 200)
    y = np.zeros(200, dtype=int)
    y[[3, 10, 17]] = 1  # the only positives sit at the low end: a free slope would come out negative
    scorer = BinaryScorer(calibration="sigmoid")
    scorer._fit_calibrator(margin, y)

    assert isinstance(scorer.calibrator_, LogisticRegression)
    p = scorer.calibrator_.predict_proba(margin.reshape(-1, 1))[:, 1]
    assert scorer.calibration_method_ == "sigmoid_intercept"
    assert np.all(np.diff(p) > 0), "calibrated probabilities must rise with the margin"
    assert p.mean() == pytest.approx(y.mean(), rel=1e-6)

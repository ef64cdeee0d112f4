"""Model vs baseline with bootstrap CIs: the CI brackets the difference and says when it is clear."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from models.metrics import top_decile_lift
from training.score_comparison import compare_scores, ranking_metrics


def noisy_labels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (signal + rng.normal(scale=0.5, size=n) > 1.2).astype(int)
    groups = np.repeat(np.arange(n // 4), 4)
    return y, signal, groups


@pytest.mark.parametrize("levels", [None, 5, 40])
def test_ranking_metrics_equal_scikit_learns_with_ties(levels: int | None) -> None:
    rng = np.random.default_rng(levels or 0)
    y = (rng.random(3000) < 0.05).astype(int)
    score = rng.normal(size=3000) + y
    if levels is not None:  # many ties, as in a points score
        score = np.round(score * levels / 4) * 4 / levels
    expected = [roc_auc_score(y, score), average_precision_score(y, score), top_decile_lift(y, score)]
    np.testing.assert_allclose(ranking_metrics(y, score), expected, rtol=1e-12)


def test_a_better_model_is_clearly_better_and_the_ci_brackets_the_difference() -> None:
    y, signal, groups = noisy_labels(2000, 0)
    baseline = signal + np.random.default_rng(1).normal(scale=2.0, size=len(y))
    result = compare_scores(y, signal, baseline, groups, n_resamples=300, seed=0)
    roc = result["roc_auc"]
    assert roc.model > roc.baseline
    assert roc.ci_low <= roc.difference <= roc.ci_high
    assert result.model_clearly_better("roc_auc") and result.model_clearly_better("pr_auc")
    assert result.n_groups == 500 and result.n_positives == int(y.sum())


def test_the_same_score_is_not_clearly_better() -> None:
    y, signal, groups = noisy_labels(1000, 2)
    result = compare_scores(y, signal, signal.copy(), groups, n_resamples=200)
    for m in result.metrics:
        assert m.difference == 0.0 and m.ci_low == 0.0 and m.ci_high == 0.0
    assert not result.model_clearly_better()


def test_a_small_test_set_gives_a_wide_interval() -> None:
    y, signal, groups = noisy_labels(4000, 3)
    baseline = signal + np.random.default_rng(4).normal(scale=1.0, size=len(y))
    wide = compare_scores(y[:300], signal[:300], baseline[:300], groups[:300], n_resamples=300)
    narrow = compare_scores(y, signal, baseline, groups, n_resamples=300)
    width = {r: r["roc_auc"].ci_high - r["roc_auc"].ci_low for r in (wide, narrow)}
    assert width[wide] > 2 * width[narrow]


def test_every_resample_keeps_the_positive_contacts_and_both_classes() -> None:
    # one positive contact among many: an unstratified bootstrap would often drop it (AUC undefined)
    y = np.zeros(400, int)
    y[[3, 200]] = 1
    score = np.linspace(0, 1, 400)
    result = compare_scores(y, score, score[::-1].copy(), np.arange(400) // 2, n_resamples=100)
    assert result.n_positive_groups == 2
    assert np.isfinite([result["roc_auc"].ci_low, result["roc_auc"].ci_high]).all()


@pytest.mark.parametrize(
    "y, model, baseline, groups, match",
    [
        ([0, 1, 1], [0.1, 0.2], [0.1, 0.2, 0.3], None, "one length"),
        ([0, 0, 0], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3], None, "both present"),
        ([0, 1, 2], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3], None, "hold 0 and 1"),
        ([0, 1, 1], [0.1, np.nan, 0.3], [0.1, 0.2, 0.3], None, "NaN"),
        ([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [1, 2], "`groups` must have shape"),
    ],
)
def test_bad_input_is_a_clear_error(
    y: list[int], model: list[float], baseline: list[float], groups: list[int] | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        compare_scores(np.array(y), np.array(model), np.array(baseline), groups)

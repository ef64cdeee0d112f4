"""The classic points score: DESIGN.md's weights, fading behaviour points, the sales alert, bad weights."""

from __future__ import annotations

import pandas as pd
import pytest

from features.points import (
    DEFAULT_POINTS,
    PointsWeights,
    behaviour_points,
    behaviour_points_frame,
    fit_points,
    points_score,
)
from features.schemas import ContactProfile


def test_design_weights_for_one_of_each_touch() -> None:
    counters = {
        f"{t}_30d": 1.0
        for t in ("page_view", "return_visit", "workshop", "webinar_attend", "email_open", "email_click")
    }
    assert behaviour_points(counters) == 5 + 5 + 20 + 10 + 5 + 10


def test_points_fade_with_the_counters() -> None:
    fresh = behaviour_points({"email_click_30d": 2.0})
    faded = behaviour_points({"email_click_30d": 1.0})  # the same two clicks, one half-life later
    assert faded == fresh / 2


def test_fit_points_from_profile_and_sales_alert() -> None:
    profile = ContactProfile(
        contact_id="c1",
        seniority="Director",
        budget=True,
        authority=True,
        need=True,
        timeline_months=2,
        company_size=5000,
    )
    assert fit_points(profile) == 15 + 10 + 15 + 10 + 15 + 10
    below = points_score(profile, {"email_click_30d": 7.0})
    above = points_score(profile, {"email_click_30d": 8.0})
    assert below.total == 75 + 70 and not below.sales_alert
    assert above.total == 155 and above.sales_alert


def test_unknown_profile_and_missing_counters_score_zero() -> None:
    score = points_score(None, {})
    assert (score.fit, score.behaviour, score.total, score.sales_alert) == (0.0, 0.0, 0.0, False)


def test_frame_version_matches_the_scalar_one() -> None:
    frame = pd.DataFrame({"email_open_30d": [1.0, None], "workshop_30d": [0.5, 2.0]})
    assert behaviour_points_frame(frame).tolist() == [
        behaviour_points({"email_open_30d": 1.0, "workshop_30d": 0.5}),
        behaviour_points({"workshop_30d": 2.0}),
    ]


def test_custom_weights_change_the_score() -> None:
    weights = PointsWeights(behaviour={"email_click": 1.0}, half_life_days=7, sales_alert=1.0)
    score = points_score(None, {"email_click_7d": 1.0, "email_click_30d": 5.0}, weights)
    assert score.total == 1.0 and score.sales_alert
    assert DEFAULT_POINTS.sales_alert == 150


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"half_life_days": 14}, r"half_life_days must be one of \(7, 30\), but got 14"),
        ({"behaviour": {"telepathy": 5.0}}, r"behaviour has unknown event types \['telepathy'\]"),
    ],
)
def test_bad_weights_name_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PointsWeights(**kwargs)  # type: ignore[arg-type]

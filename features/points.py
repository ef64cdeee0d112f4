"""The classic lead-scoring points score: explicit fit points plus implicit behaviour points that fade.

DESIGN.md gives the behaviour points (visit 5, return visit 5, workshop sign-up 20, webinar 10, newsletter
open 5,
click 10) and the sales alert above 150. Behaviour points are a weighted sum of the decayed per-event-type
counters
of ``features.decay`` at one half-life, so they fade exactly as the counters do and need no state of their
own.
This score is the baseline the learned readiness model must beat, and the fallback when no model is trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import pandas as pd

from features.decay import EVENT_TYPES, HALF_LIVES_DAYS, RETURN_VISIT
from features.schemas import ContactProfile, EventType

DEFAULT_BEHAVIOUR_POINTS: dict[str, float] = {
    EventType.PAGE_VIEW.value: 5.0,  # visit
    RETURN_VISIT: 5.0,  # on top of the visit's own 5
    EventType.WORKSHOP.value: 20.0,
    EventType.WEBINAR_ATTEND.value: 10.0,
    EventType.EMAIL_OPEN.value: 5.0,  # newsletter open
    EventType.EMAIL_CLICK.value: 10.0,
    # Beyond DESIGN.md's list, in the same spirit: strong intent signals and opting out.
    EventType.CONTENT_DOWNLOAD.value: 10.0,
    EventType.FORM_SUBMIT.value: 10.0,
    EventType.DEMO_REQUEST.value: 50.0,
    EventType.CONTACT_REQUEST.value: 50.0,
    EventType.UNSUBSCRIBE.value: -20.0,
}
DEFAULT_SENIORITY_POINTS: dict[str, float] = {
    "c_level": 20.0,
    "executive": 20.0,
    "vp": 15.0,
    "director": 15.0,
    "head": 15.0,
    "manager": 10.0,
    "senior": 5.0,
}


@dataclass(frozen=True)
class PointsWeights:
    """Weights of the points score; the defaults are DESIGN.md's.

    Attributes:
        behaviour: points per event type (and ``return_visit``), applied to the decayed counters.
        half_life_days: which counter half-life the behaviour points fade with (one of ``HALF_LIVES_DAYS``).
        seniority: fit points per (lower-case) seniority.
        budget, authority, need: fit points when the BANT answer is yes.
        timeline: fit points by the largest number of months the purchase timeline may be, checked in order.
        company_size: fit points by the smallest company size, checked in order.
        sales_alert: score at or above which sales is alerted.
    """

    behaviour: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_BEHAVIOUR_POINTS))
    half_life_days: int = 30
    seniority: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SENIORITY_POINTS))
    budget: float = 10.0
    authority: float = 15.0
    need: float = 10.0
    timeline: tuple[tuple[int, float], ...] = ((3, 15.0), (6, 10.0), (12, 5.0))
    company_size: tuple[tuple[int, float], ...] = ((1000, 10.0), (200, 7.0), (50, 5.0))
    sales_alert: float = 150.0

    def __post_init__(self) -> None:
        if self.half_life_days not in HALF_LIVES_DAYS:
            raise ValueError(
                f"half_life_days must be one of {HALF_LIVES_DAYS}, but got {self.half_life_days}"
            )
        unknown = sorted(set(self.behaviour) - {*EVENT_TYPES, RETURN_VISIT})
        if unknown:
            raise ValueError(f"behaviour has unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}")

    def behaviour_columns(self) -> dict[str, float]:
        """Counter feature name -> points, e.g. ``{"email_click_30d": 10.0, ...}``."""
        return {f"{key}_{self.half_life_days}d": w for key, w in self.behaviour.items() if w}


DEFAULT_POINTS = PointsWeights()


@dataclass(frozen=True)
class PointsScore:
    """A contact's points: fit + behaviour = total, and whether sales should be alerted."""

    fit: float
    behaviour: float
    total: float
    sales_alert: bool


def fit_points(
    profile: ContactProfile | Mapping[str, Any] | None, weights: PointsWeights = DEFAULT_POINTS
) -> float:
    """Explicit points from who the contact is: seniority, company size and BANT answers."""
    if profile is None:
        return 0.0
    get = profile.get if isinstance(profile, Mapping) else lambda name: getattr(profile, name, None)
    points = 0.0
    seniority = get("seniority")
    if isinstance(seniority, str):
        points += weights.seniority.get(seniority.strip().lower(), 0.0)
    for name in ("budget", "authority", "need"):
        if _is_true(get(name)):
            points += getattr(weights, name)
    months = get("timeline_months")
    if _is_number(months):
        points += next((p for limit, p in weights.timeline if months <= limit), 0.0)
    size = get("company_size")
    if _is_number(size):
        points += next((p for smallest, p in weights.company_size if size >= smallest), 0.0)
    return points


def behaviour_points(counters: Mapping[str, float], weights: PointsWeights = DEFAULT_POINTS) -> float:
    """Implicit points: decayed counters (feature name -> value) times the points per event type."""
    return sum(w * float(counters.get(name, 0.0) or 0.0) for name, w in weights.behaviour_columns().items())


def points_score(
    profile: ContactProfile | Mapping[str, Any] | None,
    counters: Mapping[str, float],
    weights: PointsWeights = DEFAULT_POINTS,
) -> PointsScore:
    """The classic score of one contact from its profile and its counters decayed to the scoring time."""
    fit = fit_points(profile, weights)
    behaviour = behaviour_points(counters, weights)
    total = fit + behaviour
    return PointsScore(fit=fit, behaviour=behaviour, total=total, sales_alert=total >= weights.sales_alert)


def behaviour_points_frame(frame: pd.DataFrame, weights: PointsWeights = DEFAULT_POINTS) -> pd.Series:
    """Vectorised ``behaviour_points`` over a feature frame (missing counter columns count as 0)."""
    total = pd.Series(0.0, index=frame.index)
    for name, w in weights.behaviour_columns().items():
        if name in frame:
            total += w * frame[name].astype("float64").fillna(0.0)
    return total


def _is_true(value: object) -> bool:
    return value is True or (isinstance(value, int | float) and not pd.isna(value) and bool(value))


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and not pd.isna(value)

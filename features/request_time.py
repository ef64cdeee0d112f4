"""Request-time transform shared by the on-demand feature view and the fast lookup path.

Takes a frame with the stored engagement columns (as of ``as_of_ts``), ``fit_points`` and ``request_ts`` and
returns the counters decayed to ``request_ts``, days since the last touch and first event, and the points
score.
Vectorised with numpy so it costs the same for one row online as per row in a training set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.decay import HALF_LIVES_DAYS, SECONDS_PER_DAY, counter_columns, decay_rate
from features.points import DEFAULT_POINTS, PointsWeights
from features.topics import TOPIC_IDS, topics_in


def engagement_at_request(inputs: pd.DataFrame, weights: PointsWeights = DEFAULT_POINTS) -> pd.DataFrame:
    """``{counter}_now`` for every counter, ``days_since_*``, ``behaviour_points_now``, ``points_score_now``,
    ``sales_alert``; rows without engagement (unknown contacts) get zero counters and NaN days."""
    request = _column(inputs, "request_ts")
    as_of = _column(inputs, "as_of_ts")
    elapsed = np.clip(request - as_of, 0.0, None)
    known = ~np.isnan(as_of)
    out: dict[str, np.ndarray] = {}
    factors = {
        h: np.where(known, np.exp(-decay_rate(h) * np.nan_to_num(elapsed)), 0.0) for h in HALF_LIVES_DAYS
    }
    # The topic columns are the repository's vocabulary: whatever the stored frame carries.
    topics = topics_in(inputs.columns, HALF_LIVES_DAYS[0]) or TOPIC_IDS
    for name in counter_columns(topics):
        half_life = int(name.rsplit("_", 1)[1][:-1])
        out[f"{name}_now"] = np.nan_to_num(_column(inputs, name)) * factors[half_life]
    last_touch = _column(inputs, "last_touch_ts")
    out["days_since_last_touch"] = np.clip(request - last_touch, 0.0, None) / SECONDS_PER_DAY
    out["days_since_first_seen"] = (
        np.clip(request - _column(inputs, "first_seen_ts"), 0.0, None) / SECONDS_PER_DAY
    )
    behaviour = np.zeros(len(inputs))
    for name, w in weights.behaviour_columns().items():
        behaviour += w * out[f"{name}_now"]
    out["behaviour_points_now"] = behaviour
    out["points_score_now"] = np.nan_to_num(_column(inputs, "fit_points")) + behaviour
    out["sales_alert"] = out["points_score_now"] >= weights.sales_alert
    return pd.DataFrame(out, index=inputs.index)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A float column, NaN where missing; a column absent from the frame is all NaN."""
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)

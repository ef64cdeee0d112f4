"""On-demand feature view: engagement decayed to the request time, days since the last touch, the points
score.

Stored counters are as of the contact's latest event; a decision (or a training row) at ``request_ts`` sees
them
multiplied by ``2 ** (-(request_ts - as_of_ts) / h)``, the same maths as ``features.decay``. The same
transform
runs on the online lookup and on historical retrieval, so training and serving see identical features.
"""

from __future__ import annotations

import pandas as pd
from feast import FeatureView, Field
from feast.on_demand_feature_view import OnDemandFeatureView, on_demand_feature_view
from feast.types import Bool, Float64

from features.feature_repo.data_sources import decision_request
from features.feature_repo.feature_views import (
    AFFINITY_COUNTERS,
    ENGAGEMENT_COUNTERS,
    contact_engagement_fv,
    contact_profile_fv,
    stage_affinity_fv,
)

NOW_COUNTERS = tuple(f"{n}_now" for n in (*ENGAGEMENT_COUNTERS, *AFFINITY_COUNTERS))
NOW_FEATURE_DOCS = {
    **{
        n: f"{n[:-4]} decayed from as_of_ts to request_ts (0 for a contact without events)."
        for n in NOW_COUNTERS
    },
    "days_since_last_touch": "Days from the last touch (any event but email_sent) to request_ts.",
    "days_since_first_seen": "Days from the first event to request_ts.",
    "behaviour_points_now": "Implicit points of the classic score, decayed to request_ts.",
    "points_score_now": "Fit points + behaviour points at request_ts.",
    "sales_alert": "points_score_now at or above the sales alert threshold (150).",
}


def engagement_now_view(affinity_view: FeatureView = stage_affinity_fv) -> OnDemandFeatureView:
    """The on-demand view over the engagement, the stage affinity (``stage_affinity_view`` of the
    repository's topics: the same object the repository applies) and fit points."""
    now_counters = [f"{n}_now" for n in (*ENGAGEMENT_COUNTERS, *(f.name for f in affinity_view.features))]

    # A new function per view: Feast's decorator reads its source and then moves it to ``__main__`` (so dill
    # ships it by value), after which the source can no longer be read a second time.
    def engagement_now_odfv(inputs: pd.DataFrame) -> pd.DataFrame:
        """Decay every stored counter from ``as_of_ts`` to ``request_ts``; unknown contacts get zeros."""
        from features.request_time import engagement_at_request

        return engagement_at_request(inputs)

    return on_demand_feature_view(
        sources=[
            contact_engagement_fv,
            affinity_view,
            contact_profile_fv[["fit_points"]],
            decision_request,
        ],
        # No per-field descriptions here: Feast 0.67 compares specified ODFV fields to the inferred ones
        # including their description, so a described field fails `apply`. NOW_FEATURE_DOCS documents them.
        schema=[
            *(Field(name=n, dtype=Float64) for n in now_counters),
            *(
                Field(name=n, dtype=Float64)
                for n in (
                    "days_since_last_touch",
                    "days_since_first_seen",
                    "behaviour_points_now",
                    "points_score_now",
                )
            ),
            Field(name="sales_alert", dtype=Bool),
        ],
        description="Engagement and the classic points score as of the request time.",
    )(engagement_now_odfv)


engagement_now_odfv = engagement_now_view()

"""ripen's Feast feature repository: entities, sources, feature views, on-demand views and feature services.

``features.store.FeatureStoreService`` writes ``feature_store.yaml`` for the active profile next to the data
and
applies ``definitions()``; the sources name their Parquet tables relative to that repository folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def definitions(topics: Sequence[str] | None = None) -> list[Any]:
    """Every Feast object of the repository, in the order ``FeatureStore.apply`` takes them.

    ``topics``: the topic ids with columns (``features.topics.feature_topics`` of the stored vocabulary);
    None for the default catalog's."""
    from features.feature_repo import entities, feature_services, feature_views, on_demand
    from features.topics import TOPIC_IDS

    topics = TOPIC_IDS if topics is None else tuple(topics)
    views = feature_views.feature_views(topics)
    engagement_now = on_demand.engagement_now_view(next(v for v in views if v.name == "stage_affinity"))
    return [
        entities.contact,
        entities.account,
        entities.content,
        *views,
        engagement_now,
        *feature_services.feature_services(engagement_now),
    ]

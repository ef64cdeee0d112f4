"""ripen's Feast feature repository: entities, sources, feature views, on-demand views and feature services.

``features.store.FeatureStoreService`` writes ``feature_store.yaml`` for the active profile next to the data
and
applies ``definitions()``; the sources name their Parquet tables relative to that repository folder.
"""

from __future__ import annotations

from typing import Any


def definitions() -> list[Any]:
    """Every Feast object of the repository, in the order ``FeatureStore.apply`` takes them."""
    from features.feature_repo import entities, feature_services, feature_views, on_demand

    return [
        entities.contact,
        entities.account,
        entities.content,
        *feature_views.ALL_FEATURE_VIEWS,
        on_demand.engagement_now_odfv,
        *feature_services.ALL_FEATURE_SERVICES,
    ]

"""Feature services: one versioned definition per consumer of what its model sees, for training and
serving."""

from __future__ import annotations

from feast import FeatureService
from feast.on_demand_feature_view import OnDemandFeatureView

from features.feature_repo.feature_views import (
    CONSENT_FEATURES,
    account_engagement_fv,
    contact_engagement_fv,
    contact_profile_fv,
    content_stats_fv,
)
from features.feature_repo.on_demand import engagement_now_odfv

_FIT = [
    "persona",
    "seniority",
    "industry",
    "company_size",
    "country",
    "budget",
    "authority",
    "need",
    "timeline_months",
    "fit_points",
]
_FUNNEL = ["lead_status", "lifecycle_stage", "is_customer"]


def feature_services(engagement_now: OnDemandFeatureView = engagement_now_odfv) -> tuple[FeatureService, ...]:
    """The services of every consumer, reading ``engagement_now`` (the on-demand view of the repository's
    topic vocabulary)."""
    readiness_v1 = FeatureService(
        name="readiness_v1",
        features=[
            contact_profile_fv[[*_FIT, *_FUNNEL]],
            contact_engagement_fv[["events_total"]],
            engagement_now,
        ],
        description="Sales readiness model: fit, funnel position, fading engagement and stage affinity.",
    )
    churn_v1 = FeatureService(
        name="churn_v1",
        features=[
            contact_profile_fv[["industry", "company_size", "country", *_FUNNEL, "consent_email"]],
            contact_engagement_fv[["events_total"]],
            engagement_now,
        ],
        description="Churn model: customer state and how usage, tickets and renewals fade or pile up.",
    )
    content_policy_v1 = FeatureService(
        name="content_policy_v1",
        features=[
            contact_profile_fv[["persona", "language", *_FUNNEL, *CONSENT_FEATURES, "fit_points"]],
            contact_engagement_fv[["events_total", "consumed_content_ids"]],
            engagement_now,
        ],
        description="Content policy context: persona, stage, consent, consumed content and stage affinity.",
    )
    sales_explanation_v1 = FeatureService(
        name="sales_explanation_v1",
        features=[contact_profile_fv, contact_engagement_fv, engagement_now, account_engagement_fv],
        description="Contact card for sales: everything readable about the contact and its account.",
    )
    content_stats_v1 = FeatureService(
        name="content_stats_v1",
        features=[content_stats_fv],
        description="Candidate content statistics read next to a contact's features at decision time.",
    )
    return (readiness_v1, churn_v1, content_policy_v1, sales_explanation_v1, content_stats_v1)


ALL_FEATURE_SERVICES = feature_services()

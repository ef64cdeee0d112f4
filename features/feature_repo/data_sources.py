"""Offline sources: the Parquet tables ``features.aggregation`` writes, and the request-time values.

Paths are relative to the generated repository folder (``Settings.feature_repo_dir``); Feast resolves them
against
its ``repo_path``, and the tables live beside it in ``Settings.offline_dir``.
"""

from __future__ import annotations

from feast import Field, FileSource, RequestSource
from feast.types import Float64

from features.aggregation import (
    ACCOUNT_ENGAGEMENT_TABLE,
    CONTACT_ENGAGEMENT_TABLE,
    CONTACT_PROFILE_TABLE,
    CONTENT_STATS_TABLE,
)

OFFLINE_PREFIX = "../offline/"

contact_engagement_source = FileSource(
    name="contact_engagement_source",
    path=OFFLINE_PREFIX + CONTACT_ENGAGEMENT_TABLE,
    timestamp_field="event_timestamp",
    description="One row per contact and event time: engagement as of that time.",
)
contact_profile_source = FileSource(
    name="contact_profile_source",
    path=OFFLINE_PREFIX + CONTACT_PROFILE_TABLE,
    timestamp_field="event_timestamp",
    description="One row per profile version: firmographics, persona, BANT, status, consent.",
)
content_stats_source = FileSource(
    name="content_stats_source",
    path=OFFLINE_PREFIX + CONTENT_STATS_TABLE,
    timestamp_field="event_timestamp",
    description="One row per content block and event time: cumulative delivery and response counts.",
)
account_engagement_source = FileSource(
    name="account_engagement_source",
    path=OFFLINE_PREFIX + ACCOUNT_ENGAGEMENT_TABLE,
    timestamp_field="event_timestamp",
    description="One row per account and event time: engagement summed over the account's contacts.",
)
decision_request = RequestSource(
    name="decision_request",
    schema=[
        Field(name="request_ts", dtype=Float64, description="Decision (or training row) time, epoch seconds.")
    ],
    description="When the features are asked for; engagement is decayed to this time.",
)

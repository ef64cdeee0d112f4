"""Feature views: contact engagement, stage affinity, contact profile, content statistics, account engagement.

Counters are stored as of the row's event time (``as_of_ts``); ``on_demand.engagement_now_odfv`` decays them
to
the request time. TTLs bound how far back the as-of join looks: two years for behaviour, none for profiles (a
profile stays true until it changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Array, Bool, Float64, Int64, String

from features.decay import EVENT_TYPES, HALF_LIVES_DAYS, LAST_SEEN, RETURN_VISIT
from features.feature_repo.data_sources import (
    account_engagement_source,
    contact_engagement_source,
    contact_profile_source,
    content_stats_source,
)
from features.feature_repo.entities import account, contact, content
from features.schemas import STAGE_IDS, Channel
from features.topics import TOPIC_IDS

BEHAVIOUR_TTL = timedelta(days=730)
NO_EXPIRY = timedelta(0)

ENGAGEMENT_COUNTERS = tuple(f"{k}_{h}d" for k in (*EVENT_TYPES, RETURN_VISIT) for h in HALF_LIVES_DAYS)
STAGE_COUNTERS = tuple(f"stage_{s}_{h}d" for s in STAGE_IDS for h in HALF_LIVES_DAYS)


def affinity_counters(topics: Sequence[str] = TOPIC_IDS) -> tuple[str, ...]:
    """Everything the stage_affinity view holds: engagement per journey stage and per topic id."""
    return (*STAGE_COUNTERS, *(f"topic_{t}_{h}d" for t in topics for h in HALF_LIVES_DAYS))


# The default catalog's columns; a repository with its own vocabulary builds its view with
# ``stage_affinity_view``.
TOPIC_COUNTERS = tuple(f"topic_{t}_{h}d" for t in TOPIC_IDS for h in HALF_LIVES_DAYS)
AFFINITY_COUNTERS = affinity_counters(TOPIC_IDS)


def _counter_field(name: str) -> Field:
    key, half_life = name.rsplit("_", 1)
    return Field(
        name=name,
        dtype=Float64,
        description=f"'{key}' events decayed with a {half_life[:-1]}-day half-life, as of as_of_ts.",
    )


contact_engagement_fv = FeatureView(
    name="contact_engagement",
    entities=[contact],
    ttl=BEHAVIOUR_TTL,
    source=contact_engagement_source,
    online=True,
    description="What a contact did, fading with time: decayed counters, last touches, consumed content.",
    schema=[
        Field(name="as_of_ts", dtype=Float64, description="Time of the latest counted event, epoch seconds."),
        Field(name="first_seen_ts", dtype=Float64, description="Time of the first event, epoch seconds."),
        Field(name="events_total", dtype=Int64, description="Events counted so far (duplicates once)."),
        Field(
            name="consumed_content_ids",
            dtype=Array(String),
            description="Content blocks consumed (click, download, attend, view), sorted: never offer again.",
        ),
        *(
            Field(name=n, dtype=Float64, description=f"Latest {n[5:-3].replace('_', ' ')}, epoch seconds.")
            for n in LAST_SEEN
        ),
        *(_counter_field(n) for n in ENGAGEMENT_COUNTERS),
    ],
)


def stage_affinity_view(topics: Sequence[str] = TOPIC_IDS) -> FeatureView:
    """The stage_affinity view with one pair of topic columns per id of ``topics`` (vocabulary + other)."""
    return FeatureView(
        name="stage_affinity",
        entities=[contact],
        ttl=BEHAVIOUR_TTL,
        source=contact_engagement_source,
        online=True,
        description="Engagement per journey stage and per topic of the content consumed, decayed, as of "
        "as_of_ts.",
        schema=[_counter_field(n) for n in affinity_counters(topics)],
    )


stage_affinity_fv = stage_affinity_view(TOPIC_IDS)

PROFILE_STRINGS = (
    "account_id",
    "persona",
    "role",
    "seniority",
    "industry",
    "country",
    "language",
    "lead_status",
    "lifecycle_stage",
)
CONSENT_FEATURES = tuple(f"consent_{c.value}" for c in Channel)

contact_profile_fv = FeatureView(
    name="contact_profile",
    entities=[contact],
    ttl=NO_EXPIRY,
    source=contact_profile_source,
    online=True,
    description="Who the contact is: firmographics, persona, BANT, funnel position, consent per channel.",
    schema=[
        *(
            Field(name=n, dtype=String, description=f"Profile {n.replace('_', ' ')}.")
            for n in PROFILE_STRINGS
        ),
        Field(name="company_size", dtype=Int64, description="Employees of the contact's company."),
        Field(name="budget", dtype=Bool, description="BANT: budget confirmed."),
        Field(name="authority", dtype=Bool, description="BANT: the contact decides."),
        Field(name="need", dtype=Bool, description="BANT: need confirmed."),
        Field(name="timeline_months", dtype=Int64, description="BANT: months until the purchase."),
        *(Field(name=n, dtype=Bool, description=f"Opted in to {n[8:]} contact.") for n in CONSENT_FEATURES),
        Field(name="tracking_consent", dtype=Bool, description="Opted in to behaviour tracking."),
        Field(name="is_customer", dtype=Bool, description="Lead status is a customer status."),
        Field(
            name="fit_points",
            dtype=Float64,
            description="Explicit points of the classic score (features.points).",
        ),
    ],
)

CONTENT_STATS = ("sends", "opens", "clicks", "downloads", "consumptions")
CONTENT_RATES = ("open_rate", "click_rate", "download_rate")

content_stats_fv = FeatureView(
    name="content_stats",
    entities=[content],
    ttl=BEHAVIOUR_TTL,
    source=content_stats_source,
    online=True,
    description="How a content block performs: cumulative sends, opens, clicks, downloads, rates per send.",
    schema=[
        *(Field(name=n, dtype=Int64, description=f"Cumulative {n} of this block.") for n in CONTENT_STATS),
        *(
            Field(
                name=n,
                dtype=Float64,
                description=f"{n.split('_')[0].capitalize()}s per send (null: no sends).",
            )
            for n in CONTENT_RATES
        ),
    ],
)

account_engagement_fv = FeatureView(
    name="account_engagement",
    entities=[account],
    ttl=BEHAVIOUR_TTL,
    source=account_engagement_source,
    online=True,
    description="Account-based view: engagement summed over the company's contacts.",
    schema=[
        Field(
            name="account_as_of_ts", dtype=Float64, description="Latest event of the account, epoch seconds."
        ),
        Field(name="account_events_total", dtype=Int64, description="Events of all the account's contacts."),
        Field(name="account_contacts", dtype=Int64, description="Contacts of the account seen in events."),
        *(
            Field(
                name=f"account_engagement_{h}d",
                dtype=Float64,
                description=f"Engagement events of all contacts, {h}-day half-life, as of account_as_of_ts.",
            )
            for h in HALF_LIVES_DAYS
        ),
        Field(name="account_points", dtype=Float64, description="Behaviour points of all contacts, decayed."),
    ],
)

ALL_FEATURE_VIEWS = (
    contact_engagement_fv,
    stage_affinity_fv,
    contact_profile_fv,
    content_stats_fv,
    account_engagement_fv,
)


def feature_views(topics: Sequence[str] = TOPIC_IDS) -> tuple[FeatureView, ...]:
    """Every feature view, with the stage_affinity view built for ``topics``."""
    return tuple(stage_affinity_view(topics) if v is stage_affinity_fv else v for v in ALL_FEATURE_VIEWS)

"""A small real world for the decision-route tests: catalog, profiles and events in the embedded stores,
features built, applied and materialized in the real Feast repo (no mocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from features.event_store import open_settings_event_store
from features.schemas import (
    Channel,
    ConsentRecord,
    ContactProfile,
    ContentBlock,
    ContentFormat,
    EngagementEvent,
    EventType,
    LeadStatus,
)
from features.store import FeatureStoreService, events_frame
from ripen.settings import Settings

NOW = datetime.now(UTC)
CONSENT = {Channel.EMAIL: ConsentRecord(granted=True, at=NOW - timedelta(days=30))}

CATALOG = [
    ContentBlock(content_id="guide", title="Guide", format=ContentFormat.WHITEPAPER, stages=("awareness",)),
    ContentBlock(content_id="faq", title="FAQ", format=ContentFormat.CHECKLIST, stages=("awareness",)),
    ContentBlock(
        content_id="check", title="Checklist", format=ContentFormat.CHECKLIST, stages=("information",)
    ),
    ContentBlock(
        content_id="offer", title="Offer", format=ContentFormat.CONSULTATION_OFFER, stages=("closing",)
    ),
]
PROFILES = [
    ContactProfile(contact_id="c-ready", lifecycle_stage="awareness", consents=CONSENT),
    ContactProfile(contact_id="c-nocons", lifecycle_stage="awareness"),
    ContactProfile(
        contact_id="c-sql", lifecycle_stage="closing", lead_status=LeadStatus.SQL, consents=CONSENT
    ),
]


def world_events() -> list[EngagementEvent]:
    """c-ready consumed the guide 10 days ago (so it must never get it again)."""
    at = NOW - timedelta(days=10)
    return [
        EngagementEvent(
            event_id="w-1",
            contact_id="c-ready",
            timestamp=at,
            type=EventType.EMAIL_OPEN,
            channel=Channel.EMAIL,
            content_id="guide",
        ),
        EngagementEvent(
            event_id="w-2",
            contact_id="c-ready",
            timestamp=at + timedelta(minutes=1),
            type=EventType.CONTENT_DOWNLOAD,
            channel=Channel.EMAIL,
            content_id="guide",
        ),
    ]


def build_world(settings: Settings) -> None:
    """Fill the event store and the feature store of ``settings`` with the world above."""
    settings.ensure_dirs()
    store = open_settings_event_store(settings)
    try:
        store.upsert_content(CATALOG)
        store.upsert_profiles(PROFILES)
        store.append(world_events())
    finally:
        store.close()
    features = FeatureStoreService(settings)
    features.write_contents(CATALOG)
    features.build_offline(events_frame(world_events()), PROFILES)
    features.apply()
    features.materialize()

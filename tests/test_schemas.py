"""Domain schemas reject bad input with the field named and the reason given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from features.schemas import (
    DEFAULT_TAXONOMY,
    Channel,
    ConsentRecord,
    ContactProfile,
    ContentBlock,
    EngagementEvent,
    EventType,
    LeadStatus,
    Stage,
    StageTaxonomy,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e1",
        "contact_id": "c1",
        "timestamp": NOW.isoformat(),
        "type": "email_open",
    }
    base.update(overrides)
    return base


def test_valid_event_is_normalised_to_utc() -> None:
    cest = timezone(timedelta(hours=2))
    e = EngagementEvent.model_validate(event(timestamp=datetime(2026, 6, 1, 14, 0, tzinfo=cest)))
    assert e.timestamp == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert e.timestamp.tzinfo == UTC
    assert e.type is EventType.EMAIL_OPEN


@pytest.mark.parametrize(
    "overrides, field, match",
    [
        ({"type": "telepathy"}, "type", "Input should be"),
        ({"timestamp": "2026-11-01T12:00:00"}, "timestamp", "naive"),
        ({"contact_id": None}, "", "contact_id or anonymous_id is required"),
        ({"event_id": ""}, "event_id", "at least 1 character"),
        ({"event_id": "has space"}, "event_id", "pattern"),
        ({"channel": "carrier_pigeon"}, "channel", "Input should be"),
        ({"type": "identify"}, "", "needs both contact_id and anonymous_id"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_bad_events_name_the_field(overrides: dict[str, Any], field: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        EngagementEvent.model_validate(event(**overrides))
    locations = [".".join(str(p) for p in err["loc"]) for err in info.value.errors()]
    assert any(loc == field or (field == "" and loc == "") for loc in locations), locations


def test_anonymous_event_needs_no_contact() -> None:
    e = EngagementEvent.model_validate(event(contact_id=None, anonymous_id="cookie-42"))
    assert e.contact_id is None and e.anonymous_id == "cookie-42"


def test_properties_size_counts_compact_json_bytes() -> None:
    e = EngagementEvent.model_validate(event(properties={"a": "ü" * 10}))
    assert e.properties_size() == len('{"a":"') + 20 + len('"}')


def test_profile_consent_and_customer_flags() -> None:
    p = ContactProfile(
        contact_id="c1",
        lead_status=LeadStatus.ACTIVE,
        lifecycle_stage="retention",
        consents={
            Channel.EMAIL: ConsentRecord(granted=True, at=NOW),
            Channel.SMS: ConsentRecord(granted=False, at=NOW),
        },
    )
    assert p.is_customer
    assert p.has_consent(Channel.EMAIL)
    assert not p.has_consent(Channel.SMS)
    assert not p.has_consent(Channel.PUSH)


@pytest.mark.parametrize(
    "overrides, field, match",
    [
        ({"lifecycle_stage": "nirvana"}, "lifecycle_stage", "unknown stage 'nirvana'"),
        ({"company_size": 0}, "company_size", "greater than or equal to 1"),
        ({"country": "Germany"}, "country", "at most 2 characters"),
        ({"lead_status": "hot"}, "lead_status", "Input should be"),
        (
            {"consents": {"email": {"granted": True, "at": "2026-01-01T00:00:00"}}},
            "consents.email.at",
            "naive",
        ),
    ],
)
def test_bad_profiles_name_the_field(overrides: dict[str, Any], field: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        ContactProfile.model_validate({"contact_id": "c1", **overrides})
    assert field in [".".join(str(p) for p in err["loc"]) for err in info.value.errors()]


def block(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "content_id": "wp-1",
        "title": "Cloud security whitepaper",
        "format": "whitepaper",
        "stages": ["information"],
    }
    base.update(overrides)
    return base


def test_content_block_customer_program_flag() -> None:
    assert not ContentBlock.model_validate(block()).for_customers_only
    assert ContentBlock.model_validate(block(program="upsell", stages=["expansion"])).for_customers_only


@pytest.mark.parametrize(
    "overrides, field, match",
    [
        ({"stages": []}, "stages", "at least 1 item"),
        ({"stages": ["heaven"]}, "stages", "unknown stages"),
        ({"format": "podcast"}, "format", "Input should be"),
        ({"alternative_id": "wp-1"}, "", "alternative_id must name another block"),
        ({"title": ""}, "title", "at least 1 character"),
        ({"channels": []}, "channels", "at least 1 item"),
    ],
)
def test_bad_content_blocks_name_the_field(overrides: dict[str, Any], field: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        ContentBlock.model_validate(block(**overrides))
    assert field in [".".join(str(p) for p in err["loc"]) for err in info.value.errors()]


def test_default_taxonomy_order_labels_and_steps() -> None:
    assert DEFAULT_TAXONOMY.ids[:4] == ("awareness", "information", "consultation", "closing")
    assert DEFAULT_TAXONOMY.next("information") == "consultation"
    assert DEFAULT_TAXONOMY.next("reactivation") is None
    assert DEFAULT_TAXONOMY.label("consultation", "de") == "Beratung"
    assert DEFAULT_TAXONOMY.label("consultation", "en") == "Consultation"
    assert DEFAULT_TAXONOMY.stage_for_step("evaluate") == "consultation"
    with pytest.raises(KeyError, match="unknown stage 'x'"):
        DEFAULT_TAXONOMY.index("x")


def test_taxonomy_is_configurable_but_ids_unique() -> None:
    custom = StageTaxonomy(
        stages=(Stage(id="a", label_en="A", label_de="A"), Stage(id="b", label_en="B", label_de="B"))
    )
    assert custom.next("a") == "b"
    with pytest.raises(ValidationError, match="more than once"):
        StageTaxonomy(
            stages=(Stage(id="a", label_en="A", label_de="A"), Stage(id="a", label_en="A", label_de="A"))
        )

"""Every hard rule of nurturing, one table row each: the rule fires with the right reason, or lets through."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from features.schemas import Channel, ContentFormat, LeadStatus, Program
from models.context import (
    ActionKind,
    Candidate,
    ContactContext,
    ExclusionReason,
    GuardrailConfig,
    Touch,
)
from models.guardrails import apply_guardrails

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BLOCK = Candidate("wp-1", ContentFormat.WHITEPAPER, ("information",), channels=(Channel.EMAIL,))
CONTACT = ContactContext("c-1", stage="information", consents=frozenset({Channel.EMAIL}))


def run(ctx: ContactContext = CONTACT, block: Candidate = BLOCK, **kwargs: object):  # type: ignore[no-untyped-def]
    config = kwargs.pop("config", GuardrailConfig())
    return apply_guardrails(
        ctx, [block], channel=kwargs.pop("channel", Channel.EMAIL), now=NOW, config=config, **kwargs
    )


CANDIDATE_RULES = [
    # (name, contact, block, extra kwargs, expected reason or None when eligible)
    ("eligible baseline", CONTACT, BLOCK, {}, None),
    ("inactive block", CONTACT, replace(BLOCK, active=False), {}, ExclusionReason.INACTIVE),
    ("caller excluded", CONTACT, BLOCK, {"excluded_ids": {"wp-1"}}, ExclusionReason.EXCLUDED_BY_CALLER),
    ("no email consent", replace(CONTACT, consents=frozenset()), BLOCK, {}, ExclusionReason.NO_CONSENT),
    (
        "consent on another channel only",
        replace(CONTACT, consents=frozenset({Channel.SMS})),
        replace(BLOCK, channels=(Channel.EMAIL, Channel.SMS)),
        {},
        ExclusionReason.NO_CONSENT,
    ),
    ("block not on channel", CONTACT, BLOCK, {"channel": Channel.SMS}, ExclusionReason.CHANNEL_NOT_SUPPORTED),
    ("stage mismatch", replace(CONTACT, stage="awareness"), BLOCK, {}, ExclusionReason.STAGE_MISMATCH),
    (
        "next stage allowed when configured",
        replace(CONTACT, stage="awareness"),
        BLOCK,
        {"config": GuardrailConfig(allow_next_stage=True)},
        None,
    ),
    (
        "two stages ahead never",
        replace(CONTACT, stage="awareness"),
        replace(BLOCK, stages=("consultation",)),
        {"config": GuardrailConfig(allow_next_stage=True)},
        ExclusionReason.STAGE_MISMATCH,
    ),
    (
        "consumed",
        replace(CONTACT, consumed_ids=frozenset({"wp-1"})),
        BLOCK,
        {},
        ExclusionReason.ALREADY_CONSUMED,
    ),
    (
        "sent, not consumed, has alternative: reminder uses the alternative",
        replace(CONTACT, sent_ids=frozenset({"wp-1"})),
        replace(BLOCK, alternative_id="wp-1b"),
        {},
        ExclusionReason.REMINDER_USES_ALTERNATIVE,
    ),
    (
        "the declared alternative itself stays eligible in the reminder loop",
        replace(CONTACT, sent_ids=frozenset({"wp-1"})),
        replace(BLOCK, content_id="wp-1b"),
        {},
        None,
    ),
    (
        "prerequisite not consumed",
        CONTACT,
        replace(BLOCK, prerequisite_id="blog-0"),
        {},
        ExclusionReason.PREREQUISITE_MISSING,
    ),
    (
        "prerequisite consumed",
        replace(CONTACT, consumed_ids=frozenset({"blog-0"})),
        replace(BLOCK, prerequisite_id="blog-0"),
        {},
        None,
    ),
    (
        "customer program for a lead",
        replace(CONTACT, stage="expansion"),
        replace(BLOCK, stages=("expansion",), program=Program.UPSELL, format=ContentFormat.UPSELL_OFFER),
        {},
        ExclusionReason.CUSTOMERS_ONLY,
    ),
    (
        "customer program for a customer",
        replace(CONTACT, stage="expansion", lead_status=LeadStatus.ACTIVE),
        replace(BLOCK, stages=("expansion",), program=Program.UPSELL, format=ContentFormat.UPSELL_OFFER),
        {},
        None,
    ),
]


@pytest.mark.parametrize(
    "contact, block, kwargs, expected",
    [row[1:] for row in CANDIDATE_RULES],
    ids=[row[0] for row in CANDIDATE_RULES],
)
def test_candidate_rule(
    contact: ContactContext, block: Candidate, kwargs: dict[str, object], expected: ExclusionReason | None
) -> None:
    outcome = run(contact, block, **kwargs)
    if expected is None:
        assert outcome.action is ActionKind.CONTENT
        assert outcome.eligible_ids == (block.content_id,)
        assert outcome.exclusions == ()
    else:
        assert outcome.action is ActionKind.NOTHING_ELIGIBLE
        assert [e.reason for e in outcome.exclusions] == [expected]
        assert outcome.exclusions[0].content_id == block.content_id
        assert outcome.reason


@pytest.mark.parametrize(
    "contact, expected",
    [
        (replace(CONTACT, demo_requested=True), ActionKind.HANDOFF_TO_SALES),
        (replace(CONTACT, lead_status=LeadStatus.MQL, readiness=0.85), ActionKind.HANDOFF_TO_SALES),
        (replace(CONTACT, lead_status=LeadStatus.SQL, readiness=0.8), ActionKind.HANDOFF_TO_SALES),
        (replace(CONTACT, lead_status=LeadStatus.LEAD, readiness=0.95), ActionKind.CONTENT),
        (replace(CONTACT, lead_status=LeadStatus.MQL, readiness=0.79), ActionKind.CONTENT),
    ],
    ids=["demo request", "mql over threshold", "sql at threshold", "lead below mql", "mql under threshold"],
)
def test_sales_fast_lane(contact: ContactContext, expected: ActionKind) -> None:
    outcome = run(contact)
    assert outcome.action is expected
    if expected is ActionKind.HANDOFF_TO_SALES:
        assert outcome.eligible == ()
        assert outcome.reason and ("readiness" in outcome.reason or "demo" in outcome.reason)


@pytest.mark.parametrize(
    "touch_ages_hours, stage_waits, expected_until",
    [
        ((), {}, None),
        ((24,), {}, NOW - timedelta(hours=24) + timedelta(days=3)),
        ((24,), {"information": timedelta(hours=12)}, None),
        ((80,), {}, None),
        # cap of 3 in 7 days: the oldest of the three leaves the window at 150h + 7d - ... from now
        ((150, 120, 90), {"information": timedelta(hours=1)}, NOW - timedelta(hours=150) + timedelta(days=7)),
        ((200, 120, 90), {"information": timedelta(hours=1)}, None),
    ],
    ids=[
        "never touched",
        "waiting period",
        "short wait per stage",
        "wait over",
        "frequency cap",
        "old touch",
    ],
)
def test_waiting_period_and_frequency_cap(
    touch_ages_hours: tuple[int, ...], stage_waits: dict[str, timedelta], expected_until: datetime | None
) -> None:
    touches = tuple(Touch(NOW - timedelta(hours=h), "information") for h in touch_ages_hours)
    outcome = run(replace(CONTACT, touches=touches), config=GuardrailConfig(wait_by_stage=stage_waits))
    if expected_until is None:
        assert outcome.action is ActionKind.CONTENT
    else:
        assert outcome.action is ActionKind.WAIT
        assert outcome.wait_until == expected_until
        assert outcome.eligible == ()


def test_retention_first_for_churn_risk_customers() -> None:
    customer = ContactContext(
        "c-2",
        stage="retention",
        lead_status=LeadStatus.AT_RISK,
        consents=frozenset({Channel.EMAIL}),
        churn_risk=0.7,
    )
    retention = Candidate("care-1", ContentFormat.CHECKLIST, ("retention",), program=Program.RETENTION)
    other = Candidate("news-1", ContentFormat.NEWSLETTER, ("retention",), program=Program.NURTURE)
    at_risk = apply_guardrails(customer, [other, retention], channel=Channel.EMAIL, now=NOW)
    assert at_risk.eligible_ids == ("care-1",)
    assert [(e.content_id, e.reason) for e in at_risk.exclusions] == [
        ("news-1", ExclusionReason.RETENTION_FIRST)
    ]
    calm = apply_guardrails(
        replace(customer, churn_risk=0.2), [other, retention], channel=Channel.EMAIL, now=NOW
    )
    assert calm.eligible_ids == ("news-1", "care-1")


def test_each_candidate_reports_its_own_reason() -> None:
    blocks = [
        BLOCK,
        replace(BLOCK, content_id="old", active=False),
        replace(BLOCK, content_id="aw", stages=("awareness",)),
    ]
    outcome = apply_guardrails(CONTACT, blocks, channel=Channel.EMAIL, now=NOW)
    assert outcome.eligible_ids == ("wp-1",)
    assert {e.content_id: e.reason for e in outcome.exclusions} == {
        "old": ExclusionReason.INACTIVE,
        "aw": ExclusionReason.STAGE_MISMATCH,
    }


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"readiness_threshold": 1.5}, "readiness_threshold"),
        ({"churn_threshold": -0.1}, "churn_threshold"),
        ({"max_touches": 0}, "max_touches"),
        ({"wait_by_stage": {"nowhere": timedelta(days=1)}}, "wait_by_stage"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GuardrailConfig(**kwargs)  # type: ignore[arg-type]


def test_naive_now_and_bad_scores_are_rejected() -> None:
    with pytest.raises(ValueError, match="now"):
        apply_guardrails(CONTACT, [BLOCK], channel=Channel.EMAIL, now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="readiness"):
        replace(CONTACT, readiness=1.2)

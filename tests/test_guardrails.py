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


def random_world(seed: int) -> tuple[list[ContactContext], list[Candidate], list[set[str]]]:
    """Contacts and blocks drawn so that every rule fires somewhere."""
    import random

    rnd = random.Random(seed)
    stages = ["awareness", "information", "consultation", "retention", "expansion"]
    programs = [Program.NURTURE, Program.NURTURE, Program.RETENTION, Program.UPSELL]
    blocks = []
    for j in range(30):
        blocks.append(
            Candidate(
                f"b{j}",
                rnd.choice(list(ContentFormat)),
                tuple(rnd.sample(stages, rnd.randint(1, 2))),
                channels=tuple(rnd.sample([Channel.EMAIL, Channel.SMS, Channel.WEB], rnd.randint(1, 2))),
                program=rnd.choice(programs),
                prerequisite_id=f"b{rnd.randrange(30)}" if rnd.random() < 0.2 else None,
                alternative_id=f"b{rnd.randrange(30)}" if rnd.random() < 0.3 else None,
                active=rnd.random() > 0.1,
            )
        )
    blocks = [b if b.prerequisite_id != b.content_id else replace(b, prerequisite_id=None) for b in blocks]
    contacts, excluded = [], []
    for i in range(200):
        contacts.append(
            ContactContext(
                f"c{i}",
                stage=rnd.choice(stages),
                lead_status=rnd.choice(list(LeadStatus)),
                consents=frozenset(rnd.sample([Channel.EMAIL, Channel.SMS], rnd.randint(0, 2))),
                consumed_ids=frozenset(f"b{rnd.randrange(30)}" for _ in range(rnd.randint(0, 5))),
                sent_ids=frozenset(f"b{rnd.randrange(30)}" for _ in range(rnd.randint(0, 5))),
                touches=tuple(
                    Touch(NOW - timedelta(hours=rnd.randint(1, 400)), rnd.choice(stages))
                    for _ in range(rnd.randint(0, 2))
                ),
                readiness=rnd.random(),
                churn_risk=rnd.random(),
                demo_requested=rnd.random() < 0.05,
            )
        )
        excluded.append({f"b{rnd.randrange(30)}"} if rnd.random() < 0.3 else set())
    return contacts, blocks, excluded


@pytest.mark.parametrize("allow_next, seed", [(False, 0), (True, 1), (False, 2), (True, 3)])
def test_batch_guardrails_equal_the_per_contact_rules(allow_next: bool, seed: int) -> None:
    from models.guardrails_batch import guardrails_batch

    config = GuardrailConfig(allow_next_stage=allow_next, wait_by_stage={"awareness": timedelta(hours=2)})
    contacts, blocks, excluded = random_world(seed)
    outcomes, mask = guardrails_batch(
        contacts, blocks, channel=Channel.EMAIL, now=NOW, config=config, excluded_ids=excluded
    )
    seen_reasons = set()
    for i, ctx in enumerate(contacts):
        expected = apply_guardrails(
            ctx, blocks, channel=Channel.EMAIL, now=NOW, config=config, excluded_ids=excluded[i]
        )
        assert outcomes[i] == expected, ctx.contact_id
        assert [b.content_id for b, m in zip(blocks, mask[i], strict=True) if m] == list(
            expected.eligible_ids
        )
        seen_reasons |= {e.reason for e in expected.exclusions}
    assert seen_reasons == set(ExclusionReason)  # every rule fired somewhere in this world
    assert {o.action for o in outcomes} == set(ActionKind)

"""Typed inputs and outputs of a content decision: who the contact is, what may be sent, what was decided.

These dataclasses travel between the guardrails, the policy, serving and the batch path, so no module passes
stringly-typed dicts around. They hold values only; no I/O and no learned state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from features.schemas import (
    CUSTOMER_STATUSES,
    DEFAULT_TAXONOMY,
    Channel,
    ContactProfile,
    ContentBlock,
    ContentFormat,
    LeadStatus,
    Program,
    StageTaxonomy,
)


class ActionKind(StrEnum):
    """What a decision tells the journey engine to do."""

    CONTENT = "content"
    WAIT = "wait"
    HANDOFF_TO_SALES = "handoff_to_sales"
    NOTHING_ELIGIBLE = "nothing_eligible"


class ExclusionReason(StrEnum):
    """Why a guardrail removed a candidate (reported with every decision)."""

    INACTIVE = "inactive"
    EXCLUDED_BY_CALLER = "excluded_by_caller"
    NO_CONSENT = "no_consent"
    CHANNEL_NOT_SUPPORTED = "channel_not_supported"
    CUSTOMERS_ONLY = "customers_only"
    STAGE_MISMATCH = "stage_mismatch"
    ALREADY_CONSUMED = "already_consumed"
    REMINDER_USES_ALTERNATIVE = "reminder_uses_alternative"
    PREREQUISITE_MISSING = "prerequisite_missing"
    RETENTION_FIRST = "retention_first"


@dataclass(frozen=True)
class Touch:
    """One content block sent to the contact: when, and in which journey stage the contact was then."""

    at: datetime
    stage: str
    content_id: str | None = None


@dataclass(frozen=True)
class ContactContext:
    """What the guardrails and the policy know about one contact at decision time.

    ``features`` is the numeric feature vector from the feature store (same length for every contact of a
    batch); ``readiness`` and ``churn_risk`` are the scorers' probabilities in [0, 1].
    """

    contact_id: str
    stage: str
    lead_status: LeadStatus = LeadStatus.LEAD
    consents: frozenset[Channel] = frozenset()
    consumed_ids: frozenset[str] = frozenset()
    sent_ids: frozenset[str] = frozenset()
    touches: tuple[Touch, ...] = ()
    readiness: float = 0.0
    churn_risk: float = 0.0
    demo_requested: bool = False
    persona: str | None = None
    features: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("readiness", "churn_risk"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], but got {value}")

    @property
    def is_customer(self) -> bool:
        return self.lead_status in CUSTOMER_STATUSES

    def last_touch(self, stage: str | None = None) -> Touch | None:
        """The most recent touch, overall or in ``stage``."""
        touches = [t for t in self.touches if stage is None or t.stage == stage]
        return max(touches, key=lambda t: t.at) if touches else None

    @classmethod
    def from_profile(
        cls,
        profile: ContactProfile,
        *,
        consumed_ids: frozenset[str] = frozenset(),
        sent_ids: frozenset[str] = frozenset(),
        touches: tuple[Touch, ...] = (),
        readiness: float = 0.0,
        churn_risk: float = 0.0,
        demo_requested: bool = False,
        features: tuple[float, ...] = (),
    ) -> ContactContext:
        """Build the context from a stored profile plus what the feature store and scorers said."""
        return cls(
            contact_id=profile.contact_id,
            stage=profile.lifecycle_stage,
            lead_status=profile.lead_status,
            consents=frozenset(ch for ch in profile.consents if profile.has_consent(ch)),
            consumed_ids=consumed_ids,
            sent_ids=sent_ids,
            touches=touches,
            readiness=readiness,
            churn_risk=churn_risk,
            demo_requested=demo_requested,
            persona=profile.persona,
            features=features,
        )


@dataclass(frozen=True)
class Candidate:
    """A content block as the guardrails and the policy see it."""

    content_id: str
    format: ContentFormat
    stages: tuple[str, ...]
    channels: tuple[Channel, ...] = (Channel.EMAIL,)
    program: Program = Program.NURTURE
    topics: tuple[str, ...] = ()
    personas: tuple[str, ...] = ()
    gated: bool = False
    prerequisite_id: str | None = None
    alternative_id: str | None = None
    active: bool = True

    @property
    def for_customers_only(self) -> bool:
        return self.program is not Program.NURTURE

    @classmethod
    def from_block(cls, block: ContentBlock) -> Candidate:
        return cls(
            content_id=block.content_id,
            format=block.format,
            stages=block.stages,
            channels=block.channels,
            program=block.program,
            topics=block.topics,
            personas=block.personas,
            gated=block.gated,
            prerequisite_id=block.prerequisite_id,
            alternative_id=block.alternative_id,
            active=block.active,
        )


RETENTION_PROGRAMS = frozenset({Program.RETENTION, Program.CUSTOMER_CARE})
HANDOFF_STATUSES = frozenset({LeadStatus.MQL, LeadStatus.SAL, LeadStatus.SQL})


@dataclass(frozen=True)
class GuardrailConfig:
    """The knobs of the hard rules; defaults follow the nurture practice in DESIGN.md."""

    taxonomy: StageTaxonomy = DEFAULT_TAXONOMY
    allow_next_stage: bool = False
    readiness_threshold: float = 0.8
    handoff_statuses: frozenset[LeadStatus] = HANDOFF_STATUSES
    churn_threshold: float = 0.6
    retention_programs: frozenset[Program] = RETENTION_PROGRAMS
    default_wait: timedelta = timedelta(days=3)
    wait_by_stage: Mapping[str, timedelta] = field(default_factory=dict)
    max_touches: int = 3
    cap_window: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        for name in ("readiness_threshold", "churn_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], but got {value}")
        if self.max_touches < 1:
            raise ValueError(f"`max_touches` must be >= 1, but got {self.max_touches}")
        for name in ("default_wait", "cap_window"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"`{name}` must not be negative, but got {getattr(self, name)}")
        unknown = [s for s in self.wait_by_stage if s not in self.taxonomy.ids]
        if unknown:
            raise ValueError(f"`wait_by_stage` names unknown stages {unknown}")

    def wait_for(self, stage: str) -> timedelta:
        """The waiting period after a touch in ``stage``."""
        return self.wait_by_stage.get(stage, self.default_wait)


@dataclass(frozen=True)
class Exclusion:
    """One candidate a guardrail removed, and why (``detail`` is for people, ``reason`` for machines)."""

    content_id: str
    reason: ExclusionReason
    detail: str


@dataclass(frozen=True)
class GuardrailOutcome:
    """What the hard rules left: either a contact-level action (wait, handoff) or the eligible candidates."""

    action: ActionKind
    eligible: tuple[Candidate, ...] = ()
    exclusions: tuple[Exclusion, ...] = ()
    wait_until: datetime | None = None
    reason: str | None = None

    @property
    def eligible_ids(self) -> tuple[str, ...]:
        return tuple(c.content_id for c in self.eligible)


@dataclass(frozen=True)
class RankedAlternative:
    """A further slot of a multi-slot answer: content id and its score under the reward model."""

    content_id: str
    score: float


@dataclass(frozen=True)
class Decision:
    """The answer for one contact: an action, the chosen block with its exact probability, and why."""

    event_id: str
    contact_id: str
    decided_at: datetime
    action: ActionKind
    policy_version: str
    content_id: str | None = None
    probability: float | None = None
    alternatives: tuple[RankedAlternative, ...] = ()
    eligible_probabilities: Mapping[str, float] = field(default_factory=dict)
    exclusions: tuple[Exclusion, ...] = ()
    wait_until: datetime | None = None
    reason: str | None = None

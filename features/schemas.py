"""Domain schemas shared by every part of ripen: engagement events, contact profiles, content blocks, stages.

These pydantic models are the edge of the system: anything that enters ripen (API, files, simulator) passes
through them, so an invalid value fails here with the field named and the reason given. The column-level
documentation lives in ``docs/schemas.md``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]


class EventType(StrEnum):
    """Engagement events a journey engine, website or CRM reports (DESIGN.md, "Engagement events")."""

    PAGE_VIEW = "page_view"
    EMAIL_SENT = "email_sent"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    CONTENT_DOWNLOAD = "content_download"
    FORM_SUBMIT = "form_submit"
    WEBINAR_REGISTER = "webinar_register"
    WEBINAR_ATTEND = "webinar_attend"
    WORKSHOP = "workshop"
    DEMO_REQUEST = "demo_request"
    CONTACT_REQUEST = "contact_request"
    SOCIAL_ENGAGEMENT = "social_engagement"
    UNSUBSCRIBE = "unsubscribe"
    PURCHASE = "purchase"
    RENEWAL = "renewal"
    CANCELLATION = "cancellation"
    SUPPORT_TICKET = "support_ticket"
    PRODUCT_USAGE = "product_usage"
    IDENTIFY = "identify"
    STATUS_CHANGE = "status_change"
    STAGE_CHANGE = "stage_change"
    OPPORTUNITY_OPEN = "opportunity_open"


class Channel(StrEnum):
    """Channels content can be delivered through; consent is tracked per channel."""

    EMAIL = "email"
    WEB = "web"
    SMS = "sms"
    PUSH = "push"
    SOCIAL = "social"
    IN_APP = "in_app"
    DIRECT_MAIL = "direct_mail"
    PHONE = "phone"


class LeadStatus(StrEnum):
    """Lead funnel (lead → MQL → SAL → SQL → won/lost) and customer states (active → at risk → churned)."""

    LEAD = "lead"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    WON = "won"
    LOST = "lost"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"


CUSTOMER_STATUSES = frozenset({LeadStatus.WON, LeadStatus.ACTIVE, LeadStatus.AT_RISK, LeadStatus.CHURNED})
LEAD_STATUS_ORDER = (LeadStatus.LEAD, LeadStatus.MQL, LeadStatus.SAL, LeadStatus.SQL, LeadStatus.WON)


class ContentFormat(StrEnum):
    """Formats of a content block (DESIGN.md, "Content blocks")."""

    WHITEPAPER = "whitepaper"
    EBOOK = "ebook"
    CHECKLIST = "checklist"
    CASE_STUDY = "case_study"
    WEBINAR = "webinar"
    WORKSHOP = "workshop"
    NEWSLETTER = "newsletter"
    BLOG = "blog"
    VIDEO = "video"
    CONSULTATION_OFFER = "consultation_offer"
    ONBOARDING_GUIDE = "onboarding_guide"
    UPSELL_OFFER = "upsell_offer"
    CROSS_SELL_OFFER = "cross_sell_offer"
    FEEDBACK_SURVEY = "feedback_survey"


class Program(StrEnum):
    """Nurture programs; everything but ``nurture`` is an existing-customer program, only for customers."""

    NURTURE = "nurture"
    UPSELL = "upsell"
    CROSS_SELL = "cross_sell"
    REPURCHASE = "repurchase"
    CUSTOMER_CARE = "customer_care"
    EVENT_FOLLOWUP = "event_followup"
    PROFILE_BUILDING = "profile_building"
    RETENTION = "retention"


CUSTOMER_PROGRAMS = frozenset(Program) - {Program.NURTURE}


class Stage(BaseModel):
    """One journey stage of the taxonomy, with the buying-journey steps that map onto it."""

    model_config = ConfigDict(frozen=True)

    id: Id
    label_en: str
    label_de: str
    customer: bool = Field(default=False, description="True for stages only customers are in.")
    steps: tuple[str, ...] = ()


class StageTaxonomy(BaseModel):
    """An ordered, configurable list of journey stages; ids are the English keys used everywhere."""

    model_config = ConfigDict(frozen=True)

    stages: tuple[Stage, ...]

    @field_validator("stages")
    @classmethod
    def _unique_ids(cls, stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
        ids = [s.id for s in stages]
        if not ids:
            raise ValueError("a taxonomy needs at least one stage")
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"stage ids must be unique, but {duplicates} appear more than once")
        return stages

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.stages)

    def index(self, stage_id: str) -> int:
        """Position of a stage in the journey; raises ``KeyError`` naming the unknown id."""
        try:
            return self.ids.index(stage_id)
        except ValueError:
            raise KeyError(f"unknown stage {stage_id!r}; known stages: {', '.join(self.ids)}") from None

    def next(self, stage_id: str) -> str | None:
        """The stage after ``stage_id``, or None at the end of the journey."""
        i = self.index(stage_id)
        return self.ids[i + 1] if i + 1 < len(self.ids) else None

    def label(self, stage_id: str, language: str = "en") -> str:
        stage = self.stages[self.index(stage_id)]
        return stage.label_de if language.startswith("de") else stage.label_en

    def stage_for_step(self, step: str) -> str:
        """Map a finer buying-journey step (inform, enable, evaluate, assess, buy) to its stage."""
        for stage in self.stages:
            if step in stage.steps:
                return stage.id
        raise KeyError(f"unknown journey step {step!r}")


DEFAULT_TAXONOMY = StageTaxonomy(
    stages=(
        Stage(id="awareness", label_en="Awareness", label_de="Aufmerksamkeit", steps=("inform",)),
        Stage(id="information", label_en="Information", label_de="Information", steps=("enable",)),
        Stage(id="consultation", label_en="Consultation", label_de="Beratung", steps=("evaluate", "assess")),
        Stage(id="closing", label_en="Closing", label_de="Abschluss", steps=("buy",)),
        Stage(id="onboarding", label_en="Onboarding", label_de="Onboarding", customer=True),
        Stage(id="retention", label_en="Retention", label_de="Kundenbindung", customer=True),
        Stage(
            id="expansion",
            label_en="Expansion (up-/cross-sell)",
            label_de="Ausbau (Up-/Cross-Selling)",
            customer=True,
        ),
        Stage(id="churn", label_en="Churn (feedback)", label_de="Kündigung (Feedback)", customer=True),
        Stage(id="reactivation", label_en="Reactivation", label_de="Reaktivierung"),
    )
)
STAGE_IDS = DEFAULT_TAXONOMY.ids


def _require_utc(value: datetime, info: ValidationInfo) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{info.field_name} must be timezone-aware (UTC), but got a naive timestamp {value}")
    return value.astimezone(UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"must be timezone-aware (UTC), but got a naive timestamp {value}")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class EngagementEvent(BaseModel):
    """One thing a contact (or an anonymous visitor) did, or that happened to them.

    ``event_id`` makes ingestion idempotent. ``contact_id`` or ``anonymous_id`` is required; an ``identify``
    event carries both and links them. Timestamps are UTC; how far in the future one may lie is checked by the
    store against its clock (``Settings.max_clock_skew_seconds``), not here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    contact_id: Id | None = None
    anonymous_id: Id | None = None
    account_id: Id | None = None
    timestamp: UtcDatetime
    type: EventType
    content_id: Id | None = None
    channel: Channel | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _identity(self) -> EngagementEvent:
        if self.contact_id is None and self.anonymous_id is None:
            raise ValueError("contact_id or anonymous_id is required (both are missing)")
        if self.type is EventType.IDENTIFY and (self.contact_id is None or self.anonymous_id is None):
            raise ValueError("an identify event needs both contact_id and anonymous_id")
        return self

    def properties_size(self) -> int:
        """Size of ``properties`` as compact JSON, in bytes (the store caps it)."""
        return len(
            json.dumps(self.properties, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        )


class ConsentRecord(BaseModel):
    """Whether a contact opted in, and when that was last said."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granted: bool
    at: UtcDatetime


class ContactProfile(BaseModel):
    """What is known about a contact: firmographics, persona, funnel position, consent, BANT."""

    model_config = ConfigDict(extra="forbid")

    contact_id: Id
    account_id: Id | None = None
    persona: str | None = Field(default=None, max_length=64)
    role: str | None = Field(default=None, max_length=128)
    seniority: str | None = Field(default=None, max_length=64)
    industry: str | None = Field(default=None, max_length=64)
    company_size: int | None = Field(default=None, ge=1, le=10_000_000)
    country: str | None = Field(default=None, min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    language: str = Field(default="en", min_length=2, max_length=5)
    lead_status: LeadStatus = LeadStatus.LEAD
    lifecycle_stage: str = "awareness"
    consents: dict[Channel, ConsentRecord] = Field(default_factory=dict)
    tracking_consent: ConsentRecord | None = None
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None
    timeline_months: int | None = Field(default=None, ge=0, le=120)
    updated_at: UtcDatetime | None = None

    @field_validator("lifecycle_stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        if value not in STAGE_IDS:
            raise ValueError(f"unknown stage {value!r}; known stages: {', '.join(STAGE_IDS)}")
        return value

    @property
    def is_customer(self) -> bool:
        return self.lead_status in CUSTOMER_STATUSES

    def has_consent(self, channel: Channel) -> bool:
        record = self.consents.get(channel)
        return record is not None and record.granted


class ContentBlock(BaseModel):
    """A piece of content a nurture program can send, with what it fits and how it loops."""

    model_config = ConfigDict(extra="forbid")

    content_id: Id
    title: str = Field(min_length=1, max_length=300)
    format: ContentFormat
    stages: tuple[str, ...] = Field(min_length=1)
    topics: tuple[str, ...] = ()
    personas: tuple[str, ...] = Field(default=(), description="Empty means every persona.")
    gated: bool = False
    channels: tuple[Channel, ...] = Field(default=(Channel.EMAIL,), min_length=1)
    language: str = Field(default="en", min_length=2, max_length=5)
    program: Program = Program.NURTURE
    prerequisite_id: Id | None = None
    alternative_id: Id | None = None
    active: bool = True

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in STAGE_IDS]
        if unknown:
            raise ValueError(f"unknown stages {unknown}; known stages: {', '.join(STAGE_IDS)}")
        return value

    @model_validator(mode="after")
    def _no_self_reference(self) -> ContentBlock:
        for name in ("prerequisite_id", "alternative_id"):
            if getattr(self, name) == self.content_id:
                raise ValueError(f"{name} must name another block, not the block itself")
        return self

    @property
    def for_customers_only(self) -> bool:
        return self.program in CUSTOMER_PROGRAMS


# Event types that count as consuming a content block (no repeats of consumed content).
CONSUMPTION_EVENTS = frozenset(
    {
        EventType.EMAIL_CLICK,
        EventType.CONTENT_DOWNLOAD,
        EventType.WEBINAR_ATTEND,
        EventType.WORKSHOP,
        EventType.PAGE_VIEW,
    }
)

"""Request and response bodies of the decision routes: recommend, rewards, contact insight and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from features.schemas import STAGE_IDS, Channel, Id
from serving.schemas import StageName

_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[A-Za-z0-9_.:@\-]+$"}
OptionalId = Annotated[Id | None, WithJsonSchema(_ID_SCHEMA)]
"""An id that may be left out, but not sent as null (so the schema can say "exactly one of")."""

ActionName = Literal["content", "wait", "handoff_to_sales", "nothing_eligible"]


class RecommendRequest(BaseModel):
    """Who to decide for (a known contact id or an anonymous id), on which channel, among which blocks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"contact_id": "c-1", "channel": "email", "n_slots": 3, "explain": False},
            ],
            "oneOf": [{"required": ["contact_id"]}, {"required": ["anonymous_id"]}],
        },
    )

    contact_id: OptionalId = None
    anonymous_id: OptionalId = None
    channel: Channel
    stage: StageName | None = Field(default=None, description="Overrides the stage stored for the contact.")
    candidate_ids: list[Id] | None = Field(
        default=None, max_length=500, description="Decide only among these blocks (default: whole catalog)."
    )
    excluded_ids: list[Id] = Field(default_factory=list, max_length=500)
    n_slots: int = Field(default=1, ge=1, le=20, description="Chosen block plus ranked alternatives.")
    explain: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_null_ids(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("contact_id", "anonymous_id"):
                if name in data and data[name] is None:
                    raise ValueError(f"`{name}` must be an id when given, not null")
        return data

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str | None) -> str | None:
        if value is not None and value not in STAGE_IDS:
            raise ValueError(f"unknown stage {value!r}; known stages: {', '.join(STAGE_IDS)}")
        return value

    @model_validator(mode="after")
    def _one_identity(self) -> RecommendRequest:
        if (self.contact_id is None) == (self.anonymous_id is None):
            raise ValueError("exactly one of `contact_id` and `anonymous_id` must be given")
        return self


class Alternative(BaseModel):
    content_id: str
    score: float


class GuardrailReason(BaseModel):
    """A candidate a hard rule removed, with the reason code and a sentence for people."""

    content_id: str
    reason: str
    detail: str


class ModelVersions(BaseModel):
    """Versions that made the decision; ``points`` / ``cold_start`` name the fallbacks."""

    readiness: str
    churn: str
    policy: str


class RecommendResponse(BaseModel):
    """The decision: what to do, with which probability, and why."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "4f1c2d9e-0b7a-4c55-9d7e-2a1b3c4d5e6f",
                    "contact_id": "c-1",
                    "action": "content",
                    "content_id": "wp-cloud-guide",
                    "probability": 0.82,
                    "alternatives": [{"content_id": "cs-migration", "score": 0.41}],
                    "readiness": 0.34,
                    "churn_risk": 0.05,
                    "guardrail_reasons": [
                        {
                            "content_id": "offer",
                            "reason": "stage_mismatch",
                            "detail": "fits closing, not awareness",
                        }
                    ],
                    "versions": {
                        "readiness": "ripen-readiness/3",
                        "churn": "ripen-churn/2",
                        "policy": "ripen-policy/4",
                    },
                    "cold_start": False,
                    "degraded": False,
                }
            ]
        }
    )

    event_id: str
    contact_id: str
    action: ActionName
    content_id: str | None = None
    probability: float | None = Field(default=None, description="Exact probability the policy chose it.")
    next_eligible_at: datetime | None = Field(default=None, description="Set when the action is `wait`.")
    alternatives: list[Alternative] = Field(default_factory=list)
    readiness: float = Field(ge=0, le=1)
    churn_risk: float = Field(ge=0, le=1)
    guardrail_reasons: list[GuardrailReason] = Field(default_factory=list)
    reason: str | None = None
    versions: ModelVersions
    cold_start: bool = Field(description="No stored engagement for the contact: a cold-start decision.")
    degraded: bool = Field(description="The online store was unreachable: a safe fallback decided.")
    explanation: list[str] | None = None


class RewardRequest(BaseModel):
    """An explicit reward for a logged decision (overrides a joined one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reward": 1.0}]})

    reward: float = Field(ge=-1000, le=1000, allow_inf_nan=False)
    observed_at: datetime | None = Field(default=None, description="When it happened; now when omitted.")


class RewardResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"event_id": "4f1c2d9e-0b7a-4c55-9d7e-2a1b3c4d5e6f", "status": "stored"}]
        }
    )

    event_id: str
    status: Literal["stored", "replaced", "unchanged", "superseded"]


class Factor(BaseModel):
    """One feature's signed push on a score, with a sentence for people."""

    feature: str
    value: float | bool | str | None = Field(default=None, description="The contact's value of the feature.")
    contribution: float = Field(description="Signed push on the score, in the ScoreInsight's `unit`.")
    direction: Literal["up", "down"] = Field(description="`up` raises the score, `down` lowers it.")
    sentence: str


class ScoreInsight(BaseModel):
    """A score with its top factors.

    With a model (``unit`` ``log_odds``): ``base_margin`` + the factors' contributions +
    ``other_contribution`` = ``margin``, the model's raw log-odds (exact TreeSHAP); ``probability`` is the
    calibrated score of that margin. With the points fallback (``unit`` ``points``) the factors are the fit
    and behaviour points.
    """

    probability: float = Field(ge=0, le=1)
    model_version: str
    unit: Literal["log_odds", "points"] = "points"
    factors: list[Factor] = Field(default_factory=list)
    base_rate: float | None = Field(default=None, description="Positive rate in the model's training data.")
    base_margin: float | None = Field(default=None, description="Expected log-odds (SHAP base value).")
    other_contribution: float | None = Field(
        default=None, description="Sum of the contributions of the features not listed in `factors`."
    )
    margin: float | None = Field(default=None, description="The model's raw log-odds for this contact.")
    hint: str | None = Field(
        default=None,
        description="What one more event of the most helpful kind would do to the score, by the model.",
    )


class TimelineEntry(BaseModel):
    timestamp: datetime
    type: str
    channel: str
    content_id: str | None = None


class ContactInsight(BaseModel):
    """What a sales rep needs: scores with reasons, status, recent engagement and the next action."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "contact_id": "c-1",
                    "language": "en",
                    "readiness": {
                        "probability": 0.71,
                        "model_version": "ripen-readiness/3",
                        "unit": "log_odds",
                        "factors": [
                            {
                                "feature": "content_download_30d_now",
                                "value": 2.4,
                                "contribution": 0.93,
                                "direction": "up",
                                "sentence": "2.4 content downloads, weighted to the last month",
                            },
                            {
                                "feature": "days_since_last_touch",
                                "value": 12,
                                "contribution": -0.31,
                                "direction": "down",
                                "sentence": "last activity 12 days ago",
                            },
                        ],
                        "base_rate": 0.18,
                        "base_margin": -0.2,
                        "other_contribution": 0.05,
                        "margin": 0.47,
                        "hint": "One more demo request would raise readiness to 83% (model estimate)",
                    },
                    "churn": {"probability": 0.1, "model_version": "none", "unit": "points", "factors": []},
                    "lead_status": "mql",
                    "stage": "consultation",
                    "timeline": [
                        {
                            "timestamp": "2026-11-20T09:30:00Z",
                            "type": "content_download",
                            "channel": "email",
                            "content_id": "wp-cloud-guide",
                        }
                    ],
                    "consumed_content": ["wp-cloud-guide"],
                    "next_sales_action": "Keep nurturing; no sales action yet",
                }
            ]
        }
    )

    contact_id: str
    language: Literal["en", "de"]
    readiness: ScoreInsight
    churn: ScoreInsight
    lead_status: str | None
    stage: str | None
    timeline: list[TimelineEntry]
    consumed_content: list[str]
    next_sales_action: str


class ErasureResponse(BaseModel):
    """What erasure removed, store by store; the audit keeps a hash of the id, never the id."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "contact_hash": "01aee4b23d64d41e54401ed46940491397783444538921162065b5c76185a2cf",
                    "events_deleted": 12,
                    "profile_deleted": True,
                    "decisions_deleted": 3,
                    "rewards_deleted": 1,
                    "online_features_deleted": True,
                    "erased_at": "2026-11-23T10:00:00Z",
                }
            ]
        }
    )

    contact_hash: str
    events_deleted: int
    profile_deleted: bool
    decisions_deleted: int
    rewards_deleted: int
    online_features_deleted: bool
    erased_at: datetime

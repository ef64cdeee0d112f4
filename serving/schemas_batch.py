"""Request and response bodies of batch decisions: ``POST /v1/recommend/batch`` and its async job form."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from features.schemas import STAGE_IDS, Channel, Id
from serving.schemas import StageName
from serving.schemas_decisions import RecommendResponse

ItemStatus = Literal["decided", "rejected", "duplicate"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
MAX_JOB_CONTACTS = 2_000_000
"""Most contacts one job body may list (the request-size limit usually binds first; use a segment)."""


def _known_stage(value: str | None) -> str | None:
    if value is not None and value not in STAGE_IDS:
        raise ValueError(f"unknown stage {value!r}; known stages: {', '.join(STAGE_IDS)}")
    return value


class BatchItem(BaseModel):
    """One contact of a batch, with the single recommend's per-contact options."""

    model_config = ConfigDict(extra="forbid")

    contact_id: Id
    stage: StageName | None = Field(default=None, description="Overrides the stage stored for the contact.")
    candidate_ids: list[Id] | None = Field(default=None, max_length=500)
    excluded_ids: list[Id] = Field(default_factory=list, max_length=500)

    _stage = field_validator("stage")(_known_stage)


class BatchRecommendRequest(BaseModel):
    """Decide for up to ``max_batch_contacts`` contacts at once (one channel and slot count for all)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"channel": "email", "items": [{"contact_id": "c-1"}, {"contact_id": "c-2"}]}]
        },
    )

    channel: Channel
    items: list[BatchItem] = Field(
        min_length=1, description="Contacts; a repeated contact_id is decided once."
    )
    n_slots: int = Field(default=1, ge=1, le=20)
    explain: bool = False


class BatchItemResult(BaseModel):
    """The answer for one item, in request order: a decision, a rejection, or a pointer to the first copy."""

    index: int
    contact_id: str
    status: ItemStatus
    decision: RecommendResponse | None = None
    error: str | None = Field(default=None, description="Why the item was rejected.")
    duplicate_of: int | None = Field(default=None, description="Index of the item that was decided instead.")


class BatchRecommendResponse(BaseModel):
    """Per-item results and the counts of each status."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "index": 0,
                            "contact_id": "c-1",
                            "status": "decided",
                            "decision": RecommendResponse.model_json_schema()["examples"][0],
                        },
                        {"index": 1, "contact_id": "c-1", "status": "duplicate", "duplicate_of": 0},
                    ],
                    "decided": 1,
                    "rejected": 0,
                    "duplicates": 1,
                }
            ]
        }
    )

    results: list[BatchItemResult]
    decided: int
    rejected: int
    duplicates: int


class JobContact(BaseModel):
    """One audience row of a job: contact id with optional program and stage (as in audience files)."""

    model_config = ConfigDict(extra="forbid")

    contact_id: Id
    program: str | None = Field(default=None, max_length=64)
    stage: StageName | None = None

    _stage = field_validator("stage")(_known_stage)


class BatchJobRequest(BaseModel):
    """An audience too large for one request: listed contacts, or a segment over the stored profiles."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"channel": "email", "segment": "lifecycle_stage = 'information' AND consent_email"}
            ],
            "oneOf": [
                {"required": ["contacts"], "not": {"required": ["segment"]}},
                {"required": ["segment"], "not": {"required": ["contacts"]}},
            ],
        },
    )

    channel: Channel
    contacts: (
        Annotated[list[JobContact], Field(min_length=1, max_length=MAX_JOB_CONTACTS)] | SkipJsonSchema[None]
    ) = None
    segment: (
        Annotated[
            str, Field(min_length=1, max_length=2_000, description="DuckDB WHERE condition over profiles.")
        ]
        | SkipJsonSchema[None]
    ) = None

    @model_validator(mode="after")
    def _one_audience(self) -> BatchJobRequest:
        for name in ("contacts", "segment"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"`{name}` must not be null: leave it out instead")
        if (self.contacts is None) == (self.segment is None):
            raise ValueError("exactly one of `contacts` and `segment` must be given")
        return self


class BatchJob(BaseModel):
    """A batch job's state; ``report`` (counts, timings) once it succeeded, ``error`` once it failed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "9b2f6a1e4c0d4e2f8a7b6c5d4e3f2a1b",
                    "status": "succeeded",
                    "channel": "email",
                    "contacts": 25000,
                    "duplicates": 0,
                    "done": 25000,
                    "created_at": "2026-11-23T06:00:00Z",
                    "finished_at": "2026-11-23T06:00:21Z",
                    "report": {"decisions": 25000, "seconds": 21.4},
                    "result_url": "/v1/recommend/batch/jobs/9b2f6a1e4c0d4e2f8a7b6c5d4e3f2a1b/result",
                }
            ]
        }
    )

    job_id: str
    status: JobStatus
    channel: Channel
    contacts: int
    duplicates: int = 0
    done: int = 0
    created_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    report: dict[str, Any] | None = None
    result_url: str | None = None

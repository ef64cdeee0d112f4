"""Request and response bodies of the HTTP API, one model per purpose, each with an OpenAPI example.

Domain shapes (events, content blocks) are defined once in ``features.schemas``; the models here wrap them for
the wire: batches, per-item results, lists, errors and health reports.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from features.schemas import STAGE_IDS, ContentBlock

EXAMPLE_EVENT: dict[str, Any] = {
    "event_id": "evt-000123",
    "contact_id": "c-42",
    "timestamp": "2026-11-20T09:30:00Z",
    "type": "content_download",
    "content_id": "wp-cloud-migration",
    "channel": "email",
    "properties": {"campaign": "q4-nurture"},
}

EXAMPLE_BLOCK: dict[str, Any] = {
    "content_id": "wp-cloud-migration",
    "title": "Cloud migration whitepaper",
    "format": "whitepaper",
    "stages": ["information", "consultation"],
    "topics": ["cloud", "migration"],
    "personas": ["it_lead"],
    "gated": True,
    "channels": ["email", "web"],
    "language": "en",
    "program": "nurture",
    "prerequisite_id": None,
    "alternative_id": None,
    "active": True,
}


class ErrorResponse(BaseModel):
    """Any refused request other than a validation error: what went wrong, in one sentence."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "missing API key (header X-API-Key)"}]}
    )

    detail: str


class FieldError(BaseModel):
    """One invalid field: where it is (``loc``), why (``msg``) and the kind of error (``type``)."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """A malformed request (422): every invalid field, and a one-line ``message`` naming the first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message": "body.events: List should have at least 1 item after validation, not 0",
                    "detail": [
                        {
                            "loc": ["body", "events"],
                            "msg": "List should have at least 1 item after validation, not 0",
                            "type": "too_short",
                        }
                    ],
                }
            ]
        }
    )

    message: str
    detail: list[FieldError]


class EventsBatch(BaseModel):
    """A batch of engagement events; each item is validated on its own as an ``EngagementEvent``.

    A bad item does not fail the batch: it is reported ``rejected`` with its index, the field and the
    reason, and the good items are stored.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [EXAMPLE_EVENT]}]})

    events: list[dict[str, Any]] = Field(
        min_length=1,
        description=(
            "Engagement events: event_id, contact_id and/or anonymous_id, timestamp (UTC), type, optional "
            "content_id, channel, account_id and properties. "
            "At most Settings.max_batch_events items (else 413)."
        ),
    )


class EventResult(BaseModel):
    """What happened to the event at ``index``; ``field`` and ``reason`` say why it was rejected."""

    index: int = Field(ge=0)
    event_id: str | None
    status: Literal["stored", "duplicate", "rejected"]
    field: str | None = None
    reason: str | None = None


class IngestResponse(BaseModel):
    """Outcome of a batch: every item reported ``stored`` or ``duplicate`` is durably committed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "stored": 1,
                    "duplicates": 0,
                    "rejected": 1,
                    "results": [
                        {
                            "index": 0,
                            "event_id": "evt-000123",
                            "status": "stored",
                            "field": None,
                            "reason": None,
                        },
                        {
                            "index": 1,
                            "event_id": "evt-000124",
                            "status": "rejected",
                            "field": "timestamp",
                            "reason": "Input should be a valid datetime",
                        },
                    ],
                }
            ]
        }
    )

    accepted: int = Field(ge=0, description="stored + duplicates: items the caller need not send again.")
    stored: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    rejected: int = Field(ge=0, description="Items not stored; fix them and send them again.")
    results: list[EventResult]


StageName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(STAGE_IDS)})]
"""A stage id; the schema lists the known ones (the configured taxonomy), validation is ``ContentBlock``'s."""


class ContentBlockBody(ContentBlock):
    """A content block as sent to ``PUT /v1/content/{content_id}``; its ``content_id`` must match the path."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_BLOCK]})

    stages: tuple[StageName, ...] = Field(min_length=1, description="Journey stages the block fits.")


class ContentBlockOut(ContentBlock):
    """A content block of the catalog."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_BLOCK]})


class ContentList(BaseModel):
    """Catalog blocks ordered by ``content_id``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"count": 1, "items": [EXAMPLE_BLOCK]}]})

    count: int = Field(ge=0)
    items: list[ContentBlockOut]


class Liveness(BaseModel):
    """The process is up and answering."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = "ok"


class CheckOutcome(BaseModel):
    """One readiness check: a dependency (store, model) and whether it is usable now."""

    name: str
    ok: bool
    detail: str = ""


class Readiness(BaseModel):
    """Whether this replica can serve traffic (503 when any check fails), with every check's outcome."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ready", "checks": [{"name": "event_store", "ok": True, "detail": "sqlite"}]}
            ]
        }
    )

    status: Literal["ready", "not_ready"]
    checks: list[CheckOutcome]

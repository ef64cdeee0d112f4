"""The ingestion edge: raw event dicts (API bodies, JSONL, Parquet rows) become ``EngagementEvent`` or errors.

Every rejected item is reported by its index in the batch with the field at fault and the reason, so a journey
engine can fix and re-send exactly the bad ones; the good ones of the same batch go on to the store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from features.schemas import EngagementEvent, EventType

_KNOWN_TYPES = ", ".join(t.value for t in EventType)


@dataclass(frozen=True)
class EventError:
    """Why the event at ``index`` of a batch was rejected: the field at fault and the reason."""

    index: int
    field: str
    reason: str
    event_id: str | None = None

    @property
    def message(self) -> str:
        return f"events[{self.index}].{self.field}: {self.reason}"


def check_limits(
    event: EngagementEvent,
    *,
    now: datetime,
    max_clock_skew: timedelta,
    max_properties_bytes: int,
) -> tuple[str, str] | None:
    """The store's own limits on an already valid event: ``(field, reason)`` of the first one broken, or None.

    A timestamp further than ``max_clock_skew`` after ``now`` is a client clock gone wrong (it would sort
    after every real event and poison time-windowed features); oversized properties are blobs put in events.
    """
    latest = now + max_clock_skew
    if event.timestamp > latest:
        return (
            "timestamp",
            f"lies {event.timestamp - now} in the future, beyond the allowed clock skew of {max_clock_skew} "
            f"(got {event.timestamp.isoformat()}, now is {now.isoformat()})",
        )
    size = event.properties_size()
    if size > max_properties_bytes:
        return "properties", f"is {size} bytes as JSON, more than the cap of {max_properties_bytes} bytes"
    return None


def _error_from_validation(index: int, raw: Mapping[str, Any], exc: ValidationError) -> EventError:
    """The first problem pydantic found, phrased with the field named and without pydantic's boilerplate."""
    first = exc.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    if not loc:
        # Model-level checks (identity): name the id that is missing.
        field = "anonymous_id" if raw.get("contact_id") else "contact_id"
        return EventError(index, field, str(first["msg"]).removeprefix("Value error, "), event_id)
    field = ".".join(loc)
    if loc[0] == "type" and first["type"] == "enum":
        return EventError(
            index, "type", f"unknown event type {raw.get('type')!r}; known: {_KNOWN_TYPES}", event_id
        )
    if first["type"] == "missing":
        return EventError(index, field, "is required but missing", event_id)
    if first["type"] == "extra_forbidden":
        return EventError(index, field, "is not a known event field", event_id)
    return EventError(index, field, str(first["msg"]).removeprefix("Value error, "), event_id)


def _normalise(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Accept what files carry: properties as a JSON string (our Parquet export), ``None`` for absent ids."""
    record = {k: v for k, v in raw.items() if v is not None}
    props = record.get("properties")
    if isinstance(props, str):
        record["properties"] = json.loads(props) if props else {}
    return record


def validate_events(
    raw: Sequence[Mapping[str, Any]],
    *,
    now: datetime | None = None,
    max_clock_skew_seconds: int = 300,
    max_properties_bytes: int = 16_384,
) -> tuple[list[EngagementEvent], list[EventError]]:
    """Validate a batch of raw events; returns the good events (in order) and one error per bad index.

    Checks: known ``type``; ``event_id`` and ``contact_id`` or ``anonymous_id`` present (both on
    ``identify``); timezone-aware ``timestamp`` no further than ``max_clock_skew_seconds`` after ``now``;
    ``properties`` an object of at most ``max_properties_bytes`` as compact UTF-8 JSON.
    """
    indexed, errors = validate_indexed(
        raw, now=now, max_clock_skew_seconds=max_clock_skew_seconds, max_properties_bytes=max_properties_bytes
    )
    return [event for _, event in indexed], errors


def validate_indexed(
    raw: Sequence[Mapping[str, Any]],
    *,
    now: datetime | None = None,
    max_clock_skew_seconds: int = 300,
    max_properties_bytes: int = 16_384,
) -> tuple[list[tuple[int, EngagementEvent]], list[EventError]]:
    """Like ``validate_events`` but keeps each good event's index in ``raw`` (to report outcomes by it)."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware (UTC), but got a naive timestamp {now}")
    skew = timedelta(seconds=max_clock_skew_seconds)
    good: list[tuple[int, EngagementEvent]] = []
    errors: list[EventError] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            errors.append(EventError(index, "event", f"must be an object, but got {type(item).__name__}"))
            continue
        try:
            record = _normalise(item)
        except json.JSONDecodeError as exc:
            errors.append(EventError(index, "properties", f"is not valid JSON: {exc}", item.get("event_id")))
            continue
        try:
            event = EngagementEvent.model_validate(record)
        except ValidationError as exc:
            errors.append(_error_from_validation(index, record, exc))
            continue
        problem = check_limits(event, now=now, max_clock_skew=skew, max_properties_bytes=max_properties_bytes)
        if problem is not None:
            errors.append(EventError(index, problem[0], problem[1], event.event_id))
            continue
        good.append((index, event))
    return good, errors

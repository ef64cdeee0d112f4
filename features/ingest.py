"""The ingestion edge: raw event dicts (API bodies, JSONL, Parquet rows) become ``EngagementEvent`` or errors.

Every rejected item is reported by its index in the batch with the field at fault and the reason, so a journey
engine can fix and re-send exactly the bad ones; the good ones of the same batch go on to the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
from pydantic import ValidationError

from features.schemas import EngagementEvent, EventType

if TYPE_CHECKING:
    from features.event_store import EventStore

_KNOWN_TYPES = ", ".join(t.value for t in EventType)


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str, sort_keys=True)


def compact_json(value: Any) -> str:
    """Event properties as stored and exported: compact UTF-8 JSON, keys sorted; its byte size is what the
    properties cap measures (same as ``EngagementEvent.properties_size``, with one reusable encoder)."""
    return _JSON.encode(value)


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
    properties_size: int | None = None,
) -> tuple[str, str] | None:
    """The store's own limits on an already valid event: ``(field, reason)`` of the first one broken, or None.

    A timestamp further than ``max_clock_skew`` after ``now`` is a client clock gone wrong (it would sort
    after every real event and poison time-windowed features); oversized properties are blobs put in events.
    ``properties_size`` saves serialising the properties twice when the caller already did.
    """
    latest = now + max_clock_skew
    if event.timestamp > latest:
        return (
            "timestamp",
            f"lies {event.timestamp - now} in the future, beyond the allowed clock skew of {max_clock_skew} "
            f"(got {event.timestamp.isoformat()}, now is {now.isoformat()})",
        )
    size = event.properties_size() if properties_size is None else properties_size
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
    """Accept what files carry: JSON-text properties and ``ingested_at`` of our export, ``None`` ids."""
    record = {k: v for k, v in raw.items() if v is not None}
    record.pop("ingested_at", None)  # the store's own column in our exports: set again on re-ingest
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
        problem = check_limits(
            event,
            now=now,
            max_clock_skew=skew,
            max_properties_bytes=max_properties_bytes,
            properties_size=len(compact_json(event.properties).encode()),
        )
        if problem is not None:
            errors.append(EventError(index, problem[0], problem[1], event.event_id))
            continue
        good.append((index, event))
    return good, errors


@dataclass
class FileIngestSummary:
    """Totals of ingesting one file, with the first rejected items (index = record number in the file)."""

    records: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_errors: list[EventError] = dc_field(default_factory=list)


def count_records(path: Path) -> int:
    """Number of records in a JSONL or Parquet event file (for progress bars)."""
    kind = _file_kind(path)
    if kind == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    raise ValueError(f"events file must end in .jsonl, .ndjson or .parquet, but got {path.name!r}")


def read_event_batches(path: Path, batch_size: int = 1_000) -> Iterator[list[Mapping[str, Any] | EventError]]:
    """Raw records of a JSONL or Parquet file in batches; a JSONL line that is not a JSON value comes through
    as an ``EventError`` (field ``line``) at its position, so numbering stays that of the file."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, but got {batch_size}")
    if _file_kind(path) == "parquet":
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            yield list(record_batch.to_pylist())
        return
    batch: list[Mapping[str, Any] | EventError] = []
    index = 0
    with path.open(encoding="utf-8") as fh:
        for line_number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                batch.append(json.loads(line))
            except json.JSONDecodeError as exc:
                batch.append(EventError(index, "line", f"line {line_number} is not valid JSON: {exc.msg}"))
            index += 1
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def ingest_file(
    store: EventStore,
    path: Path,
    *,
    batch_size: int = 1_000,
    now: datetime | None = None,
    on_batch: Callable[[int], None] | None = None,
    keep_errors: int = 20,
) -> FileIngestSummary:
    """Validate and append every record of a JSONL/Parquet file in batches; ``on_batch(n)`` reports progress.

    Each batch is committed before the next is read, so an interrupted run can simply be repeated: what was
    already stored comes back as ``duplicate``.
    """
    summary = FileIngestSummary()
    for batch in read_event_batches(path, batch_size):
        offset = summary.records
        parsed = [(i, r) for i, r in enumerate(batch) if not isinstance(r, EventError)]
        unparsed = [(i, r) for i, r in enumerate(batch) if isinstance(r, EventError)]
        errors = [EventError(offset + i, r.field, r.reason) for i, r in unparsed]
        result = store.ingest([r for _, r in parsed], now=now)
        for (i, _), item in zip(parsed, result.items, strict=True):
            if item.status == "rejected":
                errors.append(EventError(offset + i, item.field or "event", item.reason or "", item.event_id))
        summary.records += len(batch)
        summary.stored += result.stored
        summary.duplicates += result.duplicates
        summary.rejected += len(errors)
        room = keep_errors - len(summary.first_errors)
        if room > 0:
            summary.first_errors.extend(sorted(errors, key=lambda e: e.index)[:room])
        if on_batch is not None:
            on_batch(len(batch))
    return summary

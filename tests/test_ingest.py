"""The ingestion edge: each malformed raw event is reported by index, with the field at fault and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.event_store import open_settings_event_store
from features.ingest import EventError, count_records, ingest_file, validate_events
from features.schemas import EventType
from ripen.cli import app
from ripen.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def raw(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "contact_id": "c-1",
        "timestamp": "2026-06-01T11:00:00+00:00",
        "type": "page_view",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def check(items: list[Any]) -> tuple[list[Any], list[EventError]]:
    return validate_events(items, now=NOW, max_clock_skew_seconds=300, max_properties_bytes=100)


@pytest.mark.parametrize(
    "value, field, match",
    [
        (raw(type="teleport"), "type", r"unknown event type 'teleport'; known: page_view"),
        (raw(type=...), "type", "is required but missing"),
        (raw(event_id=...), "event_id", "is required but missing"),
        (raw(event_id=""), "event_id", "at least 1 character"),
        (raw(event_id="has space"), "event_id", "should match pattern"),
        (raw(contact_id=...), "contact_id", "contact_id or anonymous_id is required"),
        (raw(type="identify"), "anonymous_id", "identify event needs both contact_id and anonymous_id"),
        (raw(timestamp="2026-06-01T11:00:00"), "timestamp", "timezone-aware"),
        (raw(timestamp="yesterday"), "timestamp", "valid datetime"),
        (raw(timestamp="2026-06-01T12:06:00Z"), "timestamp", "beyond the allowed clock skew of 0:05:00"),
        (raw(properties={"blob": "x" * 200}), "properties", "more than the cap of 100 bytes"),
        (raw(properties={"ü": "ü" * 46}), "properties", "is 101 bytes"),  # UTF-8 bytes, not characters
        (raw(properties="{not json"), "properties", "not valid JSON"),
        (raw(properties=[1, 2]), "properties", "valid dictionary"),
        (raw(channel="pigeon"), "channel", "Input should be"),
        (raw(colour="red"), "colour", "is not a known event field"),
        ("not an object", "event", "must be an object, but got str"),
    ],
)
def test_bad_event_is_reported_with_field_and_reason(value: Any, field: str, match: str) -> None:
    good, errors = check([raw(event_id="ok-0"), value, raw(event_id="ok-2")])
    assert [e.event_id for e in good] == ["ok-0", "ok-2"]  # the good ones of the batch survive
    assert len(errors) == 1
    error = errors[0]
    assert (error.index, error.field) == (1, field)
    assert match in error.reason, error.reason
    assert error.message.startswith(f"events[1].{field}: ")


@pytest.mark.parametrize(
    "value",
    [
        raw(),
        raw(contact_id=None, anonymous_id="cookie-9"),
        raw(type="identify", anonymous_id="cookie-9", properties={"tracking_consent": True}),
        raw(timestamp="2026-06-01T12:05:00Z"),  # exactly at the skew limit
        raw(timestamp="2026-06-01T14:00:00+02:00"),  # other offsets are converted to UTC
        raw(properties='{"from":"parquet export"}'),  # properties as JSON text, as our export writes them
        raw(properties={"ü": "ü" * 45}),  # 99 bytes
    ],
)
def test_good_event_passes(value: dict[str, Any]) -> None:
    good, errors = check([value])
    assert errors == []
    assert len(good) == 1
    assert good[0].timestamp.tzinfo is not None and good[0].timestamp.utcoffset() == timedelta(0)


def test_every_bad_index_is_reported_in_order() -> None:
    kinds = ["bogus" if i % 3 == 0 else EventType.EMAIL_OPEN.value for i in range(9)]
    items = [raw(event_id=f"e{i}", type=kind) for i, kind in enumerate(kinds)]
    good, errors = check(items)
    assert [e.index for e in errors] == [0, 3, 6]
    assert [e.event_id for e in good] == ["e1", "e2", "e4", "e5", "e7", "e8"]
    assert {e.event_id for e in errors} == {"e0", "e3", "e6"}


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        validate_events([raw()], now=datetime(2026, 6, 1))


# -- files and the `ripen events` commands -------------------------------------------------------------------
def write_jsonl(path: Path, n: int) -> None:
    lines = [
        json.dumps(raw(event_id=f"f{i}", contact_id=f"c{i % 3}", timestamp=f"2026-05-01T10:{i:02d}:00Z"))
        for i in range(n)
    ]
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps(raw(event_id="naive", timestamp="2026-05-01T10:00:00")))
    lines.insert(5, "")  # blank lines are skipped, not counted
    path.write_text("\n".join(lines) + "\n")


def test_ingest_file_numbers_errors_by_record_and_is_rerunnable(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_jsonl(path, 30)
    assert count_records(path) == 32
    with open_settings_event_store(settings) as store:
        seen: list[int] = []
        first = ingest_file(store, path, batch_size=7, now=NOW, on_batch=seen.append)
        again = ingest_file(store, path, batch_size=7, now=NOW)
        assert store.count() == 30
    assert sum(seen) == 32 and max(seen) == 7
    assert (first.records, first.stored, first.duplicates, first.rejected) == (32, 30, 0, 2)
    assert [(e.index, e.field) for e in first.first_errors] == [(2, "line"), (4, "timestamp")]
    assert "line 3 is not valid JSON" in first.first_errors[0].reason
    assert (again.stored, again.duplicates, again.rejected) == (0, 30, 2)


def test_unknown_file_kind_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"events file must end in .jsonl, .ndjson or .parquet, but got 'x.csv'"
    ):
        count_records(tmp_path / "x.csv")


def test_cli_ingest_export_and_reingest_the_export(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_jsonl(path, 30)
    data_dir = tmp_path / "data"
    runner = CliRunner()
    result = runner.invoke(
        app, ["events", "ingest", str(path), "--data-dir", str(data_dir), "--batch-size", "10"]
    )
    assert result.exit_code == 0, result.output
    assert "32 events read: 30 stored, 0 duplicates, 2 rejected" in result.output
    assert "events[4].timestamp" in result.output
    out = tmp_path / "export" / "events.parquet"
    start = ["--start", "2026-05-01T10:10:00"]
    result = runner.invoke(app, ["events", "export", str(out), "--data-dir", str(data_dir), *start])
    assert result.exit_code == 0, result.output
    assert "20 events written" in result.output
    assert pq.read_table(out).num_rows == 20
    # Our own export is valid input: another store takes it as it is.
    result = runner.invoke(app, ["events", "ingest", str(out), "--data-dir", str(tmp_path / "other")])
    assert result.exit_code == 0, result.output
    assert "20 events read: 20 stored, 0 duplicates, 0 rejected" in result.output

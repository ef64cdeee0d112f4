"""POST /v1/events through the real app on the embedded store: per-item results, idempotence, durability."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.event_store import open_settings_event_store
from ripen.settings import Settings
from tests.api_support import Keys, debug_logging, event, make_keys, running_client


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return make_keys(settings)


@pytest.fixture
def client(settings: Settings, keys: Keys) -> Iterator[TestClient]:
    with running_client(settings) as c:
        yield c


def test_mixed_batch_reports_each_item_and_stores_the_good_ones(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    batch = [
        event(1),
        {"event_id": "e-2", "contact_id": "c-1", "type": "email_open"},
        event(3, contact="c-2"),
    ]
    response = client.post("/v1/events", json={"events": batch}, headers=keys.engine)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["stored"], body["duplicates"], body["rejected"]) == (2, 2, 0, 1)
    assert [r["status"] for r in body["results"]] == ["stored", "rejected", "stored"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert body["results"][1] == {
        "index": 1,
        "event_id": "e-2",
        "status": "rejected",
        "field": "timestamp",
        "reason": "is required but missing",
    }


def test_resent_events_are_duplicates_and_stored_once(client: TestClient, keys: Keys) -> None:
    batch = {"events": [event(1), event(2)]}
    first = client.post("/v1/events", json=batch, headers=keys.engine).json()
    again = client.post("/v1/events", json={"events": [event(2), event(3)]}, headers=keys.engine).json()
    assert first["stored"] == 2
    assert [r["status"] for r in again["results"]] == ["duplicate", "stored"]
    assert again["accepted"] == 2
    store = client.app.state.ripen.event_store.get()  # type: ignore[attr-defined]
    assert store.count() == 3


def test_acknowledged_events_survive_a_restart(settings: Settings, keys: Keys) -> None:
    with running_client(settings) as client:
        response = client.post("/v1/events", json={"events": [event(1), event(2)]}, headers=keys.engine)
        assert response.status_code == 202
    with open_settings_event_store(settings) as store:
        assert [e.event_id for e in store.events_for_contact("c-1")] == ["e-1", "e-2"]


def _future() -> str:
    return (datetime.now(UTC) + timedelta(hours=2)).isoformat()


@pytest.mark.parametrize(
    "overrides, drop, field, reason",
    [
        ({"type": "telepathy"}, None, "type", "unknown event type 'telepathy'"),
        ({}, "type", "type", "is required but missing"),
        ({"timestamp": "2026-01-01T10:00:00"}, None, "timestamp", "timezone-aware"),
        ({"timestamp": "yesterday"}, None, "timestamp", "valid datetime"),
        ({"timestamp": "FUTURE"}, None, "timestamp", "beyond the allowed clock skew"),
        ({"properties": {"blob": "x" * 20_000}}, None, "properties", "more than the cap of 16384 bytes"),
        ({"properties": [1, 2]}, None, "properties", "valid dictionary"),
        ({"contact_id": None}, None, "contact_id", "contact_id or anonymous_id is required"),
        ({"channel": "pigeon"}, None, "channel", "Input should be"),
        ({"contact_id": "has spaces"}, None, "contact_id", "pattern"),
        ({"favourite_colour": "teal"}, None, "favourite_colour", "is not a known event field"),
        ({"type": "identify"}, None, "anonymous_id", "identify event needs both"),
    ],
)
def test_bad_items_are_rejected_with_the_field_and_reason(
    client: TestClient, keys: Keys, overrides: dict[str, Any], drop: str | None, field: str, reason: str
) -> None:
    bad = event(9, **{k: (_future() if v == "FUTURE" else v) for k, v in overrides.items()})
    if drop:
        del bad[drop]
    response = client.post("/v1/events", json={"events": [event(1), bad]}, headers=keys.engine)
    assert response.status_code == 202
    item = response.json()["results"][1]
    assert item["status"] == "rejected"
    assert item["field"] == field
    assert reason in item["reason"]
    assert response.json()["stored"] == 1


def test_ingest_counts_show_in_metrics(client: TestClient, keys: Keys) -> None:
    client.post("/v1/events", json={"events": [event(1), event(2), {"event_id": "x"}]}, headers=keys.engine)
    client.post("/v1/events", json={"events": [event(1)]}, headers=keys.engine)
    text = client.get("/metrics").text
    assert 'ripen_events_ingested_total{status="stored"} 2.0' in text
    assert 'ripen_events_ingested_total{status="duplicate"} 1.0' in text
    assert 'ripen_events_ingested_total{status="rejected"} 1.0' in text
    assert 'route="/v1/events",status="202"' in text


def test_access_log_carries_no_event_content(
    settings: Settings, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_email = "jane.doe@example.com"
    with debug_logging(), running_client(settings) as client:
        item = event(1, properties={"email": secret_email, "company": "Acme Widgets"})
        client.post("/v1/events", json={"events": [item]}, headers=keys.engine)
        client.post(
            "/v1/events",
            json={"events": [{"event_id": "e-2", "timestamp": secret_email}]},
            headers=keys.engine,
        )
    logs = capsys.readouterr().err
    assert "events_ingested" in logs and "request_id=" in logs
    assert secret_email not in logs and "Acme Widgets" not in logs


def test_request_id_is_echoed_or_assigned(client: TestClient, keys: Keys) -> None:
    given = client.post(
        "/v1/events", json={"events": [event(1)]}, headers={**keys.engine, "X-Request-ID": "abc-1"}
    )
    assert given.headers["x-request-id"] == "abc-1"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert (
        unsafe.headers["x-request-id"] != "bad id with spaces" and len(unsafe.headers["x-request-id"]) == 32
    )

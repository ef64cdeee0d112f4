"""The events and catalog API on the production profile: PostgreSQL event store, real server, real app.

Also what happens when PostgreSQL goes away under a running app: 503 with ``Retry-After`` (nothing
acknowledged), never a 500, and ``/readyz`` reports the store as not ready.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from features.event_store import open_settings_event_store
from ripen.settings import Settings
from tests.api_support import block, event, make_keys, running_client

pytestmark = pytest.mark.postgres


@pytest.fixture
def production(postgres_url: str, tmp_path: Path) -> Settings:
    return Settings(profile="production", postgres_url=postgres_url, data_dir=tmp_path / "data")


def test_events_and_catalog_round_trip_on_postgres(production: Settings) -> None:
    assert production.event_store_url.startswith("postgresql://")
    keys = make_keys(production)
    with running_client(production) as client:
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["checks"][0] == {"name": "event_store", "ok": True, "detail": "production"}
        assert ready["checks"][1]["name"] == "models" and ready["checks"][1]["ok"] is True

        batch = {"events": [event(1), event(2, contact="c-2"), {"event_id": "bad", "contact_id": "c-1"}]}
        first = client.post("/v1/events", json=batch, headers=keys.engine)
        assert first.status_code == 202
        assert [r["status"] for r in first.json()["results"]] == ["stored", "stored", "rejected"]

        assert client.put("/v1/content/wp-1", json=block("wp-1"), headers=keys.admin).status_code == 201
        linked = block("wp-2", alternative_id="wp-1")
        assert client.put("/v1/content/wp-2", json=linked, headers=keys.admin).status_code == 201
        assert client.post("/v1/content/wp-1/deactivate", headers=keys.admin).status_code == 200

    # A restarted app (another replica, say) sees the same state and keeps ingest idempotent.
    with running_client(production) as client:
        again = client.post("/v1/events", json={"events": [event(1), event(3)]}, headers=keys.engine)
        assert [r["status"] for r in again.json()["results"]] == ["duplicate", "stored"]
        listed = client.get("/v1/content", params={"include_inactive": True}, headers=keys.admin).json()
        assert [(b["content_id"], b["active"]) for b in listed["items"]] == [("wp-1", False), ("wp-2", True)]

    with open_settings_event_store(production) as store:
        assert store.count() == 3
        assert [e.event_id for e in store.events_for_contact("c-1")] == ["e-1", "e-3"]


def test_lost_database_gives_503_not_500(production: Settings, postgres_server_url: str) -> None:
    keys = make_keys(production)
    name = production.postgres_url.rsplit("/", 1)[1]
    with running_client(production) as client:
        assert client.post("/v1/events", json={"events": [event(1)]}, headers=keys.engine).status_code == 202
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

        refused = client.post("/v1/events", json={"events": [event(2)]}, headers=keys.engine)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        assert "nothing was acknowledged" in refused.json()["detail"]
        assert client.get("/v1/content", headers=keys.admin).status_code == 503

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["checks"][0]["ok"] is False
        assert client.get("/healthz").status_code == 200


def test_starts_without_its_database_and_recovers_when_it_appears(
    postgres_server_url: str, tmp_path: Path
) -> None:
    name = f"ripen_test_late_{uuid.uuid4().hex[:10]}"
    base = postgres_server_url.rsplit("/", 1)[0]
    late = Settings(profile="production", postgres_url=f"{base}/{name}", data_dir=tmp_path / "data")
    keys = make_keys(late)
    try:
        with running_client(late) as client:
            client.app.state.ripen.event_store.retry_interval = 0.0  # type: ignore[attr-defined]
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 503
            refused = client.post("/v1/events", json={"events": [event(1)]}, headers=keys.engine)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"

            with psycopg.connect(postgres_server_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            assert client.get("/readyz").status_code == 200
            accepted = client.post("/v1/events", json={"events": [event(1)]}, headers=keys.engine)
            assert accepted.status_code == 202 and accepted.json()["stored"] == 1
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_locked_table_gives_503_after_the_statement_timeout_then_ingest_resumes(
    production: Settings,
) -> None:
    """Another session holds the events table locked: ingestion waits at most
    ``serving_statement_timeout_seconds`` and answers 503 (nothing stored), the app stays up, and the same
    batch is stored once the lock is gone. Without the limit the request would wait for the lock forever
    (the lock is let go after 60 s, which ends such a wait)."""
    bounded = production.model_copy(update={"serving_statement_timeout_seconds": 0.5})
    keys = make_keys(bounded)
    with running_client(bounded) as client:
        assert client.post("/v1/events", json={"events": [event(1)]}, headers=keys.engine).status_code == 202
        with psycopg.connect(bounded.postgres_url) as locker, ThreadPoolExecutor(1) as pool:
            locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")  # held until the block ends
            try:
                pending = pool.submit(
                    client.post, "/v1/events", json={"events": [event(2)]}, headers=keys.engine
                )
                assert client.get("/healthz").status_code == 200  # the app answers meanwhile
                refused = pending.result(timeout=60)
            finally:
                locker.rollback()
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        accepted = client.post("/v1/events", json={"events": [event(2)]}, headers=keys.engine)
        assert accepted.status_code == 202 and accepted.json()["stored"] == 1
    with open_settings_event_store(bounded) as store:
        assert [e.event_id for e in store.events_for_contact("c-1")] == ["e-1", "e-2"]

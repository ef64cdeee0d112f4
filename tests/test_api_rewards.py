"""POST /v1/rewards/{event_id}: explicit rewards for logged decisions, through the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.decision_log import RewardSource, open_settings_decision_log
from features.event_store import open_settings_event_store
from ripen.settings import Settings
from tests.api_support import Keys, make_keys, running_client
from tests.decision_world import CATALOG, PROFILES


@pytest.fixture
def keys(settings: Settings) -> Keys:
    settings.ensure_dirs()
    store = open_settings_event_store(settings)
    try:
        store.upsert_content(CATALOG)
        store.upsert_profiles(PROFILES)
    finally:
        store.close()
    return make_keys(settings)


@pytest.fixture
def client(settings: Settings, keys: Keys) -> Iterator[TestClient]:
    with running_client(settings) as c:
        yield c


def decision(client: TestClient, keys: Keys) -> str:
    response = client.post(
        "/v1/recommend", json={"contact_id": "c-ready", "channel": "email"}, headers=keys.engine
    )
    assert response.status_code == 200
    event_id: str = response.json()["event_id"]
    return event_id


def test_reward_is_stored_for_the_decision_then_unchanged_then_replaced(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    event_id = decision(client, keys)
    body = {"reward": 1.0, "observed_at": "2026-11-20T10:00:00Z"}
    first = client.post(f"/v1/rewards/{event_id}", json=body, headers=keys.engine)
    assert first.status_code == 200
    assert first.json() == {"event_id": event_id, "status": "stored"}
    again = client.post(f"/v1/rewards/{event_id}", json=body, headers=keys.engine)
    assert again.json()["status"] == "unchanged"
    later = client.post(
        f"/v1/rewards/{event_id}",
        json={"reward": 0.5, "observed_at": "2026-11-21T10:00:00Z"},
        headers=keys.engine,
    )
    assert later.json()["status"] == "replaced"
    log = open_settings_decision_log(settings)
    try:
        stored = log.rewards()[event_id]
    finally:
        log.close()
    assert stored.reward == pytest.approx(0.5)
    assert stored.source is RewardSource.EXPLICIT


def test_reward_for_an_unknown_decision_is_404(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/rewards/never-decided", json={"reward": 1.0}, headers=keys.engine)
    assert response.status_code == 404
    assert "never-decided" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "reward"),
        ({"reward": "lots"}, "reward"),
        ({"reward": 1e9}, "reward"),
        ({"reward": 1.0, "observed_at": "yesterday"}, "observed_at"),
        ({"reward": 1.0, "bonus": 2}, "bonus"),
    ],
)
def test_bad_rewards_get_422_naming_the_field(
    client: TestClient, keys: Keys, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/rewards/e-1", json=body, headers=keys.engine)
    assert response.status_code == 422
    assert field in response.text


def test_rewards_need_the_engine_scope(client: TestClient, keys: Keys, tmp_path: Path) -> None:
    assert client.post("/v1/rewards/e-1", json={"reward": 1.0}).status_code == 401
    assert client.post("/v1/rewards/e-1", json={"reward": 1.0}, headers=keys.sales).status_code == 403

"""DELETE /v1/contacts/{id} leaves no trace in any store; GET /v1/contacts/{id}/insight for sales."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from features.decision_log import open_settings_decision_log
from features.event_store import open_settings_event_store
from features.store import FeatureStoreService
from ripen.settings import Settings
from tests.api_support import Keys, make_keys, running_client
from tests.decision_world import build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One world for the read-only tests; the erasure test builds its own."""
    root = tmp_path_factory.mktemp("insight")
    settings = Settings(data_dir=root / "data", datasets_dir=root / "datasets")
    build_world(settings)
    return settings


@pytest.fixture(scope="module")
def keys(world: Settings) -> Keys:
    return make_keys(world)


@pytest.fixture(scope="module")
def client(world: Settings, keys: Keys) -> Iterator[TestClient]:
    with running_client(world) as c:
        yield c


def online_rows(settings: Settings, contact_id: str) -> int:
    """Rows of the contact in the SQLite online store, counted straight from Feast's tables."""
    from feast.infra.key_encoding_utils import serialize_entity_key

    from features.online import CONTACT_VIEWS, entity_key

    config = FeatureStoreService(settings).feast.config
    key = serialize_entity_key(entity_key("contact_id", contact_id), config.entity_key_serialization_version)
    with sqlite3.connect(config.online_store.path) as conn:
        return sum(
            conn.execute(
                f'SELECT count(*) FROM "{config.project}_{view}" WHERE entity_key = ?', [key]
            ).fetchone()[0]
            for view in CONTACT_VIEWS
        )


def test_erasure_leaves_no_trace_in_any_store(settings: Settings) -> None:
    build_world(settings)
    keys = make_keys(settings)
    with running_client(settings) as client:
        erase_and_check(client, keys, settings)


def erase_and_check(client: TestClient, keys: Keys, world: Settings) -> None:
    decided = client.post(
        "/v1/recommend", json={"contact_id": "c-ready", "channel": "email"}, headers=keys.engine
    )
    event_id = decided.json()["event_id"]
    assert (
        client.post(f"/v1/rewards/{event_id}", json={"reward": 1.0}, headers=keys.engine).status_code == 200
    )
    assert online_rows(world, "c-ready") > 0

    response = client.delete("/v1/contacts/c-ready", headers=keys.admin)

    assert response.status_code == 200
    body = response.json()
    assert body["events_deleted"] == 2 and body["profile_deleted"] is True
    assert body["decisions_deleted"] == 1 and body["rewards_deleted"] == 1
    assert body["online_features_deleted"] is True
    assert "c-ready" not in response.text
    events = open_settings_event_store(world)
    log = open_settings_decision_log(world)
    try:
        assert events.events_for_contact("c-ready") == []
        assert events.get_profile("c-ready") is None
        assert [a.contact_hash for a in events.erasure_audit()] == [body["contact_hash"]]
        assert log.get(event_id) is None
        assert event_id not in log.rewards()
        assert [r["contact_hash"] for r in log.audit_rows()] == [body["contact_hash"]]
        assert int(log.aggregates()["decisions"].sum()) == 1  # kept only as an anonymous aggregate
    finally:
        events.close()
        log.close()
    assert online_rows(world, "c-ready") == 0
    after = client.post(
        "/v1/recommend", json={"contact_id": "c-ready", "channel": "email"}, headers=keys.engine
    )
    assert after.json()["cold_start"] is True
    assert client.get("/v1/contacts/c-ready/insight", headers=keys.sales).status_code == 404


def test_erasure_needs_the_admin_scope(client: TestClient, keys: Keys) -> None:
    assert client.delete("/v1/contacts/c-ready").status_code == 401
    assert client.delete("/v1/contacts/c-ready", headers=keys.engine).status_code == 403
    assert client.delete("/v1/contacts/c-ready", headers=keys.sales).status_code == 403


@pytest.mark.parametrize(
    "language, sentence, action",
    [
        ("de-DE,de;q=0.9", "Die jüngste Interaktion bringt", "Weiter pflegen"),
        ("en-GB", "Recent engagement adds", "Keep nurturing"),
        (None, "Recent engagement adds", "Keep nurturing"),
    ],
)
def test_insight_explains_in_the_requested_language(
    client: TestClient, keys: Keys, language: str | None, sentence: str, action: str
) -> None:
    headers = {**keys.sales, **({"Accept-Language": language} if language else {})}
    response = client.get("/v1/contacts/c-ready/insight", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["readiness"]["factors"][0]["feature"] == "behaviour"
    assert body["readiness"]["factors"][0]["sentence"].startswith(sentence)
    assert body["next_sales_action"].startswith(action)
    assert body["lead_status"] == "lead" and body["stage"] == "awareness"
    assert [e["type"] for e in body["timeline"]] == ["content_download", "email_open"]  # newest first
    assert body["consumed_content"] == ["guide"]


def test_insight_needs_the_sales_scope_and_a_known_contact(client: TestClient, keys: Keys) -> None:
    assert client.get("/v1/contacts/c-ready/insight", headers=keys.engine).status_code == 403
    assert client.get("/v1/contacts/nobody/insight", headers=keys.sales).status_code == 404


@pytest.mark.postgres
def test_recommend_and_erasure_on_postgres_and_redis(
    postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import redis

    from features.online import redis_key

    production = Settings(
        profile="production",
        postgres_url=postgres_url,
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("production") / "data",
    )
    build_world(production)
    keys = make_keys(production)
    config = FeatureStoreService(production).feast.config
    key = redis_key(config.project, "contact_id", "c-ready", config.entity_key_serialization_version)
    client_redis = redis.Redis.from_url(redis_url)
    try:
        assert client_redis.exists(key) == 1
        with running_client(production) as client:
            decided = client.post(
                "/v1/recommend", json={"contact_id": "c-ready", "channel": "email"}, headers=keys.engine
            ).json()
            assert decided["content_id"] == "faq" and decided["degraded"] is False, decided
            erased = client.delete("/v1/contacts/c-ready", headers=keys.admin).json()
        assert erased["online_features_deleted"] is True and erased["decisions_deleted"] == 1
        assert client_redis.exists(key) == 0
    finally:
        client_redis.close()

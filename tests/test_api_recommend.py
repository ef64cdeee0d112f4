"""POST /v1/recommend through the real app on the embedded stores, filled with a tiny hand-made world."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.decision_log import open_settings_decision_log
from ripen.settings import Settings
from tests.api_support import Keys, make_keys, running_client
from tests.decision_world import build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root: Path = tmp_path_factory.mktemp("recommend")
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


def ask(client: TestClient, keys: Keys, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/recommend", json={"channel": "email", **body}, headers=keys.engine)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_known_contact_gets_stage_fitting_unconsumed_content_logged_with_its_probability(
    client: TestClient, keys: Keys, world: Settings
) -> None:
    answer = ask(client, keys, contact_id="c-ready", explain=True)
    assert answer["action"] == "content"
    assert answer["content_id"] == "faq"  # the guide was consumed, the rest fit other stages
    assert answer["probability"] == pytest.approx(1.0)
    assert answer["cold_start"] is False and answer["degraded"] is False
    assert answer["readiness"] > 0  # engagement gave behaviour points
    reasons = {r["content_id"]: r["reason"] for r in answer["guardrail_reasons"]}
    assert reasons == {"guide": "already_consumed", "check": "stage_mismatch", "offer": "stage_mismatch"}
    assert answer["versions"] == {"readiness": "points", "churn": "none", "policy": "cold-start"}
    assert answer["explanation"] and "faq" in answer["explanation"][1]
    log = open_settings_decision_log(world)
    try:
        record = log.get(answer["event_id"])
    finally:
        log.close()
    assert record is not None
    assert record.content_id == "faq" and record.probability == pytest.approx(1.0)
    assert [e.content_id for e in record.eligible] == ["faq"]


def test_stage_override_and_slots_give_ranked_alternatives(client: TestClient, keys: Keys) -> None:
    answer = ask(client, keys, contact_id="c-sql", stage="awareness", n_slots=2)
    assert answer["action"] == "content"
    assert {answer["content_id"], *(a["content_id"] for a in answer["alternatives"])} == {"guide", "faq"}
    assert 0 < answer["probability"] <= 1


def test_candidate_ids_restrict_the_choice_and_excluded_ids_remove_blocks(
    client: TestClient, keys: Keys
) -> None:
    only_offer = ask(client, keys, contact_id="c-sql", candidate_ids=["offer"])
    assert only_offer["content_id"] == "offer"
    assert only_offer["guardrail_reasons"] == []  # blocks outside the candidates are not reported
    unknown = ask(client, keys, contact_id="c-sql", candidate_ids=["offer", "gone"])
    assert unknown["content_id"] == "offer"
    assert unknown["guardrail_reasons"] == [
        {"content_id": "gone", "reason": "unknown_content", "detail": "not in the active catalog"}
    ]
    without_offer = ask(client, keys, contact_id="c-sql", excluded_ids=["offer"])
    assert without_offer["action"] == "nothing_eligible"


def test_unknown_contact_gets_a_flagged_cold_start_decision_without_consent(
    client: TestClient, keys: Keys
) -> None:
    answer = ask(client, keys, anonymous_id="anon-42")
    assert answer["cold_start"] is True
    assert answer["contact_id"] == "anon-42"
    assert answer["action"] == "nothing_eligible"  # no consent is known: nothing may be sent
    assert {r["reason"] for r in answer["guardrail_reasons"]} == {"no_consent"}


def test_decisions_are_counted_in_metrics(client: TestClient, keys: Keys) -> None:
    ask(client, keys, contact_id="c-nocons")
    metrics = client.get("/metrics").text
    assert 'ripen_decisions_total{action="nothing_eligible"}' in metrics
    assert 'ripen_guardrail_exclusions_total{reason="no_consent"}' in metrics


@pytest.mark.parametrize(
    "body, field",
    [
        ({"channel": "email"}, "contact_id"),
        ({"contact_id": "c-1", "anonymous_id": "a-1", "channel": "email"}, "contact_id"),
        ({"contact_id": "c-1", "channel": "pigeon"}, "channel"),
        ({"contact_id": "c-1", "channel": "email", "n_slots": 0}, "n_slots"),
        ({"contact_id": "c-1", "channel": "email", "stage": "nirvana"}, "stage"),
        ({"contact_id": None, "anonymous_id": "a-1", "channel": "email"}, "contact_id"),
    ],
)
def test_bad_requests_get_422_naming_the_field(
    client: TestClient, keys: Keys, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/recommend", json=body, headers=keys.engine)
    assert response.status_code == 422
    assert field in response.text


def test_recommend_needs_the_engine_scope(client: TestClient, keys: Keys) -> None:
    body = {"contact_id": "c-ready", "channel": "email"}
    assert client.post("/v1/recommend", json=body).status_code == 401
    assert client.post("/v1/recommend", json=body, headers=keys.sales).status_code == 403


def test_online_store_down_gives_a_degraded_stage_fit_answer(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        datasets_dir=tmp_path / "datasets",
        online_store="redis",
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there
    )
    build_world_without_online(settings)
    keys = make_keys(settings)
    with running_client(settings) as client:
        answer = ask(client, keys, contact_id="c-ready")
    assert answer["degraded"] is True
    assert answer["versions"]["policy"] == "stage-fit-fallback"
    assert answer["action"] == "content"
    assert answer["content_id"] in {"guide", "faq"}  # stage fit on the stored profile
    assert answer["probability"] == pytest.approx(1.0)


def test_a_stalled_online_store_gives_a_degraded_answer_and_events_are_still_stored(tmp_path: Path) -> None:
    """Redis accepts connections and never answers (a listening socket nobody reads): reads give up after
    ``redis_timeout_seconds``, so the app starts, recommend answers from the fallback and events are stored.
    Without the timeout every read would wait forever; closing the socket after 60 s ends such a hang."""
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(64)  # the kernel completes the connections; nothing ever reads or answers them
    settings = Settings(
        data_dir=tmp_path / "data",
        datasets_dir=tmp_path / "datasets",
        online_store="redis",
        redis_url=f"redis://127.0.0.1:{stalled.getsockname()[1]}/0",
        redis_timeout_seconds=0.2,
    )
    build_world_without_online(settings)
    keys = make_keys(settings)
    event = {
        "event_id": "stalled-1",
        "contact_id": "c-ready",
        "timestamp": datetime.now(UTC).isoformat(),
        "type": "email_open",
        "channel": "email",
    }

    def serve() -> tuple[dict[str, Any], int, dict[str, Any]]:
        with running_client(settings) as client:
            answer = ask(client, keys, contact_id="c-ready")
            ingested = client.post("/v1/events", json={"events": [event]}, headers=keys.engine)
            return answer, ingested.status_code, ingested.json()

    pool = ThreadPoolExecutor(1)
    try:
        answer, status, ingested = pool.submit(serve).result(timeout=60)
    finally:
        stalled.close()
        pool.shutdown(wait=True)
    assert answer["degraded"] is True and answer["versions"]["policy"] == "stage-fit-fallback"
    assert answer["content_id"] in {"guide", "faq"}
    assert status == 202 and ingested["stored"] == 1


def build_world_without_online(settings: Settings) -> None:
    """Only the event store: catalog and profiles (the online store is unreachable)."""
    from features.event_store import open_settings_event_store
    from tests.decision_world import CATALOG, PROFILES

    settings.ensure_dirs()
    store = open_settings_event_store(settings)
    try:
        store.upsert_content(CATALOG)
        store.upsert_profiles(PROFILES)
    finally:
        store.close()

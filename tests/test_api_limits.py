"""Limits and malformed input: 413 for oversized bodies and batches, 4xx naming the problem, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.event_store import open_settings_event_store
from ripen.settings import Settings
from serving.main import create_app
from serving.metrics import ServingMetrics
from tests.api_support import Keys, event, make_keys, running_client


@pytest.fixture
def small(tmp_path: Path) -> Settings:
    """Settings with a 2 kB body limit and batches of at most 3 events."""
    return Settings(data_dir=tmp_path / "data", max_request_bytes=2_000, max_batch_events=3)


@pytest.fixture
def keys(small: Settings) -> Keys:
    return make_keys(small)


@pytest.fixture
def client(small: Settings, keys: Keys) -> Iterator[TestClient]:
    with running_client(small) as c:
        yield c


def _stored(settings: Settings) -> int:
    with open_settings_event_store(settings) as store:
        return store.count()


def test_declared_oversized_body_is_413_and_nothing_is_stored(
    client: TestClient, keys: Keys, small: Settings
) -> None:
    big = {"events": [event(1, properties={"pad": "x" * 3_000})]}
    response = client.post("/v1/events", json=big, headers=keys.engine)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "request body is larger than the limit of 2000 bytes"}
    assert _stored(small) == 0


def test_streamed_oversized_body_without_length_is_413(
    client: TestClient, keys: Keys, small: Settings
) -> None:
    payload = json.dumps({"events": [event(1, properties={"pad": "x" * 3_000})]}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 500):
            yield payload[start : start + 500]

    headers = {**keys.engine, "content-type": "application/json"}
    response = client.post("/v1/events", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert "limit of 2000 bytes" in response.json()["detail"]
    assert _stored(small) == 0


def test_batch_over_the_limit_is_413_naming_events(client: TestClient, keys: Keys, small: Settings) -> None:
    response = client.post("/v1/events", json={"events": [event(n) for n in range(4)]}, headers=keys.engine)
    assert response.status_code == 413
    assert response.json()["detail"] == "events: the batch has 4 events, more than the limit of 3"
    assert _stored(small) == 0
    assert (
        client.post("/v1/events", json={"events": [event(n) for n in range(3)]}, headers=keys.engine).json()[
            "stored"
        ]
        == 3
    )


@pytest.mark.parametrize(
    "content, content_type, loc, match",
    [
        (b'{"events": [', "application/json", ["body"], "body: is not valid JSON at character 12"),
        (
            b'{"events": "all of them"}',
            "application/json",
            ["body", "events"],
            "body.events: Input should be",
        ),
        (b'{"events": []}', "application/json", ["body", "events"], "at least 1 item"),
        (b'{"events": [1, 2]}', "application/json", ["body", "events", 0], "body.events[0]: Input should be"),
        (b"[]", "application/json", ["body"], "Input should be a valid dictionary"),
        (b'{"events": [{}], "extra": 1}', "application/json", ["body", "extra"], "Extra inputs"),
        (b"", "application/json", ["body"], "Field required"),
        (b'{"events": [{}]}', "text/plain", ["body"], "Input should be a valid dictionary"),
        (b'{"events": [{}]}', None, ["body"], "Input should be a valid dictionary"),
        (b"\xff\xfe\x00garbage", "application/json", ["body"], "not valid JSON"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(
    client: TestClient, keys: Keys, content: bytes, content_type: str | None, loc: list[object], match: str
) -> None:
    headers = dict(keys.engine)
    if content_type:
        headers["content-type"] = content_type
    response = client.post("/v1/events", content=content, headers=headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"][0]["loc"] == loc
    assert match in body["message"]


def test_validation_errors_do_not_echo_the_input(client: TestClient, keys: Keys) -> None:
    response = client.put(
        "/v1/content/wp-1",
        json={"content_id": "wp-1", "title": "t", "format": "jane.doe@example.com", "stages": ["awareness"]},
        headers={**keys.all},
    )
    assert response.status_code == 422
    assert "jane.doe@example.com" not in response.text


@pytest.mark.parametrize(
    "method, path, status", [("DELETE", "/v1/events", 405), ("GET", "/v1/nothing-here", 404)]
)
def test_unknown_routes_and_methods_get_json_4xx(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)


def test_each_app_has_its_own_metrics(tmp_path: Path) -> None:
    first = create_app(Settings(data_dir=tmp_path / "a"))
    second = create_app(Settings(data_dir=tmp_path / "b"))
    with TestClient(first) as a, TestClient(second) as b:
        for _ in range(3):
            a.get("/healthz")
        assert (
            'ripen_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 3.0'
            in (a.get("/metrics").text)
        )
        assert 'route="/healthz"' not in b.get("/metrics").text


def test_unmatched_paths_share_one_metrics_label(client: TestClient) -> None:
    for n in range(3):
        client.get(f"/v1/contacts/c-{n}/nowhere")
    text = client.get("/metrics").text
    assert 'route="unmatched",status="404"} 3.0' in text
    assert "c-1" not in text


def test_served_model_version_replaces_the_previous_one() -> None:
    metrics = ServingMetrics()
    metrics.set_model_version("readiness", "3")
    metrics.set_model_version("churn", "1")
    metrics.set_model_version("readiness", "4")
    text = metrics.render()[0].decode()
    assert 'ripen_model_version_info{model="readiness",version="4"} 1.0' in text
    assert 'version="3"' not in text
    assert 'ripen_model_version_info{model="churn",version="1"} 1.0' in text


def test_decisions_and_exclusions_are_counted() -> None:
    metrics = ServingMetrics()
    metrics.count_decision("content")
    metrics.count_decision("content")
    metrics.count_decision("wait")
    metrics.count_exclusions({"consent": 2, "stage": 0, "repeat": 1})
    text = metrics.render()[0].decode()
    assert 'ripen_decisions_total{action="content"} 2.0' in text
    assert 'ripen_decisions_total{action="wait"} 1.0' in text
    assert 'ripen_guardrail_exclusions_total{reason="consent"} 2.0' in text
    assert 'reason="stage"' not in text


def test_a_bug_is_a_json_500_with_a_request_id(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret jane.doe@example.com")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-7"})
    assert response.status_code == 500
    assert "request id" in response.json()["detail"]
    assert "jane.doe" not in response.text

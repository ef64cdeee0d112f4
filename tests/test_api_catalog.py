"""The content catalog API on the embedded store: create/update validated, read, list, deactivate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ripen.settings import Settings
from tests.api_support import Keys, block, make_keys, running_client


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return make_keys(settings)


@pytest.fixture
def client(settings: Settings, keys: Keys) -> Iterator[TestClient]:
    with running_client(settings) as c:
        yield c


def test_create_then_update_then_read(client: TestClient, keys: Keys) -> None:
    created = client.put("/v1/content/wp-1", json=block("wp-1"), headers=keys.admin)
    assert created.status_code == 201
    assert created.json()["title"] == "Block wp-1"
    updated = client.put("/v1/content/wp-1", json=block("wp-1", title="New title"), headers=keys.admin)
    assert updated.status_code == 200
    read = client.get("/v1/content/wp-1", headers=keys.admin)
    assert read.status_code == 200
    assert read.json()["title"] == "New title"
    assert read.json()["stages"] == ["information"]


def test_list_is_ordered_and_hides_deactivated_blocks(client: TestClient, keys: Keys) -> None:
    for cid in ("wp-2", "cs-1", "wp-1"):
        assert client.put(f"/v1/content/{cid}", json=block(cid), headers=keys.admin).status_code == 201
    listed = client.get("/v1/content", headers=keys.admin).json()
    assert listed["count"] == 3
    assert [b["content_id"] for b in listed["items"]] == ["cs-1", "wp-1", "wp-2"]

    deactivated = client.post("/v1/content/wp-1/deactivate", headers=keys.admin)
    assert deactivated.status_code == 200
    assert deactivated.json()["active"] is False
    active = client.get("/v1/content", headers=keys.admin).json()
    assert [b["content_id"] for b in active["items"]] == ["cs-1", "wp-2"]
    everything = client.get("/v1/content", params={"include_inactive": True}, headers=keys.admin).json()
    assert [b["content_id"] for b in everything["items"]] == ["cs-1", "wp-1", "wp-2"]
    # Still readable for history.
    assert client.get("/v1/content/wp-1", headers=keys.admin).json()["active"] is False


@pytest.mark.parametrize(
    "method, path", [("GET", "/v1/content/nope"), ("POST", "/v1/content/nope/deactivate")]
)
def test_unknown_block_is_404_naming_it(client: TestClient, keys: Keys, method: str, path: str) -> None:
    response = client.request(method, path, headers=keys.admin)
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"]


def test_references_must_name_existing_blocks(client: TestClient, keys: Keys) -> None:
    dangling = client.put("/v1/content/wp-2", json=block("wp-2", alternative_id="wp-1"), headers=keys.admin)
    assert dangling.status_code == 409
    assert (
        dangling.json()["detail"] == "alternative_id: must name a block in the catalog, but 'wp-1' is unknown"
    )
    client.put("/v1/content/wp-1", json=block("wp-1"), headers=keys.admin)
    linked = block("wp-2", alternative_id="wp-1", prerequisite_id="wp-1")
    assert client.put("/v1/content/wp-2", json=linked, headers=keys.admin).status_code == 201


@pytest.mark.parametrize(
    "overrides, loc, match",
    [
        ({"content_id": "other"}, ["body", "content_id"], "must match the path's content_id 'wp-1'"),
        ({"stages": ["nirvana"]}, ["body", "stages"], "unknown stages ['nirvana']"),
        ({"stages": []}, ["body", "stages"], "at least 1 item"),
        ({"format": "scroll"}, ["body", "format"], "Input should be"),
        ({"channels": ["pigeon"]}, ["body", "channels", 0], "Input should be"),
        ({"title": ""}, ["body", "title"], "at least 1 character"),
        ({"alternative_id": "wp-1"}, ["body"], "must name another block"),
        ({"colour": "red"}, ["body", "colour"], "Extra inputs are not permitted"),
    ],
)
def test_invalid_blocks_are_422_naming_the_field(
    client: TestClient, keys: Keys, overrides: dict[str, Any], loc: list[Any], match: str
) -> None:
    response = client.put("/v1/content/wp-1", json={**block("wp-1"), **overrides}, headers=keys.admin)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"][0]["loc"] == loc
    assert match in body["message"]
    assert client.get("/v1/content/wp-1", headers=keys.admin).status_code == 404


@pytest.mark.parametrize("content_id", ["has space", "a" * 129, "semi;colon", ".hidden"])
def test_bad_path_ids_are_422(client: TestClient, keys: Keys, content_id: str) -> None:
    response = client.get(f"/v1/content/{content_id}", headers=keys.admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "content_id"]


def test_unknown_query_parameter_is_422_not_ignored(client: TestClient, keys: Keys) -> None:
    response = client.get("/v1/content", params={"include_inactiv": "true"}, headers=keys.admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "include_inactiv"]

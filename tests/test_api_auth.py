"""API keys: 401 without a valid key, 403 without the scope, hashes only on disk, keys never in the logs."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from ripen.cli import app as cli_app
from ripen.settings import Settings, get_settings
from serving.auth import KeyFile, KeyRing, Scope, parse_scopes
from tests.api_support import Keys, block, debug_logging, event, make_keys, restored_logging, running_client

PROTECTED = [
    ("POST", "/v1/events", {"events": [event(1)]}, "engine"),
    ("GET", "/v1/content", None, "admin"),
    ("GET", "/v1/content/wp-1", None, "admin"),
    ("PUT", "/v1/content/wp-1", block("wp-1"), "admin"),
    ("POST", "/v1/content/wp-1/deactivate", None, "admin"),
]


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return make_keys(settings)


@pytest.fixture
def client(settings: Settings, keys: Keys) -> Iterator[TestClient]:
    with running_client(settings) as c:
        yield c


@pytest.mark.parametrize("method, path, body, scope", PROTECTED)
def test_missing_key_is_401(client: TestClient, method: str, path: str, body: object, scope: str) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]


@pytest.mark.parametrize("method, path, body, scope", PROTECTED)
def test_unknown_key_is_401(client: TestClient, method: str, path: str, body: object, scope: str) -> None:
    response = client.request(method, path, json=body, headers={"X-API-Key": "rpn_not-a-real-key"})
    assert response.status_code == 401
    assert "unknown API key" in response.json()["detail"]


@pytest.mark.parametrize("method, path, body, scope", PROTECTED)
def test_wrong_scope_is_403_and_right_scope_passes(
    client: TestClient, keys: Keys, method: str, path: str, body: object, scope: str
) -> None:
    wrong = {"engine": keys.sales, "admin": keys.engine}[scope]
    refused = client.request(method, path, json=body, headers=wrong)
    assert refused.status_code == 403
    assert repr(scope) in refused.json()["detail"]
    allowed = client.request(method, path, json=body, headers=getattr(keys, scope))
    assert allowed.status_code not in (401, 403), allowed.text


def test_admin_scope_does_not_imply_engine(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/events", json={"events": [event(1)]}, headers=keys.admin)
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_operational_routes_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_key_file_holds_only_salted_hashes_with_owner_only_permissions(settings: Settings) -> None:
    key_file = KeyFile.in_dir(settings.data_dir)
    key, token = key_file.create(["engine"], label="crm-sync")
    text = key_file.path.read_text()
    assert token not in text
    assert token.removeprefix("rpn_") not in text
    document = json.loads(text)
    assert [k["key_id"] for k in document["keys"]] == [key.key_id]
    assert stat.S_IMODE(key_file.path.stat().st_mode) == 0o600
    # The same token hashes differently under another deployment's salt.
    other = KeyFile(settings.data_dir / "other.json")
    assert other.load().authenticate(token) is None
    assert key_file.load().authenticate(token) is not None


def test_keys_from_settings_are_accepted_with_their_scope(tmp_path: Path) -> None:
    tokens = SecretStr("tok-aaaaaaaa, tok-bbbbbbbb")
    settings = Settings(data_dir=tmp_path / "data", api_keys={"engine": tokens})
    with running_client(settings) as client:
        for token in ("tok-aaaaaaaa", "tok-bbbbbbbb"):
            response = client.post("/v1/events", json={"events": [event(1)]}, headers={"X-API-Key": token})
            assert response.status_code == 202
        assert client.get("/v1/content", headers={"X-API-Key": "tok-aaaaaaaa"}).status_code == 403
    # Settings keys are never written to the key file.
    KeyFile.in_dir(settings.data_dir).create(["admin"])
    assert "tok-aaaaaaaa" not in KeyFile.in_dir(settings.data_dir).path.read_text()


def test_keys_created_or_revoked_take_effect_on_a_running_server(settings: Settings) -> None:
    key_file = KeyFile.in_dir(settings.data_dir)
    with running_client(settings) as client:
        client.app.state.ripen.keys.check_interval = 0.0  # type: ignore[attr-defined]
        assert client.get("/v1/content", headers={"X-API-Key": "rpn_later"}).status_code == 401
        key, token = key_file.create(["admin"])
        assert client.get("/v1/content", headers={"X-API-Key": token}).status_code == 200
        assert key_file.revoke(key.key_id)
        assert client.get("/v1/content", headers={"X-API-Key": token}).status_code == 401
        # A broken key file keeps the last good keys instead of locking everyone out.
        _, kept = key_file.create(["admin"])
        assert client.get("/v1/content", headers={"X-API-Key": kept}).status_code == 200
        key_file.path.write_text("{not json")
        assert client.get("/v1/content", headers={"X-API-Key": kept}).status_code == 200


def test_revoked_key_is_refused_after_restart(settings: Settings) -> None:
    key_file = KeyFile.in_dir(settings.data_dir)
    key, token = key_file.create(["admin"])
    with running_client(settings) as client:
        assert client.get("/v1/content", headers={"X-API-Key": token}).status_code == 200
    assert key_file.revoke(key.key_id)
    assert not key_file.revoke(key.key_id)
    with running_client(settings) as client:
        assert client.get("/v1/content", headers={"X-API-Key": token}).status_code == 401


def test_no_keys_means_every_protected_route_is_closed(settings: Settings) -> None:
    with running_client(settings) as client:
        assert client.get("/v1/content", headers={"X-API-Key": ""}).status_code == 401
        assert client.get("/v1/content", headers={"X-API-Key": "anything"}).status_code == 401


def test_keys_never_appear_in_logs_but_key_ids_do(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    key, token = KeyFile.in_dir(settings.data_dir).create(["engine"])
    with debug_logging(), running_client(settings) as client:
        client.post("/v1/events", json={"events": [event(1)]}, headers={"X-API-Key": token})
        client.get("/v1/content", headers={"X-API-Key": token})
    logs = capsys.readouterr().err
    assert "route=/v1/events" in logs
    assert key.key_id in logs
    assert token not in logs
    assert token[4:20] not in logs


@pytest.mark.parametrize(
    "scopes, match",
    [
        (["root"], "scope must be one of engine, sales, admin, but got 'root'"),
        ([], "at least one scope"),
        (["engine", "Admin"], "but got 'Admin'"),
    ],
)
def test_bad_scopes_are_refused_by_name(scopes: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_scopes(scopes)


def test_short_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="salt must be at least 16 bytes, but got 4"):
        KeyRing(b"salt")


def test_malformed_key_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    path.write_text('{"salt": "zz", "keys": []}')
    with pytest.raises(ValueError, match="api_keys.json is malformed"):
        KeyFile(path).load()


@pytest.fixture
def cli_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data folder the CLI's settings point at; settings cache and logging restored afterwards."""
    monkeypatch.setenv("RIPEN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    with restored_logging():
        yield tmp_path / "data"
    get_settings.cache_clear()


def test_cli_creates_a_key_that_the_server_accepts(cli_data_dir: Path) -> None:
    result = CliRunner().invoke(cli_app, ["keys", "create", "--scope", "engine", "--label", "journey"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    principal = KeyFile.in_dir(cli_data_dir).load().authenticate(token)
    assert principal is not None and principal.scopes == {Scope.ENGINE}
    listed = CliRunner().invoke(cli_app, ["keys", "list"])
    assert principal.key_id in listed.stdout and token not in listed.stdout
    bad = CliRunner().invoke(cli_app, ["keys", "create", "--scope", "root"])
    assert bad.exit_code != 0 and "root" in bad.output

"""Settings: the embedded default needs no server; production uses PostgreSQL and Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ripen.settings import Settings


def test_embedded_default_uses_files_under_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.event_store_url == f"sqlite:///{tmp_path / 'events.db'}"
    assert s.online_store == "sqlite"
    assert s.mlflow_tracking_uri.startswith("sqlite:///") and s.mlflow_tracking_uri.endswith("mlflow.db")
    assert s.mlflow_artifact_root.startswith("file://")


def test_production_profile_points_at_servers() -> None:
    s = Settings(
        profile="production", postgres_url="postgresql://u@db:5432/ripen", redis_url="redis://cache:6379/0"
    )
    assert s.event_store_url == "postgresql://u@db:5432/ripen"
    assert s.online_store == "redis"
    assert s.mlflow_tracking_uri == "postgresql+psycopg://u@db:5432/ripen"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RIPEN_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("RIPEN_MAX_CLOCK_SKEW_SECONDS", "60")
    monkeypatch.setenv("RIPEN_ONLINE_STORE", "redis")
    s = Settings()
    assert s.data_dir == tmp_path / "d"
    assert s.max_clock_skew_seconds == 60
    assert s.online_store == "redis"


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "ripen.toml"
    config.write_text('profile = "production"\nseed = 11\nmax_batch_events = 10\n')
    monkeypatch.setenv("RIPEN_CONFIG", str(config))
    monkeypatch.setenv("RIPEN_SEED", "12")
    s = Settings()
    assert s.profile == "production"
    assert s.max_batch_events == 10
    assert s.seed == 12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"profile": "cloud"}, "profile"),
        ({"online_store": "memcached"}, "online_store"),
        ({"max_properties_bytes": 0}, "max_properties_bytes"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_redacted_settings_hide_api_keys(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, api_keys={"engine": "super-secret-key"})  # type: ignore[dict-item]
    dumped = str(s.redacted())
    assert "super-secret-key" not in dumped
    assert "engine" in dumped

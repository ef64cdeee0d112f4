"""One settings object for every ripen process: stores, their URLs and the knobs operators turn.

Values come, highest priority first, from keyword arguments, environment variables (``RIPEN_*``), a TOML
file named by ``RIPEN_CONFIG`` and the defaults below. The ``embedded`` profile needs no server: every store
is a file under ``data_dir``. The ``production`` profile points at PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Profile = Literal["embedded", "production"]
OnlineStoreKind = Literal["sqlite", "redis"]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/ripen"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    """Where ripen keeps its state and how it behaves; see ``docs/configuration.md``."""

    model_config = SettingsConfigDict(env_prefix="RIPEN_", extra="forbid", validate_default=True)

    profile: Profile = "embedded"
    data_dir: Path = Field(default=Path("data"), description="Root of every embedded store.")
    datasets_dir: Path = Field(
        default=Path("../shared/datasets"), description="The shared real datasets (lead scoring, telco, OBD)."
    )

    event_store_url: str = Field(
        default="", description="sqlite:///path or postgresql://...; derived if empty."
    )
    online_store: OnlineStoreKind | None = Field(
        default=None, description="Feast online store; by profile if unset."
    )
    redis_url: str = DEFAULT_REDIS_URL
    redis_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How long a Redis connect, read or write may stall before it fails (recommend then "
        "answers degraded from the stage-fit fallback; events stay stored).",
    )
    postgres_url: str = DEFAULT_POSTGRES_URL
    serving_statement_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a PostgreSQL connect or statement of `ripen serve` may take before it fails "
        "(the route answers 503; batch jobs and exports have no limit).",
    )
    mlflow_tracking_uri: str = Field(default="", description="MLflow backend store; derived if empty.")
    mlflow_artifact_root: str = Field(
        default="", description="Where MLflow puts artifacts; derived if empty."
    )

    max_clock_skew_seconds: int = Field(
        default=300, ge=0, description="How far in the future an event may be."
    )
    max_properties_bytes: int = Field(
        default=16_384, gt=0, description="Largest accepted event properties (JSON)."
    )
    max_batch_events: int = Field(default=5_000, gt=0, description="Largest accepted events batch.")
    max_request_bytes: int = Field(
        default=5 * 1024 * 1024,
        gt=0,
        description="Largest accepted HTTP request body (bytes); larger gets 413.",
    )
    champion_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often serving checks the registry's champion aliases and swaps in promoted models.",
    )
    seed: int = 7
    max_batch_contacts: int = Field(
        default=1_000, gt=0, description="Most contacts per POST /v1/recommend/batch; larger gets 413."
    )
    recommend_max_batch: int = Field(
        default=16,
        gt=0,
        description="Most concurrent POST /v1/recommend requests decided in one batch (1: no batching).",
    )
    batch_unknown_contacts: Literal["cold_start", "reject"] = Field(
        default="cold_start",
        description="Batch decisions for contacts without profile or features: cold start or reject.",
    )
    batch_chunk_size: int = Field(
        default=20_000, gt=0, description="Contacts decided and checkpointed together by batch jobs."
    )

    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Scope -> comma-separated API keys; read from RIPEN_API_KEYS (JSON).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("RIPEN_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @model_validator(mode="after")
    def _derive_store_urls(self) -> Settings:
        production = self.profile == "production"
        if not self.event_store_url:
            self.event_store_url = (
                self.postgres_url if production else f"sqlite:///{self.data_dir / 'events.db'}"
            )
        if self.online_store is None:
            self.online_store = "redis" if production else "sqlite"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = (
                self.postgres_url.replace("postgresql://", "postgresql+psycopg://")
                if production
                else f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"
            )
        if not self.mlflow_artifact_root:
            self.mlflow_artifact_root = (self.data_dir / "mlartifacts").resolve().as_uri()
        return self

    @property
    def feature_repo_dir(self) -> Path:
        """Generated Feast repository (feature_store.yaml + registry) for this profile."""
        return self.data_dir / "feature_repo"

    @property
    def offline_dir(self) -> Path:
        """Parquet files of the offline side (event exports, feature tables)."""
        return self.data_dir / "offline"

    def ensure_dirs(self) -> None:
        """Create the data folders; called by commands, never at import time."""
        for path in (self.data_dir, self.feature_repo_dir, self.offline_dir):
            path.mkdir(parents=True, exist_ok=True)

    def redacted(self) -> dict[str, Any]:
        """Settings safe to print or log: secrets and URL passwords masked."""
        dumped = self.model_dump(mode="json", exclude={"api_keys"})
        dumped["api_keys"] = sorted(self.api_keys)
        return dumped


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; an ``lru_cache`` dependency so tests can override or clear it."""
    return Settings()

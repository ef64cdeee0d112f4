"""Shared fixtures: isolated settings, real PostgreSQL and Redis, the shared real datasets.

PostgreSQL and Redis are real servers (127.0.0.1:5432 and :6379 by default, started by ``.ci/run``). Each test
test gets its own fresh PostgreSQL database and each worker its own Redis database number.
Missing services or datasets skip the tests that need them, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ripen.settings import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO_ROOT = Path(__file__).resolve().parent.parent


def unavailable(reason: str) -> None:
    """Skip locally with the reason; fail under CI, where a missing service or dataset is a broken setup."""
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-profile settings with every store under a fresh temporary folder."""
    s = Settings(data_dir=tmp_path / "data", datasets_dir=datasets_root())
    s.ensure_dirs()
    return s


def datasets_root() -> Path:
    """The one setting locating the shared datasets (``RIPEN_DATASETS_DIR``, default ../shared/datasets)."""
    configured = os.environ.get("RIPEN_DATASETS_DIR")
    return Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "datasets").resolve()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    root = datasets_root()
    if not (root / "README.md").exists():
        unavailable(f"shared datasets not found at {root} (set RIPEN_DATASETS_DIR)")
    return root


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of a PostgreSQL server we may create databases on."""
    url = os.environ.get("RIPEN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        unavailable(f"PostgreSQL not reachable at {url}: {exc}")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"ripen_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    url = os.environ.get("RIPEN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"Redis not reachable at {url}: {exc}")
    return url


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A Redis database number of its own for one test, flushed before and after.

    Tests in one xdist worker run one at a time, so a database number per worker never collides.
    """
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    db = 1 + int(worker.removeprefix("gw")) % 15
    url = f"{redis_server_url.rstrip('/')}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()

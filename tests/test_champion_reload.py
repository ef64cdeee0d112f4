"""Champions at runtime with real MLflow: hot reload on promotion without a failed request, refusal of a
corrupted version, and the disk cache serving the same versions when the registry is unreachable at start."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ripen.settings import Settings
from tests.api_support import Keys, make_keys, running_client
from tests.decision_world import build_world
from tests.test_registry import _scorer_artifact
from training.champions import READINESS_MODEL, champion_cache, load_champions
from training.registry import CHAMPION
from training.scorer_training import train_and_register
from training.tracking import mlflow_client

POLL_SECONDS = 0.2
WAIT_POLLS = 100
"""Upper bound (in poll intervals) to wait for a swap before failing, generous for a loaded 2-core machine."""


def readiness_frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Snapshots whose feature columns are names of the online model row: more points, more often ready.

    Training sees floats where the online row holds an int (``events_total``) and a bool (``sales_alert``),
    as in the demo: serving must cast them, or every prediction fails and the points score stands in.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "points_score_now": rng.uniform(0, 200, n),
            "events_total": rng.poisson(5, n).astype(float),
            "sales_alert": rng.integers(0, 2, n).astype(float),
        }
    )
    frame["label"] = (rng.random(n) < frame["points_score_now"] / 250).astype(int)
    frame["snapshot_time"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        rng.uniform(0, 400, n), "D"
    )
    return frame.sort_values("snapshot_time").reset_index(drop=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str, str]:
    """The decision world with two registered readiness versions; returns settings, v1 and v2."""
    root: Path = tmp_path_factory.mktemp("reload")
    settings = Settings(
        data_dir=root / "data", datasets_dir=root / "datasets", champion_poll_seconds=POLL_SECONDS
    )
    build_world(settings)
    day = pd.Timedelta(days=1)
    first = train_and_register(
        readiness_frame(), kind="readiness", settings=settings, params={"n_estimators": 20}, horizon=day
    )
    second = train_and_register(
        readiness_frame(seed=1), kind="readiness", settings=settings, params={"n_estimators": 5}, horizon=day
    )
    return settings, first.version, second.version


@pytest.fixture(scope="module")
def keys(world: tuple[Settings, str, str]) -> Keys:
    return make_keys(world[0])


def promote(settings: Settings, version: str) -> None:
    mlflow_client(settings).set_registered_model_alias(READINESS_MODEL, CHAMPION, version)


def readiness_version(client: TestClient, keys: Keys) -> str:
    response = client.post(
        "/v1/recommend", json={"contact_id": "c-ready", "channel": "email"}, headers=keys.engine
    )
    assert response.status_code == 200, response.text
    version: str = response.json()["versions"]["readiness"]
    return version


def models_detail(client: TestClient) -> str:
    body = client.get("/readyz").json()
    detail: str = next(c["detail"] for c in body["checks"] if c["name"] == "models")
    return detail


def wait_for(condition: Any, what: str) -> None:
    for _ in range(WAIT_POLLS):
        if condition():
            return
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"not within {WAIT_POLLS} poll intervals: {what}")


@pytest.mark.slow
def test_promotion_is_served_without_a_failed_request_and_a_corrupted_one_is_refused(
    world: tuple[Settings, str, str], keys: Keys
) -> None:
    settings, v1, v2 = world
    promote(settings, v1)
    with running_client(settings) as client:
        assert readiness_version(client, keys) == f"{READINESS_MODEL}/{v1}"
        seen: list[tuple[int, str]] = []
        stop = threading.Event()

        def keep_recommending() -> None:
            while not stop.is_set():
                r = client.post(
                    "/v1/recommend", json={"contact_id": "c-ready", "channel": "email"}, headers=keys.engine
                )
                seen.append(
                    (r.status_code, r.json()["versions"]["readiness"] if r.status_code == 200 else "")
                )

        caller = threading.Thread(target=keep_recommending)
        caller.start()
        try:
            wait_for(lambda: len(seen) >= 3, "first requests answered")
            promote(settings, v2)
            wait_for(lambda: seen and seen[-1][1] == f"{READINESS_MODEL}/{v2}", "v2 served")
            served_from = len(seen)
            wait_for(lambda: len(seen) >= served_from + 3, "requests after the swap")
        finally:
            stop.set()
            caller.join()
        assert {status for status, _ in seen} == {200}, "a request failed during the reload"
        versions = [v for _, v in seen]
        switch = versions.index(f"{READINESS_MODEL}/{v2}")
        assert set(versions[:switch]) == {f"{READINESS_MODEL}/{v1}"}
        assert set(versions[switch:]) == {f"{READINESS_MODEL}/{v2}"}, "an old model served after the swap"
        assert models_detail(client).startswith(f"readiness={READINESS_MODEL}/{v2}, churn=none")
        assert models_detail(client).endswith("(registry)")
        metrics = client.get("/metrics").text
        assert (
            f'ripen_model_version_info{{model="readiness",version="{READINESS_MODEL}/{v2}"}} 1.0' in metrics
        )
        assert f'version="{READINESS_MODEL}/{v1}"' not in metrics
        assert 'ripen_model_reloads_total{outcome="swapped"} 1.0' in metrics

        # someone promotes a corrupted version: refused, the served one stays
        client_ = mlflow_client(settings)
        artifact = _scorer_artifact(client_.get_model_version(READINESS_MODEL, v1).source)
        intact = artifact.read_bytes()
        artifact.write_bytes(b"not a pickle")
        try:
            promote(settings, v1)
            pipeline = client.app.state.ripen.pipeline  # type: ignore[attr-defined]
            wait_for(lambda: f"{READINESS_MODEL}/{v1}" in pipeline.champions.refused, "v1 refused")
            assert readiness_version(client, keys) == f"{READINESS_MODEL}/{v2}"
            assert models_detail(client).startswith(f"readiness={READINESS_MODEL}/{v2}")
        finally:
            artifact.write_bytes(intact)
            promote(settings, v2)
    cache = champion_cache(settings).cached(READINESS_MODEL)
    assert cache is not None and cache.version == v2  # the refused copy was never cached


def copy_world(settings: Settings, tmp_path: Path) -> Settings:
    """An independent copy of the world's data folder (the registry's artifacts stay where they are)."""
    data = tmp_path / "data"
    shutil.copytree(settings.data_dir, data, ignore=shutil.ignore_patterns("champions"))
    return Settings(data_dir=data, datasets_dir=settings.datasets_dir, champion_poll_seconds=POLL_SECONDS)


@pytest.mark.slow
def test_cached_champions_serve_when_the_registry_is_unreachable_at_start(
    world: tuple[Settings, str, str], keys: Keys, tmp_path: Path
) -> None:
    settings = copy_world(world[0], tmp_path)
    with running_client(settings) as client:
        served = readiness_version(client, keys)
        assert served.startswith(f"{READINESS_MODEL}/")
        assert models_detail(client).endswith("(registry)")
    manifest = champion_cache(settings).cached(READINESS_MODEL)
    assert manifest is not None and served == f"{READINESS_MODEL}/{manifest.version}"
    assert (manifest.path / "MLmodel").exists()

    registry = Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///"))
    registry.write_bytes(b"this is not a database")  # the SQLite registry is unreadable now
    with running_client(settings) as client:
        assert readiness_version(client, keys) == served
        detail = models_detail(client)
        assert detail.startswith(f"readiness={served}") and detail.endswith("(cache: registry unreachable)")
        assert client.get("/readyz").status_code == 200

    postgres_down = settings.model_copy(
        update={"mlflow_tracking_uri": "postgresql+psycopg://postgres@127.0.0.1:9/ripen"}
    )
    champions = load_champions(postgres_down)
    assert champions.source == "cache" and champions.readiness_version == served


def test_nothing_changed_returns_the_same_snapshot(world: tuple[Settings, str, str]) -> None:
    settings = world[0]
    first = load_champions(settings)
    assert first.source == "registry" and first.readiness is not None
    assert load_champions(settings, current=first) is first  # no model reloaded when no alias moved


@pytest.fixture
def no_registry(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(data_dir=tmp_path / "data", datasets_dir=tmp_path / "datasets")
    settings.ensure_dirs()
    yield settings


def test_no_registry_and_no_cache_serve_the_fallbacks(no_registry: Settings) -> None:
    champions = load_champions(no_registry)
    assert champions.source == "none"
    assert champions.versions == {"readiness": "points", "churn": "none", "policy": "cold-start"}

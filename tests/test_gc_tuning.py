"""The serving process's collector settings: frozen at start, thawed and restored when the app stops."""

from __future__ import annotations

import gc
from pathlib import Path

from ripen.settings import Settings
from serving.gc_tuning import GEN0_THRESHOLD
from tests.api_support import running_client


def test_app_freezes_startup_objects_and_restores_the_collector_on_shutdown(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", datasets_dir=tmp_path / "datasets")
    before = gc.get_threshold()
    with running_client(settings) as client:
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before

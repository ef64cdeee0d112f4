"""`ripen serve --workers N`: several worker processes on one port, one set of stores, one /metrics view."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from features.decision_log import open_settings_decision_log
from ripen.settings import Settings
from serving.metrics import MULTIPROCESS_DIR_ENV, WORKERS_METRICS_ENV, ServingMetrics, multiprocess_metrics
from tests.server_process import free_port, ripen_process, wait_until_up


def _count_in_worker(folder: str, decisions: int) -> None:
    """A worker process: counts decisions into the shared metric folder, as a serving worker does."""
    assert os.environ[MULTIPROCESS_DIR_ENV] == folder  # inherited, as uvicorn's spawned workers inherit it
    metrics = ServingMetrics()
    metrics.count_decision("content", decisions)
    metrics.set_model_version("ripen-readiness", "3")


def _sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert found, f"{name} missing from the exposition"
    return float(found.group(1))


def test_metrics_of_worker_processes_add_up() -> None:
    spawn = multiprocessing.get_context("spawn")  # as uvicorn starts its workers
    with multiprocess_metrics() as folder:
        workers = [spawn.Process(target=_count_in_worker, args=(folder, n)) for n in (3, 5)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
            assert worker.exitcode == 0
        text = ServingMetrics().render()[0].decode()
    assert _sample(text, 'ripen_decisions_total{action="content"}') == 8
    assert _sample(text, 'ripen_model_version_info{model="ripen-readiness",version="3"}') == 1
    assert WORKERS_METRICS_ENV not in os.environ and not Path(folder).exists()  # nothing left behind


def test_one_process_renders_its_own_metrics_even_after_feast_set_a_multiprocess_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import feast.metrics  # noqa: F401 - on import it points PROMETHEUS_MULTIPROC_DIR at a folder of its own

    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, "/nonexistent-feast-folder")
    metrics = ServingMetrics()
    metrics.count_decision("wait", 2)
    assert _sample(metrics.render()[0].decode(), 'ripen_decisions_total{action="wait"}') == 2


def test_two_workers_decide_log_and_count_every_request(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "RIPEN_DATA_DIR": str(data)}
    env.pop(MULTIPROCESS_DIR_ENV, None)
    env.pop(WORKERS_METRICS_ENV, None)
    ripen = [sys.executable, "-m", "ripen"]
    created = subprocess.run(
        [*ripen, "keys", "create", "--scope", "engine"], env=env, capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    port = free_port()
    server = ripen_process("--log-level", "INFO", "serve", "--port", str(port), "--workers", "2", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, f"{base}/readyz")

        def recommend(i: int) -> int:
            body = {"contact_id": f"c{i:03d}", "channel": "email"}
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
                return client.post("/v1/recommend", json=body).status_code  # a new connection each: the
            # kernel hands it to either worker (often the same one, so the cross-process sum is proven by
            # test_metrics_of_worker_processes_add_up; here every request must be counted and logged)

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(recommend, range(30)))
        assert statuses == [200] * 30
        text = httpx.get(f"{base}/metrics", timeout=10).text
        assert _sample(text, 'ripen_decisions_total{action="nothing_eligible"}') == 30
        served = 'ripen_http_request_duration_seconds_count{method="POST",route="/v1/recommend",status="200"}'
        assert _sample(text, served) == 30
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert output.count("serving_started") == 2, output[-2000:]
    assert "Traceback" not in output
    with open_settings_decision_log(Settings(data_dir=data)) as log:
        assert log.count() == 30  # every answered decision was logged, whichever worker took it

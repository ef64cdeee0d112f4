"""`ripen keys create` and `ripen serve` as an operator runs them: real processes, a real uvicorn server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.server_process import free_port, ripen_process, wait_until_up


def test_serve_answers_with_a_key_made_by_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "RIPEN_DATA_DIR": str(tmp_path / "data")}
    ripen = [sys.executable, "-m", "ripen"]
    created = subprocess.run(
        [*ripen, "keys", "create", "--scope", "admin"], env=env, capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("rpn_") and key not in (tmp_path / "data" / "api_keys.json").read_text()

    port = free_port()
    server = ripen_process("--log-level", "INFO", "serve", "--port", str(port), env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(server, f"{base}/readyz", timeout=90)
        assert httpx.get(f"{base}/v1/content", timeout=5).status_code == 401
        listed = httpx.get(f"{base}/v1/content", headers={"X-API-Key": key}, timeout=5)
        assert listed.status_code == 200 and listed.json() == {"count": 0, "items": []}
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "route=/v1/content" in output and "status=200" in output
    assert key not in output

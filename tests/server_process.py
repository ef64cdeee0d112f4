"""For tests that run `ripen serve` (or `ripen demo`) as a real process: a free port, wait until up."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Mapping

import httpx


def free_port() -> int:
    """A TCP port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ripen_process(*args: str, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """``python -m ripen ARGS`` in the background, stdout and stderr together as text (the server's log)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ripen", *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_up(process: subprocess.Popen[str], url: str, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail when ``process`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"the server exited before {url} answered"
        assert time.monotonic() < deadline, f"{url} did not answer 200 within {timeout:g} s"
        time.sleep(0.3)

"""HTTP cost of the serving skeleton: `POST /v1/events` (batches, durable before 202) and `GET /healthz`.

Run:  python benchmarks/bench_api_events.py [--seconds 8] [--concurrency 8] [--batch 100]

Starts `ripen serve` (uvicorn, one worker) on the embedded profile in a temporary folder, creates an engine
key, then drives it with an async httpx client at fixed concurrency: first the trivial JSON endpoint, then
event batches. Prints p50/p99 latency, requests/s and events/s. The machine is shared: also prints the load
average, since wall-clock rates swing with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

PORT = 8799


def _events(batch: int) -> list[dict[str, Any]]:
    ts = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return [
        {
            "event_id": uuid.uuid4().hex,
            "contact_id": f"c-{n % 500}",
            "timestamp": ts,
            "type": "email_open",
            "channel": "email",
            "properties": {"campaign": "bench"},
        }
        for n in range(batch)
    ]


async def _drive(
    client: httpx.AsyncClient, seconds: float, concurrency: int, request: Any
) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            response = await request(client)
            latencies.append(time.perf_counter() - start)
            if response.status_code >= 300:
                failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures


def _report(name: str, latencies: list[float], failures: int, seconds: float, per_request: int = 1) -> None:
    q = statistics.quantiles(latencies, n=100)
    rate = len(latencies) / seconds
    extra = f"  {rate * per_request:9.0f} events/s" if per_request > 1 else ""
    print(
        f"{name:28s} n={len(latencies):6d}  p50={q[49] * 1000:7.2f} ms  p99={q[98] * 1000:7.2f} ms  "
        f"{rate:8.1f} req/s{extra}  non-2xx={failures}"
    )


async def _run(args: argparse.Namespace, key: str) -> None:
    base = f"http://127.0.0.1:{PORT}"
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for _ in range(100):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        else:
            raise SystemExit("server did not become ready")

        async def healthz(c: httpx.AsyncClient) -> httpx.Response:
            return await c.get("/healthz")

        lat, bad = await _drive(client, args.seconds, args.concurrency, healthz)
        _report("GET /healthz", lat, bad, args.seconds)

        headers = {"X-API-Key": key}

        async def ingest(c: httpx.AsyncClient) -> httpx.Response:
            return await c.post("/v1/events", json={"events": _events(args.batch)}, headers=headers)

        lat, bad = await _drive(client, args.seconds, args.concurrency, ingest)
        _report(f"POST /v1/events (batch {args.batch})", lat, bad, args.seconds, per_request=args.batch)

        async def single(c: httpx.AsyncClient) -> httpx.Response:
            return await c.post("/v1/events", json={"events": _events(1)}, headers=headers)

        lat, bad = await _drive(client, args.seconds, args.concurrency, single)
        _report("POST /v1/events (batch 1)", lat, bad, args.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RIPEN_DATA_DIR": str(Path(tmp) / "data")}
        ripen = [sys.executable, "-m", "ripen"]
        key = subprocess.run(
            [*ripen, "keys", "create", "--scope", "engine"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        server = subprocess.Popen(
            [*ripen, "serve", "--port", str(PORT)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(_run(args, key))
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"concurrency={args.concurrency}  load average={os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()

"""Load benchmark of `ripen serve` on the demo state: recommend (50 candidates), recommend with explain,
insight and the trivial `GET /healthz`, in one run.

Run:  python benchmarks/bench_api_load.py [--data-dir DIR] [--seconds 10] [--rate 100] [--concurrency 8]
      [--json] [--profile 10 --py-spy PATH] [--goals-only] [--http-floor] [--workers N]

Builds the demo state with `ripen demo --no-serve` (or reuses ``--data-dir`` when it holds one), creates an
engine+sales key, starts `ripen serve` (uvicorn, one worker, a real server process) on a free port and
measures each endpoint twice:

- at a fixed arrival rate (``--rate`` requests/s, open loop, a lean asyncio HTTP/1.1 client over keep-alive
  connections in this process): latency is taken from each request's *scheduled* start, so a stalled server
  is not hidden (no coordinated omission);
- at fixed concurrency (``--concurrency`` connections, closed loop) for throughput: wrk with a Lua script when
  installed (``apt-get install wrk``; light on the shared CPUs), else the same asyncio client.

Goals (issue #6): recommend p99 <= 10 ms at 100 requests/s, and recommend throughput >= 1/3 of /healthz's.
With ``--http-floor`` a second server (``http_floor_server.py``) replays each request's first decision, and
/healthz and recommend are measured on it at fixed concurrency: recommend's throughput with every cost but
the decision, and from it the server time per decision that the 1/3 goal leaves.
With ``--profile`` the server is sampled with py-spy during a closed-loop recommend run and the functions with
the most samples are printed. The machine is shared: the load average is printed with the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

CANDIDATES = 50
GOAL_P99_MS = 10.0
GOAL_THROUGHPUT_SHARE = 1 / 3
console = Console(stderr=True)


@dataclass(frozen=True)
class Measurement:
    """One endpoint under one load: latencies in milliseconds, achieved requests/s, non-2xx answers."""

    endpoint: str
    mode: str
    requests: int
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int
    server_cpu_ms: float | None = None
    mean_batch: float | None = None
    """Mean size of the recommend batches the server coalesced during this measurement (none: 0)."""
    """CPU time of the server process (all threads) per answered request: robust to the shared machine's
    load, unlike latency; on an idle machine the one-process throughput ratio follows its inverse."""


@dataclass(frozen=True)
class Target:
    """One endpoint to drive: method, path per request number, and JSON body per request number."""

    name: str
    method: str
    path: Callable[[int], str]
    body: Callable[[int], dict[str, Any] | None]


def ripen(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ripen", *args], env=env, check=True, text=True, capture_output=True, **kwargs
    )


def demo_state(data_dir: Path, contacts: int, days: int, env: dict[str, str]) -> None:
    """Run `ripen demo --no-serve` into ``data_dir`` unless a previous run left its summary there."""
    summary = data_dir / "bench_demo.json"
    if summary.exists():
        console.print(f"reusing the demo state in {data_dir}")
        return
    console.print(f"building the demo state in {data_dir} ({contacts} contacts, {days} days)...")
    done = ripen(
        "demo", "--no-serve", "--json", "--contacts", str(contacts), "--days", str(days),
        "--data-dir", str(data_dir), env=env,
    )  # fmt: skip
    summary.write_text(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def world(data_dir: Path) -> tuple[list[str], list[str]]:
    """Contact ids with profiles and ``CANDIDATES`` active content ids.

    The demo catalog holds 45 blocks: variants of its first blocks (same stages and formats, new ids) fill it
    up to ``CANDIDATES`` so every recommend really weighs 50 candidates.
    """
    from features.event_store import open_settings_event_store
    from ripen.settings import Settings

    with open_settings_event_store(Settings(data_dir=data_dir)) as store:
        contacts = [p.contact_id for p in store.list_profiles()][:500]
        blocks = store.list_content(active_only=True)
        missing = CANDIDATES - len(blocks)
        if missing > 0:
            extra = [b.model_copy(update={"content_id": f"{b.content_id}-bench"}) for b in blocks[:missing]]
            store.upsert_content(extra)
            blocks = store.list_content(active_only=True)
    return contacts, [b.content_id for b in blocks][:CANDIDATES]


def targets(contacts: list[str], candidates: list[str]) -> list[Target]:
    def recommend(explain: bool) -> Callable[[int], dict[str, Any]]:
        return lambda i: {
            "contact_id": contacts[i % len(contacts)],
            "channel": "email",
            "candidate_ids": candidates,
            "explain": explain,
        }

    return [
        Target("GET /healthz", "GET", lambda i: "/healthz", lambda i: None),
        Target("POST /v1/recommend (50 cand.)", "POST", lambda i: "/v1/recommend", recommend(False)),
        Target("POST /v1/recommend explain", "POST", lambda i: "/v1/recommend", recommend(True)),
        Target(
            "GET /v1/contacts/{id}/insight",
            "GET",
            lambda i: f"/v1/contacts/{contacts[i % len(contacts)]}/insight",
            lambda i: None,
        ),
    ]


def summarize(target: Target, mode: str, latencies: list[float], errors: int, seconds: float) -> Measurement:
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return Measurement(
        target.name,
        mode,
        len(latencies),
        q[49] * 1000,
        q[98] * 1000,
        (len(latencies) - errors) / seconds,
        errors,
    )


DEGRADED: Counter[str] = Counter()
"""Answers flagged ``degraded: true`` per endpoint (the online store failed: the fallback decided)."""


class Connections:
    """Keep-alive HTTP/1.1 connections speaking pre-encoded requests: a client light enough that the shared
    CPUs go to the server (httpx costs about a millisecond of client CPU per request)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.size = size
        self.lost = 0

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def close(self) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request on an idle connection (waiting for one if all are busy); status and body.

        A connection the server closed while idle (keep-alive timeout) is reopened and the request sent again
        once; any other failure is status 599.
        """
        reader, writer = await self.idle.get()
        try:
            return await self._exchange(raw, reader, writer)
        except asyncio.CancelledError:  # abandoned mid-request: the connection's state is unknown, drop it
            writer.close()
            self.lost += 1
            raise

    async def refill(self) -> None:
        """Open new connections for those dropped by cancelled requests."""
        while self.lost:
            self.lost -= 1
            self.idle.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def _exchange(
        self, raw: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError) as exc:
                writer.close()
                reader, writer = await asyncio.open_connection(self.host, self.port)
                unanswered = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if attempt == 1 and unanswered:
                    continue
                self.idle.put_nowait((reader, writer))
                return 599, b""
            break
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await reader.readexactly(length)
        self.idle.put_nowait((reader, writer))
        return status, body


def encode(target: Target, i: int, host: str, key: str) -> bytes:
    body = target.body(i)
    payload = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{target.method} {target.path(i)} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def send(pool: Connections, target: Target, raw: bytes) -> int:
    status, body = await pool.send(raw)
    if status == 200 and b'"degraded":true' in body:
        DEGRADED[target.name] += 1
    return status


async def fixed_rate(
    pool: Connections,
    target: Target,
    requests: list[bytes],
    rate: float,
    seconds: float,
    tick: Callable[[], None],
    drain: float = 30.0,
) -> Measurement:
    """Open loop: request i is due at start + i / rate; its latency counts from then.

    Requests still unanswered ``drain`` seconds after the last was sent are cancelled and counted as errors
    (their latency is the lower bound reached by then); the rate reported is answers per elapsed second.
    """
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()

    async def one(i: int, due: float) -> None:
        nonlocal errors
        status = await send(pool, target, requests[i % len(requests)])
        latencies.append(time.perf_counter() - due)
        errors += status >= 300

    tasks = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
        tick()
    _, late = await asyncio.wait(tasks, timeout=drain)
    for task in late:  # a server far below the rate: stop waiting, count them as failed, latency so far
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    await pool.refill()
    now = time.perf_counter()
    latencies.extend(now - (start + i / rate) for i, task in enumerate(tasks) if task in late)
    measured = summarize(target, f"{rate:g} req/s", latencies, errors + len(late), now - start)
    if late:  # the server still works off the cancelled requests: let it, so the next run starts clean
        console.print(f"{len(late)} requests unanswered after the drain; waiting for the server to catch up")
        for i in range(3):
            await asyncio.wait_for(send(pool, target, requests[i]), timeout=300)
    return measured


async def closed_loop(
    pool: Connections, target: Target, requests: list[bytes], concurrency: int, seconds: float
) -> Measurement:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            errors += await send(pool, target, requests[next(counter) % len(requests)]) >= 300
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summarize(target, f"c={concurrency}", latencies, errors, time.perf_counter() - started)


LUA = """
local requests = {%(requests)s}
local n = 0
request = function()
  n = n + 1
  local r = requests[(n %% #requests) + 1]
  return wrk.format(r[1], r[2], {["Content-Type"] = "application/json", ["X-API-Key"] = "%(key)s"}, r[3])
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "non2xx": %%d, '
    .. '"socket_errors": %%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


def closed_loop_wrk(
    wrk: str, base: str, key: str, target: Target, concurrency: int, seconds: float, workdir: Path
) -> Measurement:
    """wrk -t1 with a Lua script cycling through 200 prepared requests; parses the script's JSON line."""

    def lua_string(text: str) -> str:
        return "[==[" + text + "]==]"

    prepared = []
    for i in range(200):
        body = target.body(i)
        prepared.append(
            "{"
            + ", ".join(
                (
                    lua_string(target.method),
                    lua_string(target.path(i)),
                    lua_string(json.dumps(body)) if body is not None else "nil",
                )
            )
            + "}"
        )
    script = workdir / "bench.lua"
    script.write_text(LUA % {"requests": ",\n".join(prepared), "key": key})
    out = subprocess.run(
        [wrk, "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next(row for row in reversed(out.splitlines()) if row.startswith("{"))
    r = json.loads(line)
    duration = r["duration_us"] / 1e6
    return Measurement(
        target.name,
        f"c={concurrency} (wrk)",
        r["requests"],
        r["p50_us"] / 1000,
        r["p99_us"] / 1000,
        r["requests"] / duration,
        r["non2xx"] + r["socket_errors"],
    )


OUR_PACKAGES = ("serving/", "features/", "models/", "training/", "ripen/")


@dataclass(frozen=True)
class Hotspot:
    """A function's share of the server's samples: anywhere on the stack (inclusive) and on top (own)."""

    frame: str
    inclusive_pct: float
    own_pct: float
    ours: bool


def profile(
    py_spy: str, pid: int, seconds: float, run_load: Callable[[], Any], out: Path, gil_only: bool
) -> list[Hotspot]:
    """Sample the server with py-spy while ``run_load`` runs; frames by share of samples.

    All threads (wall clock: waits on locks and fsync count), or with ``gil_only`` only the thread holding
    the GIL (where the Python CPU goes).
    """
    raw = out / "profile.txt"
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", f"{seconds:g}", "--format", "raw",
         "--output", str(raw), "--nonblocking", "--rate", "200", *(["--gil"] if gil_only else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    run_load()
    spy.wait(timeout=seconds + 60)
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    ours: set[str] = set()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = []
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            path = where.rsplit(":", 1)[0]
            short = f"{name} ({'/'.join(path.split('/')[-2:])})"
            frames.append(short)
            if "site-packages" not in path and any(
                f"/{p}" in path or path.startswith(p) for p in OUR_PACKAGES
            ):
                ours.add(short)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return []
    return [
        Hotspot(frame, 100 * inclusive[frame] / total, 100 * own[frame] / total, frame in ours)
        for frame in set(inclusive)
        if frame in ours or own[frame] / total >= 0.01
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid``, its threads and its live child processes
    (uvicorn's worker processes with ``--workers N``; Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a child that exited meanwhile
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in _children(pid))


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children.extend(int(c) for c in task.read_text().split())
        except FileNotFoundError:
            continue
    return children


async def with_server_cpu(pid: int, base: str, run: Any) -> Measurement:
    """Await ``run`` (a measurement); attach the server's CPU milliseconds per answered request and the mean
    size of the recommend batches it coalesced meanwhile."""
    batches_before = batch_sizes(base)
    before = cpu_seconds(pid)
    measured: Measurement = await run
    cpu = cpu_seconds(pid) - before
    batches, requests = (a - b for a, b in zip(batch_sizes(base), batches_before, strict=True))
    answered = max(measured.requests - measured.errors, 1)
    return replace(
        measured,
        server_cpu_ms=cpu / answered * 1000,
        mean_batch=round(requests / batches, 2) if batches else 0.0,
    )


async def measure(
    args: argparse.Namespace, port: int, key: str, tgts: list[Target], workdir: Path, server_pid: int
) -> list[Measurement]:
    results: list[Measurement] = []
    host = f"127.0.0.1:{port}"
    prepared = {t.name: [encode(t, i, host, key) for i in range(500)] for t in tgts}
    wrk = shutil.which("wrk") if args.client == "wrk" else None
    pool = Connections("127.0.0.1", port, size=max(args.concurrency, 32))
    await pool.open()
    try:
        for i in range(50):  # warm-up: connections, the catalog, the online reader, model code paths
            for target in tgts:
                await send(pool, target, prepared[target.name][i])
        DEGRADED.clear()
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console
        ) as bar:
            for target in tgts:
                task = bar.add_task(f"{target.name} @ {args.rate:g}/s", total=int(args.rate * args.seconds))
                results.append(
                    await with_server_cpu(
                        server_pid,
                        f"http://{host}",
                        fixed_rate(
                            pool,
                            target,
                            prepared[target.name],
                            args.rate,
                            args.seconds,
                            partial(bar.advance, task),
                        ),
                    )
                )
            for target in tgts:
                task = bar.add_task(f"{target.name} c={args.concurrency}", total=1)
                if wrk:
                    run = asyncio.to_thread(
                        closed_loop_wrk,
                        wrk,
                        f"http://{host}",
                        key,
                        target,
                        args.concurrency,
                        args.seconds,
                        workdir,
                    )
                else:
                    run = closed_loop(pool, target, prepared[target.name], args.concurrency, args.seconds)
                results.append(await with_server_cpu(server_pid, f"http://{host}", run))
                bar.advance(task)
    finally:
        await pool.close()
    return results


def title(args: argparse.Namespace) -> str:
    """What was served: worker processes and the stores' profile (``RIPEN_PROFILE``)."""
    workers = "one uvicorn worker" if args.workers == 1 else f"{args.workers} uvicorn workers"
    stores = "PostgreSQL + Redis" if os.environ.get("RIPEN_PROFILE") == "production" else "embedded stores"
    return f"ripen serve under load ({workers}, {stores}, demo champions)"


def print_table(results: list[Measurement], verdict: dict[str, Any], heading: str) -> None:
    table = Table(title=heading)
    columns = ("endpoint", "load", "n", "p50 ms", "p99 ms", "req/s", "non-2xx", "server CPU ms/req", "batch")
    for column in columns:
        table.add_column(column, justify="left" if column in ("endpoint", "load") else "right")
    for m in results:
        table.add_row(
            m.endpoint,
            m.mode,
            str(m.requests),
            f"{m.p50_ms:.2f}",
            f"{m.p99_ms:.2f}",
            f"{m.rps:.0f}",
            str(m.errors),
            f"{m.server_cpu_ms:.2f}" if m.server_cpu_ms is not None else "",
            f"{m.mean_batch:.1f}" if m.mean_batch else "",
        )
    Console(width=150).print(table)
    for name, value in verdict.items():
        print(f"{name}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="Demo state to reuse (built there if absent).")
    parser.add_argument("--contacts", type=int, default=500, help="Demo size when building the state.")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seconds", type=float, default=10.0, help="Duration of each measurement.")
    parser.add_argument("--rate", type=float, default=100.0, help="Arrival rate of the fixed-rate runs.")
    parser.add_argument("--concurrency", type=int, default=8, help="Connections of the throughput runs.")
    parser.add_argument("--client", choices=("wrk", "asyncio"), default="wrk", help="Throughput client.")
    parser.add_argument("--workers", type=int, default=1, help="Worker processes of `ripen serve`.")
    parser.add_argument("--profile", type=float, default=0.0, help="Seconds of py-spy sampling (0: none).")
    parser.add_argument(
        "--profile-gil", action="store_true", help="Sample only the GIL holder (CPU), not every thread."
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="py-spy executable.")
    parser.add_argument(
        "--http-floor",
        action="store_true",
        help="Also measure recommend with its decisions replayed (benchmarks/http_floor_server.py), c only.",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON document instead of a table.")
    parser.add_argument(
        "--goals-only",
        action="store_true",
        help="Measure only what the goals compare (/healthz and plain recommend): a quicker run.",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        data_dir = (args.data_dir or workdir / "data").resolve()
        env = {**os.environ, "RIPEN_DATA_DIR": str(data_dir)}
        env.pop("RIPEN_API_KEYS", None)
        demo_state(data_dir, args.contacts, args.days, env)
        contacts, candidates = world(data_dir)
        key = ripen("keys", "create", "--scope", "engine", "--scope", "sales", "--label", "bench", env=env)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = workdir / "server.log"
        serve = ["-m", "ripen", "serve", "--port", str(port), "--workers", str(args.workers)]
        with server_process(serve, env, log_path) as server_pid:
            models = wait_ready(base)
            console.print(f"server ready: {models}")
            tgts = targets(contacts, candidates)[: 2 if args.goals_only else None]
            results = asyncio.run(measure(args, port, key.stdout.strip(), tgts, workdir, server_pid))
            hotspots: list[Hotspot] = []
            if args.profile > 0:
                wrk = shutil.which("wrk") or "wrk"
                hotspots = profile(
                    args.py_spy,
                    server_pid,
                    args.profile,
                    lambda: closed_loop_wrk(
                        wrk, base, key.stdout.strip(), tgts[1], args.concurrency, args.profile, workdir
                    ),
                    workdir,
                    args.profile_gil,
                )
        floor: list[Measurement] = []
        if args.http_floor:
            floor = http_floor(args, env, key.stdout.strip(), targets(contacts, candidates)[:2], workdir)
        server_errors = [line for line in log_path.read_text().splitlines() if "[error" in line][:5]
    rec_rate = results[1]
    health_tp = next(m for m in results if m.endpoint == "GET /healthz" and m.mode.startswith("c="))
    rec_tp = next(
        m for m in results if m.endpoint.startswith("POST /v1/recommend (") and m.mode.startswith("c=")
    )
    verdict = {
        "recommend p99 at rate (ms)": round(rec_rate.p99_ms, 2),
        f"goal p99 <= {GOAL_P99_MS:g} ms": rec_rate.p99_ms <= GOAL_P99_MS,
        "recommend / healthz throughput": round(rec_tp.rps / health_tp.rps, 3),
        "goal share >= 1/3": rec_tp.rps / health_tp.rps >= GOAL_THROUGHPUT_SHARE,
        "server CPU ms per request at c (healthz, recommend)": (
            round(health_tp.server_cpu_ms or 0.0, 3),
            round(rec_tp.server_cpu_ms or 0.0, 3),
        ),
        "healthz / recommend server CPU per request (the share an idle machine would give)": round(
            (health_tp.server_cpu_ms or 0.0) / (rec_tp.server_cpu_ms or 1.0), 3
        ),
        "mean recommend batch at c": rec_tp.mean_batch,
        **floor_verdict(floor, health_tp),
        "served models": models,
        "degraded answers (fixed-rate runs)": dict(DEGRADED),
        "load average (1 min)": round(os.getloadavg()[0], 2),
        "server errors logged": server_errors,
    }
    if args.json:
        print(
            json.dumps(
                {
                    "results": [asdict(m) for m in results],
                    "http_floor": [asdict(m) for m in floor],
                    "verdict": verdict,
                    "profile": [asdict(h) for h in hotspots],
                }
            )
        )
        return
    print_table(results + floor, verdict, title(args))
    if hotspots:
        scope = "the GIL holder's samples" if args.profile_gil else "all threads' samples"
        print(f"\npy-spy, {args.profile:g} s of closed-loop recommend, share of {scope} in the server:")
        print("  our functions, inclusive % (own %):")
        for h in sorted((h for h in hotspots if h.ours), key=lambda h: -h.inclusive_pct)[:25]:
            print(f"  {h.inclusive_pct:6.1f} ({h.own_pct:5.1f})  {h.frame}")
        print("  any function, own % (on top of the stack):")
        for h in sorted(hotspots, key=lambda h: -h.own_pct)[:20]:
            print(f"  {h.own_pct:6.1f}  {h.frame}")


@contextmanager
def server_process(argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[int]:
    """A server started as ``python ARGV`` (output to ``log_path``); yields its pid, stops it on exit and
    prints the log's last lines if the body failed."""
    with log_path.open("w") as server_log:
        server = subprocess.Popen(
            [sys.executable, *argv], env=env, stdout=server_log, stderr=subprocess.STDOUT
        )
        try:
            yield server.pid
        except BaseException:
            console.print("server log (last lines):\n" + "\n".join(log_path.read_text().splitlines()[-15:]))
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)


def http_floor(
    args: argparse.Namespace, env: dict[str, str], key: str, tgts: list[Target], workdir: Path
) -> list[Measurement]:
    """/healthz and recommend at fixed concurrency on a server that replays each request's first decision:
    every cost of recommend but the decision itself (``http_floor_server.py``)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    script = str(Path(__file__).with_name("http_floor_server.py"))
    wrk = shutil.which("wrk") if args.client == "wrk" else None
    out = []
    with server_process([script, "serve", "--port", str(port)], env, workdir / "floor.log"):
        wait_ready(base)
        for target in tgts:
            for i in range(200):  # decide each prepared request once: the measurement replays them
                httpx.request(
                    target.method, f"{base}{target.path(i)}", json=target.body(i), headers={"X-API-Key": key}
                )
            if wrk:
                measured = closed_loop_wrk(wrk, base, key, target, args.concurrency, args.seconds, workdir)
            else:
                measured = asyncio.run(_closed_loop_once(args, port, key, target))
            out.append(replace(measured, mode=f"{measured.mode}, decisions replayed"))
    return out


async def _closed_loop_once(args: argparse.Namespace, port: int, key: str, target: Target) -> Measurement:
    """``closed_loop`` on fresh connections (the asyncio client, when wrk is not used)."""
    pool = Connections("127.0.0.1", port, size=args.concurrency)
    await pool.open()
    try:
        prepared = [encode(target, i, f"127.0.0.1:{port}", key) for i in range(200)]
        return await closed_loop(pool, target, prepared, args.concurrency, args.seconds)
    finally:
        await pool.close()


def floor_verdict(floor: list[Measurement], health: Measurement) -> dict[str, Any]:
    """What the replay server says about the throughput goal: recommend's share of /healthz without its
    decision, and the server time per decision left for reaching 1/3 of this run's /healthz."""
    if not floor:
        return {}
    f_health, f_recommend = floor
    budget_ms = (1 / (GOAL_THROUGHPUT_SHARE * health.rps) - 1 / f_recommend.rps) * 1000
    return {
        "HTTP floor: recommend with decisions replayed / healthz, same server": round(
            f_recommend.rps / f_health.rps, 3
        ),
        "time per decision the 1/3 goal leaves (ms, at this run's healthz)": round(budget_ms, 3),
    }


def batch_sizes(base: str) -> tuple[float, float]:
    """Recommend batches the server coalesced so far and the requests in them, from ``/metrics``."""
    samples = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(("ripen_recommend_batch_size_count", "ripen_recommend_batch_size_sum")):
            name, value = line.split()
            samples[name] = float(value)
    return (
        samples.get("ripen_recommend_batch_size_count", 0.0),
        samples.get("ripen_recommend_batch_size_sum", 0.0),
    )


def wait_ready(base: str) -> str:
    """Poll /readyz until the server answers 200; return its models check detail."""
    for _ in range(300):
        try:
            response = httpx.get(f"{base}/readyz", timeout=2)
            if response.status_code == 200:
                return str(next(c["detail"] for c in response.json()["checks"] if c["name"] == "models"))
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in 60 s")


if __name__ == "__main__":
    main()

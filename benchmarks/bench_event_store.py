"""Ingest rate of the event store (events/s), embedded SQLite and PostgreSQL, at several batch sizes.

Run:  python benchmarks/bench_event_store.py [--events 100000] [--single 2000]

Each cell appends fresh events into a fresh store: ``append`` takes already-validated events (what the API
does after parsing), ``ingest`` starts from raw dicts (validation included, what files and the API edge
cost). Batch size 1 means one committed, durable transaction per event (fsync on SQLite with
synchronous=FULL), so it runs on ``--single`` events only. Export measures the Parquet export (rows/s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from features.event_store import EventStore, open_event_store
from features.schemas import EngagementEvent
from ripen.log_config import configure_logging

TYPES = ("page_view", "email_open", "email_click", "content_download", "webinar_register")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def raw_events(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}-{i}",
            "contact_id": f"c{i % 10_000}",
            "account_id": f"a{i % 1_000}",
            "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
            "type": TYPES[i % len(TYPES)],
            "content_id": f"b{i % 40}",
            "channel": "email",
            "properties": {"campaign": f"k{i % 7}", "position": i % 5},
        }
        for i in range(n)
    ]


@contextmanager
def sqlite_store(root: Path) -> Iterator[EventStore]:
    with open_event_store(f"sqlite:///{root / uuid.uuid4().hex / 'events.db'}") as store:
        yield store


@contextmanager
def postgres_store(server_url: str) -> Iterator[EventStore]:
    name = f"ripen_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with open_event_store(f"{server_url.rsplit('/', 1)[0]}/{name}") as store:
            yield store
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    """Result, wall seconds and this process's CPU seconds (the machine may be shared: both matter)."""
    start, cpu = time.perf_counter(), time.process_time()
    n = fn()
    return n, time.perf_counter() - start, time.process_time() - cpu


Row = tuple[str, int, int, float, float]


def run_cell(store: EventStore, mode: str, batch: int, n: int, tmp: Path) -> list[Row]:
    raws = raw_events(n, f"{mode}-{batch}")
    rows: list[Row] = []
    if mode == "append":
        events = [EngagementEvent.model_validate(r) for r in raws]

        def go() -> int:
            return sum(store.append(events[i : i + batch]).stored for i in range(0, n, batch))
    else:

        def go() -> int:
            return sum(store.ingest(raws[i : i + batch]).stored for i in range(0, n, batch))

    stored, seconds, cpu = timed(go)
    assert stored == n, f"stored {stored} of {n}"
    rows.append((mode, batch, n, seconds, cpu))
    if mode == "append" and batch > 1:

        def resend() -> int:
            return sum(store.append(events[i : i + batch]).duplicates for i in range(0, n, batch))

        again, seconds, cpu = timed(resend)
        assert again == n
        rows.append(("re-append (all duplicates)", batch, n, seconds, cpu))
        written, seconds, cpu = timed(lambda: store.export_parquet(tmp / f"{uuid.uuid4().hex}.parquet"))
        rows.append(("export_parquet", 0, written, seconds, cpu))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000, help="events per batched cell")
    parser.add_argument("--single", type=int, default=2_000, help="events for the batch-size-1 cells")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RIPEN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="server where a throw-away database is created; empty to skip PostgreSQL",
    )
    args = parser.parse_args()
    configure_logging("WARNING")

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"{'backend':<11}{'operation':<28}{'batch':>7}{'events':>9}{'seconds':>9}{'events/s':>11}"
        f"{'client cpu s':>14}"
    )
    with tempfile.TemporaryDirectory(prefix="ripen-bench-") as tmp_name:
        tmp = Path(tmp_name)
        backends: list[tuple[str, Callable[[], Any]]] = [("sqlite", lambda: sqlite_store(tmp))]
        if args.postgres_url:
            backends.append(("postgresql", lambda: postgres_store(args.postgres_url)))
        for backend, opener in backends:
            for batch in args.batch_sizes:
                n = args.single if batch == 1 else args.events
                modes = ("append",) if batch == 1 else ("append", "ingest")
                for mode in modes:
                    with opener() as store:
                        for op, b, count, seconds, cpu in run_cell(store, mode, batch, n, tmp):
                            rate = count / seconds
                            shown = "-" if b == 0 else str(b)
                            print(
                                f"{backend:<11}{op:<28}{shown:>7}{count:>9}{seconds:>9.2f}{rate:>11,.0f}"
                                f"{cpu:>14.2f}",
                                flush=True,
                            )


if __name__ == "__main__":
    main()

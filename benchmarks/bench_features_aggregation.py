"""Aggregation throughput (events/s) and peak memory of the offline feature tables at 1M and 10M events.

Generates synthetic events in the export schema with numpy/pyarrow (vectorised, seconds even at 10M), writes
them
to Parquet, then runs ``features.aggregation.build_offline_tables`` in a fresh child process so its peak RSS
(DuckDB included) is measured alone.

    python benchmarks/bench_features_aggregation.py --events 1000000 10000000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.schemas import STAGE_IDS

TYPES = np.array(
    [
        "page_view",
        "email_sent",
        "email_open",
        "email_click",
        "content_download",
        "form_submit",
        "webinar_attend",
        "workshop",
        "product_usage",
        "support_ticket",
    ]
)
TYPE_P = np.array([0.3, 0.25, 0.15, 0.08, 0.06, 0.04, 0.04, 0.02, 0.04, 0.02])


def _ids(prefix: str, values: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(values).cast(pa.string()), "")


def generate(n: int, path: Path, seed: int = 7) -> None:
    """``n`` events over n/50 contacts, n/500 accounts, 500 content blocks and one year, as Parquet."""
    rng = np.random.default_rng(seed)
    contacts = max(n // 50, 1)
    contact = rng.integers(0, contacts, n)
    start = np.datetime64("2025-01-01T00:00:00", "us").astype(np.int64)
    ts = start + rng.integers(0, 365 * 86_400 * 10**6, n)
    types = TYPES[rng.choice(len(TYPES), n, p=TYPE_P)]
    has_content = rng.random(n) < 0.6
    content = _ids("k", rng.integers(0, 500, n))
    returning = (types == "page_view") & (rng.random(n) < 0.5)
    table = pa.table(
        {
            "event_id": _ids("e", np.arange(n)),
            "contact_id": _ids("c", contact),
            "anonymous_id": pa.nulls(n, pa.string()),
            "account_id": _ids("a", contact // 10),
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "type": pa.array(types),
            "content_id": pc.if_else(pa.array(has_content), content, pa.scalar(None, pa.string())),
            "channel": pa.array(np.where(types == "page_view", "web", "email")),
            "properties": pa.array(np.where(returning, '{"returning":true}', "{}")),
        }
    )
    pq.write_table(table, path, row_group_size=1_000_000)


def contents_frame() -> pd.DataFrame:

    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "content_id": [f"k{i}" for i in range(500)],
            "stages": [list(rng.choice(STAGE_IDS, rng.integers(1, 3), replace=False)) for _ in range(500)],
        }
    )


def _run(path: str, out: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    from features.aggregation import build_offline_tables

    t0 = time.perf_counter()
    result = build_offline_tables(
        Path(path), Path(out), contents=contents_frame(), threads=2, memory_limit="12GB"
    )
    elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((elapsed, peak_mb, result.contact_rows, result.content_rows, result.account_rows))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="ripen-bench-") as tmp:
        for n in args.events:
            path = Path(tmp) / f"events_{n}.parquet"
            t0 = time.perf_counter()
            generate(n, path)
            gen = time.perf_counter() - t0
            queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
            proc = ctx.Process(target=_run, args=(str(path), str(Path(tmp) / f"out_{n}"), queue))
            proc.start()
            elapsed, peak_mb, contact_rows, content_rows, account_rows = queue.get()
            proc.join()
            print(
                f"events={n:>11,}  generate={gen:6.1f}s  aggregate={elapsed:7.1f}s  "
                f"throughput={n / elapsed:>11,.0f} events/s  peak_rss={peak_mb:,.0f} MB  "
                f"rows: contact={contact_rows:,} content={content_rows:,} account={account_rows:,}"
            )


if __name__ == "__main__":
    main()

"""CPU time of one contact insight (``serving.insight.build_insight``) on a demo state, with a profile.

Run:  python benchmarks/bench_insight_cpu.py --data-dir DIR [--calls 300] [--top 15]

Opens the app on ``DIR`` (a `ripen demo --no-serve` state) the way `ripen serve` does, then builds the insight
of ``--calls`` contacts in turn (English and German alternating) in this process: CPU seconds per call
(``time.process_time``, robust to the shared machine's load, unlike wall clock) and the functions with the
most cumulative time under cProfile. HTTP, auth and JSON are left out: `bench_api_load.py` measures the route.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="A `ripen demo --no-serve` state.")
    parser.add_argument("--calls", type=int, default=300, help="Insights to build per measurement.")
    parser.add_argument("--top", type=int, default=15, help="Profile rows to print.")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from ripen.settings import Settings
    from serving.insight import build_insight
    from serving.main import create_app

    with TestClient(create_app(Settings(data_dir=args.data_dir))) as client:
        state = client.app.state.ripen  # type: ignore[attr-defined]
        pipeline, store = state.pipeline, state.event_store.get()
        contacts = [p.contact_id for p in store.list_profiles()][:200]
        print("champions:", pipeline.champions.versions)

        def run() -> list[float]:
            per_call = []
            for i in range(args.calls):
                started = time.process_time()
                build_insight(contacts[i % len(contacts)], store, pipeline, "de" if i % 2 else "en")
                per_call.append(time.process_time() - started)
            return per_call

        run()  # warm-up: caches, compiled scorers, lazy imports
        per_call = run()
        q = statistics.quantiles(per_call, n=100)
        print(
            f"insight CPU ms per call over {args.calls}: mean {statistics.fmean(per_call) * 1000:.2f}, "
            f"p50 {q[49] * 1000:.2f}, p99 {q[98] * 1000:.2f} (load average {os.getloadavg()[0]:.2f})"
        )
        profiler = cProfile.Profile()
        profiler.enable()
        run()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()

"""CPU cost of one decision in process (no HTTP): ``DecisionPipeline.recommend`` and ``recommend_batch``.

Run:  python benchmarks/bench_recommend_cpu.py --data-dir DIR [--calls 300] [--batch 8] [--profile 25]

``DIR`` is a demo state (``benchmarks/bench_api_load.py`` builds one). Prints CPU milliseconds per decision
(``time.process_time``, steadier than wall clock on the shared machine) for the single path and for batches of
``--batch`` contacts, with 50 candidates each as the load benchmark asks, and the load average. With
``--profile N`` the top N functions of a cProfile of the single path (or of the batches, with
``--profile-batch``) are printed (cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import time
from pathlib import Path

from features.event_store import open_settings_event_store
from features.schemas import Channel
from ripen.settings import Settings
from serving.gc_tuning import freeze_startup_objects
from serving.metrics import ServingMetrics
from serving.pipeline import DecisionPipeline, RecommendInput

CANDIDATES = 50


class GcClock:
    """Time spent in cyclic garbage collections (``gc.callbacks``), and how many ran."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._began = 0.0, 0, 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began
            self.collections += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--gc", action="store_true", help="Tune the collector as `ripen serve` does.")
    parser.add_argument("--profile-batch", action="store_true", help="Profile batches, not single calls.")
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    metrics = ServingMetrics()
    pipeline = DecisionPipeline.load(settings)
    with open_settings_event_store(settings) as store:
        contacts = [p.contact_id for p in store.list_profiles()][:500]
        candidates = tuple(b.content_id for b in store.list_content(active_only=True))[:CANDIDATES]

        def request(i: int) -> RecommendInput:
            return RecommendInput(contacts[i % len(contacts)], Channel.EMAIL, candidate_ids=candidates)

        for i in range(20):  # warm caches (content statistics, decoded values, catalog)
            pipeline.recommend(request(i), store, metrics)
        if args.gc:
            freeze_startup_objects()
        clock = GcClock()
        started = time.process_time()
        for i in range(args.calls):
            pipeline.recommend(request(i), store, metrics)
        single = (time.process_time() - started) / args.calls * 1000
        gc_single = (clock.seconds / args.calls * 1000, clock.collections)
        clock.seconds, clock.collections = 0.0, 0
        rounds = max(1, args.calls // args.batch)
        started = time.process_time()
        for r in range(rounds):
            pipeline.recommend_batch([request(r * args.batch + k) for k in range(args.batch)], store, metrics)
        batched = (time.process_time() - started) / (rounds * args.batch) * 1000
        gc_batched = (clock.seconds / (rounds * args.batch) * 1000, clock.collections)
        print(f"load average {os.getloadavg()}")
        print(
            f"single recommend: {single:.3f} CPU ms per decision ({args.calls} calls); "
            f"GC {gc_single[0]:.3f} ms per decision in {gc_single[1]} collections"
        )
        print(
            f"recommend_batch of {args.batch}: {batched:.3f} CPU ms per decision ({rounds} batches); "
            f"GC {gc_batched[0]:.3f} ms per decision in {gc_batched[1]} collections"
        )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            if args.profile_batch:
                for r in range(rounds):
                    batch = [request(r * args.batch + k) for k in range(args.batch)]
                    pipeline.recommend_batch(batch, store, metrics)
            else:
                for i in range(args.calls):
                    pipeline.recommend(request(i), store, metrics)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    pipeline.close()


if __name__ == "__main__":
    main()

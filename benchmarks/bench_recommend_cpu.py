"""CPU cost of one decision in process (no HTTP): ``DecisionPipeline.recommend`` and ``recommend_batch``.

Run:  python benchmarks/bench_recommend_cpu.py --data-dir DIR [--calls 300] [--batch 8] [--profile 25]

``DIR`` is a demo state (``benchmarks/bench_api_load.py`` builds one). Prints CPU milliseconds per decision
(``time.process_time``, steadier than wall clock on the shared machine) for the single path and for batches of
``--batch`` contacts, with 50 candidates each as the load benchmark asks, and the load average. With
``--profile N`` the top N functions of a cProfile of the single path are printed (cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from pathlib import Path

from features.event_store import open_settings_event_store
from features.schemas import Channel
from ripen.settings import Settings
from serving.metrics import ServingMetrics
from serving.pipeline import DecisionPipeline, RecommendInput

CANDIDATES = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--profile", type=int, default=0)
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
        started = time.process_time()
        for i in range(args.calls):
            pipeline.recommend(request(i), store, metrics)
        single = (time.process_time() - started) / args.calls * 1000
        rounds = max(1, args.calls // args.batch)
        started = time.process_time()
        for r in range(rounds):
            pipeline.recommend_batch([request(r * args.batch + k) for k in range(args.batch)], store, metrics)
        batched = (time.process_time() - started) / (rounds * args.batch) * 1000
        print(f"load average {os.getloadavg()}")
        print(f"single recommend: {single:.3f} CPU ms per decision ({args.calls} calls)")
        print(f"recommend_batch of {args.batch}: {batched:.3f} CPU ms per decision ({rounds} batches)")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for i in range(args.calls):
                pipeline.recommend(request(i), store, metrics)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    pipeline.close()


if __name__ == "__main__":
    main()

"""ripen's content policy against the reference policies in the journey simulator, and DR calibration.

Run: python benchmarks/bench_policy_simulator.py [--contacts 2000] [--days 180] [--seed 7]
        [--ope-seeds 20] [--ope-contacts 1000] [--ope-days 60]
Prints the results table (cumulative reward, conversions, ratio to uniform random, share of the weekly and
3-day oracle) and the DR coverage: the share of seeds whose confidence interval holds the true value.
Goals of issue 5 §6: ratio_to_random >= 1.3, share_of_oracle >= 0.8, DR coverage >= 0.9.
"""

from __future__ import annotations

import argparse
import logging
import time

import pandas as pd
import structlog

from training.policy_simulation import compare_policies, ope_coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ope-seeds", type=int, default=20)
    parser.add_argument("--ope-contacts", type=int, default=1000)
    parser.add_argument("--ope-days", type=int, default=60)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)

    start = time.perf_counter()
    table = compare_policies(args.contacts, args.days, args.seed)
    print(f"policies: {args.contacts} contacts x {args.days} days, seed {args.seed}")
    print(table.round(3).to_string())
    print(f"compare_seconds {time.perf_counter() - start:.1f}")

    if args.ope_seeds < 1:  # --ope-seeds 0: the comparison only
        return
    start = time.perf_counter()
    coverage = ope_coverage(range(1, args.ope_seeds + 1), args.ope_contacts, args.ope_days)
    print(f"\nDR coverage: {args.ope_contacts} contacts x {args.ope_days} days, uniform-random logs")
    print(coverage.frame().round(4).to_string())
    n_seeds, level = len(coverage.rows), coverage.confidence
    print(f"dr_coverage {coverage.coverage:.3f} over {n_seeds} seeds ({level:.0%} intervals)")
    print(f"ope_seconds {time.perf_counter() - start:.1f}")


if __name__ == "__main__":
    main()

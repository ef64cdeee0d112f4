"""Journey simulator speed and the reference policies' results.

Prints contacts x days per second and events per second for a run (default 10,000 contacts x 180 days, the
issue's target: well under a minute on 2 cores), then, with ``--policies``, cumulative reward, conversions and
unsubscribes of the four reference policies on a smaller population.

    python benchmarks/bench_simulator.py [--contacts 10000] [--days 180] [--seed 7] [--policies 2000]
"""

from __future__ import annotations

import argparse
import time

from training.simulation import (
    AggressiveSalesPolicy,
    FixedRulePolicy,
    JourneySimulator,
    OraclePolicy,
    ReferencePolicy,
    UniformRandomPolicy,
)


def speed(contacts: int, days: int, seed: int) -> None:
    sim = JourneySimulator(n_contacts=contacts, n_days=days, seed=seed)
    t0 = time.perf_counter()
    result = sim.run(FixedRulePolicy())
    seconds = time.perf_counter() - t0
    s = result.summary
    print(f"simulate {contacts} contacts x {days} days (fixed-rule policy, seed {seed}): {seconds:.2f} s")
    print(f"  contacts x days per second: {contacts * days / seconds:,.0f}")
    print(
        f"  events: {s.n_events:,} ({s.n_events / seconds:,.0f} events/s), decisions: {s.n_decisions:,}, "
        f"sends: {s.n_sends:,}"
    )
    t0 = time.perf_counter()
    profiles = result.profiles()
    print(f"  {len(profiles):,} ContactProfile objects built in {time.perf_counter() - t0:.2f} s")


def policies(contacts: int, days: int, seed: int) -> None:
    print(f"\nreference policies, {contacts} contacts x {days} days, seed {seed}")
    print(
        f"{'policy':<28}{'reward':>10}{'sends':>9}{'clicks':>8}{'unsubs':>8}{'requests':>10}{'purchases':>11}"
        f"{'seconds':>9}"
    )
    rows: list[tuple[str, float]] = []
    for name in (
        "random (weekly)",
        "fixed rule (weekly)",
        "aggressive (daily sales)",
        "oracle (weekly)",
        "oracle (every 3 days)",
    ):
        sim = JourneySimulator(n_contacts=contacts, n_days=days, seed=seed)
        policy: ReferencePolicy = {
            "random (weekly)": UniformRandomPolicy(seed=seed),
            "fixed rule (weekly)": FixedRulePolicy(),
            "aggressive (daily sales)": AggressiveSalesPolicy(),
            "oracle (weekly)": OraclePolicy(simulator=sim, min_gap_days=7),
            "oracle (every 3 days)": OraclePolicy(simulator=sim, min_gap_days=3),
        }[name]
        t0 = time.perf_counter()
        s = sim.run(policy).summary
        rows.append((name, s.reward))
        print(
            f"{name:<28}{s.reward:>10.0f}{s.n_sends:>9}{s.clicks:>8}{s.unsubscribes:>8}{s.requests:>10}"
            f"{s.purchases:>11}{time.perf_counter() - t0:>9.1f}"
        )
    base = dict(rows)["random (weekly)"]
    print("reward relative to random: " + ", ".join(f"{n} {r / base:.2f}x" for n, r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policies", type=int, default=0, help="contacts for the policy table (0: skip)")
    args = parser.parse_args()
    speed(args.contacts, args.days, args.seed)
    if args.policies:
        policies(args.policies, args.days, args.seed)


if __name__ == "__main__":
    main()

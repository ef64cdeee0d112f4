"""Decision latency of the content policy itself (50 candidates) and vectorised throughput (100k contacts).

Run: python benchmarks/bench_policy.py [--contacts 100000] [--candidates 50] [--repeats 2000]
Prints one line per measurement. "policy" is the fitted IGW policy's select_action on encoded arrays; "decide"
adds the guardrails, encoding and Decision objects (the full models/ path serving and batch call).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np

from features.schemas import Channel, ContentFormat, LeadStatus
from models.context import Candidate, ContactContext
from models.policy.base import decision_uniforms
from models.policy.decide import decide, prepare_catalog
from models.policy.encoding import encode_candidates, encode_contexts
from models.policy.inverse_gap_weighting import InverseGapWeighting

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STAGES = ("awareness", "information", "consultation", "closing")


def catalog(n: int, rng: np.random.Generator) -> list[Candidate]:
    formats = list(ContentFormat)[:10]
    return [
        Candidate(f"b-{j}", formats[j % len(formats)], (STAGES[j % 4], STAGES[(j + 1) % 4])) for j in range(n)
    ]


def contacts(n: int, n_features: int, rng: np.random.Generator) -> list[ContactContext]:
    feats = rng.normal(size=(n, n_features))
    stages = rng.integers(0, 4, n)
    return [
        ContactContext(
            f"c-{i}",
            stage=STAGES[stages[i]],
            lead_status=LeadStatus.LEAD,
            consents=frozenset({Channel.EMAIL}),
            readiness=0.3,
            features=tuple(feats[i]),
        )  # fmt: skip
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    blocks = catalog(args.candidates, rng)
    train_ctx = contacts(5000, args.features, rng)
    X_train = encode_contexts(train_ctx)
    A = encode_candidates(blocks)
    actions = rng.integers(0, len(blocks), len(train_ctx))
    policy = InverseGapWeighting(gamma=50.0).fit(X_train, A, actions, rng.random(len(train_ctx)))

    one = X_train[:1]
    eligible_one = np.ones((1, len(blocks)), dtype=bool)
    u = decision_uniforms(["evt-0"], 0)
    for _ in range(200):
        policy.select_action(one, A, eligible_one, uniforms=u)
    times = np.empty(args.repeats)
    for i in range(args.repeats):
        start = time.perf_counter_ns()
        policy.select_action(one, A, eligible_one, uniforms=u)
        times[i] = time.perf_counter_ns() - start
    print(
        f"policy select_action, 1 contact x {len(blocks)} candidates: "
        f"p50 {np.percentile(times, 50) / 1e3:.1f} us, p99 {np.percentile(times, 99) / 1e3:.1f} us"
    )

    prepared = prepare_catalog(blocks)  # serving encodes the catalog once, not per request
    single = train_ctx[:1]
    reps = max(args.repeats // 4, 50)
    times = np.empty(reps)
    for i in range(reps):
        start = time.perf_counter_ns()
        decide(
            single, blocks, policy, channel=Channel.EMAIL, now=NOW, policy_version="bench", event_ids=["e"]
        )
        times[i] = time.perf_counter_ns() - start
    print(
        f"decide (guardrails + encoding + policy), 1 contact x {len(blocks)} candidates: "
        f"p50 {np.percentile(times, 50) / 1e3:.1f} us, p99 {np.percentile(times, 99) / 1e3:.1f} us"
    )

    n = args.contacts
    X = rng.normal(size=(n, X_train.shape[1]))
    eligible = rng.random((n, len(blocks))) < 0.5
    uniforms = rng.random(n)
    t0 = time.perf_counter()
    selection = policy.select_action(X, A, eligible, uniforms=uniforms, n_slots=3)
    elapsed = time.perf_counter() - t0
    assert np.allclose(selection.distribution.probabilities[eligible.any(axis=1)].sum(axis=1), 1.0)
    print(
        f"policy select_action vectorised, {n} contacts x {len(blocks)} candidates, 3 slots: "
        f"{elapsed:.2f} s, {n / elapsed:,.0f} decisions/s"
    )

    batch = contacts(min(n, 20_000), args.features, rng)
    t0 = time.perf_counter()
    decide(batch, prepared, policy, channel=Channel.EMAIL, now=NOW, policy_version="bench", seed=1)
    elapsed = time.perf_counter() - t0
    print(
        f"decide batch (guardrail matrices + vectorised policy + Decision objects), {len(batch)} contacts: "
        f"{elapsed:.2f} s, {len(batch) / elapsed:,.0f} decisions/s"
    )


if __name__ == "__main__":
    main()

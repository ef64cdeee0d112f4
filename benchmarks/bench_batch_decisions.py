"""Batch decisions for N simulated contacts x 50 candidate blocks: decisions/s and peak memory (RSS).

Runs ``training.batch_decisions.run_batch`` — the code behind ``ripen decide`` and the API's batch jobs —
end to end except the store reads: each chunk's contacts are simulated as the online store returns them
(stored rows decayed by ``features.online.assemble_many``, the same function the bulk lookup uses, and
``ContactProfile`` objects), then scored by LightGBM readiness and churn scorers (``models.scorer``), put
through every guardrail and a fitted inverse-gap-weighting policy, logged to a SQLite decision log and
written as Parquet parts plus the final decisions file.

Run: python benchmarks/bench_batch_decisions.py --contacts 100000 [--chunk-size 20000] [--workers 2]
Prints one line per phase and a summary; the load average shows how busy the shared machine was. With
``--workers N`` the chunks are decided in N spawned processes (``run_batch(workers=N)``); each builds its
simulator and log connection through the picklable ``BenchResourcesFactory`` and gets the fitted models
pickled. CPU is then this process plus its children (``RUSAGE_CHILDREN``), and peak RSS the sum of this
process's and each worker's peak.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from features.decision_log import DecisionLog, DecisionRecord, LogResult
from features.online import assemble_many
from features.schemas import Channel, ConsentRecord, ContactProfile, ContentFormat, LeadStatus, Program
from models.compiled_scorer import CompiledScorer
from models.context import Candidate
from models.decision_batch import ContactData, ContactRequest, decide_contacts
from models.policy.decide import prepare_catalog
from models.policy.encoding import encode_candidates
from models.policy.inverse_gap_weighting import InverseGapWeighting
from models.scorer import BinaryScorer
from ripen.settings import Settings
from training.batch_decisions import Audience, BatchResources, run_batch
from training.champions import Champions

STAGES = ("awareness", "information", "consultation", "closing", "onboarding", "retention")
COUNTERS = (
    "email_open_30d",
    "email_click_30d",
    "page_view_30d",
    "content_download_30d",
    "webinar_attend_30d",
)
SCORER_FEATURES = [f"{c}_now" for c in COUNTERS] + ["events_total", "days_since_last_touch"]


def catalog(n: int) -> list[Candidate]:
    formats = [f for f in ContentFormat][:10]
    nurture = [
        Candidate(
            f"b-{j:03d}",
            formats[j % len(formats)],
            (STAGES[j % 4], STAGES[(j + 1) % 4]),
            topics=("cloud",) if j % 2 else ("security",),
            alternative_id=f"b-{(j + 4) % (n - 4):03d}",
        )
        for j in range(n - 4)
    ]
    customer = [
        Candidate(f"k-{j}", ContentFormat.ONBOARDING_GUIDE, (STAGES[4 + j % 2],), program=Program.RETENTION)
        for j in range(4)
    ]
    return nurture + customer


@dataclass
class Simulator:
    """Deterministic simulated contacts: contact ``c-<i>`` is the same in every chunk and every run."""

    now: datetime
    n_blocks: int
    seed: int = 0

    def __call__(self, ids: Sequence[str], now: datetime) -> list[ContactData]:
        index = np.array([int(c[2:]) for c in ids])
        rng = np.random.default_rng([self.seed, int(index[0]) if len(index) else 0])
        n = len(ids)
        stages = rng.integers(0, len(STAGES), n)
        statuses = (LeadStatus.LEAD, LeadStatus.MQL, LeadStatus.SQL, LeadStatus.ACTIVE)
        status = rng.choice(len(statuses), n, p=[0.6, 0.2, 0.05, 0.15])
        consent = rng.random(n) < 0.9
        counts = rng.poisson(1.5, (n, len(COUNTERS))).astype(float)
        touched = rng.random(n) < 0.4
        touch_age = rng.uniform(0, 10, n) * 86_400
        consumed = rng.integers(0, self.n_blocks - 4, (n, 3))
        known = rng.random(n) < 0.97
        as_of = now.timestamp() - 3_600
        granted = {Channel.EMAIL: ConsentRecord(granted=True, at=now - timedelta(days=60))}
        profiles: list[ContactProfile | None] = []
        rows: list[dict[str, Any]] = []
        for k, cid in enumerate(ids):
            if not known[k]:  # an id the stores never saw: cold start
                profiles.append(None)
                rows.append({})
                continue
            lead = statuses[status[k]]
            stage = STAGES[stages[k]] if lead is not LeadStatus.ACTIVE else STAGES[4 + stages[k] % 2]
            profile = ContactProfile(
                contact_id=cid,
                lifecycle_stage=stage,
                lead_status=lead,
                consents=granted if consent[k] else {},
            )
            row: dict[str, Any] = {name: counts[k, j] for j, name in enumerate(COUNTERS)}
            row.update(
                as_of_ts=as_of,
                events_total=int(counts[k].sum()),
                consumed_content_ids=tuple(f"b-{j:03d}" for j in consumed[k]),
                lead_status=lead.value,
                lifecycle_stage=stage,
            )
            if touched[k]:
                row["last_touch_ts"] = now.timestamp() - touch_age[k]
            profiles.append(profile)
            rows.append(row)
        features = assemble_many(ids, now.timestamp(), rows, {}, [])
        return [ContactData(p, f) for p, f in zip(profiles, features, strict=True)]


@dataclass(frozen=True)
class BenchScorer:
    """A LightGBM ``BinaryScorer`` behind the scorer interface serving uses (name, version, predict)."""

    name: str
    version: str
    model: BinaryScorer

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.compiled.predict_proba(records)

    @cached_property
    def compiled(self) -> CompiledScorer:
        return CompiledScorer(self.model)


class NoLog(DecisionLog):
    """Counts records instead of storing them (``--no-log``: isolates the decision core)."""

    def __init__(self) -> None:
        self.n = 0

    def log(self, records: Sequence[DecisionRecord]) -> LogResult:
        self.n += len(records)
        return LogResult(len(records), 0)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class BenchResourcesFactory:
    """Opens the benchmark's resources in a worker: simulator, catalog, models, its own log connection."""

    now: datetime
    blocks: list[Candidate]
    models: Champions
    log_url: str | None
    """SQLite URL of the shared decision log; ``None``: count records (``--no-log``)."""

    def __call__(self) -> BatchResources:
        decision_log = NoLog() if self.log_url is None else DecisionLog(self.log_url)
        sim = Simulator(now=self.now, n_blocks=len(self.blocks))
        return BatchResources(
            sim, prepare_catalog(self.blocks), self.models, decision_log, close=decision_log.close
        )


def fitted_models(sim: Simulator, blocks: list[Candidate], now: datetime) -> Champions:
    """LightGBM readiness and churn scorers and an IGW policy fitted on 5,000 simulated contacts."""
    train = sim([f"c-{i}" for i in range(10_000_000, 10_005_000)], now)
    rows = pd.DataFrame.from_records([d.features.model_row() for d in train if d.features is not None])
    X = rows[SCORER_FEATURES].astype(float)
    rng = np.random.default_rng(1)
    ready = (rng.random(len(X)) < 1 / (1 + np.exp(2.5 - 0.4 * X["email_click_30d_now"]))).astype(int)
    churn = (rng.random(len(X)) < 1 / (1 + np.exp(-1 + 0.3 * X["events_total"]))).astype(int)
    scorers = [BinaryScorer(n_estimators=60, n_jobs=1).fit(X, y) for y in (ready, churn)]
    prepared = prepare_catalog(blocks)
    decided = decide_contacts(
        [ContactRequest(d.features.contact_id) for d in train if d.features is not None],
        train,
        prepared,
        Champions(),
        channel=Channel.EMAIL,
        now=now,
        fallback_policy=InverseGapWeighting(greedy=True),
    )
    contexts = np.array([r.context_features for r in decided.records])
    policy = InverseGapWeighting(gamma=50.0).fit(
        contexts,
        encode_candidates(blocks),
        rng.integers(0, len(blocks), len(contexts)),
        rng.random(len(contexts)),
    )
    return Champions(
        readiness=BenchScorer("bench-readiness", "1", scorers[0]),  # type: ignore[arg-type]
        churn=BenchScorer("bench-churn", "1", scorers[1]),  # type: ignore[arg-type]
        policy=policy,
        policy_version="bench-igw",
    )


def single_latency(sim: Simulator, blocks: list[Candidate], models: Champions, now: datetime, n: int) -> None:
    """p50/p99 of the core for one contact (what ``recommend`` runs between the store reads and the log)."""
    prepared = prepare_catalog(blocks)
    data = sim(["c-5"], now)
    fallback = InverseGapWeighting(greedy=True)
    times = np.empty(n)
    for i in range(n):
        start = time.perf_counter_ns()
        decide_contacts(
            [ContactRequest("c-5", event_id=f"s-{i}")],
            data,
            prepared,
            models,
            channel=Channel.EMAIL,
            now=now,
            fallback_policy=fallback,
        )
        times[i] = time.perf_counter_ns() - start
    print(
        f"one contact (n = 1) through the same core, {n} runs: p50 {np.percentile(times, 50) / 1e6:.2f} ms, "
        f"p99 {np.percentile(times, 99) / 1e6:.2f} ms"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_cpu_s() -> float:
    """User + system CPU of the finished (waited-for) child processes, i.e. the workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument(
        "--no-log", action="store_true", help="Count decision-log records instead of storing."
    )
    parser.add_argument(
        "--collector-on",
        action="store_true",
        help="Keep the garbage collector on while deciding (as API jobs do); default: paused, as the CLI.",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Processes deciding chunks (run_batch(workers=N)); 1: this process.",
    )
    parser.add_argument("--single-repeats", type=int, default=500, help="Runs of the n = 1 latency check.")
    parser.add_argument("--dir", type=Path, default=None, help="Working directory (default: a temp dir).")
    args = parser.parse_args()
    load_before = os.getloadavg()
    now = datetime.now(UTC)
    blocks = catalog(args.candidates)
    sim = Simulator(now=now, n_blocks=args.candidates)
    t0 = time.perf_counter()
    models = fitted_models(sim, blocks, now)
    print(f"setup: LightGBM readiness + churn and IGW policy fitted in {time.perf_counter() - t0:.1f} s")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", batch_chunk_size=args.chunk_size)
        settings.ensure_dirs()
        log_url = None if args.no_log else f"sqlite:///{Path(tmp) / 'decisions.db'}"
        decision_log = NoLog() if log_url is None else DecisionLog(log_url)  # creates the tables once
        factory = BenchResourcesFactory(now, blocks, models, log_url)
        resources = (
            BatchResources(sim, prepare_catalog(blocks), models, decision_log) if args.workers == 1 else None
        )
        ids = [f"c-{i}" for i in range(args.contacts)]
        audience = Audience(ids, [None] * len(ids), [None] * len(ids))
        columns = (TextColumn("[bold]decide"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        rss_before = peak_rss_mb()
        t0, cpu0, child_cpu0 = time.perf_counter(), time.process_time(), children_cpu_s()
        with Progress(*columns) as progress:
            task = progress.add_task("decide", total=len(ids))
            report = run_batch(
                settings,
                audience,
                channel=Channel.EMAIL,
                resources=resources,
                out=Path(tmp) / "decisions.parquet",
                run_id="bench",
                progress=lambda done, total: progress.update(task, completed=done),
                pause_collector=not args.collector_on,
                workers=args.workers,
                open_worker_resources=factory,
            )
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        child_cpu = children_cpu_s() - child_cpu0
        out_mb = (Path(tmp) / "decisions.parquet").stat().st_size / 1e6
        db = Path(tmp) / "decisions.db"
        log_mb = sum(p.stat().st_size for p in db.parent.glob("decisions.db*")) / 1e6 if db.exists() else 0.0
        decision_log.close()
    single_latency(sim, blocks, models, now, args.single_repeats)
    load_after = os.getloadavg()
    print(
        f"{args.contacts:,} contacts x {len(blocks)} candidates, chunks of {args.chunk_size:,}: "
        f"{elapsed:.1f} s, {args.contacts / elapsed:,.0f} decisions/s"
    )
    total_cpu = cpu + child_cpu
    print(
        f"CPU time {total_cpu:.1f} s = this process {cpu:.1f} s + {args.workers if args.workers > 1 else 0} "
        f"worker(s) {child_cpu:.1f} s ({args.contacts / total_cpu:,.0f} decisions per CPU-second; "
        "wall time on a shared machine also waits for other processes)"
    )
    print(f"actions: {report.actions}; cold start {report.cold_start:,}")
    print(
        f"decision log: {'not stored (--no-log)' if args.no_log else f'SQLite, {report.log_stored:,} rows'}"
        f" {log_mb:,.0f} MB; decisions file {out_mb:,.1f} MB"
    )
    parent_rss, workers_rss = peak_rss_mb(), report.worker_peak_rss_mb
    print(
        f"peak RSS: {parent_rss + workers_rss:,.0f} MB summed = this process {parent_rss:,.0f} MB "
        f"(after setup {rss_before:,.0f} MB) + workers {workers_rss:,.0f} MB "
        f"(largest worker {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MB)"
    )
    print(f"load average (1/5/15 min) before {load_before}, after {tuple(round(x, 2) for x in load_after)}")


if __name__ == "__main__":
    main()

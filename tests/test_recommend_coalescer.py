"""Micro-batched recommends (``serving.coalescer``) on the real pipeline over the embedded stores of a small
world: batched decisions equal lone ones, duplicates and failures stay per request, every answer is logged."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from features.event_store import EventStore, open_settings_event_store
from features.schemas import Channel
from ripen.settings import Settings
from serving.coalescer import RecommendCoalescer
from serving.metrics import ServingMetrics
from serving.pipeline import DecisionPipeline, Outcome, RecommendInput, local_reads
from tests.decision_world import build_world

CONTACTS = ("c-ready", "c-sql", "c-nocons", "anon-1", "anon-2")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root: Path = tmp_path_factory.mktemp("coalescer")
    settings = Settings(data_dir=root / "data", datasets_dir=root / "datasets")
    build_world(settings)
    return settings


@pytest.fixture(scope="module")
def pipeline(world: Settings) -> Iterator[DecisionPipeline]:
    loaded = DecisionPipeline.load(world)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def store(world: Settings) -> Iterator[EventStore]:
    opened = open_settings_event_store(world)
    yield opened
    opened.close()


def request(contact_id: str, event_id: str, **kwargs: object) -> RecommendInput:
    return RecommendInput(contact_id=contact_id, channel=Channel.EMAIL, event_id=event_id, **kwargs)  # type: ignore[arg-type]


def concurrently(
    coalescer: RecommendCoalescer, store: EventStore, requests: list[RecommendInput]
) -> list[object]:
    """Submit every request in the same event-loop turn (so they queue together); results or exceptions."""

    async def run() -> list[object]:
        return await asyncio.gather(
            *(coalescer.recommend(r, store) for r in requests), return_exceptions=True
        )

    return asyncio.run(run())


def batch_sizes(metrics: ServingMetrics, since: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """(number of batches, requests in them) from the batch-size histogram, minus ``since``."""
    samples = {s.name: s.value for m in metrics.recommend_batch_size.collect() for s in m.samples}
    count, total = samples["ripen_recommend_batch_size_count"], samples["ripen_recommend_batch_size_sum"]
    return count - since[0], total - since[1]


def decided(answers: list[Outcome | BaseException] | list[object]) -> list[Outcome]:
    """The answers, each checked to be a decision (not an exception)."""
    assert all(isinstance(a, Outcome) for a in answers), answers
    return [a for a in answers if isinstance(a, Outcome)]


def summary(outcome: Outcome) -> tuple[object, ...]:
    d = outcome.decision
    return (
        d.event_id,
        d.contact_id,
        d.action,
        d.content_id,
        d.probability,
        d.policy_version,
        outcome.cold_start,
    )


def test_concurrent_requests_are_decided_in_one_batch_exactly_as_alone(
    pipeline: DecisionPipeline, store: EventStore
) -> None:
    alone = [pipeline.recommend(request(c, f"alone-{c}"), store, ServingMetrics()) for c in CONTACTS]
    metrics = ServingMetrics()
    coalescer = RecommendCoalescer(pipeline, metrics, max_batch=16)
    before = batch_sizes(metrics)
    together = decided(concurrently(coalescer, store, [request(c, f"alone-{c}") for c in CONTACTS]))
    assert batch_sizes(metrics, before) == (1, len(CONTACTS))
    assert [summary(o) for o in together] == [summary(o) for o in alone]
    assert [o.readiness for o in together] == pytest.approx([o.readiness for o in alone])


def test_each_answer_goes_to_its_own_caller_and_is_logged(
    pipeline: DecisionPipeline, store: EventStore
) -> None:
    coalescer = RecommendCoalescer(pipeline, ServingMetrics(), max_batch=16)
    requests = [request(c, f"own-{c}") for c in reversed(CONTACTS)]
    answers = concurrently(coalescer, store, requests)
    for r, answer in zip(requests, answers, strict=True):
        assert isinstance(answer, Outcome)
        assert (answer.decision.contact_id, answer.decision.event_id) == (r.contact_id, r.event_id)
        logged = pipeline.decision_log.get(r.event_id or "")
        assert logged is not None and logged.content_id == answer.decision.content_id


def test_batches_are_bounded_by_max_batch(pipeline: DecisionPipeline, store: EventStore) -> None:
    metrics = ServingMetrics()
    coalescer = RecommendCoalescer(pipeline, metrics, max_batch=2)
    before = batch_sizes(metrics)
    decided(concurrently(coalescer, store, [request(c, f"bounded-{c}") for c in CONTACTS]))
    assert batch_sizes(metrics, before) == (3, len(CONTACTS))  # 2 + 2 + 1


def test_a_repeated_contact_is_decided_separately_in_arrival_order(
    pipeline: DecisionPipeline, store: EventStore
) -> None:
    metrics = ServingMetrics()
    coalescer = RecommendCoalescer(pipeline, metrics, max_batch=16)
    before = batch_sizes(metrics)
    requests = [request("c-ready", "dup-1"), request("c-sql", "dup-2"), request("c-ready", "dup-3")]
    answers = decided(concurrently(coalescer, store, requests))
    assert [a.decision.event_id for a in answers] == ["dup-1", "dup-2", "dup-3"]
    assert batch_sizes(metrics, before) == (2, 3)  # the second c-ready waits for the next batch
    for event_id in ("dup-1", "dup-3"):
        logged = pipeline.decision_log.get(event_id)
        assert logged is not None and logged.contact_id == "c-ready"


def test_a_failing_request_fails_alone(pipeline: DecisionPipeline, store: EventStore) -> None:
    metrics = ServingMetrics()
    coalescer = RecommendCoalescer(pipeline, metrics, max_batch=16)
    before = batch_sizes(metrics)
    requests = [
        request("c-ready", "fail-1"),
        request("c-sql", "fail-2", stage="nirvana"),  # no such stage: the decision core raises
        request("c-nocons", "fail-3"),
    ]
    answers = concurrently(coalescer, store, requests)
    assert isinstance(answers[1], Exception)
    assert pipeline.decision_log.get("fail-2") is None
    for event_id, answer in (("fail-1", answers[0]), ("fail-3", answers[2])):
        assert isinstance(answer, Outcome) and answer.decision.event_id == event_id
        assert pipeline.decision_log.get(event_id) is not None
    assert batch_sizes(metrics, before) == (4, 6)  # the failed batch of 3, then each of its requests alone


def test_a_lone_request_is_decided_at_once(pipeline: DecisionPipeline, store: EventStore) -> None:
    metrics = ServingMetrics()
    coalescer = RecommendCoalescer(pipeline, metrics, max_batch=16)
    before = batch_sizes(metrics)

    async def one() -> Outcome:
        return await asyncio.wait_for(coalescer.recommend(request("c-ready", "lone-1"), store), timeout=30)

    answer = asyncio.run(one())
    assert answer.decision.event_id == "lone-1"
    assert batch_sizes(metrics, before) == (1, 1)


def test_a_lone_request_is_answered_after_its_commit_and_the_loop_runs_meanwhile(
    pipeline: DecisionPipeline, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone request is decided on the event loop; its log commit (made slow here) is awaited, not waited
    for: other tasks keep running, and the answer comes only once the decision is in the log."""
    log = pipeline.decision_log
    commit = log._commit

    def slow_commit(batch: list[Any]) -> None:
        time.sleep(0.3)
        commit(batch)

    monkeypatch.setattr(log, "_commit", slow_commit)
    coalescer = RecommendCoalescer(pipeline, ServingMetrics(), lone_on_loop=True)

    async def lone_with_ticker() -> tuple[Outcome, int, bool]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        answer = await coalescer.recommend(request("c-sql", "lone-slow-commit"), store)
        logged_at_answer = log.get("lone-slow-commit") is not None
        ticker.cancel()
        return answer, ticks, logged_at_answer

    answer, ticks, logged_at_answer = asyncio.run(lone_with_ticker())
    assert answer.decision.event_id == "lone-slow-commit"
    assert logged_at_answer  # committed before the answer
    assert ticks >= 10  # the loop ran through the 0.3 s commit
    assert pipeline.decision_log.get("lone-slow-commit") is not None


@pytest.mark.parametrize("lone_on_loop", [True, False])
def test_a_lone_request_runs_on_the_loop_only_when_asked(
    pipeline: DecisionPipeline, store: EventStore, monkeypatch: pytest.MonkeyPatch, lone_on_loop: bool
) -> None:
    """Reads that may cross a network (PostgreSQL, Redis) never run on the loop; local files may."""
    read = pipeline.contact_data
    readers: list[int] = []

    def recorded(*args: Any, **kwargs: Any) -> Any:
        readers.append(threading.get_ident())
        return read(*args, **kwargs)

    monkeypatch.setattr(pipeline, "contact_data", recorded)
    coalescer = RecommendCoalescer(pipeline, ServingMetrics(), lone_on_loop=lone_on_loop)

    async def lone() -> tuple[Outcome, int]:
        answer = await coalescer.recommend(request("c-ready", f"lone-thread-{lone_on_loop}"), store)
        return answer, threading.get_ident()

    answer, loop_thread = asyncio.run(lone())
    assert answer.decision.event_id == f"lone-thread-{lone_on_loop}"
    assert (readers == [loop_thread]) is lone_on_loop and len(readers) == 1


def test_only_embedded_stores_count_as_local_reads(tmp_path: Path) -> None:
    assert local_reads(Settings(data_dir=tmp_path))
    assert not local_reads(Settings(data_dir=tmp_path, profile="production"))
    assert not local_reads(Settings(data_dir=tmp_path, online_store="redis"))
    assert not local_reads(
        Settings(data_dir=tmp_path, event_store_url="postgresql://postgres@127.0.0.1:5432/ripen")
    )


def test_max_batch_must_be_positive(pipeline: DecisionPipeline) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        RecommendCoalescer(pipeline, ServingMetrics(), max_batch=0)

"""Dynamic micro-batching of ``POST /v1/recommend``: concurrent requests share one ``recommend_batch`` call.

A lone request is decided at once (no added wait). Requests arriving while a decision runs queue up and go
together as the next batch (at most ``max_batch``): one bulk feature read, one pass of the vectorised core and
one decision-log commit for all of them, as serving systems batch inference (Triton, Ray Serve). Each request
still gets its own answer, logged durably before it is returned.

With ``lone_on_loop`` (the embedded stores: every read is a local file) a lone request, nothing else queued,
is decided on the event loop itself and its log commit awaited there: handing one decision to a worker thread
and back cost more CPU than it took, and more latency at the spaced arrivals where a lone request is the rule
(the p99 at a fixed rate). Batches, and every decision whose reads cross a network (PostgreSQL, Redis: a
stalled server must not freeze the loop), go to the thread pool.

- A contact id already in a batch waits for the next one (``recommend_batch`` needs unique contacts), so
  duplicate contacts in one window are decided separately, in arrival order.
- If a batch fails as a whole, its requests are decided one by one, so a failing request fails alone.
- A request whose caller went away before its batch started is dropped; once started it is decided and
  logged (the decision happened) even if nobody reads the answer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from features.event_store import EventStore
from models.decision_batch import Outcome
from serving.metrics import ServingMetrics
from serving.pipeline import DecisionPipeline, RecommendInput


@dataclass(frozen=True)
class _Waiting:
    """One queued request and the future its caller awaits."""

    request: RecommendInput
    store: EventStore
    future: asyncio.Future[Outcome]


class RecommendCoalescer:
    """Coalesces concurrent single decisions into ``DecisionPipeline.recommend_batch`` calls.

    Parameters: ``pipeline``, the decision pipeline; ``metrics``, where decisions and batch sizes are
    counted; ``max_batch``, the most requests decided together (bounds the latency a batch adds to its
    last member); ``lone_on_loop``, decide a lone request on the event loop (only where the pipeline's
    reads cannot block on a network). Use from one event loop; other decisions run in the thread pool.
    """

    def __init__(
        self,
        pipeline: DecisionPipeline,
        metrics: ServingMetrics,
        max_batch: int = 32,
        lone_on_loop: bool = False,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, but got {max_batch}")
        self.pipeline = pipeline
        self.metrics = metrics
        self.max_batch = max_batch
        self.lone_on_loop = lone_on_loop
        self._queue: deque[_Waiting] = deque()
        self._draining: asyncio.Task[None] | None = None

    async def recommend(self, request: RecommendInput, store: EventStore) -> Outcome:
        """Decide ``request`` (alone or with the requests arriving meanwhile); the decision is logged."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(request, store, future))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Decide queued requests batch by batch until the queue is empty."""
        try:
            while self._queue:
                batch = self._next_batch()
                if batch:
                    await self._decide(batch)
        finally:
            self._draining = None
            if self._queue:  # only after a cancellation: hand the rest to a new drain
                self._draining = asyncio.create_task(self._drain())

    def _next_batch(self) -> list[_Waiting]:
        """Up to ``max_batch`` live requests with distinct contacts and the same store, in arrival order."""
        batch: list[_Waiting] = []
        contacts: set[str] = set()
        later: list[_Waiting] = []
        while self._queue and len(batch) < self.max_batch:
            item = self._queue.popleft()
            if item.future.done():  # the caller went away before its decision started
                continue
            if item.request.contact_id in contacts or (batch and item.store is not batch[0].store):
                later.append(item)
                continue
            contacts.add(item.request.contact_id)
            batch.append(item)
        self._queue.extendleft(reversed(later))
        return batch

    async def _decide(self, batch: list[_Waiting]) -> None:
        self.metrics.observe_batch_size(len(batch))
        try:
            if self.lone_on_loop and len(batch) == 1 and not self._queue:
                outcomes = await self._decide_on_loop(batch[0])
            else:
                outcomes = await run_in_threadpool(
                    self._recommend_batch, [item.request for item in batch], batch[0].store
                )
        except Exception as exc:  # noqa: BLE001 - retried one by one, so only the failing request fails
            if len(batch) == 1:
                _settle(batch[0].future, exc)
                return
            for item in batch:
                await self._decide([item])
            return
        for item, outcome in zip(batch, outcomes, strict=True):
            _settle(item.future, outcome)

    async def _decide_on_loop(self, item: _Waiting) -> list[Outcome]:
        """One request decided on the loop; the loop stays free while the decision log commits it."""
        decided = self.pipeline.decide_batch([item.request], item.store)
        await asyncio.wrap_future(self.pipeline.decision_log.submit(decided.records))
        decided.count(self.metrics)
        return [o for o in decided.outcomes if o is not None]

    def _recommend_batch(self, requests: Sequence[RecommendInput], store: EventStore) -> list[Outcome]:
        outcomes = self.pipeline.recommend_batch(requests, store, self.metrics)
        return [o for o in outcomes if o is not None]  # all decided: unknown contacts are not rejected


def _settle(future: asyncio.Future[Outcome], result: Outcome | BaseException) -> None:
    if future.done():  # cancelled: the caller left; the decision is logged all the same
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)

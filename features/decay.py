"""Exponentially decayed engagement counters: one definition, a batch form and an O(1) online update.

A counter with half-life ``h`` seen at time ``T`` is ``sum_i w_i * 2 ** (-(T - t_i) / h)`` over the events
``t_i <= T``. Engagement fades, so old clicks count less than new ones ("points fade when interest fades").

Every counter of a contact shares one reference time ``as_of`` (the latest event time), so the whole state
moves to
a request time with one factor per half-life. The batch path (SQL in ``features.aggregation``) and the online
update here compute the same sums; ``EVENT_COUNTERS`` is the single list of what each event increments, read
by
both. Out-of-order events are added with their weight decayed to ``as_of``; duplicates (same ``event_id``) are
dropped before counting, on both paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from features.schemas import CONSUMPTION_EVENTS, STAGE_IDS, EventType
from features.topics import TOPIC_IDS

SECONDS_PER_DAY = 86_400.0
HALF_LIVES_DAYS: tuple[int, ...] = (7, 30)
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
CONSUMPTION_TYPES: frozenset[str] = frozenset(t.value for t in CONSUMPTION_EVENTS)
# Events that say nothing about the contact's interest in a stage (we sent it, or they left).
NOT_AFFINITY_TYPES: frozenset[str] = frozenset({EventType.EMAIL_SENT.value, EventType.UNSUBSCRIBE.value})
RETURN_VISIT = "return_visit"
# Last-seen timestamps kept per kind of touch: feature name -> event types that count as that touch.
LAST_SEEN: dict[str, frozenset[str]] = {
    "last_visit_ts": frozenset({EventType.PAGE_VIEW.value}),
    "last_email_open_ts": frozenset({EventType.EMAIL_OPEN.value}),
    "last_click_ts": frozenset({EventType.EMAIL_CLICK.value}),
    "last_download_ts": frozenset({EventType.CONTENT_DOWNLOAD.value}),
    "last_touch_ts": frozenset(EVENT_TYPES) - {EventType.EMAIL_SENT.value},
}


def counter_keys(topics: Sequence[str] = TOPIC_IDS) -> tuple[str, ...]:
    """Every counter base name: one per event type, the return-visit flag, one per journey stage and topic.

    ``topics`` are the topic ids with columns (``features.topics.feature_topics`` of the repository's
    vocabulary); the default is the default catalog's."""
    return (*_FIXED_KEYS, *(f"topic_{t}" for t in topics))


_FIXED_KEYS: tuple[str, ...] = (*EVENT_TYPES, RETURN_VISIT, *(f"stage_{s}" for s in STAGE_IDS))


def counter_columns(topics: Sequence[str] = TOPIC_IDS) -> tuple[str, ...]:
    """Feature names of all decayed counters, e.g. ``email_click_7d``, ``stage_awareness_30d``."""
    return tuple(f"{key}_{h}d" for key in counter_keys(topics) for h in HALF_LIVES_DAYS)


def half_life_of(column: str) -> int:
    """The half-life in days of a counter column (``topic_cost_30d`` -> 30)."""
    return int(column.rsplit("_", 1)[1][:-1])


def decay_rate(half_life_days: float) -> float:
    """Per-second rate ``ln 2 / h`` of a half-life given in days."""
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be > 0, but got {half_life_days}")
    return math.log(2.0) / (half_life_days * SECONDS_PER_DAY)


def decay_factor(elapsed_seconds: float, half_life_days: float) -> float:
    """How much a count keeps after ``elapsed_seconds``; a request before ``as_of`` keeps all (factor 1)."""
    return math.exp(-decay_rate(half_life_days) * max(elapsed_seconds, 0.0))


def decayed_sum(weights: Sequence[float], times: Sequence[float], at: float, half_life_days: float) -> float:
    """Batch form: ``sum w_i * 2 ** (-(at - t_i) / h)`` over events with ``t_i <= at`` (times in epoch
    seconds)."""
    rate = decay_rate(half_life_days)
    return math.fsum(w * math.exp(-rate * (at - t)) for w, t in zip(weights, times, strict=True) if t <= at)


@dataclass(frozen=True)
class CounterEvent:
    """The parts of one engagement event the counters need.

    Attributes:
        event_id: dedup key.
        t: event time, epoch seconds (microsecond precision, as the batch path reads it).
        type: an ``EventType`` value.
        content_id: the content block the event refers to, if any.
        stages: stages of that content block (from the catalog), empty if unknown.
        topics: topic ids of that block (``features.topics.topic_ids`` with the repository's vocabulary,
            so each has a column), empty if unknown.
        returning: the web tracker marked the page view as a returning visitor's.
    """

    event_id: str
    t: float
    type: str
    content_id: str | None = None
    stages: tuple[str, ...] = ()
    returning: bool = False
    topics: tuple[str, ...] = ()


def increments(event: CounterEvent) -> list[str]:
    """Counter base names one event adds 1 to (the batch SQL is generated from the same rules)."""
    keys = [event.type]
    if event.type == EventType.PAGE_VIEW.value and event.returning:
        keys.append(RETURN_VISIT)
    if event.type not in NOT_AFFINITY_TYPES:
        keys.extend(f"stage_{s}" for s in event.stages if s in STAGE_IDS)
        keys.extend(f"topic_{t}" for t in event.topics)
    return keys


@dataclass(frozen=True)
class EngagementState:
    """Everything the engagement features of one contact are made of, as of the latest event ``as_of``.

    ``counters`` maps feature names (``counter_columns()``) to their value at ``as_of``; ``last_seen`` maps
    the
    ``LAST_SEEN`` names to epoch seconds. ``apply`` is the O(1) online update.
    """

    as_of: float | None = None
    counters: Mapping[str, float] = field(default_factory=dict)
    last_seen: Mapping[str, float] = field(default_factory=dict)
    first_seen_ts: float | None = None
    events_total: int = 0
    consumed_content_ids: tuple[str, ...] = ()

    def apply(self, event: CounterEvent) -> EngagementState:
        """The state after one more (not yet counted) event, whether it is the newest or arrived late."""
        counters = dict(self.counters)
        as_of = event.t if self.as_of is None else max(self.as_of, event.t)
        if self.as_of is not None and event.t > self.as_of:
            factors = {h: decay_factor(event.t - self.as_of, h) for h in HALF_LIVES_DAYS}
            for name in counters:
                counters[name] *= factors[half_life_of(name)]
        for h in HALF_LIVES_DAYS:
            weight = decay_factor(as_of - event.t, h)
            for key in increments(event):
                name = f"{key}_{h}d"
                counters[name] = counters.get(name, 0.0) + weight
        last_seen = dict(self.last_seen)
        for name, types in LAST_SEEN.items():
            if event.type in types:
                last_seen[name] = max(last_seen.get(name, event.t), event.t)
        consumed = self.consumed_content_ids
        if event.type in CONSUMPTION_TYPES and event.content_id and event.content_id not in consumed:
            consumed = tuple(sorted((*consumed, event.content_id)))
        first = event.t if self.first_seen_ts is None else min(self.first_seen_ts, event.t)
        return replace(
            self,
            as_of=as_of,
            counters=counters,
            last_seen=last_seen,
            first_seen_ts=first,
            events_total=self.events_total + 1,
            consumed_content_ids=consumed,
        )

    def counter(self, name: str) -> float:
        """Value of one counter at ``as_of`` (0 for a counter no event touched)."""
        return float(self.counters.get(name, 0.0))

    def counters_at(self, at: float, topics: Sequence[str] = TOPIC_IDS) -> dict[str, float]:
        """Every counter (with columns for ``topics``) decayed from ``as_of`` to ``at`` (epoch seconds)."""
        if self.as_of is None:
            return dict.fromkeys(counter_columns(topics), 0.0)
        factors = {h: decay_factor(at - self.as_of, h) for h in HALF_LIVES_DAYS}
        return {name: self.counter(name) * factors[half_life_of(name)] for name in counter_columns(topics)}


def dedupe(events: Iterable[CounterEvent]) -> list[CounterEvent]:
    """The events with repeated ``event_id`` dropped (first one kept), as the event store does on
    ingestion."""
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            unique.append(event)
    return unique


def fold(events: Iterable[CounterEvent], state: EngagementState | None = None) -> EngagementState:
    """Apply events one by one (in the order given) after dropping duplicates: the online path in one call."""
    current = state or EngagementState()
    for event in dedupe(events):
        current = current.apply(event)
    return current

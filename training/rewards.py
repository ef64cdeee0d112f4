"""Rewards for logged decisions, joined from what the contact did with the recommended content.

For a decision recommending block B to contact C at time t, the reward window is [t, t + window). Content
events (click, download, webinar attendance, ...) count when they name B; contact events (unsubscribe, stage
advance, demo request) count for the contact's latest content decision before them. Each event type
counts once per decision (five clicks are one click), with its configured weight; the reward is the sum.
Events after the window are late: counted and ignored. Re-sent events (same ``event_id``) count once. A
decision whose window closed with no event gets the configured default; one whose window is still open
gets nothing yet. The same inputs always give the same rewards, so re-running the join is safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from features.decision_log import DecisionRecord, RewardRecord, RewardSource
from features.schemas import DEFAULT_TAXONOMY, EventType, StageTaxonomy

DEFAULT_WEIGHTS: Mapping[EventType, float] = {
    EventType.EMAIL_CLICK: 1.0,
    EventType.CONTENT_DOWNLOAD: 1.0,
    EventType.WEBINAR_ATTEND: 2.0,
    EventType.WORKSHOP: 2.0,
    EventType.DEMO_REQUEST: 3.0,
    EventType.STAGE_CHANGE: 3.0,
    EventType.UNSUBSCRIBE: -2.0,
}
CONTACT_LEVEL = frozenset({EventType.UNSUBSCRIBE, EventType.STAGE_CHANGE, EventType.DEMO_REQUEST})


@dataclass(frozen=True)
class RewardConfig:
    """Reward per event type, the window, the default for silence, and which events are contact-level.

    A ``stage_change`` event earns its weight only when it advances the journey (``properties.to`` after
    ``properties.from`` in the taxonomy).
    """

    window: timedelta = timedelta(days=7)
    weights: Mapping[EventType, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    default_reward: float = 0.0
    contact_level: frozenset[EventType] = CONTACT_LEVEL
    taxonomy: StageTaxonomy = DEFAULT_TAXONOMY

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError(f"`window` must be positive, but got {self.window}")
        bad = {str(k): v for k, v in self.weights.items() if not np.isfinite(v)}
        if bad:
            raise ValueError(f"`weights` must be finite numbers, but got {bad}")


@dataclass(frozen=True)
class RewardJoin:
    """Joined rewards plus the counts a report shows: nothing is dropped silently."""

    rewards: tuple[RewardRecord, ...]
    rewarded: int
    defaulted: int
    pending: int
    late_events: int
    duplicate_events: int


def _advances(properties: object, taxonomy: StageTaxonomy) -> bool:
    if not isinstance(properties, Mapping):
        return False
    try:
        return taxonomy.index(str(properties.get("to"))) > taxonomy.index(str(properties.get("from")))
    except KeyError:
        return False


def join_rewards(
    decisions: Sequence[DecisionRecord],
    events: pd.DataFrame,
    *,
    now: datetime,
    config: RewardConfig | None = None,
) -> RewardJoin:
    """Rewards for the content decisions among ``decisions`` from ``events``.

    events: frame with columns event_id, contact_id, timestamp (UTC), type, content_id, properties (the
    event store's ``read_frame``). ``now`` decides which windows are closed.
    """
    config = config or RewardConfig()
    if now.tzinfo is None:
        raise ValueError(f"`now` must be timezone-aware, but got {now}")
    missing = [
        c for c in ("event_id", "contact_id", "timestamp", "type", "content_id") if c not in events.columns
    ]
    if missing:
        raise ValueError(f"`events` lacks columns {missing}")
    content = [d for d in decisions if d.content_id is not None]
    dec = pd.DataFrame(
        {
            "decision_id": [d.event_id for d in content],
            "contact_id": [d.contact_id for d in content],
            "content_id": [d.content_id for d in content],
            "decided_at": pd.to_datetime([d.decided_at for d in content], utc=True).astype(
                "datetime64[ns, UTC]"
            ),
        }
    ).sort_values(["decided_at", "decision_id"], kind="stable")
    duplicate_events = int(events["event_id"].duplicated().sum())
    ev = events.drop_duplicates("event_id").copy()
    ev["type"] = ev["type"].astype(str)
    ev = ev[ev["type"].isin([t.value for t in config.weights])]
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    if "properties" not in ev.columns:
        ev["properties"] = None
    stage = ev["type"] == EventType.STAGE_CHANGE.value
    advancing = ev.loc[stage, "properties"].map(lambda p: _advances(p, config.taxonomy))
    ev = ev[~stage | ev.index.isin(advancing[advancing].index)]
    ev = ev[ev["contact_id"].notna()].sort_values(["timestamp", "event_id"], kind="stable")
    contact_types = [t.value for t in config.contact_level]
    content_ev = ev[~ev["type"].isin(contact_types) & ev["content_id"].notna()]
    contact_ev = ev[ev["type"].isin(contact_types)]
    matched = []
    if not dec.empty:
        for frame, by in ((content_ev, ["contact_id", "content_id"]), (contact_ev, ["contact_id"])):
            if frame.empty:
                continue
            right = dec if by == ["contact_id", "content_id"] else dec.drop(columns="content_id")
            merged = pd.merge_asof(
                frame.drop(columns=[c for c in ("content_id",) if c not in by]),
                right,
                left_on="timestamp",
                right_on="decided_at",
                by=by,
                direction="backward",
            )
            matched.append(merged[merged["decision_id"].notna()])
    hits = pd.concat(matched, ignore_index=True) if matched else pd.DataFrame(columns=["decision_id"])
    late_events = 0
    if not hits.empty:
        in_window = hits["timestamp"] < hits["decided_at"] + config.window
        late_events = int((~in_window).sum())
        hits = hits[in_window]
    weights = {t.value: w for t, w in config.weights.items()}
    by_decision: dict[str, tuple[float, pd.Timestamp, int]] = {}
    if not hits.empty:
        firsts = hits.sort_values(["timestamp", "event_id"]).drop_duplicates(["decision_id", "type"])
        for decision_id, group in firsts.groupby("decision_id", sort=True):
            value = float(sum(weights[t] for t in group["type"]))
            by_decision[str(decision_id)] = (value, group["timestamp"].max(), len(group))
    rewards: list[RewardRecord] = []
    defaulted = pending = 0
    for d in content:
        end = d.decided_at + config.window
        if d.event_id in by_decision:
            value, observed, n = by_decision[d.event_id]
            if end <= now:
                rewards.append(
                    RewardRecord(d.event_id, value, RewardSource.JOINED, observed.to_pydatetime(), n)
                )
            else:
                pending += 1
        elif end <= now:
            rewards.append(RewardRecord(d.event_id, config.default_reward, RewardSource.JOINED, end, 0))
            defaulted += 1
        else:
            pending += 1
    return RewardJoin(
        rewards=tuple(rewards),
        rewarded=len(rewards) - defaulted,
        defaulted=defaulted,
        pending=pending,
        late_events=late_events,
        duplicate_events=duplicate_events,
    )


def explicit_reward(event_id: str, reward: float, at: datetime) -> RewardRecord:
    """A reward set through the reward API; it overrides any joined reward of the same decision."""
    if at.tzinfo is None:
        raise ValueError(f"`at` must be timezone-aware, but got {at}")
    if not np.isfinite(reward):
        raise ValueError(f"`reward` must be a finite number, but got {reward}")
    return RewardRecord(event_id, float(reward), RewardSource.EXPLICIT, at, 0)

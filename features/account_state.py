"""Account engagement kept up to date at ingestion: the O(1) online form of the account table's sums.

``features.aggregation.account_groups_sql`` / ``account_scan_spec`` compute, per account and as of its latest
event, event and contact totals, engagement decayed with each half-life and behaviour points decayed with the
points half-life, over all the account's contacts. ``AccountState.apply`` adds one event to those sums with
the same maths as ``features.decay.EngagementState.apply`` (late events are added decayed to ``as_of``), so
ingestion gives the values the batch job would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from features.decay import HALF_LIVES_DAYS, NOT_AFFINITY_TYPES, RETURN_VISIT, CounterEvent, decay_rate
from features.points import DEFAULT_POINTS, PointsWeights

ACCOUNT_DECAYED = (*(f"account_engagement_{h}d" for h in HALF_LIVES_DAYS), "account_points")
ACCOUNT_FEATURES = ("account_as_of_ts", "account_events_total", "account_contacts", *ACCOUNT_DECAYED)


def account_rates(weights: PointsWeights = DEFAULT_POINTS) -> dict[str, float]:
    """Decay rate per second of each decayed account feature (engagement per half-life, then points)."""
    rates = {f"account_engagement_{h}d": decay_rate(h) for h in HALF_LIVES_DAYS}
    rates["account_points"] = decay_rate(weights.half_life_days)
    return rates


def event_points(event: CounterEvent, weights: PointsWeights = DEFAULT_POINTS) -> float:
    """Behaviour points one event earns (its type's points, plus the return-visit points of a returning
    visit)."""
    points = float(weights.behaviour.get(event.type, 0.0))
    if event.returning and event.type == "page_view":
        points += float(weights.behaviour.get(RETURN_VISIT, 0.0))
    return points


@dataclass(frozen=True)
class AccountState:
    """One account's engagement features as of its latest event ``as_of`` (None: no event yet)."""

    as_of: float | None = None
    events_total: int = 0
    contacts: int = 0
    decayed: dict[str, float] = field(default_factory=dict)

    def apply(
        self, event: CounterEvent, new_contact: bool, weights: PointsWeights = DEFAULT_POINTS
    ) -> AccountState:
        """The state after one more event of the account; ``new_contact``: its contact is new to the
        account."""
        rates = account_rates(weights)
        as_of = event.t if self.as_of is None else max(self.as_of, event.t)
        adds = {
            **{n: 0.0 if event.type in NOT_AFFINITY_TYPES else 1.0 for n in ACCOUNT_DECAYED[:-1]},
            "account_points": event_points(event, weights),
        }
        decayed = {}
        for name, rate in rates.items():
            value = self.decayed.get(name, 0.0)
            if self.as_of is not None and as_of > self.as_of:
                value *= math.exp(-rate * (as_of - self.as_of))
            decayed[name] = value + adds[name] * math.exp(-rate * (as_of - event.t))
        return replace(
            self,
            as_of=as_of,
            events_total=self.events_total + 1,
            contacts=self.contacts + int(new_contact),
            decayed=decayed,
        )

    def to_row(self) -> dict[str, Any]:
        """The account_engagement online row."""
        return {
            "account_as_of_ts": self.as_of,
            "account_events_total": self.events_total,
            "account_contacts": self.contacts,
            **{n: self.decayed.get(n, 0.0) for n in ACCOUNT_DECAYED},
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AccountState:
        """Rebuild from an online row; a row without ``account_as_of_ts`` is the empty state."""
        as_of = row.get("account_as_of_ts")
        if as_of is None or as_of != as_of:
            return cls()
        return cls(
            as_of=float(as_of),
            events_total=int(row.get("account_events_total") or 0),
            contacts=int(row.get("account_contacts") or 0),
            decayed={n: float(row.get(n) or 0.0) for n in ACCOUNT_DECAYED},
        )

    def at(self, ts: float, weights: PointsWeights = DEFAULT_POINTS) -> dict[str, float]:
        """The decayed account features moved from ``as_of`` to ``ts`` (zeros for an empty state)."""
        if self.as_of is None:
            return dict.fromkeys(ACCOUNT_DECAYED, 0.0)
        elapsed = max(ts - self.as_of, 0.0)
        return {
            n: self.decayed.get(n, 0.0) * math.exp(-r * elapsed) for n, r in account_rates(weights).items()
        }

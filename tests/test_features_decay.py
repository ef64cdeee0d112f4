"""Decayed counters: the maths, and batch (DuckDB SQL) = online (O(1) update) on random event sequences."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.account_state import ACCOUNT_DECAYED, AccountState
from features.aggregation import build_offline_tables
from features.decay import (
    LAST_SEEN,
    CounterEvent,
    EngagementState,
    counter_columns,
    decay_factor,
    decay_rate,
    decayed_sum,
    fold,
)
from features.store import counter_event
from tests.features_factory import BASE, CONTENTS, TOPICS, TYPES

STAGES = {b.content_id: b.stages for b in CONTENTS}
DAY = 86_400.0


def test_a_counter_halves_after_one_half_life() -> None:
    state = EngagementState().apply(CounterEvent("e1", 0.0, "email_click"))
    after = state.counters_at(7 * DAY)
    assert after["email_click_7d"] == pytest.approx(0.5)
    assert after["email_click_30d"] == pytest.approx(2 ** (-7 / 30))
    assert after["page_view_7d"] == 0.0


def test_late_event_is_added_decayed_to_as_of() -> None:
    state = fold([CounterEvent("e1", 10 * DAY, "page_view"), CounterEvent("e2", 3 * DAY, "page_view")])
    assert state.as_of == 10 * DAY
    assert state.counter("page_view_7d") == pytest.approx(1 + 0.5)
    assert state.events_total == 2


def test_stage_affinity_counts_content_stages_but_not_sends() -> None:
    state = fold(
        [
            CounterEvent("e1", 0.0, "content_download", "k2", ("information", "consultation")),
            CounterEvent("e2", 0.0, "email_sent", "k1", ("awareness",)),
        ]
    )
    assert state.counter("stage_information_7d") == 1.0
    assert state.counter("stage_consultation_30d") == 1.0
    assert state.counter("stage_awareness_7d") == 0.0
    assert state.consumed_content_ids == ("k2",)


def test_decayed_sum_ignores_future_events() -> None:
    assert decayed_sum([1.0, 1.0], [0.0, 2 * DAY], at=DAY, half_life_days=1) == pytest.approx(0.5)


@pytest.mark.parametrize("half_life, match", [(0, "half_life_days must be > 0"), (-3, "but got -3")])
def test_bad_half_life_is_named(half_life: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decay_rate(half_life)


def test_request_before_as_of_keeps_the_count() -> None:
    assert decay_factor(-5.0, 7) == 1.0


event_rows = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2"]),
        st.integers(min_value=0, max_value=400 * 86_400 * 10**6),  # microseconds after BASE
        st.sampled_from(TYPES),
        st.sampled_from(["k1", "k2", "k3", None]),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


def _frame(rows: list[tuple[str, int, str, str | None, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(rows))],
            "contact_id": [r[0] for r in rows],
            "anonymous_id": None,
            "account_id": "a1",
            "timestamp": [BASE + pd.Timedelta(microseconds=r[1]) for r in rows],
            "type": [r[2] for r in rows],
            "content_id": [r[3] for r in rows],
            "channel": None,
            "properties": [json.dumps({"returning": r[4]}) for r in rows],
        }
    )


def _online(frame: pd.DataFrame) -> dict[str, EngagementState]:
    """The online path: events one by one in the given (arrival) order, duplicates dropped."""
    events: dict[str, list[CounterEvent]] = {}
    for row in frame.to_dict("records"):
        events.setdefault(row["contact_id"], []).append(counter_event(row, STAGES, TOPICS))
    return {cid: fold(evs) for cid, evs in events.items()}


def _assert_same(batch_row: pd.Series | pd.DataFrame, state: EngagementState) -> None:
    assert batch_row["as_of_ts"] == state.as_of
    assert batch_row["first_seen_ts"] == state.first_seen_ts
    assert batch_row["events_total"] == state.events_total
    assert tuple(batch_row["consumed_content_ids"]) == state.consumed_content_ids
    for name in LAST_SEEN:
        expected = state.last_seen.get(name)
        value = batch_row[name]
        assert (expected is None and pd.isna(value)) or value == expected, name
    for name in counter_columns():
        assert batch_row[name] == pytest.approx(state.counter(name), rel=1e-9, abs=1e-12), name


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=event_rows, seed=st.integers(0, 10_000))
def test_batch_equals_online_even_for_shuffled_and_duplicated_input(
    tmp_path: Path, rows: list[tuple[str, int, str, str | None, bool]], seed: int
) -> None:
    clean = _frame(rows)
    rng = random.Random(seed)
    messy = pd.concat([clean, clean.sample(frac=0.5, random_state=seed)]).sample(frac=1.0, random_state=seed)
    out = tmp_path / f"run{seed}"
    build_offline_tables(messy, out, contents=list(CONTENTS))
    batch = pd.read_parquet(out / "contact_engagement.parquet").dropna(subset=["event_timestamp"])
    latest = batch.sort_values("event_timestamp").groupby("contact_id").tail(1).set_index("contact_id")
    clean_online = _online(clean.sort_values("timestamp", kind="stable"))
    messy_online = _online(messy)
    assert set(latest.index) == set(clean_online) == set(messy_online)
    for contact_id, state in clean_online.items():
        _assert_same(latest.loc[contact_id], state)
        _assert_same(latest.loc[contact_id], messy_online[contact_id])
    # And at an arbitrary later time, both decay to the same values as the direct definition.
    at = (BASE + pd.Timedelta(days=500)).value / 1e9 + rng.random()
    contact_id, state = next(iter(clean_online.items()))
    mine = clean[clean["contact_id"] == contact_id]
    clicks = [
        counter_event(r, STAGES, TOPICS).t for r in mine.to_dict("records") if r["type"] == "email_click"
    ]
    expected = decayed_sum([1.0] * len(clicks), clicks, at=at, half_life_days=30)
    assert state.counters_at(at)["email_click_30d"] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert math.isfinite(sum(state.counters_at(at).values()))


def _online_accounts(frame: pd.DataFrame) -> dict[str, AccountState]:
    """Ingestion's account update: events in arrival order, a contact new to the account on its first one."""
    states: dict[str, AccountState] = {}
    seen: set[tuple[str, str]] = set()
    for row in frame.drop_duplicates("event_id").to_dict("records"):
        pair = (row["account_id"], row["contact_id"])
        state = states.get(row["account_id"], AccountState())
        states[row["account_id"]] = state.apply(counter_event(row, STAGES, TOPICS), pair not in seen)
        seen.add(pair)
    return states


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=event_rows, seed=st.integers(0, 10_000))
def test_account_batch_equals_online_for_shuffled_and_duplicated_input(
    tmp_path: Path, rows: list[tuple[str, int, str, str | None, bool]], seed: int
) -> None:
    clean = _frame(rows)
    clean["account_id"] = [f"a{i % 2}" for i in range(len(clean))]  # contacts spread over two accounts
    messy = pd.concat([clean, clean.sample(frac=0.5, random_state=seed)]).sample(frac=1.0, random_state=seed)
    out = tmp_path / f"acc{seed}"
    build_offline_tables(messy, out, contents=list(CONTENTS))
    batch = pd.read_parquet(out / "account_engagement.parquet").dropna(subset=["event_timestamp"])
    latest = batch.sort_values("event_timestamp").groupby("account_id").tail(1).set_index("account_id")
    online = _online_accounts(messy)
    assert set(latest.index) == set(online)
    for account_id, state in online.items():
        row = latest.loc[account_id]
        mine = clean[clean["account_id"] == account_id]
        assert row["account_as_of_ts"] == state.as_of
        assert row["account_events_total"] == state.events_total == len(mine)
        assert row["account_contacts"] == state.contacts == mine["contact_id"].nunique()
        for name in ACCOUNT_DECAYED:
            assert row[name] == pytest.approx(state.decayed[name], rel=1e-9, abs=1e-12), name

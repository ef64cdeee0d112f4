"""Reward joining: window, weights per event type, default for silence, late and duplicate events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from features.decision_log import DecisionRecord, RewardSource, open_decision_log
from features.schemas import EventType
from ripen.settings import Settings
from training.rewards import RewardConfig, explicit_reward, join_rewards

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)


def decision(event_id: str, contact: str, content: str, day: float = 0) -> DecisionRecord:
    return DecisionRecord(
        event_id=event_id,
        decided_at=T0 + timedelta(days=day),
        contact_id=contact,
        action="content",
        policy_version="v1",
        content_id=content,
        probability=0.5,
    )


def events(*rows: tuple[Any, ...]) -> pd.DataFrame:
    """rows: (event_id, contact, type, content, day offset[, properties])."""
    return pd.DataFrame(
        [
            {
                "event_id": r[0],
                "contact_id": r[1],
                "type": r[2].value,
                "content_id": r[3],
                "timestamp": T0 + timedelta(days=r[4]),
                "properties": r[5] if len(r) > 5 else {},
            }
            for r in rows
        ]
    )


def by_id(result: Any) -> dict[str, float]:
    return {r.event_id: r.reward for r in result.rewards}


def test_weights_window_default_and_each_type_once() -> None:
    decisions = [decision("d1", "c1", "wp"), decision("d2", "c2", "wp"), decision("d3", "c3", "eb")]
    ev = events(
        ("e1", "c1", EventType.EMAIL_CLICK, "wp", 1),
        ("e2", "c1", EventType.EMAIL_CLICK, "wp", 2),  # second click: counted once
        ("e3", "c1", EventType.CONTENT_DOWNLOAD, "wp", 2),
        ("e4", "c2", EventType.EMAIL_CLICK, "other", 1),  # another block: no reward for d2
        ("e5", "c3", EventType.WEBINAR_ATTEND, "eb", 3),
        ("e6", "c3", EventType.UNSUBSCRIBE, None, 4),  # contact-level, negative
    )
    result = join_rewards(decisions, ev, now=NOW)
    assert by_id(result) == {"d1": 2.0, "d2": 0.0, "d3": 0.0}
    assert (result.rewarded, result.defaulted, result.pending) == (2, 1, 0)
    d1 = next(r for r in result.rewards if r.event_id == "d1")
    assert d1.observed_at == T0 + timedelta(days=2) and d1.n_events == 2 and d1.source is RewardSource.JOINED


def test_late_and_duplicate_events_are_counted_not_used() -> None:
    ev = events(
        ("e1", "c1", EventType.EMAIL_CLICK, "wp", 8),  # after the 7-day window
        ("e2", "c1", EventType.CONTENT_DOWNLOAD, "wp", 1),
        ("e2", "c1", EventType.CONTENT_DOWNLOAD, "wp", 1),  # re-sent event
    )
    result = join_rewards([decision("d1", "c1", "wp")], ev, now=NOW)
    assert by_id(result) == {"d1": 1.0}
    assert (result.late_events, result.duplicate_events) == (1, 1)
    again = join_rewards([decision("d1", "c1", "wp")], ev.iloc[::-1], now=NOW)
    assert again.rewards == result.rewards  # order of arrival does not matter


def test_open_windows_wait_and_default_is_configurable() -> None:
    decisions = [decision("old", "c1", "wp"), decision("new", "c2", "wp", day=27)]
    config = RewardConfig(default_reward=-0.1)
    result = join_rewards(
        decisions, events(("e1", "c2", EventType.EMAIL_CLICK, "wp", 28)), now=NOW, config=config
    )
    assert by_id(result) == {"old": -0.1}
    assert result.pending == 1


def test_stage_advance_rewards_and_attribution_to_latest_decision() -> None:
    decisions = [decision("d1", "c1", "wp"), decision("d2", "c1", "eb", day=2)]
    ev = events(
        ("s1", "c1", EventType.STAGE_CHANGE, None, 3, {"from": "information", "to": "consultation"}),
        (
            "s2",
            "c1",
            EventType.STAGE_CHANGE,
            None,
            1,
            {"from": "information", "to": "awareness"},
        ),  # backwards
    )
    result = join_rewards(decisions, ev, now=NOW)
    assert by_id(result) == {"d1": 0.0, "d2": 3.0}


def test_explicit_rewards_override_joined_ones_in_the_log(settings: Settings) -> None:
    with open_decision_log(f"sqlite:///{settings.data_dir / 'decisions.db'}") as log:
        log.log([decision("d1", "c1", "wp")])
        joined = join_rewards(
            [decision("d1", "c1", "wp")], events(("e", "c1", EventType.EMAIL_CLICK, "wp", 1)), now=NOW
        )
        log.record_rewards([explicit_reward("d1", 5.0, T0 + timedelta(days=1))])
        result = log.record_rewards(list(joined.rewards))
        assert result.superseded == 1
        assert log.rewards()["d1"].reward == 5.0


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: RewardConfig(window=timedelta(0)), "window"),
        (lambda: RewardConfig(weights={EventType.EMAIL_CLICK: float("nan")}), "weights"),
        (lambda: explicit_reward("d", float("inf"), T0), "reward"),
        (lambda: explicit_reward("d", 1.0, datetime(2026, 1, 1)), "at"),
        (lambda: join_rewards([], pd.DataFrame({"event_id": []}), now=NOW), "lacks columns"),
    ],
)
def test_bad_input_names_the_field(build: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()

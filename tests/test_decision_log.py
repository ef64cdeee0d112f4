"""The decision log on both backends: idempotent decisions, deterministic rewards, erasure to aggregates."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from features.decision_log import (
    DecisionLog,
    DecisionRecord,
    EligibleAction,
    ExcludedCandidate,
    LogResult,
    RewardRecord,
    RewardSource,
    decision_log_url,
    open_decision_log,
)
from ripen.settings import Settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, settings: Settings) -> str:
    url: str = (
        decision_log_url(settings) if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    return url


@pytest.fixture
def log(log_url: str) -> Iterator[DecisionLog]:
    with open_decision_log(log_url) as opened:
        yield opened


def decision(
    event_id: str, contact_id: str = "c-1", minutes: int = 0, content: str | None = "wp-1"
) -> DecisionRecord:
    return DecisionRecord(
        event_id=event_id,
        decided_at=T0 + timedelta(minutes=minutes),
        contact_id=contact_id,
        action="content" if content else "wait",
        policy_version="v1",
        content_id=content,
        probability=0.7 if content else None,
        context={"stage": "information", "readiness": 0.2},
        context_features=(1.0, 0.0, 0.2),
        eligible=(EligibleAction("wp-1", 0.7, (1.0, 0.0)), EligibleAction("eb-2", 0.3, (0.0, 1.0)))
        if content
        else (),
        exclusions=(ExcludedCandidate("aw-1", "stage_mismatch"),),
        wait_until=None if content else T0 + timedelta(days=2),
    )


def test_decisions_round_trip_and_are_idempotent(log: DecisionLog) -> None:
    first = log.log([decision("e1"), decision("e2", minutes=1, content=None)])
    assert (first.stored, first.duplicates) == (2, 0)
    again = log.log([decision("e1"), decision("e3", minutes=2)])
    assert (again.stored, again.duplicates) == (1, 1)
    assert log.count() == 3
    assert log.get("e1") == decision("e1")
    assert log.get("e2") == decision("e2", minutes=1, content=None)
    assert log.get("nope") is None
    assert [d.event_id for d in log.decisions(start=T0 + timedelta(minutes=1))] == ["e2", "e3"]


@contextmanager
def table_write_locked(url: str) -> Iterator[None]:
    """Hold the decision table's write lock from another connection, as a long foreign transaction would."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg:
        pg.execute("LOCK TABLE policy_decisions IN EXCLUSIVE MODE")
        yield  # the connection's transaction ends (and the lock is released) when the block closes


def test_concurrent_calls_share_one_commit_and_each_gets_its_own_result(
    log: DecisionLog, log_url: str
) -> None:
    log.log([decision("warm-up")])
    before = log.transactions
    results: dict[int, LogResult] = {}

    def call(i: int) -> None:
        results[i] = log.log([decision(f"t-{i}", minutes=i), decision("shared")])

    callers = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    with table_write_locked(log_url):
        for caller in callers:
            caller.start()
        for _ in range(500):  # the writer's transaction is blocked on the lock; the other calls queue
            if log.unacknowledged_writes == 8:
                break
            time.sleep(0.01)
        assert log.unacknowledged_writes == 8
        assert not results  # nothing is acknowledged before it is committed
    for caller in callers:
        caller.join()
    # the calls the blocked transaction held, then every call queued behind it together: not one commit each
    assert log.transactions - before <= 2
    assert sum(r.stored for r in results.values()) == 9  # eight own decisions + the shared one once
    assert sorted(r.duplicates for r in results.values()) == [0] + [1] * 7
    assert log.count() == 10 and log.get("shared") == decision("shared")


def reward(event_id: str, value: float, source: RewardSource, minutes: int) -> RewardRecord:
    return RewardRecord(event_id, value, source, T0 + timedelta(minutes=minutes), n_events=1)


def test_rewards_resolve_late_and_duplicates_in_any_order(log: DecisionLog) -> None:
    log.log([decision("e1"), decision("e2", minutes=1)])
    batch = [
        reward("e1", 1.0, RewardSource.JOINED, 10),
        reward("e1", 2.0, RewardSource.JOINED, 30),  # later joined reward wins over the earlier one
        reward("e1", 0.5, RewardSource.EXPLICIT, 5),  # explicit beats joined whatever the time
        reward("e2", 1.0, RewardSource.JOINED, 10),
        reward("ghost", 1.0, RewardSource.EXPLICIT, 10),
    ]
    result = log.record_rewards(batch)
    assert result.unknown_ids == ("ghost",)
    assert (result.stored, result.superseded) == (2, 2)
    stored = log.rewards()
    assert (stored["e1"].reward, stored["e1"].source) == (0.5, RewardSource.EXPLICIT)
    # a late joined reward never overrides the explicit one; re-sending the same is unchanged
    late = log.record_rewards(
        [reward("e1", 9.0, RewardSource.JOINED, 99), reward("e2", 1.0, RewardSource.JOINED, 10)]
    )
    assert (late.superseded, late.unchanged, late.replaced) == (1, 1, 0)
    newer = log.record_rewards([reward("e2", 0.0, RewardSource.JOINED, 20)])
    assert newer.replaced == 1 and log.rewards()["e2"].reward == 0.0
    # reversed arrival order gives the same final state
    log.log([decision("f1", minutes=3)])
    log.record_rewards([reward("f1", 0.5, RewardSource.EXPLICIT, 5)])
    log.record_rewards([reward("f1", 2.0, RewardSource.JOINED, 30)])
    log.record_rewards([reward("f1", 1.0, RewardSource.JOINED, 10)])
    assert log.rewards()["f1"].reward == 0.5
    frame = log.training_frame()
    assert list(frame["event_id"]) == ["e1", "e2", "f1"]
    assert list(frame["reward"]) == [0.5, 0.0, 0.5]


def test_erasure_keeps_only_anonymized_aggregates(log: DecisionLog) -> None:
    log.log([decision("e1"), decision("e2", minutes=1), decision("e3", contact_id="c-2", minutes=2)])
    log.record_rewards([reward("e1", 1.0, RewardSource.JOINED, 5)])
    report = log.erase_contact("c-1")
    assert (report.decisions_deleted, report.rewards_deleted) == (2, 1)
    assert report.contact_hash != "c-1" and len(report.contact_hash) == 64
    assert log.decisions(contact_id="c-1") == []
    assert set(log.rewards()) == set()
    assert [d.event_id for d in log.decisions()] == ["e3"]
    aggregates = log.aggregates()
    assert aggregates.to_dict("records") == [
        {
            "policy_version": "v1",
            "action": "content",
            "content_id": "wp-1",
            "decisions": 2,
            "rewarded": 1,
            "reward_sum": 1.0,
        }
    ]
    assert "c-1" not in aggregates.to_string()
    log.log([decision("e4", minutes=5)])
    log.erase_contact("c-1")
    assert int(log.aggregates()["decisions"].iloc[0]) == 3  # aggregates accumulate
    assert [row["contact_hash"] for row in log.audit_rows()] == [report.contact_hash] * 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"decided_at": datetime(2026, 1, 1)}, "decided_at"),
        ({"probability": 0.0}, r"`probability` must be in \(0, 1\]"),
        ({"probability": None}, "probability"),
    ],
)
def test_bad_records_are_rejected(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {
        "event_id": "e",
        "decided_at": T0,
        "contact_id": "c",
        "action": "content",
        "policy_version": "v",
        "content_id": "wp",
        "probability": 0.5,
    }
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        DecisionRecord(**base)  # type: ignore[arg-type]


def test_unsupported_url_is_named() -> None:
    with pytest.raises(ValueError, match="sqlite:/// or postgresql://"):
        open_decision_log("mysql://x")


def test_bulk_encoding_of_eligible_actions_and_exclusions_is_plain_json(settings: Settings) -> None:
    """The cached encoding of shared action features writes what ``json.dumps`` would, byte for byte."""
    import json

    import numpy as np

    shared = (0.1, float("nan"), 1.0, 3)
    eligible = (
        EligibleAction('wp-"1"', 0.1 + 0.2, shared),
        EligibleAction("eb-2", float(np.float64(1 / 3)), shared),
        EligibleAction("eb-3", np.float64(0.25), ()),  # type: ignore[arg-type]
        EligibleAction("ü-4", 1e-300, (-0.0, 2.5e17)),
    )
    exclusions = (ExcludedCandidate("aw-1", "stage_mismatch"), ExcludedCandidate("aw-1", "stage_mismatch"))
    records = [replace(decision(f"e{i}"), eligible=eligible[i:], exclusions=exclusions[:i]) for i in range(3)]
    url = decision_log_url(settings)
    with open_decision_log(url) as log:
        log.log(records)
        stored = log.decisions()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    raw = dict(
        (e, (el, ex))
        for e, el, ex in conn.execute("SELECT event_id, eligible, exclusions FROM policy_decisions")
    )
    conn.close()
    for record in records:
        assert raw[record.event_id] == (
            json.dumps([[e.content_id, e.probability, list(e.features)] for e in record.eligible]),
            json.dumps([[e.content_id, e.reason] for e in record.exclusions]),
        )
    assert [s.exclusions for s in stored] == [r.exclusions for r in records]
    assert [[e.content_id for e in s.eligible] for s in stored] == [
        [e.content_id for e in r.eligible] for r in records
    ]
    assert stored[0].eligible[0].features[:1] == (0.1,) and np.isnan(stored[0].eligible[0].features[1])

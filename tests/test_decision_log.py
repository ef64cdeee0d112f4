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
import sqlalchemy as sa

from features.decision_log import (
    ActionCatalog,
    DecisionLog,
    DecisionRecord,
    EligibleAction,
    ExcludedCandidate,
    LogResult,
    RewardRecord,
    RewardSource,
    catalogs_table,
    decision_log_url,
    decisions_table,
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


def test_rows_refer_to_one_stored_catalog_and_stay_plain_json(settings: Settings) -> None:
    """Action features are stored once per catalog version; rows hold positions and exact probabilities."""
    import json

    import numpy as np

    shared = (0.1, float("nan"), 1.0, 3)
    eligible = (
        EligibleAction('wp-"1"', 0.1 + 0.2, shared),
        EligibleAction("eb-2", float(np.float64(1 / 3)), shared),
        EligibleAction("eb-3", np.float64(0.25), ()),  # type: ignore[arg-type]
        EligibleAction("ü-4", 1e-300, (-0.0, 2.5e17)),
    )
    exclusions = (ExcludedCandidate("aw-1", "stage_mismatch"), ExcludedCandidate("eb-3", "consumed"))
    records = [replace(decision(f"e{i}"), eligible=eligible[i:], exclusions=exclusions[:i]) for i in range(3)]
    url = decision_log_url(settings)
    with open_decision_log(url) as log:
        log.log(records)
        stored = log.decisions()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    raw = {
        e: (el, ex, v)
        for e, el, ex, v in conn.execute(
            "SELECT event_id, eligible, exclusions, catalog_version FROM policy_decisions"
        )
    }
    catalogs = conn.execute(
        "SELECT catalog_version, content_ids, features FROM policy_action_catalogs"
    ).fetchall()
    conn.close()
    assert len(catalogs) == 1  # one log call without explicit catalogs: one derived catalog
    version, ids_json, features_json = catalogs[0]
    ids = json.loads(ids_json)
    assert ids == ['wp-"1"', "eb-2", "eb-3", "ü-4"]
    assert json.loads(features_json)[3] == [-0.0, 2.5e17]
    for record in records:
        assert raw[record.event_id] == (
            json.dumps(
                [[ids.index(e.content_id) for e in record.eligible], [e.probability for e in record.eligible]]
            ),  # fmt: skip
            json.dumps(
                [
                    [e.reason, [ids.index(e.content_id) if e.content_id in ids else e.content_id]]
                    for e in record.exclusions
                ]
            ),  # fmt: skip
            version,
        )
    assert [s.exclusions for s in stored] == [r.exclusions for r in records]
    assert [[(e.content_id, e.probability) for e in s.eligible] for s in stored] == [
        [(e.content_id, float(e.probability)) for e in r.eligible] for r in records
    ]
    assert stored[0].eligible[0].features[:1] == (0.1,) and np.isnan(stored[0].eligible[0].features[1])
    assert stored[0].eligible[3].features == (-0.0, 2.5e17)


def test_records_round_trip_exactly_with_their_catalog_stored_once(log: DecisionLog) -> None:
    catalog = ActionCatalog(("wp-1", "eb-2", "aw-1"), ((1.0, 0.0), (0.0, 1.0), (0.5, 0.5)))
    with_catalog = [replace(decision(f"k{i}", minutes=i), catalog=catalog) for i in range(3)]
    without = [decision("w1", minutes=5), decision("w2", minutes=6, content=None)]
    runs = (("eb-2", "consumed"), ("aw-1", "consumed"), ("zz-9", "stage_mismatch"), ("wp-1", "consumed"))
    later = replace(
        decision("k9", minutes=9), catalog=catalog, exclusions=tuple(ExcludedCandidate(*e) for e in runs)
    )
    log.log(with_catalog)
    log.log(without)
    log.log([later])  # a version already stored is not stored again
    back = log.decisions()
    assert back == [*with_catalog, *without, later]
    assert back[0].catalog == catalog and back[0].catalog.version == catalog.version
    assert log.get("w2") == without[1] and log.get("k9") == later
    with log._tx() as conn:  # noqa: SLF001 - runs of one reason, in order; a block outside by its id
        raw = conn.execute(sa.select(decisions_table.c.exclusions).where(decisions_table.c.event_id == "k9"))
        assert raw.scalar_one() == '[["consumed", [1, 2]], ["stage_mismatch", ["zz-9"]], ["consumed", [0]]]'
    with log._tx() as conn:  # noqa: SLF001
        versions = conn.execute(sa.select(catalogs_table.c.catalog_version)).scalars().all()
    derived = back[3].catalog
    assert derived is not None and derived.content_ids == ("wp-1", "eb-2")
    assert sorted(versions) == sorted({catalog.version, derived.version})
    changed = ActionCatalog(("wp-1", "eb-2", "aw-1"), ((1.0, 0.0), (0.0, 1.0), (0.5, 0.25)))
    assert changed.version != catalog.version


@pytest.mark.parametrize(
    "eligible, match",
    [
        (EligibleAction("zz-9", 0.7, (1.0, 0.0)), "'zz-9' is not in catalog"),
        (EligibleAction("wp-1", 0.7, (9.0, 0.0)), "'wp-1' has other features than catalog"),
    ],
)
def test_an_eligible_block_outside_its_catalog_is_refused(
    log: DecisionLog, eligible: EligibleAction, match: str
) -> None:
    catalog = ActionCatalog(("wp-1", "eb-2"), ((1.0, 0.0), (0.0, 1.0)))
    with pytest.raises(ValueError, match=match):
        log.log([replace(decision("x1", content="eb-2"), eligible=(eligible,), catalog=catalog)])
    assert log.count() == 0


def test_a_database_from_before_catalog_versions_is_migrated_and_still_read(log_url: str) -> None:
    """Old rows (features inline, no ``catalog_version`` column) are read as before, next to new rows."""
    import json

    old = sa.MetaData()
    legacy = sa.Table(
        "policy_decisions",
        old,
        *[sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
          for c in decisions_table.columns if c.name != "catalog_version"],
    )  # fmt: skip
    engine = sa.create_engine(log_url.replace("postgresql://", "postgresql+psycopg://", 1))
    old.create_all(engine)
    before = decision("old-1")
    with engine.begin() as conn:
        conn.execute(
            legacy.insert(),
            {
                "event_id": before.event_id, "decided_at": before.decided_at, "contact_id": before.contact_id,
                "action": before.action, "content_id": before.content_id, "probability": before.probability,
                "policy_version": before.policy_version, "context": json.dumps(dict(before.context)),
                "context_features": json.dumps(list(before.context_features)),
                "eligible": json.dumps([[e.content_id, e.probability, list(e.features)]
                                        for e in before.eligible]),
                "exclusions": json.dumps([[e.content_id, e.reason] for e in before.exclusions]),
                "wait_until": None,
            },
        )  # fmt: skip
    engine.dispose()
    with open_decision_log(log_url) as log:
        assert log.log([decision("new-1", minutes=1)]).stored == 1
        assert log.decisions() == [before, decision("new-1", minutes=1)]
        frame = log.training_frame()
    assert frame["event_id"].tolist() == ["old-1", "new-1"]
    with open_decision_log(log_url) as again:  # the migration ran once; reopening changes nothing
        assert again.count() == 2
        assert again.get("old-1") == before

"""One test suite, run against both event-store backends: embedded SQLite (WAL) and real PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from features.event_store import (
    EXPORT_COLUMNS,
    EventStore,
    EventStoreUnavailable,
    ItemStatus,
    open_event_store,
    open_settings_event_store,
)
from features.event_store_sql import contact_hash
from features.schemas import (
    Channel,
    ConsentRecord,
    ContactProfile,
    ContentBlock,
    ContentFormat,
    EngagementEvent,
    EventType,
)
from ripen.cli import app
from ripen.settings import Settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def event(
    event_id: str,
    minutes: int = 0,
    *,
    contact_id: str | None = "c1",
    anonymous_id: str | None = None,
    type: EventType = EventType.PAGE_VIEW,
    **properties: object,
) -> EngagementEvent:
    return EngagementEvent(
        event_id=event_id,
        contact_id=contact_id,
        anonymous_id=anonymous_id,
        timestamp=T0 + timedelta(minutes=minutes),
        type=type,
        content_id="wp-1" if type is EventType.CONTENT_DOWNLOAD else None,
        channel=Channel.WEB,
        properties=dict(properties),
    )


def identify(
    event_id: str, minutes: int, contact_id: str, anonymous_id: str, consent: bool
) -> EngagementEvent:
    return event(
        event_id,
        minutes,
        contact_id=contact_id,
        anonymous_id=anonymous_id,
        type=EventType.IDENTIFY,
        tracking_consent=consent,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, settings: Settings) -> str:
    if request.param == "sqlite":
        return settings.event_store_url
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_event_store(store_url, max_clock_skew_seconds=300, max_properties_bytes=1_000) as s:
        yield s


# -- append --------------------------------------------------------------------------------------------------
def test_reingest_is_idempotent(store: EventStore) -> None:
    batch = [event(f"e{i}", i) for i in range(5)]
    first = store.append(batch, now=NOW)
    again = store.append(batch, now=NOW)
    assert [i.status for i in first.items] == [ItemStatus.STORED] * 5
    assert [i.status for i in again.items] == [ItemStatus.DUPLICATE] * 5
    assert store.count() == 5
    assert [e.event_id for e in store.events_for_contact("c1")] == [f"e{i}" for i in range(5)]


def test_large_batch_with_some_known_events(store: EventStore) -> None:
    """Large batches take PostgreSQL's COPY path; outcomes must be the same as for small ones."""
    store.append([event(f"e{i:03d}", i) for i in range(0, 300, 3)], now=NOW)
    result = store.append([event(f"e{i:03d}", i) for i in range(300)], now=NOW)
    assert (result.stored, result.duplicates) == (200, 100)
    assert [i.status is ItemStatus.DUPLICATE for i in result.items] == [i % 3 == 0 for i in range(300)]
    assert store.count() == 300
    again = store.append(
        [event(f"e{i:03d}", i) for i in range(300, 400)], now=NOW
    )  # staging emptied at commit
    assert again.stored == 100 and store.count() == 400


def test_repeat_within_one_batch_is_a_duplicate_of_the_first(store: EventStore) -> None:
    result = store.append([event("a"), event("b"), event("a", 3)], now=NOW)
    assert [i.status for i in result.items] == [ItemStatus.STORED, ItemStatus.STORED, ItemStatus.DUPLICATE]
    assert "index 0" in (result.items[2].reason or "")
    assert store.count() == 2


def test_bad_items_are_rejected_and_good_ones_stored(store: EventStore) -> None:
    future = EngagementEvent(
        event_id="future", contact_id="c1", timestamp=NOW + timedelta(hours=1), type=EventType.PAGE_VIEW
    )
    just_inside_skew = future.model_copy(
        update={"event_id": "skew-ok", "timestamp": NOW + timedelta(seconds=299)}
    )
    oversized = event("big", blob="x" * 2_000)
    result = store.append([event("ok1"), future, oversized, just_inside_skew], now=NOW)
    statuses = [(i.index, i.status, i.field) for i in result.items]
    assert statuses == [
        (0, ItemStatus.STORED, None),
        (1, ItemStatus.REJECTED, "timestamp"),
        (2, ItemStatus.REJECTED, "properties"),
        (3, ItemStatus.STORED, None),
    ]
    assert "clock skew" in (result.items[1].reason or "")
    assert (result.stored, result.rejected, result.duplicates) == (2, 2, 0)
    assert store.count() == 2


def test_ingest_reports_validation_and_store_outcomes_by_raw_index(store: EventStore) -> None:
    store.append([event("seen")], now=NOW)
    raw = [
        {"event_id": "n1", "contact_id": "c1", "timestamp": "2026-03-02T10:00:00Z", "type": "page_view"},
        {"event_id": "n2", "contact_id": "c1", "timestamp": "2026-03-02T10:00:00Z", "type": "teleport"},
        {"event_id": "seen", "contact_id": "c1", "timestamp": "2026-03-02T09:00:00Z", "type": "page_view"},
        {"event_id": "n3", "timestamp": "2026-03-02T10:00:00Z", "type": "page_view"},
    ]
    result = store.ingest(raw, now=NOW)
    assert [(i.index, i.status, i.field) for i in result.items] == [
        (0, ItemStatus.STORED, None),
        (1, ItemStatus.REJECTED, "type"),
        (2, ItemStatus.DUPLICATE, "event_id"),
        (3, ItemStatus.REJECTED, "contact_id"),
    ]
    assert store.count() == 2


def test_append_stores_ingested_at_and_round_trips_fields(store: EventStore) -> None:
    original = EngagementEvent(
        event_id="r1",
        contact_id="c9",
        account_id="acc-1",
        timestamp=T0 + timedelta(microseconds=123_457),
        type=EventType.CONTENT_DOWNLOAD,
        content_id="wp-7",
        channel=Channel.EMAIL,
        properties={"title": "Grüße", "n": 3, "nested": {"a": [1, 2]}},
    )
    store.append([original], now=NOW)
    (back,) = store.events_for_contact("c9")
    assert back == original
    frame = store.read_frame()
    assert frame.loc[0, "ingested_at"] == pd.Timestamp(NOW)


def test_naive_now_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        store.append([event("x")], now=datetime(2026, 1, 1))


# -- queries -------------------------------------------------------------------------------------------------
def test_events_for_contact_orders_and_filters_by_time(store: EventStore) -> None:
    store.append([event("b", 10), event("a", 10), event("c", 5), event("z", 1, contact_id="other")], now=NOW)
    assert [e.event_id for e in store.events_for_contact("c1")] == ["c", "a", "b"]
    window = store.events_for_contact("c1", start=T0 + timedelta(minutes=6), end=T0 + timedelta(minutes=11))
    assert [e.event_id for e in window] == ["a", "b"]
    assert store.events_for_contact("nobody") == []


def test_events_for_contact_latest_keeps_the_newest_in_time_order(store: EventStore) -> None:
    store.append(
        [event("b", 10), event("a", 10), event("c", 5), event("d", 20), event("z", 30, contact_id="o")],
        now=NOW,
    )
    assert [e.event_id for e in store.events_for_contact("c1", latest=2)] == ["b", "d"]
    assert [e.event_id for e in store.events_for_contact("c1", latest=10)] == ["c", "a", "b", "d"]
    assert [e.event_id for e in store.events_for_contact("c1", end=T0 + timedelta(minutes=11), latest=1)] == [
        "b"
    ]
    with pytest.raises(ValueError, match="`latest` must be >= 0"):
        store.events_for_contact("c1", latest=-1)


def test_read_frame_filters_by_contact_and_time(store: EventStore) -> None:
    store.append([event("a", 1), event("b", 2, contact_id="c2"), event("c", 30, contact_id="c2")], now=NOW)
    frame = store.read_frame(contact_ids=["c2"], end=T0 + timedelta(minutes=10))
    assert list(frame.columns) == list(EXPORT_COLUMNS)
    assert frame["event_id"].tolist() == ["b"]
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"


def test_export_parquet_schema_and_rows(store: EventStore, tmp_path: Path) -> None:
    store.append([event(f"e{i}", i, clicks=i) for i in range(7)], now=NOW)
    store.append([event("anon", 3, contact_id=None, anonymous_id="never-identified")], now=NOW)
    out = tmp_path / "export" / "events.parquet"
    written = store.export_parquet(out, start=T0 + timedelta(minutes=2))
    table = pq.read_table(out)
    assert written == table.num_rows == 5
    assert table.schema.names == list(EXPORT_COLUMNS)
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("ingested_at").type == pa.timestamp("us", tz="UTC")
    assert table.column("properties").to_pylist()[0] == '{"clicks":2}'
    assert "never-identified" not in table.column("anonymous_id").to_pylist()


# -- identity stitching --------------------------------------------------------------------------------------
def anonymous_journey(store: EventStore, *, consent: bool) -> None:
    store.append(
        [
            event("a1", 1, contact_id=None, anonymous_id="cookie-1"),
            event("a2", 2, contact_id=None, anonymous_id="cookie-1", type=EventType.CONTENT_DOWNLOAD),
            identify("id", 3, "c7", "cookie-1", consent),
        ],
        now=NOW,
    )
    store.append([event("a3", 4, contact_id=None, anonymous_id="cookie-1")], now=NOW)  # after identify


def test_stitching_with_consent_attributes_earlier_and_later_anonymous_events(store: EventStore) -> None:
    anonymous_journey(store, consent=True)
    events = store.events_for_contact("c7")
    assert [e.event_id for e in events] == ["a1", "a2", "id", "a3"]
    assert {e.contact_id for e in events} == {"c7"}
    frame = store.read_frame()
    assert set(frame.loc[frame["contact_id"] == "c7", "event_id"]) == {"a1", "a2", "id", "a3"}


def test_stitching_without_consent_leaves_anonymous_events_unattributed(store: EventStore) -> None:
    anonymous_journey(store, consent=False)
    assert [e.event_id for e in store.events_for_contact("c7")] == ["id"]
    assert store.read_frame()["event_id"].tolist() == ["id"]
    assert store.count() == 4  # kept, just not attributed


def test_profile_tracking_consent_enables_stitching(store: EventStore) -> None:
    anonymous_journey(store, consent=False)
    granted = ConsentRecord(granted=True, at=T0)
    store.upsert_profiles([ContactProfile(contact_id="c7", tracking_consent=granted)])
    assert [e.event_id for e in store.events_for_contact("c7")] == ["a1", "a2", "id", "a3"]


def test_anonymous_id_stays_with_its_first_contact(store: EventStore) -> None:
    anonymous_journey(store, consent=True)
    store.append([identify("id2", 10, "intruder", "cookie-1", True)], now=NOW)
    assert [e.event_id for e in store.events_for_contact("intruder")] == ["id2"]
    assert len(store.events_for_contact("c7")) == 4


def test_later_identify_can_withdraw_consent(store: EventStore) -> None:
    anonymous_journey(store, consent=True)
    store.append([identify("id-later", 20, "c7", "cookie-1", False)], now=NOW)
    assert [e.event_id for e in store.events_for_contact("c7")] == ["id", "id-later"]


# -- profiles and catalog ------------------------------------------------------------------------------------
def test_profiles_upsert_get_list_frame(store: EventStore) -> None:
    consent = ConsentRecord(granted=True, at=T0)
    first = ContactProfile(
        contact_id="c2", persona="it_head", company_size=500, consents={Channel.EMAIL: consent}
    )
    store.upsert_profiles([first, ContactProfile(contact_id="c1", persona="assistant")])
    store.upsert_profiles([first.model_copy(update={"persona": "cfo"})])
    assert store.get_profile("c2") == first.model_copy(update={"persona": "cfo"})
    assert store.get_profile("missing") is None
    assert [p.contact_id for p in store.list_profiles()] == ["c1", "c2"]
    frame = store.profiles_frame()
    assert frame["contact_id"].tolist() == ["c1", "c2"]
    assert frame["consent_email"].tolist() == [False, True]
    assert frame["persona"].tolist() == ["assistant", "cfo"]


def test_content_catalog(store: EventStore) -> None:
    blocks = [
        ContentBlock(
            content_id=f"b{i}", title=f"Block {i}", format=ContentFormat.WHITEPAPER, stages=("awareness",)
        )
        for i in range(3)
    ]
    assert store.upsert_content(blocks) == 3
    assert store.deactivate_content("b1") is True
    assert store.deactivate_content("nope") is False
    assert [b.content_id for b in store.list_content()] == ["b0", "b2"]
    assert [b.content_id for b in store.list_content(active_only=False)] == ["b0", "b1", "b2"]
    deactivated = store.get_content("b1")
    assert deactivated is not None and deactivated.active is False
    assert store.get_content("zzz") is None


# -- erasure -------------------------------------------------------------------------------------------------
def test_erased_contact_leaves_no_trace(store: EventStore, tmp_path: Path) -> None:
    anonymous_journey(
        store, consent=False
    )  # even unconsented anonymous events are the contact's data once linked
    store.append([event("keep", 5, contact_id="c2")], now=NOW)
    store.upsert_profiles([ContactProfile(contact_id="c7"), ContactProfile(contact_id="c2")])
    report = store.erase_contact("c7")
    assert (report.events_deleted, report.identity_links_deleted, report.profile_deleted) == (4, 1, True)
    assert report.contact_hash == contact_hash("c7")
    assert store.events_for_contact("c7") == []
    assert store.get_profile("c7") is None
    assert store.count() == 1
    out = tmp_path / "after.parquet"
    store.export_parquet(out)
    dumped = pq.read_table(out).to_pandas().to_csv()
    assert "c7" not in dumped and "cookie-1" not in dumped
    # the identity link is gone too: a new cookie event is not attributed to anyone
    store.append([event("late", 50, contact_id=None, anonymous_id="cookie-1")], now=NOW)
    assert store.events_for_contact("c7") == []
    audit = store.erasure_audit()
    assert [a.contact_hash for a in audit] == [contact_hash("c7")]


def test_erasure_keeps_other_contacts_events_on_a_shared_device(store: EventStore) -> None:
    anonymous_journey(store, consent=True)
    store.append([identify("id-other", 30, "other", "cookie-1", True)], now=NOW)
    report = store.erase_contact("c7")
    assert report.events_deleted == 4
    assert [e.event_id for e in store.events_for_contact("other")] == ["id-other"]
    audit = store.erasure_audit()
    assert [a.contact_hash for a in audit] == [contact_hash("c7")]


# -- concurrency ---------------------------------------------------------------------------------------------
def overlapping_batches(worker: int, n_workers: int, per_worker: int) -> list[EngagementEvent]:
    """Each worker writes its own ids plus ids shared with the next worker, so duplicates race."""
    own = [event(f"w{worker}-{i}", i, contact_id=f"c{worker}") for i in range(per_worker)]
    shared = [
        event(f"shared-{(worker + k) % n_workers}-{i}", i) for k in range(2) for i in range(per_worker // 4)
    ]
    return own + shared


def write_in_batches(url: str, worker: int, n_workers: int, per_worker: int, size: int) -> int:
    with open_event_store(url) as store:
        batch = overlapping_batches(worker, n_workers, per_worker)
        return sum(store.append(batch[i : i + size], now=NOW).stored for i in range(0, len(batch), size))


def expected_unique(n_workers: int, per_worker: int) -> int:
    ids = {e.event_id for w in range(n_workers) for e in overlapping_batches(w, n_workers, per_worker)}
    return len(ids)


def test_concurrent_threads_lose_and_duplicate_nothing(store: EventStore, store_url: str) -> None:
    n_workers, per_worker = 4, 200
    stored: list[int] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        n = write_in_batches(store_url, worker, n_workers, per_worker, 25)
        with lock:
            stored.append(n)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    unique = expected_unique(n_workers, per_worker)
    assert len(stored) == n_workers
    assert sum(stored) == unique  # each event stored by exactly one writer
    assert store.count() == unique


def test_concurrent_processes_lose_and_duplicate_nothing(store: EventStore, store_url: str) -> None:
    n_workers, per_worker = 3, 1_000
    context = multiprocessing.get_context("fork")  # children open their own store; nothing shared is used
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
        futures = [
            pool.submit(write_in_batches, store_url, w, n_workers, per_worker, 100) for w in range(n_workers)
        ]
        stored = [f.result(timeout=120) for f in futures]
    unique = expected_unique(n_workers, per_worker)
    assert sum(stored) == unique
    assert store.count() == unique
    assert len(store.read_frame()) == unique


def append_then_die(url: str) -> None:
    """Append, then leave without closing anything, as a crash right after the acknowledgement would."""
    store = open_event_store(url)
    result = store.append([event(f"d{i}", i) for i in range(50)], now=NOW)
    os._exit(0 if result.stored == 50 else 3)


def test_acknowledged_events_survive_an_abrupt_exit(store: EventStore, store_url: str) -> None:
    child = multiprocessing.get_context("fork").Process(target=append_then_die, args=(store_url,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert store.count() == 50
    assert len(store.events_for_contact("c1")) == 50


@hypothesis_settings(max_examples=20, deadline=None)
@given(batches=st.lists(st.lists(st.integers(0, 40), max_size=60), max_size=6))
def test_any_sequence_of_batches_stores_each_id_exactly_once(batches: list[list[int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_event_store(f"sqlite:///{tmp}/events.db") as store:
        seen: set[int] = set()
        for batch in batches:
            result = store.append([event(f"e{i:02d}", i) for i in batch], now=NOW)
            new = {i for i in batch if i not in seen}
            assert result.stored == len(new)
            assert result.duplicates == len(batch) - len(new)
            seen |= new
        assert store.count() == len(seen)
        assert store.read_frame()["event_id"].tolist() == [f"e{i:02d}" for i in sorted(seen)]


# -- opening -------------------------------------------------------------------------------------------------
def test_embedded_store_creates_its_folder_on_demand(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "events.db"
    assert not target.parent.exists()
    with open_event_store(f"sqlite:///{target}") as s:
        s.append([event("x")], now=NOW)
    assert target.exists()
    with open_event_store(f"sqlite:///{target}") as reopened:  # durable across reopen
        assert reopened.count() == 1


def test_unreachable_database_is_named_without_password(postgres_server_url: str) -> None:
    url = make_url(postgres_server_url).set(password="s3cret", database="no_such_db_x")
    with pytest.raises(
        EventStoreUnavailable, match=r"event store at .*:\*\*\*@.*/no_such_db_x cannot"
    ) as err:
        open_event_store(url.render_as_string(hide_password=False))
    assert "s3cret" not in str(err.value)


def test_cli_erase(settings: Settings) -> None:
    with open_settings_event_store(settings) as store:
        anonymous_journey(store, consent=True)
    args = ["events", "erase", "c7", "--data-dir", str(settings.data_dir), "--yes"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "erased: 4 events, 1 identity links, profile not found" in result.output
    assert contact_hash("c7") in result.output
    with open_settings_event_store(settings) as store:
        assert store.count() == 0
    refused = CliRunner().invoke(app, args[:-1], input="n\n")
    assert refused.exit_code == 1


@pytest.mark.parametrize(
    "url, match",
    [
        ("mysql://u@h/db", "event_store_url must start with"),
        ("sqlite://", "event_store_url must"),
    ],
)
def test_bad_urls_are_named(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        open_event_store(url)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_clock_skew_seconds": -1}, "max_clock_skew_seconds must be >= 0"),
        ({"max_properties_bytes": 0}, "max_properties_bytes must be > 0"),
    ],
)
def test_bad_limits_are_named(tmp_path: Path, kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        open_event_store(f"sqlite:///{tmp_path / 'e.db'}", **kwargs)

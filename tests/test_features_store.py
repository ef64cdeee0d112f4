"""The Feast feature store end to end: apply, materialize, point-in-time training sets, fresh online
lookups."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from features.decay import fold
from features.online import ContentCache
from features.schemas import ContactProfile, EngagementEvent, EventType, LeadStatus
from features.store import FeatureStoreService, counter_event, redis_connection_string
from features.topics import feature_topics, topic_ids, topic_vocabulary
from ripen.settings import Settings
from tests.conftest import datasets_root
from tests.features_factory import CONTENTS, random_events

STAGES = {b.content_id: b.stages for b in CONTENTS}
# The store fixes its topic vocabulary from its catalog: "Quantum Widgets" gets columns of its own.
VOCABULARY = topic_vocabulary(t for b in CONTENTS for t in b.topics)
TOPICS = {b.content_id: topic_ids(b.topics, VOCABULARY) for b in CONTENTS}
PROFILES = [
    ContactProfile(
        contact_id="c0", account_id="a0", seniority="VP", budget=True, need=True, company_size=500
    ),
    ContactProfile(
        contact_id="c1", account_id="a1", lead_status=LeadStatus.MQL, lifecycle_stage="information"
    ),
]


def build_store(settings: Settings, events: pd.DataFrame) -> FeatureStoreService:
    store = FeatureStoreService(settings)
    store.write_contents(CONTENTS)
    store.build_offline(events, PROFILES)
    store.apply()
    store.materialize()
    return store


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return random_events(400, contacts=4, days=90, seed=3)


@pytest.fixture(scope="module")
def sqlite_store(
    tmp_path_factory: pytest.TempPathFactory, events: pd.DataFrame
) -> Iterator[FeatureStoreService]:
    root: Path = tmp_path_factory.mktemp("features")
    settings = Settings(data_dir=root / "data", datasets_dir=datasets_root())
    settings.ensure_dirs()
    yield build_store(settings, events)


def expected_state(events: pd.DataFrame, contact_id: str, until: pd.Timestamp) -> object:
    mine = events[(events["contact_id"] == contact_id) & (events["timestamp"] <= until)]
    return fold(counter_event(r, STAGES, TOPICS) for r in mine.sort_values("timestamp").to_dict("records"))


def test_training_rows_see_no_event_after_their_timestamp(
    sqlite_store: FeatureStoreService, events: pd.DataFrame
) -> None:
    times = pd.to_datetime(["2026-01-20T12:00:00Z", "2026-02-10T00:00:00Z", "2026-03-25T06:30:00Z"], utc=True)
    entity_df = pd.DataFrame({"contact_id": ["c0", "c0", "c2"], "event_timestamp": times})
    frame = sqlite_store.historical_features(entity_df, "readiness_v1")
    assert len(frame) == 3
    for row in frame.to_dict("records"):
        until = pd.Timestamp(row["event_timestamp"])
        state = expected_state(events, row["contact_id"], until)
        mine = events[events["contact_id"] == row["contact_id"]]
        assert (mine["timestamp"] > until).any(), "the test needs later events that could leak"
        assert row["events_total"] == state.events_total  # type: ignore[attr-defined]
        decayed = state.counters_at(until.value / 1e9, feature_topics(VOCABULARY))  # type: ignore[attr-defined]
        for name in (
            "email_click_7d",
            "page_view_30d",
            "stage_awareness_30d",
            "return_visit_7d",
            "topic_security_7d",
            "topic_cost_30d",
            "topic_other_7d",
            "topic_quantum_widgets_30d",
        ):
            assert row[f"{name}_now"] == pytest.approx(decayed[name], rel=1e-9, abs=1e-12), name
    assert "page_view_7d" not in frame.columns, "only the service's features, not the raw as-of counters"


def test_a_row_before_any_event_gets_no_engagement(sqlite_store: FeatureStoreService) -> None:
    entity_df = pd.DataFrame(
        {"contact_id": ["c1"], "event_timestamp": [pd.Timestamp("2025-12-01", tz="UTC")]}
    )
    row = sqlite_store.historical_features(entity_df, "readiness_v1").iloc[0]
    assert pd.isna(row["events_total"])
    assert row["email_click_7d_now"] == 0.0
    assert row["fit_points"] == 0.0 and row["lead_status"] == "mql"


def test_online_lookup_matches_the_training_row_at_the_same_time(sqlite_store: FeatureStoreService) -> None:
    at = datetime(2026, 4, 15, tzinfo=UTC)
    entity_df = pd.DataFrame({"contact_id": ["c0"], "event_timestamp": [pd.Timestamp(at)]})
    training = sqlite_store.historical_features(entity_df, "readiness_v1").iloc[0]
    online = sqlite_store.online_features("c0", [], at=at).model_row()
    for name in (
        "email_open_30d_now",
        "stage_information_7d_now",
        "points_score_now",
        "days_since_last_touch",
        "fit_points",
        "events_total",
    ):
        assert online[name] == pytest.approx(training[name], rel=1e-9), name
    assert online["sales_alert"] == bool(training["sales_alert"])
    assert online["seniority"] == training["seniority"] == "VP"


def test_fast_path_and_feast_sdk_give_the_same_decision_features(sqlite_store: FeatureStoreService) -> None:
    at = datetime(2026, 4, 1, tzinfo=UTC)
    fast = sqlite_store.online_features("c1", ["k1", "k2", "k3", "nope"], at=at, fast=True)
    sdk = sqlite_store.online_features("c1", ["k1", "k2", "k3", "nope"], at=at, fast=False)
    assert fast == sdk
    assert fast.content["k1"].known and fast.content["k1"].sends > 0
    assert not fast.content["nope"].known


def test_unknown_contact_gets_the_cold_start_vector(sqlite_store: FeatureStoreService) -> None:
    for fast in (True, False):
        features = sqlite_store.online_features("never-seen", ["k1"], fast=fast)
        assert features.cold_start and not features.has_profile
        assert set(features.counters_now.values()) == {0.0}
        assert features.consumed_content_ids == frozenset()
        assert features.days_since_last_touch is None
        assert features.points.total == 0.0 and not features.points.sales_alert
        assert features.content["k1"].known


def test_known_contact_is_not_cold(sqlite_store: FeatureStoreService) -> None:
    features = sqlite_store.online_features("c2", [])
    assert not features.cold_start and features.events_total > 0


@pytest.mark.parametrize(
    "entity_df, service, match",
    [
        (pd.DataFrame({"contact_id": ["c1"]}), "readiness_v1", r"missing columns \['event_timestamp'\]"),
        (
            pd.DataFrame({"contact_id": ["c1"], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")]}),
            "readiness_v9",
            "service_name must be one of",
        ),
        (
            pd.DataFrame({"contact_id": ["c1"], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")]}),
            "sales_explanation_v1",
            r"missing columns \['account_id'\]",
        ),
    ],
)
def test_bad_training_requests_name_the_problem(
    sqlite_store: FeatureStoreService, entity_df: pd.DataFrame, service: str, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        sqlite_store.historical_features(entity_df, service)


def ingest_and_check(store: FeatureStoreService) -> None:
    """A download ingested now is visible to the very next lookup, on both read paths, and in the accounts."""
    now = datetime.now(UTC)
    before = store.online_features("c3", ["k3"], at=now)
    accounts_before = {a: store.account_features(a, at=now) for a in ("a0", "a1")}
    events = [
        EngagementEvent(
            event_id="fresh-1",
            contact_id="c3",
            account_id="a0",
            timestamp=now,
            type=EventType.CONTENT_DOWNLOAD,
            content_id="k3",
        ),
        EngagementEvent(
            event_id="fresh-1",
            contact_id="c3",
            timestamp=now,
            type=EventType.CONTENT_DOWNLOAD,
            content_id="k3",
        ),  # duplicate in the batch: counted once
        EngagementEvent(
            event_id="fresh-2",
            contact_id="c3",
            account_id="a0",
            timestamp=now,
            type=EventType.EMAIL_CLICK,
            content_id="k3",
        ),
        EngagementEvent(
            event_id="fresh-3",
            contact_id="new-contact",
            account_id="a9",
            timestamp=now,
            type=EventType.PAGE_VIEW,
        ),
        # No account on the event: it counts for the account of c1's stored profile (a1).
        EngagementEvent(event_id="fresh-4", contact_id="c1", timestamp=now, type=EventType.EMAIL_SENT),
    ]
    assert store.apply_events(events) == 3
    a0, a1, a9 = (store.account_features(a, at=now) for a in ("a0", "a1", "a9"))
    assert a0["account_events_total"] == accounts_before["a0"]["account_events_total"] + 2
    assert a0["account_contacts"] == accounts_before["a0"]["account_contacts"]
    assert a0["account_engagement_7d"] == pytest.approx(
        accounts_before["a0"]["account_engagement_7d"] + 2.0, rel=1e-6
    )
    assert a0["account_points"] > accounts_before["a0"]["account_points"]
    assert a1["account_events_total"] == accounts_before["a1"]["account_events_total"] + 1
    assert a1["account_engagement_30d"] == pytest.approx(accounts_before["a1"]["account_engagement_30d"])
    assert a9["account_events_total"] == 1 and a9["account_contacts"] == 1
    assert a9["account_engagement_7d"] == pytest.approx(1.0)
    for fast in (True, False):
        after = store.online_features("c3", ["k3"], fast=fast)
        assert "k3" in after.consumed_content_ids
        assert after.events_total == before.events_total + 2
        assert after.counters_now["content_download_7d_now"] == pytest.approx(
            before.counters_now["content_download_7d_now"] + 1.0, rel=1e-3
        )
        assert after.counters_now["stage_closing_7d_now"] > before.counters_now["stage_closing_7d_now"]
        assert after.counters_now["topic_quantum_widgets_7d_now"] == pytest.approx(
            before.counters_now["topic_quantum_widgets_7d_now"] + 2.0, rel=1e-3
        )
        assert after.counters_now["topic_other_7d_now"] == before.counters_now["topic_other_7d_now"]
        assert after.counters_now["topic_cost_7d_now"] == pytest.approx(
            before.counters_now["topic_cost_7d_now"], rel=1e-3
        )
        assert after.days_since_last_touch is not None and after.days_since_last_touch < 0.01
        assert after.content["k3"].downloads == before.content["k3"].downloads + 1
        newcomer = store.online_features("new-contact", [], fast=fast)
        assert not newcomer.cold_start and newcomer.events_total == 1


def test_ingested_events_show_up_in_the_next_sqlite_lookup(tmp_path: Path, events: pd.DataFrame) -> None:
    settings = Settings(data_dir=tmp_path / "data", datasets_dir=datasets_root())
    ingest_and_check(build_store(settings, events))


@pytest.mark.redis
def test_redis_online_store_serves_materialized_and_fresh_features(
    tmp_path: Path, redis_url: str, events: pd.DataFrame
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", datasets_dir=datasets_root(), profile="production", redis_url=redis_url
    )
    assert settings.online_store == "redis"
    store = build_store(settings, events)
    at = datetime(2026, 4, 1, tzinfo=UTC)
    fast = store.online_features("c1", ["k1", "k2"], at=at, fast=True)
    assert fast == store.online_features("c1", ["k1", "k2"], at=at, fast=False)
    assert not fast.cold_start and fast.profile.lead_status == "mql"
    assert store.online_features("nobody", ["k1"]).cold_start
    ingest_and_check(store)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("redis://127.0.0.1:6379/3", "127.0.0.1:6379,db=3"),
        ("redis://:secret@cache:6380", "cache:6380,password=secret"),
        ("rediss://cache/0", "cache:6379,db=0,ssl=true"),
    ],
)
def test_redis_url_becomes_feast_connection_string(url: str, expected: str) -> None:
    assert redis_connection_string(url) == expected


def test_non_redis_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="redis_url must start with redis://"):
        redis_connection_string("http://cache:6379")


def test_sales_explanation_joins_the_account_point_in_time(
    sqlite_store: FeatureStoreService, events: pd.DataFrame
) -> None:
    at = pd.Timestamp("2026-02-15", tz="UTC")
    entity_df = pd.DataFrame({"contact_id": ["c0"], "account_id": ["a1"], "event_timestamp": [at]})
    row = sqlite_store.historical_features(entity_df, "sales_explanation_v1").iloc[0]
    account_events = events[(events["account_id"] == "a1") & (events["timestamp"] <= at)]
    assert row["account_events_total"] == len(account_events)
    assert row["account_contacts"] == account_events["contact_id"].nunique()
    assert row["consumed_content_ids"] is not None


def another_process_writes_and_the_cache_sees_it(settings: Settings, events: pd.DataFrame) -> None:
    """The fast path caches content statistics; a write by another store object (as another process would)
    must still show up in the next lookup, whether it comes from ingestion or from a new materialization."""
    reader = build_store(settings, events)
    candidates = ["k1", "k3", "nope"]
    first = reader.online_features("c0", candidates)
    assert reader.online_features("c0", candidates).content == first.content  # from the cache
    writer = FeatureStoreService(settings)
    download = EngagementEvent(
        event_id="other-process-1",
        contact_id="c2",
        timestamp=datetime.now(UTC),
        type=EventType.CONTENT_DOWNLOAD,
        content_id="k3",
    )
    writer.apply_events([download])
    after = reader.online_features("c0", candidates)
    assert after.content["k3"].downloads == first.content["k3"].downloads + 1
    assert after.content["k1"] == first.content["k1"] and not after.content["nope"].known
    # A materialization from the (older) offline tables puts the batch statistics back, in every reader.
    writer.materialize()
    assert reader.online_features("c0", candidates).content == first.content


def test_sqlite_content_cache_sees_writes_of_other_processes(tmp_path: Path, events: pd.DataFrame) -> None:
    another_process_writes_and_the_cache_sees_it(
        Settings(data_dir=tmp_path / "data", datasets_dir=datasets_root()), events
    )


@pytest.mark.redis
def test_redis_content_cache_sees_writes_of_other_processes(
    tmp_path: Path, redis_url: str, events: pd.DataFrame
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", datasets_dir=datasets_root(), profile="production", redis_url=redis_url
    )
    another_process_writes_and_the_cache_sees_it(settings, events)


def test_content_cache_empties_on_a_new_store_version_and_when_full() -> None:
    cache = ContentCache(max_blocks=2)
    assert not cache.observe(b"1")  # first version seen
    cache.keep({"k1": {"sends": 3, "opens": 1}, "k2": {}})
    assert cache.missing(["k1", "k2", "k3", "k3"]) == ["k3"]
    assert cache.observe(b"1")
    assert cache.stats["k1"].sends == 3 and not cache.stats["k2"].known
    built = cache.keep({"k3": {"sends": 1}})  # a third block overflows: emptied first, then kept
    assert set(cache.stats) == {"k3"} and built["k3"].sends == 1
    assert not cache.observe(b"2") and cache.stats == {}


def test_the_fast_path_reads_the_contact_views_that_exist(tmp_path: Path, events: pd.DataFrame) -> None:
    """The SQLite fast path reads every contact view in one statement; a view whose table was never
    created (not materialized yet) is read as empty, and the other views still count."""
    settings = Settings(data_dir=tmp_path / "data", datasets_dir=datasets_root())
    settings.ensure_dirs()
    store = build_store(settings, events)
    at = datetime(2026, 4, 1, tzinfo=UTC)
    whole = store.online_features("c1", [], at=at, fast=True)
    assert whole.has_profile and not whole.cold_start
    config = store.feast.config
    path = config.online_store.path
    with sqlite3.connect(path if path.startswith("/") else str(store.repo_dir / path)) as conn:
        conn.execute(f'DROP TABLE "{config.project}_contact_profile"')
    partial = FeatureStoreService(settings).online_features("c1", [], at=at, fast=True)
    assert not partial.has_profile and partial.profile.lead_status is None
    assert partial.counters_now == whole.counters_now and partial.events_total == whole.events_total

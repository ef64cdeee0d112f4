"""Topic vocabulary: free-text topics become fixed feature ids, the same way on every path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from features.decay import CounterEvent, counter_columns, fold
from features.default_catalog import default_catalog
from features.feature_repo.feature_views import stage_affinity_fv
from features.schemas import ContentBlock, ContentFormat, EngagementEvent, EventType
from features.store import FeatureStoreService
from features.topics import (
    DEFAULT_TOPICS,
    OTHER_TOPIC,
    TOPIC_IDS,
    feature_topics,
    read_vocabulary,
    slug,
    topic_ids,
    topic_vocabulary,
    write_vocabulary,
)
from ripen.settings import Settings
from tests.conftest import datasets_root
from tests.features_factory import random_events


def test_default_vocabulary_is_the_default_catalogs_topics_slugged() -> None:
    assert DEFAULT_TOPICS == topic_vocabulary(t for b in default_catalog() for t in b.topics)


@pytest.mark.parametrize(
    "text, expected",
    [("Cloud Security!", "cloud_security"), ("  cost ", "cost"), ("KI/ML-Ops", "ki_ml_ops"), ("--", "")],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_unknown_topics_fall_into_other_and_repeats_count_once() -> None:
    assert topic_ids(["Cost", "cost ", "Quantum", "", "Security"]) == ("cost", OTHER_TOPIC, "security")
    assert topic_ids([]) == ()


def test_every_topic_has_decayed_columns_in_the_stage_affinity_view() -> None:
    view = {f.name for f in stage_affinity_fv.schema}
    for topic in TOPIC_IDS:
        assert {f"topic_{topic}_7d", f"topic_{topic}_30d"} <= view
        assert f"topic_{topic}_7d" in counter_columns()


def test_topic_affinity_counts_engagement_but_not_sends() -> None:
    state = fold(
        [
            CounterEvent("e1", 0.0, "content_download", "k1", topics=("cloud", "security")),
            CounterEvent("e2", 0.0, "email_sent", "k1", topics=("cloud", "security")),
            CounterEvent("e3", 0.0, "email_click", "k9", topics=("not-a-topic-id",)),
        ]
    )
    assert state.counter("topic_cloud_7d") == 1.0
    assert state.counter("topic_security_30d") == 1.0
    assert state.counter("topic_cost_7d") == 0.0
    assert state.counter(f"topic_{OTHER_TOPIC}_7d") == 0.0


def test_vocabulary_is_stored_with_the_repository(tmp_path: Path) -> None:
    assert read_vocabulary(tmp_path) == DEFAULT_TOPICS  # nothing stored yet: the default catalog's
    write_vocabulary(tmp_path, ("edge_ai", "quantum"))
    assert read_vocabulary(tmp_path) == ("edge_ai", "quantum")
    assert feature_topics(read_vocabulary(tmp_path)) == ("edge_ai", "quantum", OTHER_TOPIC)
    (tmp_path / "topics.json").write_text('{"topics": ["Not A Slug"]}')
    with pytest.raises(ValueError, match="must hold"):
        read_vocabulary(tmp_path)


def test_a_catalog_with_new_topics_gets_its_own_columns_on_every_path(tmp_path: Path) -> None:
    catalog = [
        ContentBlock(
            content_id="k1",
            title="Edge",
            format=ContentFormat.WHITEPAPER,
            stages=("awareness",),
            topics=("Edge AI",),
        ),
        ContentBlock(
            content_id="k2",
            title="Q",
            format=ContentFormat.CHECKLIST,
            stages=("closing",),
            topics=("Quantum",),
        ),
    ]
    settings = Settings(data_dir=tmp_path / "data", datasets_dir=datasets_root())
    store = FeatureStoreService(settings)
    store.write_contents(catalog)
    events = random_events(120, contacts=3, days=30, seed=11)
    events["content_id"] = events["content_id"].replace({"k3": "k1"})
    store.build_offline(events)
    store.apply()
    store.materialize()
    assert store.vocabulary == ("edge_ai", "quantum")
    affinity = {f.name for f in store.feast.get_feature_view("stage_affinity").features}
    assert {"topic_edge_ai_7d", "topic_quantum_30d", "topic_other_7d"} <= affinity
    assert "topic_security_7d" not in affinity, "the default catalog's topics are not this repository's"
    # Batch (historical retrieval) and online agree on the new columns.
    at = datetime(2026, 3, 1, tzinfo=UTC)
    row = store.historical_features(
        pd.DataFrame({"contact_id": ["c0"], "event_timestamp": [pd.Timestamp(at)]}), "readiness_v1"
    ).iloc[0]
    assert row["topic_edge_ai_30d_now"] > 0 and row["topic_quantum_30d_now"] > 0
    for fast in (True, False):
        online = store.online_features("c0", ["k1"], at=at, fast=fast).counters_now
        for name in ("topic_edge_ai_30d_now", "topic_quantum_7d_now", "topic_other_30d_now"):
            assert online[name] == pytest.approx(row[name], rel=1e-9, abs=1e-12), name
    # A block added after the vocabulary was fixed counts as "other" until the next build + apply.
    store.write_contents(
        [
            *catalog,
            ContentBlock(
                content_id="k9",
                title="New",
                format=ContentFormat.BLOG,
                stages=("awareness",),
                topics=("Robots",),
            ),
        ]
    )
    before = store.online_features("c1", [], at=datetime.now(UTC)).counters_now["topic_other_7d_now"]
    click = EngagementEvent(
        event_id="late-topic",
        contact_id="c1",
        timestamp=datetime.now(UTC),
        type=EventType.EMAIL_CLICK,
        content_id="k9",
    )
    store.apply_events([click])
    after = store.online_features("c1", [], at=datetime.now(UTC)).counters_now
    assert after["topic_other_7d_now"] == pytest.approx(before + 1.0, rel=1e-3)
    assert "topic_robots_7d_now" not in after

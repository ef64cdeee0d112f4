"""Topic vocabulary: free-text topics become fixed feature ids, the same way on every path."""

from __future__ import annotations

import pytest

from features.decay import CounterEvent, counter_columns, fold
from features.default_catalog import default_catalog
from features.feature_repo.feature_views import stage_affinity_fv
from features.topics import DEFAULT_TOPICS, OTHER_TOPIC, TOPIC_IDS, slug, topic_ids, topic_vocabulary


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

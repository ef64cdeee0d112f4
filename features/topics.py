"""The topic vocabulary: free-text content topics mapped onto the fixed feature columns Feast needs.

Content blocks carry topics as free text ("Cloud Security", "cost"); a feature view needs one column per
topic, fixed when the repository is generated. ``TOPIC_IDS`` is that vocabulary: the default catalog's
topics, slugged, plus ``other`` for any topic outside it, so engagement with a new topic is kept, not dropped.
Both the batch and the online path map a block's topics through ``topic_ids`` before counting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

OTHER_TOPIC = "other"
# ``topic_vocabulary(default_catalog())`` — spelled out so importing the feature views does no work;
# tests/test_features_topics.py checks the two agree.
DEFAULT_TOPICS: tuple[str, ...] = ("cloud", "compliance", "cost", "integration", "productivity", "security")
TOPIC_IDS: tuple[str, ...] = (*DEFAULT_TOPICS, OTHER_TOPIC)

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slug(topic: str) -> str:
    """Lower-case ``a-z0-9`` words joined by ``_`` ("Cloud Security!" -> ``cloud_security``)."""
    return _NOT_WORD.sub("_", topic.strip().lower()).strip("_")


def topic_vocabulary(topics: Iterable[str]) -> tuple[str, ...]:
    """The sorted distinct slugs of free-text topics (empty slugs dropped): a catalog's vocabulary."""
    return tuple(sorted({s for s in (slug(t) for t in topics) if s}))


def topic_ids(topics: Iterable[str], vocabulary: tuple[str, ...] = DEFAULT_TOPICS) -> tuple[str, ...]:
    """The topic feature ids of one block's free-text topics: slugs in the vocabulary, else ``other``.

    Sorted and distinct, so a block tagged "Cost" and "cost" counts once, on both paths."""
    known = set(vocabulary)
    ids = {s if s in known else OTHER_TOPIC for s in (slug(t) for t in topics) if s}
    return tuple(sorted(ids))

"""The topic vocabulary: free-text content topics mapped onto the fixed feature columns Feast needs.

Content blocks carry topics as free text ("Cloud Security", "cost"); a feature view needs one column per
topic, fixed when the repository is generated. The vocabulary is taken from the content catalog when the
offline tables are built (``FeatureStoreService.build_offline``) and stored in the repository folder
(``topics.json``), so the batch tables, the registered views, ingestion and lookups all read the same one.
Every vocabulary gets ``other`` for any topic outside it, so engagement with a new topic is kept, not dropped.
Without a stored vocabulary, the default catalog's (``DEFAULT_TOPICS``) applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

OTHER_TOPIC = "other"
# ``topic_vocabulary(default_catalog())`` — spelled out so importing the feature views does no work;
# tests/test_features_topics.py checks the two agree.
DEFAULT_TOPICS: tuple[str, ...] = ("cloud", "compliance", "cost", "integration", "productivity", "security")
TOPIC_IDS: tuple[str, ...] = (*DEFAULT_TOPICS, OTHER_TOPIC)
VOCABULARY_FILE = "topics.json"

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slug(topic: str) -> str:
    """Lower-case ``a-z0-9`` words joined by ``_`` ("Cloud Security!" -> ``cloud_security``)."""
    return _NOT_WORD.sub("_", topic.strip().lower()).strip("_")


def topic_vocabulary(topics: Iterable[str]) -> tuple[str, ...]:
    """The sorted distinct slugs of free-text topics (empty slugs and ``other`` dropped): a catalog's
    vocabulary."""
    return tuple(sorted({s for s in (slug(t) for t in topics) if s and s != OTHER_TOPIC}))


def feature_topics(vocabulary: Sequence[str]) -> tuple[str, ...]:
    """The topic ids that get feature columns: the vocabulary plus ``other``."""
    return (*(t for t in vocabulary if t != OTHER_TOPIC), OTHER_TOPIC)


def topic_ids(topics: Iterable[str], vocabulary: Sequence[str] = DEFAULT_TOPICS) -> tuple[str, ...]:
    """The topic feature ids of one block's free-text topics: slugs in the vocabulary, else ``other``.

    Sorted and distinct, so a block tagged "Cost" and "cost" counts once, on both paths."""
    known = set(vocabulary)
    ids = {s if s in known else OTHER_TOPIC for s in (slug(t) for t in topics) if s}
    return tuple(sorted(ids))


def write_vocabulary(repo_dir: Path, vocabulary: Sequence[str]) -> Path:
    """Store the vocabulary with the repository (what the views registered by ``apply`` are built from)."""
    path = repo_dir / VOCABULARY_FILE
    path.write_text(json.dumps({"topics": list(vocabulary)}, indent=1) + "\n")
    return path


def read_vocabulary(repo_dir: Path) -> tuple[str, ...]:
    """The stored vocabulary of a repository, or ``DEFAULT_TOPICS`` when none was stored yet."""
    path = repo_dir / VOCABULARY_FILE
    if not path.exists():
        return DEFAULT_TOPICS
    topics = json.loads(path.read_text())["topics"]
    if not isinstance(topics, list) or not all(isinstance(t, str) and slug(t) == t for t in topics):
        raise ValueError(f"{path} must hold {{'topics': [slugs]}}, but got {topics!r}")
    return tuple(topics)


def topics_in(columns: Iterable[str], half_life_days: int) -> tuple[str, ...]:
    """The topic ids that have a ``topic_{id}_{h}d`` column among ``columns`` (a frame's stored counters)."""
    prefix, suffix = "topic_", f"_{half_life_days}d"
    return tuple(
        c[len(prefix) : -len(suffix)] for c in columns if c.startswith(prefix) and c.endswith(suffix)
    )

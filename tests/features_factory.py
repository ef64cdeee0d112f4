"""Random engagement events in the export schema, for the feature-store tests (vectorised, seeded)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from features.schemas import ContentBlock, ContentFormat
from features.topics import topic_ids

BASE = pd.Timestamp("2026-01-01", tz="UTC")
TYPES = [
    "page_view",
    "email_sent",
    "email_open",
    "email_click",
    "content_download",
    "workshop",
    "webinar_attend",
]
CONTENTS = [
    ContentBlock(
        content_id="k1",
        title="Guide",
        format=ContentFormat.WHITEPAPER,
        stages=("awareness",),
        topics=("Security", "cloud"),
    ),
    ContentBlock(
        content_id="k2",
        title="Checklist",
        format=ContentFormat.CHECKLIST,
        stages=("information", "consultation"),
        topics=("cost", "Cost "),  # one topic spelled twice: counted once
    ),
    ContentBlock(
        content_id="k3",
        title="Offer",
        format=ContentFormat.CONSULTATION_OFFER,
        stages=("closing",),
        topics=("Quantum Widgets",),  # outside the vocabulary: counted as "other"
    ),
]


def random_events(
    n: int, contacts: int = 5, days: int = 60, seed: int = 0, prefix: str = "e"
) -> pd.DataFrame:
    """``n`` events over ``contacts`` contacts and ``days`` days after ``BASE``, in the export schema."""
    rng = np.random.default_rng(seed)
    offsets = pd.to_timedelta(rng.integers(0, days * 86_400 * 10**6, n), unit="us")
    content = rng.choice(np.array(["k1", "k2", "k3", None], dtype=object), n)
    return pd.DataFrame(
        {
            "event_id": [f"{prefix}{i}" for i in range(n)],
            "contact_id": [f"c{i}" for i in rng.integers(0, contacts, n)],
            "anonymous_id": None,
            "account_id": [f"a{i % 2}" for i in rng.integers(0, contacts, n)],
            "timestamp": BASE + offsets,
            "type": rng.choice(TYPES, n),
            "content_id": content,
            "channel": "email",
            "properties": [json.dumps({"returning": bool(r)}) for r in rng.integers(0, 2, n)],
        }
    )


TOPICS = {b.content_id: topic_ids(b.topics) for b in CONTENTS}

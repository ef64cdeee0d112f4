"""The content catalog encoded as arrays, so the ground truth can score every contact × block pair at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.schemas import DEFAULT_TAXONOMY, Channel, ContentBlock, ContentFormat
from training.simulation.events import CHANNEL_CODE
from training.simulation.personas import Persona

SALES_FORMATS = frozenset(
    {ContentFormat.CONSULTATION_OFFER, ContentFormat.UPSELL_OFFER, ContentFormat.CROSS_SELL_OFFER}
)
EXPANSION_FORMATS = frozenset({ContentFormat.UPSELL_OFFER, ContentFormat.CROSS_SELL_OFFER})
FORMATS: tuple[ContentFormat, ...] = tuple(ContentFormat)

# What consuming a block means: a click is all, a gated download, an event registration (+ attendance).
KIND_CLICK, KIND_DOWNLOAD, KIND_WEBINAR, KIND_WORKSHOP = 0, 1, 2, 3


@dataclass(frozen=True)
class CatalogArrays:
    """Per-block arrays; C blocks, S stages, T topics, P personas, K channels per block at most."""

    blocks: tuple[ContentBlock, ...]
    ids: tuple[str, ...]
    topics: tuple[str, ...]
    stage_fit: np.ndarray
    """bool, shape (C, S): the block fits the stage."""
    topic: np.ndarray
    """float, shape (C, T): the block's topics, rows summing to one (zero rows for topic-free blocks)."""
    persona_fit: np.ndarray
    """bool, shape (C, P): the block names the persona (or names none)."""
    fmt: np.ndarray
    """int, shape (C,): index into ``FORMATS``."""
    kind: np.ndarray
    """int, shape (C,): ``KIND_*``."""
    sales: np.ndarray
    """bool, shape (C,): a sales offer (consultation, up-sell, cross-sell)."""
    expansion: np.ndarray
    """bool, shape (C,): an up-sell or cross-sell offer that can lead to a purchase."""
    retention: np.ndarray
    """bool, shape (C,): fits the retention or churn stage; consuming it lowers churn risk."""
    customer_only: np.ndarray
    """bool, shape (C,): an existing-customer program."""
    channels: np.ndarray
    """int, shape (C, K): channel codes in the block's order of preference, padded with -1."""
    prerequisite: np.ndarray
    """int, shape (C,): index of the prerequisite block, -1 for none."""
    alternative: np.ndarray
    """int, shape (C,): index of the alternative block, -1 for none."""

    @property
    def n(self) -> int:
        return len(self.ids)

    @classmethod
    def from_blocks(cls, blocks: Sequence[ContentBlock], personas: Sequence[Persona]) -> CatalogArrays:
        """Encode ``blocks`` (active ones only are kept by the caller) against the default taxonomy."""
        if not blocks:
            raise ValueError("`catalog` must hold at least one content block, but got none")
        blocks = tuple(blocks)
        ids = tuple(b.content_id for b in blocks)
        index = {cid: k for k, cid in enumerate(ids)}
        if len(index) != len(ids):
            raise ValueError("`catalog` content_id values must be unique")
        stage_ids = DEFAULT_TAXONOMY.ids
        topics = tuple(sorted({t for b in blocks for t in b.topics}))
        persona_names = [p.name for p in personas]
        n, k_max = len(blocks), max(len(b.channels) for b in blocks)
        stage_fit = np.zeros((n, len(stage_ids)), bool)
        topic = np.zeros((n, len(topics)))
        persona_fit = np.zeros((n, len(personas)), bool)
        channels = np.full((n, k_max), -1, np.int16)
        for k, b in enumerate(blocks):
            for s in b.stages:
                stage_fit[k, stage_ids.index(s)] = True
            for t in b.topics:
                topic[k, topics.index(t)] = 1.0 / len(b.topics)
            persona_fit[k] = [not b.personas or name in b.personas for name in persona_names]
            channels[k, : len(b.channels)] = [CHANNEL_CODE[Channel(c)] for c in b.channels]
        retention_stages = [stage_ids.index("retention"), stage_ids.index("churn")]
        return cls(
            blocks=blocks,
            ids=ids,
            topics=topics,
            stage_fit=stage_fit,
            topic=topic,
            persona_fit=persona_fit,
            fmt=np.array([FORMATS.index(b.format) for b in blocks]),
            kind=np.array([_kind(b) for b in blocks]),
            sales=np.array([b.format in SALES_FORMATS for b in blocks]),
            expansion=np.array([b.format in EXPANSION_FORMATS for b in blocks]),
            retention=np.asarray(stage_fit[:, retention_stages].any(axis=1)),
            customer_only=np.array([b.for_customers_only for b in blocks]),
            channels=channels,
            prerequisite=np.array(
                [index.get(b.prerequisite_id, -1) if b.prerequisite_id else -1 for b in blocks]
            ),
            alternative=np.array(
                [index.get(b.alternative_id, -1) if b.alternative_id else -1 for b in blocks]
            ),
        )


def _kind(block: ContentBlock) -> int:
    if block.format is ContentFormat.WEBINAR:
        return KIND_WEBINAR
    if block.format is ContentFormat.WORKSHOP:
        return KIND_WORKSHOP
    return KIND_DOWNLOAD if block.gated else KIND_CLICK

"""The event store's interface: append-only engagement events, contact profiles and the content catalog.

One interface, two backends (embedded SQLite in WAL mode, PostgreSQL), chosen by URL through
``open_event_store``. Guarantees every backend keeps, and the shared test suite checks:

- ``append`` is idempotent by ``event_id`` (a re-sent event is reported ``duplicate``, never stored twice)
  and durable once it returns (the transaction is committed);
- concurrent writers, threads or processes, lose nothing and duplicate nothing;
- reads return events of the *resolved* contact: anonymous events count for the contact an ``identify`` event
  linked them to, but only where tracking consent was given (on the identify event or in the stored profile);
- ``erase_contact`` leaves no trace of the contact but an audit record holding a hash of the id and counts.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from features.ingest import validate_indexed
from features.schemas import ContactProfile, ContentBlock, EngagementEvent

if TYPE_CHECKING:
    import pandas as pd

    from ripen.settings import Settings

EXPORT_COLUMNS = (
    "event_id",
    "contact_id",
    "anonymous_id",
    "account_id",
    "timestamp",
    "type",
    "content_id",
    "channel",
    "properties",
    "ingested_at",
)
"""Columns of ``read_frame`` and of ``export_parquet`` files, in order (see ``docs/schemas.md``)."""


class EventStoreUnavailable(RuntimeError):
    """The store's database cannot be reached or opened; the message names the URL (password masked)."""


class ItemStatus(StrEnum):
    """What happened to one event of an appended batch."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ItemResult:
    """The outcome for the event at ``index`` of a batch; ``reason`` says why it was not stored."""

    index: int
    event_id: str | None
    status: ItemStatus
    field: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class IngestResult:
    """Per-item outcomes of one batch, in batch order, with the counts a caller reports."""

    items: list[ItemResult] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(1 for item in self.items if item.status is ItemStatus.STORED)

    @property
    def duplicates(self) -> int:
        return sum(1 for item in self.items if item.status is ItemStatus.DUPLICATE)

    @property
    def rejected(self) -> int:
        return sum(1 for item in self.items if item.status is ItemStatus.REJECTED)

    @property
    def errors(self) -> list[ItemResult]:
        return [item for item in self.items if item.status is ItemStatus.REJECTED]


@dataclass(frozen=True)
class ErasureReport:
    """What ``erase_contact`` removed; the audit table keeps the same numbers (with a hash, not the id)."""

    contact_hash: str
    events_deleted: int
    identity_links_deleted: int
    profile_deleted: bool
    erased_at: datetime


class EventStore(abc.ABC):
    """Append-only engagement events plus profiles and content catalog, behind one interface."""

    max_clock_skew_seconds: int
    max_properties_bytes: int

    # -- events ----------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def append(self, events: Sequence[EngagementEvent], *, now: datetime | None = None) -> IngestResult:
        """Store new events (idempotent by ``event_id``); reject those beyond clock skew or properties cap."""

    def ingest(self, raw: Sequence[Mapping[str, Any]], *, now: datetime | None = None) -> IngestResult:
        """Validate raw dicts and append the valid ones; every item is reported by its index in ``raw``.

        The ingestion edge for the API and for files: a batch with bad items still stores the good ones.
        """
        indexed, errors = validate_indexed(
            raw,
            now=now,
            max_clock_skew_seconds=self.max_clock_skew_seconds,
            max_properties_bytes=self.max_properties_bytes,
        )
        appended = self.append([event for _, event in indexed], now=now)
        items: dict[int, ItemResult] = {
            e.index: ItemResult(e.index, e.event_id, ItemStatus.REJECTED, e.field, e.reason) for e in errors
        }
        for (index, _), item in zip(indexed, appended.items, strict=True):
            items[index] = ItemResult(index, item.event_id, item.status, item.field, item.reason)
        return IngestResult([items[i] for i in range(len(raw))])

    @abc.abstractmethod
    def events_for_contact(
        self,
        contact_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        latest: int | None = None,
    ) -> list[EngagementEvent]:
        """The contact's events (stitched anonymous ones included) with ``start <= timestamp < end``.

        Ordered by ``(timestamp, event_id)``; every returned event carries the resolved ``contact_id``.
        ``latest=n`` keeps only the last ``n`` of them (a timeline need not read a long history).
        """

    @abc.abstractmethod
    def read_frame(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        contact_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Attributable events as a frame with ``EXPORT_COLUMNS``, ordered by ``(timestamp, event_id)``."""

    @abc.abstractmethod
    def export_parquet(
        self, path: str | Path, start: datetime | None = None, end: datetime | None = None
    ) -> int:
        """Write attributable events to one Parquet file (``docs/schemas.md``); returns rows written."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of stored events, attributable or not."""

    # -- profiles --------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_profiles(self, profiles: Sequence[ContactProfile]) -> int:
        """Insert or replace profiles by ``contact_id``; returns how many were written."""

    @abc.abstractmethod
    def get_profile(self, contact_id: str) -> ContactProfile | None:
        """The stored profile, or None."""

    @abc.abstractmethod
    def list_profiles(self) -> list[ContactProfile]:
        """Every stored profile, ordered by ``contact_id``."""

    @abc.abstractmethod
    def profiles_frame(self) -> pd.DataFrame:
        """Profiles flattened to one row each (consents as ``consent_<channel>`` booleans)."""

    # -- content catalog -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_content(self, blocks: Sequence[ContentBlock]) -> int:
        """Insert or replace content blocks by ``content_id``; returns how many were written."""

    @abc.abstractmethod
    def get_content(self, content_id: str) -> ContentBlock | None:
        """The stored block, or None."""

    @abc.abstractmethod
    def list_content(self, active_only: bool = True) -> list[ContentBlock]:
        """Catalog blocks ordered by ``content_id``; only active ones unless ``active_only`` is False."""

    @abc.abstractmethod
    def deactivate_content(self, content_id: str) -> bool:
        """Mark a block inactive (kept for history and logged decisions); False if it does not exist."""

    # -- privacy ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def erase_contact(self, contact_id: str) -> ErasureReport:
        """Remove the contact's events (stitched anonymous ones too), identity links and profile; audit it."""

    @abc.abstractmethod
    def erasure_audit(self) -> list[ErasureReport]:
        """The audit trail of erasures, oldest first (hashes and counts only)."""

    # -- lifecycle -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_event_store(
    url: str,
    *,
    max_clock_skew_seconds: int = 300,
    max_properties_bytes: int = 16_384,
    statement_timeout_seconds: float | None = None,
) -> EventStore:
    """Open (and create if needed) the store at ``url``: ``sqlite:///path/events.db`` or ``postgresql://...``.

    The SQLite file's folder is created here, on demand, never at import time. ``statement_timeout_seconds``
    bounds each PostgreSQL connect and statement (``None``: no limit).
    """
    from features.event_store_sql import SqlEventStore

    return SqlEventStore(
        url,
        max_clock_skew_seconds=max_clock_skew_seconds,
        max_properties_bytes=max_properties_bytes,
        statement_timeout_seconds=statement_timeout_seconds,
    )


def open_settings_event_store(settings: Settings, *, serving: bool = False) -> EventStore:
    """The store ``settings`` names, with its clock-skew and properties limits; ``serving`` bounds each
    PostgreSQL statement by ``settings.serving_statement_timeout_seconds``."""
    return open_event_store(
        settings.event_store_url,
        max_clock_skew_seconds=settings.max_clock_skew_seconds,
        max_properties_bytes=settings.max_properties_bytes,
        statement_timeout_seconds=settings.serving_statement_timeout_seconds if serving else None,
    )

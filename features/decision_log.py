"""The durable decision log: every content decision with its exact probability, and the rewards it earned.

One interface over embedded SQLite and production PostgreSQL (SQLAlchemy Core; the URL picks the backend).
Guarantees, checked by ``tests/test_decision_log.py`` on both backends:

- ``log`` is idempotent by ``event_id``: a re-sent decision is reported as a duplicate and stored once;
- ``log`` returns only once its records are committed (SQLite ``synchronous=FULL``), and it group-commits:
  one writer thread commits the records of every ``log`` call waiting at that moment in one transaction, so
  concurrent requests share one fsync instead of queueing for the write lock one commit each;
- ``record_rewards`` resolves late and duplicate rewards deterministically, whatever their arrival order:
  an explicit reward (reward API) beats a joined one (from engagement events); within one source the later
  ``observed_at`` wins, then the larger reward; rewards for unknown decisions are counted and not stored;
- ``erase_contact`` deletes the contact's decisions and rewards, keeping only anonymized aggregates
  (decisions and reward sums per policy version, action and content) and an audit row with a hashed id.

Storage: the action features of the candidate blocks are stored once per catalog version
(``policy_action_catalogs``, keyed by a content hash of the ids and features); a decision row keeps its
catalog version, ``[[position, ...], [probability, ...]]`` of the eligible blocks, ``[reason, [position,
...]]`` per run of exclusions with one reason, and its context. Readers rebuild the full
``DecisionRecord``. Rows written before catalog versions existed (``catalog_version`` NULL: features
inline) are read as they are; opening an older database adds the column.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import operator
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.sql_timeouts import postgres_timeout_args

if TYPE_CHECKING:
    from ripen.settings import Settings


class RewardSource(StrEnum):
    """Where a reward came from; explicit rewards override joined ones."""

    JOINED = "joined"
    EXPLICIT = "explicit"


_PRECEDENCE = {RewardSource.JOINED: 0, RewardSource.EXPLICIT: 1}


class EligibleAction(NamedTuple):
    """One candidate the guardrails let through, with the probability the policy gave it and its features.

    A named tuple: a bulk run builds tens of millions of them, at a third of a frozen dataclass's cost.
    """

    content_id: str
    probability: float
    features: tuple[float, ...] = ()


@dataclass(frozen=True)
class ActionCatalog:
    """The candidate blocks' ids and encoded action features, stored once per ``version`` (a content hash).

    content_ids: shape (k,); features: k tuples of one length. Decision rows refer to blocks by position.
    """

    content_ids: tuple[str, ...]
    features: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if len(self.content_ids) != len(self.features):
            raise ValueError(
                f"`features` must have one row per content id ({len(self.content_ids)}), "
                f"but got {len(self.features)}"
            )
        if len(set(self.content_ids)) != len(self.content_ids):
            raise ValueError("`content_ids` must be unique within a catalog")

    @cached_property
    def version(self) -> str:
        """SHA-256 of the canonical JSON of ids and features: equal catalogs share one stored row."""
        return hashlib.sha256(self._json.encode()).hexdigest()

    @cached_property
    def position(self) -> dict[str, int]:
        return {cid: j for j, cid in enumerate(self.content_ids)}

    @cached_property
    def position_json(self) -> dict[str, str]:
        """Each content id's position as JSON text (what decision rows store)."""
        return {cid: str(j) for j, cid in enumerate(self.content_ids)}

    @cached_property
    def _json(self) -> str:
        return json.dumps([list(self.content_ids), [list(f) for f in self.features]])


class ExcludedCandidate(NamedTuple):
    """A candidate a guardrail removed and the reason code (a named tuple, like ``EligibleAction``)."""

    content_id: str
    reason: str


@dataclass(frozen=True)
class DecisionRecord:
    """One logged decision. ``context`` is the JSON snapshot of what the policy saw (ids and numbers only);
    ``context_features`` is the encoded vector the reward model used."""

    event_id: str
    decided_at: datetime
    contact_id: str
    action: str
    policy_version: str
    content_id: str | None = None
    probability: float | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    context_features: tuple[float, ...] = ()
    eligible: tuple[EligibleAction, ...] = ()
    exclusions: tuple[ExcludedCandidate, ...] = ()
    wait_until: datetime | None = None
    catalog: ActionCatalog | None = field(default=None, compare=False, repr=False)
    """The catalog the eligible blocks' features come from (one stored copy per version); when omitted,
    ``log`` derives one from the records it is given."""

    def __post_init__(self) -> None:
        if self.decided_at.tzinfo is None:
            raise ValueError(f"`decided_at` must be timezone-aware, but got {self.decided_at}")
        if self.probability is not None and not 0.0 < self.probability <= 1.0:
            raise ValueError(f"`probability` must be in (0, 1], but got {self.probability}")
        if self.content_id is not None and self.probability is None:
            raise ValueError("`probability` is required when a content block was chosen")


@dataclass(frozen=True)
class RewardRecord:
    """A reward for a logged decision; ``observed_at`` is when it happened (or was reported)."""

    event_id: str
    reward: float
    source: RewardSource
    observed_at: datetime
    n_events: int = 0


@dataclass(frozen=True)
class LogResult:
    stored: int
    duplicates: int


@dataclass(frozen=True)
class RewardResult:
    """Outcome of ``record_rewards``; ``unknown_ids`` lists rewards for decisions that are not logged."""

    stored: int
    replaced: int
    unchanged: int
    superseded: int
    unknown_ids: tuple[str, ...]


@dataclass
class _PendingWrite:
    """One ``submit`` call's rows waiting for the writer; ``result`` is settled once committed (or failed)."""

    rows: list[dict[str, Any]]
    catalogs: dict[str, ActionCatalog] = field(default_factory=dict)
    result: Future[LogResult] = field(default_factory=Future)
    stored: int = 0

    def committed(self) -> None:
        self.result.set_result(LogResult(stored=self.stored, duplicates=len(self.rows) - self.stored))


@dataclass(frozen=True)
class DecisionErasureReport:
    contact_hash: str
    decisions_deleted: int
    rewards_deleted: int
    erased_at: datetime


metadata = sa.MetaData()
decisions_table = sa.Table(
    "policy_decisions",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("contact_id", sa.String(128), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("content_id", sa.String(128)),
    sa.Column("probability", sa.Float),
    sa.Column("policy_version", sa.String(128), nullable=False),
    sa.Column("context", sa.Text, nullable=False),
    sa.Column("context_features", sa.Text, nullable=False),
    sa.Column("eligible", sa.Text, nullable=False),
    sa.Column("exclusions", sa.Text, nullable=False),
    sa.Column("wait_until", sa.DateTime(timezone=True)),
    sa.Column("catalog_version", sa.String(64)),
)
catalogs_table = sa.Table(
    "policy_action_catalogs",
    metadata,
    sa.Column("catalog_version", sa.String(64), primary_key=True),
    sa.Column("content_ids", sa.Text, nullable=False),
    sa.Column("features", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
rewards_table = sa.Table(
    "policy_rewards",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("reward", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("n_events", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)
aggregates_table = sa.Table(
    "policy_decision_aggregates",
    metadata,
    sa.Column("policy_version", sa.String(128), primary_key=True),
    sa.Column("action", sa.String(32), primary_key=True),
    sa.Column("content_id", sa.String(128), primary_key=True),
    sa.Column("decisions", sa.Integer, nullable=False),
    sa.Column("rewarded", sa.Integer, nullable=False),
    sa.Column("reward_sum", sa.Float, nullable=False),
)
audit_table = sa.Table(
    "policy_erasure_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("contact_hash", sa.String(64), nullable=False),
    sa.Column("decisions_deleted", sa.Integer, nullable=False),
    sa.Column("rewards_deleted", sa.Integer, nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC, so read it back as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _engine_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    if url.startswith(("sqlite:///", "postgresql+psycopg://")):
        return url
    raise ValueError(
        f"decision log URL must start with sqlite:/// or postgresql://, but got {url.split(':')[0]}:"
    )


class DecisionLog:
    """Decisions and rewards in SQLite or PostgreSQL, behind one interface (see the module docstring)."""

    def __init__(self, url: str, statement_timeout_seconds: float | None = None) -> None:
        engine_url = _engine_url(url)
        connect_args: dict[str, Any] = {}
        if engine_url.startswith("sqlite:///"):
            Path(engine_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        else:  # PostgreSQL: bounded connects and statements when asked (serving)
            connect_args = postgres_timeout_args(statement_timeout_seconds)
        self._engine: Engine = sa.create_engine(engine_url, future=True, connect_args=connect_args)
        if self._engine.dialect.name == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        metadata.create_all(self._engine)
        _add_catalog_version_column(self._engine)
        self._catalogs: dict[str, ActionCatalog] = {}
        """Catalog versions known to be stored (written or read by this instance); they are never deleted."""
        self._pending: queue.SimpleQueue[_PendingWrite | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._unacknowledged = 0
        self.transactions = 0
        """Write transactions committed by ``log`` (fewer than calls when concurrent calls were grouped)."""

    @property
    def unacknowledged_writes(self) -> int:
        """``log`` calls submitted and not yet committed (queued or in the writer's open transaction)."""
        return self._unacknowledged

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    def _insert(self, table: sa.Table) -> Any:
        if self._engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- decisions ------------------------------------------------------------------------------------------
    def log(self, records: Sequence[DecisionRecord]) -> LogResult:
        """Store decisions durably; idempotent by ``event_id`` (a re-sent id is counted as a duplicate).

        Returns after the transaction holding these records has committed; concurrent calls share it.
        """
        return self.submit(records).result()

    def submit(self, records: Sequence[DecisionRecord]) -> Future[LogResult]:
        """``log`` without waiting: the future settles once the records are committed (or failed).

        An event loop awaits it (``asyncio.wrap_future``) instead of parking a thread on the commit.
        """
        if not records:
            nothing: Future[LogResult] = Future()
            nothing.set_result(LogResult(0, 0))
            return nothing
        catalogs = _catalogs_of(records)
        rows = [_decision_row(r, c) for r, c in zip(records, catalogs, strict=True)]
        pending = _PendingWrite(rows, {c.version: c for c in dict.fromkeys(catalogs)})
        pending.result.set_running_or_notify_cancel()  # submitted rows are committed: no cancelling them
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_loop, name="decision-log-writer", daemon=True
                )
                self._writer.start()
            self._unacknowledged += 1
            self._pending.put(pending)
        pending.result.add_done_callback(self._acknowledged)
        return pending.result

    def _acknowledged(self, _: Future[LogResult]) -> None:
        with self._writer_lock:
            self._unacknowledged -= 1

    def _write_loop(self) -> None:
        """Take every waiting write, commit them in one transaction, wake their callers; until ``close``."""
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch, stop = [first], False
            while not stop:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_PendingWrite]) -> None:
        """One transaction for the batch; if it fails, each write is retried alone so only bad ones fail."""
        stmt = (
            self._insert(decisions_table)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(decisions_table.c.event_id)
        )
        rows = [row for write in batch for row in write.rows]
        catalogs = {v: c for write in batch for v, c in write.catalogs.items() if v not in self._catalogs}
        counts: list[int] | None = None
        try:
            inserted: set[str] = set()
            with self._tx() as conn:
                if catalogs:  # in the rows' transaction: a committed row's catalog is always there
                    now = datetime.now(UTC)
                    conn.execute(
                        self._insert(catalogs_table).on_conflict_do_nothing(
                            index_elements=["catalog_version"]
                        ),
                        [
                            {
                                "catalog_version": v,
                                "content_ids": json.dumps(list(c.content_ids)),
                                "features": json.dumps([list(f) for f in c.features]),
                                "created_at": now,
                            }
                            for v, c in catalogs.items()
                        ],
                    )
                if self._engine.dialect.name == "sqlite":
                    counts = _insert_sqlite(conn, batch)
                else:
                    for start in range(0, len(rows), 1000):
                        # RETURNING lists only rows really inserted (rowcount is not portable).
                        inserted.update(conn.execute(stmt, rows[start : start + 1000]).scalars())
            self.transactions += 1
            self._catalogs.update(catalogs)
        except Exception as exc:  # noqa: BLE001 - reported to the caller(s) whose rows caused it
            if len(batch) > 1:
                for write in batch:
                    self._commit([write])
                return
            batch[0].result.set_exception(exc)
            return
        if counts is not None:
            for write, stored in zip(batch, counts, strict=True):
                write.stored = stored
                write.committed()
            return
        for write in batch:  # the first call holding an id stored it; later ones (and repeats) are duplicates
            for row in write.rows:
                if row["event_id"] in inserted:
                    inserted.discard(row["event_id"])
                    write.stored += 1
            write.committed()

    def get(self, event_id: str) -> DecisionRecord | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(decisions_table).where(decisions_table.c.event_id == event_id)
            ).first()
            if row is None:
                return None
            return self._records(conn, [row._mapping])[0]

    def decisions(
        self, start: datetime | None = None, end: datetime | None = None, contact_id: str | None = None
    ) -> list[DecisionRecord]:
        """Logged decisions with ``start <= decided_at < end``, ordered by (decided_at, event_id)."""
        query = sa.select(decisions_table).order_by(decisions_table.c.decided_at, decisions_table.c.event_id)
        if start is not None:
            query = query.where(decisions_table.c.decided_at >= start)
        if end is not None:
            query = query.where(decisions_table.c.decided_at < end)
        if contact_id is not None:
            query = query.where(decisions_table.c.contact_id == contact_id)
        with self._tx() as conn:
            return self._records(conn, [row._mapping for row in conn.execute(query)])

    def _records(self, conn: Connection, rows: Sequence[Mapping[Any, Any]]) -> list[DecisionRecord]:
        """Rows back to full records, each catalog version read once (and cached: versions never change)."""
        wanted = {m["catalog_version"] for m in rows} - {None} - set(self._catalogs)
        if wanted:
            found = conn.execute(
                sa.select(catalogs_table).where(catalogs_table.c.catalog_version.in_(sorted(wanted)))
            )
            for row in found:
                catalog = ActionCatalog(
                    tuple(json.loads(row.content_ids)), tuple(tuple(f) for f in json.loads(row.features))
                )
                self._catalogs[row.catalog_version] = catalog
        missing = wanted - set(self._catalogs)
        if missing:
            raise LookupError(f"decision rows refer to catalog versions not stored: {sorted(missing)}")
        return [_record_from_row(m, self._catalogs.get(m["catalog_version"])) for m in rows]

    def count(self) -> int:
        with self._tx() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions_table)).scalar_one())

    # -- rewards --------------------------------------------------------------------------------------------
    def record_rewards(self, rewards: Sequence[RewardRecord], *, now: datetime | None = None) -> RewardResult:
        """Store rewards with the deterministic precedence of the module docstring."""
        now = now or datetime.now(UTC)
        # Resolve duplicates inside the batch first, with the same rule as against stored rows.
        best: dict[str, RewardRecord] = {}
        for reward in rewards:
            current = best.get(reward.event_id)
            if current is None or _key(reward) > _key(current):
                best[reward.event_id] = reward
        stored = replaced = unchanged = 0
        superseded = len(rewards) - len(best)
        with self._tx() as conn:
            ids = list(best)
            known: set[str] = set()
            existing: dict[str, RewardRecord] = {}
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                known.update(
                    conn.execute(
                        sa.select(decisions_table.c.event_id).where(decisions_table.c.event_id.in_(chunk))
                    ).scalars()
                )
                for row in conn.execute(sa.select(rewards_table).where(rewards_table.c.event_id.in_(chunk))):
                    reward_row = _reward_from_row(row._mapping)
                    existing[reward_row.event_id] = reward_row
            unknown = tuple(sorted(i for i in ids if i not in known))
            for event_id in ids:
                if event_id not in known:
                    continue
                new = best[event_id]
                old = existing.get(event_id)
                values = {
                    "event_id": event_id,
                    "reward": float(new.reward),
                    "source": new.source.value,
                    "observed_at": new.observed_at,
                    "n_events": new.n_events,
                    "recorded_at": now,
                }
                if old is None:
                    conn.execute(sa.insert(rewards_table), values)
                    stored += 1
                elif _key(new) > _key(old):
                    conn.execute(
                        sa.update(rewards_table).where(rewards_table.c.event_id == event_id),
                        {k: v for k, v in values.items() if k != "event_id"},
                    )
                    replaced += 1
                elif _key(new) == _key(old):
                    unchanged += 1
                else:
                    superseded += 1
        return RewardResult(stored, replaced, unchanged, superseded, unknown)

    def rewards(self) -> dict[str, RewardRecord]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(rewards_table)).all()
        out: dict[str, RewardRecord] = {}
        for row in rows:
            reward = _reward_from_row(row._mapping)
            out[reward.event_id] = reward
        return out

    def training_frame(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """Content decisions joined with their rewards (NaN where none yet), ordered by time.

        Columns: event_id, decided_at, contact_id, content_id, probability, policy_version, reward,
        reward_source, and the typed ``record`` (``DecisionRecord``) for eligible sets and features.
        """
        records = [d for d in self.decisions(start, end) if d.content_id is not None]
        rewards = self.rewards()
        rows = []
        for d in records:
            reward = rewards.get(d.event_id)
            rows.append(
                {
                    "event_id": d.event_id,
                    "decided_at": d.decided_at,
                    "contact_id": d.contact_id,
                    "content_id": d.content_id,
                    "probability": d.probability,
                    "policy_version": d.policy_version,
                    "reward": reward.reward if reward else float("nan"),
                    "reward_source": reward.source.value if reward else None,
                    "record": d,
                }
            )
        columns = [
            "event_id", "decided_at", "contact_id", "content_id", "probability", "policy_version",
            "reward", "reward_source", "record",
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    # -- privacy --------------------------------------------------------------------------------------------
    def erase_contact(self, contact_id: str, *, now: datetime | None = None) -> DecisionErasureReport:
        """Delete the contact's decisions and rewards; fold them into anonymized aggregates; audit it."""
        now = now or datetime.now(UTC)
        contact_hash = hashlib.sha256(contact_id.encode()).hexdigest()
        d, r = decisions_table, rewards_table
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(d.c.event_id, d.c.policy_version, d.c.action, d.c.content_id, r.c.reward)
                .select_from(d.outerjoin(r, d.c.event_id == r.c.event_id))
                .where(d.c.contact_id == contact_id)
            ).all()
            groups: dict[tuple[str, str, str], list[float | None]] = {}
            for row in rows:
                key = (row.policy_version, row.action, row.content_id or "")
                groups.setdefault(key, []).append(row.reward)
            for (version, action, content), values in sorted(groups.items()):
                rewarded = [v for v in values if v is not None]
                inc = {
                    "decisions": len(values),
                    "rewarded": len(rewarded),
                    "reward_sum": float(sum(rewarded)),
                }
                stmt = self._insert(aggregates_table).values(
                    policy_version=version, action=action, content_id=content, **inc
                )
                stmt = stmt.on_conflict_do_update(
                    index_elements=["policy_version", "action", "content_id"],
                    set_={k: getattr(aggregates_table.c, k) + v for k, v in inc.items()},
                )
                conn.execute(stmt)
            event_ids = [row.event_id for row in rows]
            rewards_deleted = 0
            for start in range(0, len(event_ids), 1000):
                chunk = event_ids[start : start + 1000]
                rewards_deleted += conn.execute(sa.delete(r).where(r.c.event_id.in_(chunk))).rowcount
            decisions_deleted = conn.execute(sa.delete(d).where(d.c.contact_id == contact_id)).rowcount
            conn.execute(
                sa.insert(audit_table),
                {
                    "contact_hash": contact_hash,
                    "decisions_deleted": decisions_deleted,
                    "rewards_deleted": rewards_deleted,
                    "erased_at": now,
                },
            )
        return DecisionErasureReport(contact_hash, decisions_deleted, rewards_deleted, now)

    def aggregates(self) -> pd.DataFrame:
        """Anonymized totals kept from erased contacts: policy_version, action, content_id, decisions, ..."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(aggregates_table).order_by(*aggregates_table.primary_key.columns)
            ).all()
        return pd.DataFrame(
            [dict(r._mapping) for r in rows], columns=[c.name for c in aggregates_table.columns]
        )

    def audit_rows(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(audit_table).order_by(audit_table.c.id))]

    def close(self) -> None:
        """Finish the writes already submitted, stop the writer and release the connections."""
        with self._writer_lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                self._pending.put(None)
        if writer is not None:
            writer.join()
        self._engine.dispose()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns (WAL would allow NORMAL)
    cursor.close()


def _key(reward: RewardRecord) -> tuple[int, datetime, float]:
    return (_PRECEDENCE[reward.source], reward.observed_at.astimezone(UTC), float(reward.reward))


def _reward_from_row(m: Mapping[Any, Any]) -> RewardRecord:
    observed = _utc(m["observed_at"])
    assert observed is not None
    return RewardRecord(
        m["event_id"], float(m["reward"]), RewardSource(m["source"]), observed, int(m["n_events"])
    )


def _catalogs_of(records: Sequence[DecisionRecord]) -> list[ActionCatalog]:
    """Each record's catalog: its own, or one derived from the eligible blocks of the records without one
    (consecutive records share a derived catalog until a block shows different features)."""
    out: list[ActionCatalog | None] = [r.catalog for r in records]
    group: list[int] = []
    blocks: dict[str, tuple[float, ...]] = {}

    def flush() -> None:
        catalog = ActionCatalog(tuple(blocks), tuple(blocks.values()))
        for i in group:
            out[i] = catalog
        group.clear()
        blocks.clear()

    for i, r in enumerate(records):
        if r.catalog is not None:
            continue
        if any(e.content_id in blocks and blocks[e.content_id] != tuple(e.features) for e in r.eligible):
            flush()
        for e in r.eligible:
            blocks.setdefault(e.content_id, tuple(e.features))
        group.append(i)
    if group:
        flush()
    return [c for c in out if c is not None]


def _eligible_json(eligible: Sequence[EligibleAction], catalog: ActionCatalog) -> str:
    """``[[position, ...], [probability, ...]]``: each block's position in ``catalog`` and its exact
    probability, as two lists so the whole row is one C-encoded ``json.dumps``."""
    if not eligible:
        return "[[], []]"
    ids, probabilities, features = zip(*eligible, strict=True)
    try:
        positions = list(map(catalog.position.__getitem__, ids))
    except KeyError as exc:
        raise ValueError(f"eligible block {exc.args[0]!r} is not in catalog {catalog.version[:12]}") from None
    # The record builder shares the catalog's feature tuples, so identity settles almost every block.
    if not all(map(operator.is_, features, map(catalog.features.__getitem__, positions))):
        for cid, f, j in zip(ids, features, positions, strict=True):
            if tuple(f) != catalog.features[j]:
                raise ValueError(
                    f"eligible block {cid!r} has other features than catalog {catalog.version[:12]}"
                )
    return json.dumps([positions, list(probabilities)])


@functools.lru_cache(maxsize=1024)
def _reason_json(reason: str) -> str:
    return json.dumps(reason)


def _exclusions_json(exclusions: Sequence[ExcludedCandidate], catalog: ActionCatalog) -> str:
    """``[[reason, [position, ...]], ...]``: consecutive exclusions with one reason share it (order kept);
    a block outside the catalog is named by its id. A contact without consent is ~50 positions, not ~50
    ``[id, reason]`` pairs."""
    positions = catalog.position_json
    runs = [
        f"[{_reason_json(reason)}, [{', '.join([positions.get(c) or json.dumps(c) for c, _ in run])}]]"
        for reason, run in itertools.groupby(exclusions, operator.itemgetter(1))
    ]
    return "[" + ", ".join(runs) + "]"


_SQLITE_INSERT = (
    f"INSERT INTO policy_decisions ({', '.join(c.name for c in decisions_table.columns)}) "
    f"VALUES ({', '.join('?' * len(decisions_table.columns))}) ON CONFLICT (event_id) DO NOTHING"
)


def _insert_sqlite(conn: Connection, batch: Sequence[_PendingWrite]) -> list[int]:
    """Each write's rows as one ``executemany`` of plain tuples, in order; returns the rows each inserted.

    SQLAlchemy's per-value processing (and its RETURNING batches) cost more CPU than SQLite's insert itself
    for a bulk log; here dates go through the column type's own bind processor once per distinct value, so
    they are stored exactly as SQLAlchemy stores them. SQLite's ``rowcount`` after ``executemany`` is the
    number of rows inserted (conflicting ids are skipped), so the first write holding an id stores it.
    """
    process = decisions_table.c.decided_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    formatted: dict[datetime, Any] = {}

    def stamp(value: datetime | None) -> Any:
        if value is None or process is None:
            return value
        found = formatted.get(value)
        if found is None:
            found = formatted[value] = process(value)
        return found

    names = [c.name for c in decisions_table.columns]
    dates = {"decided_at", "wait_until"}
    getters = [(n, n in dates) for n in names]
    counts = []
    for write in batch:
        params = [
            tuple([stamp(row[n]) if is_date else row[n] for n, is_date in getters]) for row in write.rows
        ]
        counts.append(int(conn.exec_driver_sql(_SQLITE_INSERT, params).rowcount))  # type: ignore[arg-type]
    return counts


def _decision_row(r: DecisionRecord, catalog: ActionCatalog) -> dict[str, Any]:
    return {
        "event_id": r.event_id,
        "decided_at": r.decided_at.astimezone(UTC),
        "contact_id": r.contact_id,
        "action": r.action,
        "content_id": r.content_id,
        "probability": r.probability,
        "policy_version": r.policy_version,
        "context": json.dumps(dict(r.context), sort_keys=True, default=str),
        "context_features": json.dumps(list(r.context_features)),
        "eligible": _eligible_json(r.eligible, catalog),
        "exclusions": _exclusions_json(r.exclusions, catalog),
        "wait_until": r.wait_until.astimezone(UTC) if r.wait_until else None,
        "catalog_version": catalog.version,
    }


def _record_from_row(m: Mapping[Any, Any], catalog: ActionCatalog | None) -> DecisionRecord:
    """A stored row as a full record; ``catalog`` is the row's catalog version (None: a pre-catalog row)."""
    decided_at = _utc(m["decided_at"])
    assert decided_at is not None
    if catalog is None:  # written before catalog versions: features and ids inline
        eligible = tuple(EligibleAction(c, p, tuple(f)) for c, p, f in json.loads(m["eligible"]))
        exclusions = tuple(ExcludedCandidate(c, reason) for c, reason in json.loads(m["exclusions"]))
    else:
        ids, features = catalog.content_ids, catalog.features
        positions, probabilities = json.loads(m["eligible"])
        eligible = tuple(
            EligibleAction(ids[j], p, features[j]) for j, p in zip(positions, probabilities, strict=True)
        )
        exclusions = tuple(
            ExcludedCandidate(ids[c] if isinstance(c, int) else c, reason)
            for reason, run in json.loads(m["exclusions"])
            for c in run
        )
    return DecisionRecord(
        event_id=m["event_id"],
        decided_at=decided_at,
        contact_id=m["contact_id"],
        action=m["action"],
        policy_version=m["policy_version"],
        content_id=m["content_id"],
        probability=m["probability"],
        context=json.loads(m["context"]),
        context_features=tuple(json.loads(m["context_features"])),
        eligible=eligible,
        exclusions=exclusions,
        wait_until=_utc(m["wait_until"]),
        catalog=catalog,
    )


def _add_catalog_version_column(engine: Engine) -> None:
    """The one migration of the log: databases created before catalog versions get the (NULL) column.

    ``create_all`` creates missing tables but never alters one; old rows keep NULL and their inline format.
    """
    columns = {c["name"] for c in sa.inspect(engine).get_columns("policy_decisions")}
    if "catalog_version" in columns:
        return
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE policy_decisions ADD COLUMN catalog_version VARCHAR(64)"))
    except sa.exc.DBAPIError:  # another process added it first
        columns = {c["name"] for c in sa.inspect(engine).get_columns("policy_decisions")}
        if "catalog_version" not in columns:
            raise


def decision_log_url(settings: Settings) -> str:
    """Embedded: ``data_dir/decisions.db``; production: the PostgreSQL database of the event store."""
    if settings.profile == "production":
        return settings.postgres_url
    return f"sqlite:///{(settings.data_dir / 'decisions.db').resolve()}"


def open_decision_log(url: str) -> DecisionLog:
    """Open (and create the tables of) the decision log at ``url``: sqlite:///... or postgresql://..."""
    return DecisionLog(url)


def open_settings_decision_log(settings: Settings, *, serving: bool = False) -> DecisionLog:
    """The decision log ``settings`` names; ``serving`` bounds each PostgreSQL statement by
    ``settings.serving_statement_timeout_seconds``."""
    timeout = settings.serving_statement_timeout_seconds if serving else None
    return DecisionLog(decision_log_url(settings), statement_timeout_seconds=timeout)

"""The event store on SQL: one SQLAlchemy Core implementation for SQLite (WAL) and PostgreSQL (psycopg 3).

The two dialects differ only in how a connection is set up and in the dialect ``INSERT ... ON CONFLICT``
used for idempotent appends and upserts. Timestamps are stored as integer microseconds since the Unix epoch
(UTC): exact, identically ordered on both backends, and converted to Arrow ``timestamp[us, UTC]`` without
parsing.

SQLite durability: WAL mode with ``synchronous=FULL``, so a committed append survives power loss, not only a
process crash (``NORMAL`` in WAL may lose the last transactions on power loss, and the store promises
"durable once acknowledged"). Writers start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the lock
(``busy_timeout``) instead of failing when a read transaction cannot be upgraded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import structlog
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    false,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from features.event_store import (
    EXPORT_COLUMNS,
    ErasureReport,
    EventStore,
    EventStoreUnavailable,
    IngestResult,
    ItemResult,
    ItemStatus,
)
from features.ingest import check_limits, compact_json
from features.schemas import Channel, ContactProfile, ContentBlock, EngagementEvent, EventType
from features.sql_timeouts import postgres_timeout_args

log = structlog.get_logger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_PG_COPY_FROM = 50
_READ_CHUNK = 50_000

metadata = MetaData()

events_table = Table(
    "events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("contact_id", String(128), nullable=True),
    Column("anonymous_id", String(128), nullable=True),
    Column("account_id", String(128), nullable=True),
    Column("ts_us", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("content_id", String(128), nullable=True),
    Column("channel", String(16), nullable=True),
    Column("properties", Text, nullable=False),
    Column("ingested_at_us", BigInteger, nullable=False),
    Index("ix_events_contact_ts", "contact_id", "ts_us"),
    Index("ix_events_anonymous", "anonymous_id"),
    Index("ix_events_ts", "ts_us"),
)

identity_links_table = Table(
    "identity_links",
    metadata,
    Column("anonymous_id", String(128), primary_key=True),
    Column("contact_id", String(128), nullable=False),
    Column("consent", Boolean, nullable=False),
    Column("linked_at_us", BigInteger, nullable=False),
    Index("ix_identity_links_contact", "contact_id"),
)

profiles_table = Table(
    "contact_profiles",
    metadata,
    Column("contact_id", String(128), primary_key=True),
    Column("tracking_consent", Boolean, nullable=False),
    Column("document", Text, nullable=False),
)

content_table = Table(
    "content_blocks",
    metadata,
    Column("content_id", String(128), primary_key=True),
    Column("active", Boolean, nullable=False),
    Column("document", Text, nullable=False),
)

erasure_audit_table = Table(
    "erasure_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contact_hash", String(64), nullable=False),
    Column("events_deleted", Integer, nullable=False),
    Column("identity_links_deleted", Integer, nullable=False),
    Column("profile_deleted", Boolean, nullable=False),
    Column("erased_at_us", BigInteger, nullable=False),
)

_PROFILE_BY_ID = select(profiles_table.c.document).where(
    profiles_table.c.contact_id == bindparam("contact_id")
)
"""Built once: ``get_profile`` runs on every decision, and building the statement per call doubled its CPU."""

_EVENT_COLUMNS = tuple(c.name for c in events_table.columns)
_COLUMN_LIST = ", ".join(_EVENT_COLUMNS)
_PG_STAGE_DDL = "CREATE TEMP TABLE IF NOT EXISTS events_stage (LIKE events) ON COMMIT DELETE ROWS"
_PG_STAGE_COPY = f"COPY events_stage ({_COLUMN_LIST}) FROM STDIN"
_SQLITE_STAGE_DDL = "CREATE TEMP TABLE IF NOT EXISTS events_stage AS SELECT * FROM main.events WHERE 0"
_SQLITE_STAGE_LOAD = (
    f"INSERT INTO temp.events_stage ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"
)
_SQLITE_STAGE_INSERT = (  # "WHERE true": SQLite's documented way to parse INSERT ... SELECT ... ON CONFLICT
    f"INSERT INTO main.events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM temp.events_stage WHERE true "
    "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
_PG_STAGE_INSERT = (
    f"INSERT INTO events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM events_stage ORDER BY event_id "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    return (value - EPOCH) // _US


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def contact_hash(contact_id: str) -> str:
    """SHA-256 of the id: lets an auditor confirm an erasure request was served without keeping the id."""
    return hashlib.sha256(contact_id.encode()).hexdigest()


def _sqlalchemy_url(url: str) -> tuple[str, str]:
    """``(dialect, SQLAlchemy URL)``; plain ``postgresql://`` URLs get the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql", "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+psycopg://"):
        return "postgresql", url
    if url.startswith("sqlite:///"):
        return "sqlite", url
    raise ValueError(
        "event_store_url must start with sqlite:/// or postgresql://, "
        f"but got {make_url(url).render_as_string()!r}"
    )


class SqlEventStore(EventStore):
    """``EventStore`` on SQLite (embedded, WAL) or PostgreSQL, picked by the URL's scheme."""

    def __init__(
        self,
        url: str,
        *,
        max_clock_skew_seconds: int = 300,
        max_properties_bytes: int = 16_384,
        statement_timeout_seconds: float | None = None,
    ) -> None:
        if max_clock_skew_seconds < 0:
            raise ValueError(f"max_clock_skew_seconds must be >= 0, but got {max_clock_skew_seconds}")
        if max_properties_bytes <= 0:
            raise ValueError(f"max_properties_bytes must be > 0, but got {max_properties_bytes}")
        self.max_clock_skew_seconds = max_clock_skew_seconds
        self.max_properties_bytes = max_properties_bytes
        self.dialect, sa_url = _sqlalchemy_url(url)
        self.engine = self._create_engine(sa_url, statement_timeout_seconds)
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except OperationalError as exc:
            self.engine.dispose()
            shown = make_url(sa_url).render_as_string(hide_password=True)
            raise EventStoreUnavailable(f"event store at {shown} cannot be opened: {exc.orig}") from exc

    def _create_engine(self, sa_url: str, statement_timeout_seconds: float | None) -> Engine:
        if self.dialect == "postgresql":
            return create_engine(
                sa_url, pool_pre_ping=True, connect_args=postgres_timeout_args(statement_timeout_seconds)
            )
        database = make_url(sa_url).database
        if not database or database == ":memory:":
            raise ValueError("event_store_url must name a SQLite file (sqlite:///path/events.db), not memory")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see module docstring)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction, committed on exit; SQLite takes the write lock up front."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _insert(self, table: Table) -> Any:
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    # -- events ----------------------------------------------------------------------------------------------
    def append(self, events: Sequence[EngagementEvent], *, now: datetime | None = None) -> IngestResult:
        if now is None:
            now = datetime.now(UTC)
        elif now.tzinfo is None:
            raise ValueError(f"now must be timezone-aware (UTC), but got a naive timestamp {now}")
        skew = timedelta(seconds=self.max_clock_skew_seconds)
        ingested_at_us = to_us(now)
        results: list[ItemResult | None] = [None] * len(events)
        rows: list[tuple[Any, ...]] = []
        first_index: dict[str, int] = {}
        for index, ev in enumerate(events):
            properties = compact_json(ev.properties)
            problem = check_limits(
                ev,
                now=now,
                max_clock_skew=skew,
                max_properties_bytes=self.max_properties_bytes,
                properties_size=len(properties.encode()),
            )
            if problem is not None:
                results[index] = ItemResult(index, ev.event_id, ItemStatus.REJECTED, problem[0], problem[1])
            elif ev.event_id in first_index:
                results[index] = ItemResult(
                    index,
                    ev.event_id,
                    ItemStatus.DUPLICATE,
                    "event_id",
                    f"repeats the event at index {first_index[ev.event_id]} of this batch",
                )
            else:
                first_index[ev.event_id] = index
                rows.append(self._event_row(ev, properties, ingested_at_us))
        # One lock order for every writer: PostgreSQL writers inserting overlapping ids cannot deadlock.
        rows.sort(key=itemgetter(0))
        stored: set[str] = set()
        if rows:
            with self._write() as conn:
                stored.update(self._insert_new(conn, rows))
                identifies = [
                    events[first_index[eid]]
                    for eid in stored
                    if events[first_index[eid]].type is EventType.IDENTIFY
                ]
                if identifies:
                    self._link_identities(conn, identifies)
        for event_id, index in first_index.items():
            status = ItemStatus.STORED if event_id in stored else ItemStatus.DUPLICATE
            reason = None if status is ItemStatus.STORED else "already stored"
            results[index] = ItemResult(
                index, event_id, status, None if reason is None else "event_id", reason
            )
        final = [r for r in results if r is not None]
        log.debug("events_appended", stored=len(stored), batch=len(events))
        return IngestResult(final)

    def _insert_new(self, conn: Connection, rows: list[tuple[Any, ...]]) -> list[str]:
        """Insert rows (``_EVENT_COLUMNS`` order) whose event_id is new; return the ids actually inserted.

        Rows go into a connection-private staging table by the driver's bulk path (``COPY`` on PostgreSQL,
        ``executemany`` on SQLite), then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` in
        event_id order moves the new ones. A multi-row VALUES list of thousands of parameters spends most of
        its time building and parsing parameters (in SQLAlchemy or the driver); the bulk paths do not.
        Small PostgreSQL batches skip staging, which costs round trips.
        """
        driver: Any = conn.connection.driver_connection  # the DBAPI connection, inside this same transaction
        if self.dialect == "sqlite":
            cursor = driver.cursor()
            try:
                cursor.execute(_SQLITE_STAGE_DDL)
                cursor.executemany(_SQLITE_STAGE_LOAD, rows)
                cursor.execute(_SQLITE_STAGE_INSERT)
                inserted = [r[0] for r in cursor.fetchall()]
                cursor.execute("DELETE FROM temp.events_stage")
                return inserted
            finally:
                cursor.close()
        if len(rows) >= _PG_COPY_FROM:
            with driver.cursor() as cursor:
                cursor.execute(_PG_STAGE_DDL)
                with cursor.copy(_PG_STAGE_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(_PG_STAGE_INSERT)
                return [r[0] for r in cursor.fetchall()]
        statement = self._insert(events_table).on_conflict_do_nothing(index_elements=["event_id"])
        statement = statement.returning(events_table.c.event_id)
        return list(
            conn.execute(statement, [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows]).scalars()
        )

    @staticmethod
    def _event_row(ev: EngagementEvent, properties: str, ingested_at_us: int) -> tuple[Any, ...]:
        """One ``events`` row in ``_EVENT_COLUMNS`` order."""
        return (
            ev.event_id,
            ev.contact_id,
            ev.anonymous_id,
            ev.account_id,
            to_us(ev.timestamp),
            ev.type.value,
            ev.content_id,
            None if ev.channel is None else ev.channel.value,
            properties,
            ingested_at_us,
        )

    def _link_identities(self, conn: Connection, identifies: list[EngagementEvent]) -> None:
        """Record anonymous_id → contact_id links from newly stored identify events.

        The first contact an anonymous id is linked to keeps it (a shared device must not merge two people);
        for that contact, the latest identify event (by timestamp) decides whether tracking consent was given.
        """
        links: dict[str, dict[str, Any]] = {}
        for ev in sorted(identifies, key=lambda e: (e.timestamp, e.event_id)):
            assert ev.anonymous_id is not None and ev.contact_id is not None  # guaranteed by the schema
            row = {
                "anonymous_id": ev.anonymous_id,
                "contact_id": ev.contact_id,
                "consent": ev.properties.get("tracking_consent") is True,
                "linked_at_us": to_us(ev.timestamp),
            }
            current = links.get(ev.anonymous_id)
            if current is None or current["contact_id"] == ev.contact_id:
                links[ev.anonymous_id] = row
        statement = self._insert(identity_links_table)
        statement = statement.on_conflict_do_update(
            index_elements=["anonymous_id"],
            set_={"consent": statement.excluded.consent, "linked_at_us": statement.excluded.linked_at_us},
            where=and_(
                identity_links_table.c.contact_id == statement.excluded.contact_id,
                identity_links_table.c.linked_at_us <= statement.excluded.linked_at_us,
            ),
        )
        conn.execute(statement, sorted(links.values(), key=lambda r: r["anonymous_id"]))

    def _attributed(self) -> Select[Any]:
        """Every event with its resolved contact (NULL where it cannot be attributed), export column names."""
        e, link, prof = events_table, identity_links_table, profiles_table
        consented = or_(
            func.coalesce(link.c.consent, false()), func.coalesce(prof.c.tracking_consent, false())
        )
        resolved = case(
            (e.c.contact_id.is_not(None), e.c.contact_id),
            (consented, link.c.contact_id),
            else_=None,
        )
        joined = e.outerjoin(link, and_(e.c.contact_id.is_(None), link.c.anonymous_id == e.c.anonymous_id))
        joined = joined.outerjoin(prof, prof.c.contact_id == link.c.contact_id)
        return select(
            e.c.event_id,
            resolved.label("contact_id"),
            e.c.anonymous_id,
            e.c.account_id,
            e.c.ts_us,
            e.c.type,
            e.c.content_id,
            e.c.channel,
            e.c.properties,
            e.c.ingested_at_us,
        ).select_from(joined)

    @staticmethod
    def _time_filter(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
        clauses = []
        if start is not None:
            clauses.append(column >= to_us(start))
        if end is not None:
            clauses.append(column < to_us(end))
        return clauses

    def events_for_contact(
        self,
        contact_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        latest: int | None = None,
    ) -> list[EngagementEvent]:
        if latest is not None and latest < 0:
            raise ValueError(f"`latest` must be >= 0, but got {latest}")
        e, link, prof = events_table, identity_links_table, profiles_table
        # Two index-friendly halves instead of one OR across the joins: direct events, then stitched ones.
        direct = select(e).where(e.c.contact_id == contact_id, *self._time_filter(e.c.ts_us, start, end))
        consented = or_(link.c.consent, func.coalesce(prof.c.tracking_consent, false()))
        stitched = (
            select(e)
            .select_from(
                e.join(link, link.c.anonymous_id == e.c.anonymous_id).outerjoin(
                    prof, prof.c.contact_id == link.c.contact_id
                )
            )
            .where(
                link.c.contact_id == contact_id,
                e.c.contact_id.is_(None),
                consented,
                *self._time_filter(e.c.ts_us, start, end),
            )
        )
        both = union_all(direct, stitched).subquery()
        if latest is None:
            query = select(both).order_by(both.c.ts_us, both.c.event_id)
        else:  # newest first through the (contact_id, ts_us) index, then back in time order
            query = select(both).order_by(both.c.ts_us.desc(), both.c.event_id.desc()).limit(latest)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        if latest is not None:
            rows = rows[::-1]
        return [
            EngagementEvent(
                event_id=row["event_id"],
                contact_id=contact_id,
                anonymous_id=row["anonymous_id"],
                account_id=row["account_id"],
                timestamp=from_us(row["ts_us"]),
                type=EventType(row["type"]),
                content_id=row["content_id"],
                channel=None if row["channel"] is None else Channel(row["channel"]),
                properties=json.loads(row["properties"]),
            )
            for row in rows
        ]

    def _export_query(
        self, start: datetime | None, end: datetime | None, contact_ids: Sequence[str] | None = None
    ) -> Select[Any]:
        inner = self._attributed().subquery()
        clauses = [inner.c.contact_id.is_not(None), *self._time_filter(inner.c.ts_us, start, end)]
        if contact_ids is not None:
            clauses.append(inner.c.contact_id.in_(list(contact_ids)))
        return select(inner).where(*clauses).order_by(inner.c.ts_us, inner.c.event_id)

    def _batches(self, query: Select[Any]) -> Iterator[pa.RecordBatch]:
        """The query's rows as Arrow record batches with the export schema, ``_READ_CHUNK`` rows at a time."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_begin="DEFERRED")
            with conn.begin():  # one snapshot for the whole read
                result = conn.execution_options(stream_results=True, yield_per=_READ_CHUNK).execute(query)
                while rows := result.fetchmany(_READ_CHUNK):
                    yield _to_batch(rows)

    def read_frame(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        contact_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        table = pa.Table.from_batches(
            list(self._batches(self._export_query(start, end, contact_ids))), EXPORT_SCHEMA
        )
        return table.to_pandas(types_mapper=None)

    def export_parquet(
        self, path: str | Path, start: datetime | None = None, end: datetime | None = None
    ) -> int:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        written = 0
        with pq.ParquetWriter(partial, EXPORT_SCHEMA, compression="zstd") as writer:
            for batch in self._batches(self._export_query(start, end)):
                writer.write_batch(batch)
                written += batch.num_rows
        partial.replace(target)  # readers never see a half-written export
        log.info("events_exported", rows=written, path=str(target))
        return written

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())

    # -- profiles --------------------------------------------------------------------------------------------
    def upsert_profiles(self, profiles: Sequence[ContactProfile]) -> int:
        rows = {
            p.contact_id: {
                "contact_id": p.contact_id,
                "tracking_consent": p.tracking_consent is not None and p.tracking_consent.granted,
                "document": p.model_dump_json(),
            }
            for p in profiles
        }
        if not rows:
            return 0
        statement = self._insert(profiles_table)
        statement = statement.on_conflict_do_update(
            index_elements=["contact_id"],
            set_={
                "tracking_consent": statement.excluded.tracking_consent,
                "document": statement.excluded.document,
            },
        )
        with self._write() as conn:
            conn.execute(statement, [rows[k] for k in sorted(rows)])
        return len(rows)

    def get_profile(self, contact_id: str) -> ContactProfile | None:
        with self.engine.connect() as conn:
            document = conn.execute(_PROFILE_BY_ID, {"contact_id": contact_id}).scalar_one_or_none()
        return None if document is None else ContactProfile.model_validate_json(document)

    def list_profiles(self) -> list[ContactProfile]:
        with self.engine.connect() as conn:
            documents = conn.execute(
                select(profiles_table.c.document).order_by(profiles_table.c.contact_id)
            ).scalars()
            return [ContactProfile.model_validate_json(d) for d in documents]

    def profiles_frame(self) -> pd.DataFrame:
        return profiles_to_frame(self.list_profiles())

    # -- content catalog -------------------------------------------------------------------------------------
    def upsert_content(self, blocks: Sequence[ContentBlock]) -> int:
        rows = {
            b.content_id: {"content_id": b.content_id, "active": b.active, "document": b.model_dump_json()}
            for b in blocks
        }
        if not rows:
            return 0
        statement = self._insert(content_table)
        statement = statement.on_conflict_do_update(
            index_elements=["content_id"],
            set_={"active": statement.excluded.active, "document": statement.excluded.document},
        )
        with self._write() as conn:
            conn.execute(statement, [rows[k] for k in sorted(rows)])
        return len(rows)

    def get_content(self, content_id: str) -> ContentBlock | None:
        with self.engine.connect() as conn:
            document = conn.execute(
                select(content_table.c.document).where(content_table.c.content_id == content_id)
            ).scalar_one_or_none()
        return None if document is None else ContentBlock.model_validate_json(document)

    def list_content(self, active_only: bool = True) -> list[ContentBlock]:
        query = select(content_table.c.document).order_by(content_table.c.content_id)
        if active_only:
            query = query.where(content_table.c.active.is_(True))
        with self.engine.connect() as conn:
            return [ContentBlock.model_validate_json(d) for d in conn.execute(query).scalars()]

    def deactivate_content(self, content_id: str) -> bool:
        with self._write() as conn:
            document = conn.execute(
                select(content_table.c.document).where(content_table.c.content_id == content_id)
            ).scalar_one_or_none()
            if document is None:
                return False
            block = ContentBlock.model_validate_json(document).model_copy(update={"active": False})
            conn.execute(
                update(content_table)
                .where(content_table.c.content_id == content_id)
                .values(active=False, document=block.model_dump_json())
            )
        return True

    # -- privacy ---------------------------------------------------------------------------------------------
    def erase_contact(self, contact_id: str) -> ErasureReport:
        e, link = events_table, identity_links_table
        erased_at = datetime.now(UTC)
        with self._write() as conn:
            anonymous = select(link.c.anonymous_id).where(link.c.contact_id == contact_id)
            # Every event naming the contact, and every anonymous event of an anonymous id ever linked to
            # them, consented or not: once linked, those events are the contact's personal data. Events
            # naming another contact stay (theirs, even on a shared device).
            events_deleted = conn.execute(
                delete(e).where(
                    or_(
                        e.c.contact_id == contact_id,
                        and_(e.c.contact_id.is_(None), e.c.anonymous_id.in_(anonymous)),
                    )
                )
            ).rowcount
            links_deleted = conn.execute(delete(link).where(link.c.contact_id == contact_id)).rowcount
            profile_deleted = bool(
                conn.execute(delete(profiles_table).where(profiles_table.c.contact_id == contact_id)).rowcount
            )
            report = ErasureReport(
                contact_hash=contact_hash(contact_id),
                events_deleted=int(events_deleted),
                identity_links_deleted=int(links_deleted),
                profile_deleted=profile_deleted,
                erased_at=erased_at,
            )
            conn.execute(
                erasure_audit_table.insert().values(
                    contact_hash=report.contact_hash,
                    events_deleted=report.events_deleted,
                    identity_links_deleted=report.identity_links_deleted,
                    profile_deleted=report.profile_deleted,
                    erased_at_us=to_us(erased_at),
                )
            )
        log.info("contact_erased", contact_hash=report.contact_hash, events_deleted=report.events_deleted)
        return report

    def erasure_audit(self) -> list[ErasureReport]:
        """The audit trail of erasures, oldest first (hashes and counts only)."""
        a = erasure_audit_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(a).order_by(a.c.id)).mappings().all()
        return [
            ErasureReport(
                contact_hash=r["contact_hash"],
                events_deleted=r["events_deleted"],
                identity_links_deleted=r["identity_links_deleted"],
                profile_deleted=bool(r["profile_deleted"]),
                erased_at=from_us(r["erased_at_us"]),
            )
            for r in rows
        ]

    def close(self) -> None:
        self.engine.dispose()


EXPORT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("contact_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("account_id", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("type", pa.string()),
        pa.field("content_id", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("properties", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)
assert tuple(EXPORT_SCHEMA.names) == EXPORT_COLUMNS


def _to_batch(rows: Sequence[Any]) -> pa.RecordBatch:
    """Rows of ``_attributed()`` as a record batch with ``EXPORT_SCHEMA``, built column by column."""
    columns = list(zip(*rows, strict=True))
    arrays = []
    for field_, values in zip(EXPORT_SCHEMA, columns, strict=True):
        if pa.types.is_timestamp(field_.type):
            arrays.append(pa.array(values, pa.int64()).cast(field_.type))
        else:
            arrays.append(pa.array(values, field_.type))
    return pa.RecordBatch.from_arrays(arrays, schema=EXPORT_SCHEMA)


def profiles_to_frame(profiles: Sequence[ContactProfile]) -> pd.DataFrame:
    """One row per profile: scalar fields as columns; ``consent_<channel>``, ``tracking_consent`` booleans."""
    records = []
    for p in profiles:
        row = p.model_dump(mode="json", exclude={"consents", "tracking_consent", "updated_at"})
        row["updated_at"] = p.updated_at
        row["tracking_consent"] = p.tracking_consent is not None and p.tracking_consent.granted
        for channel in Channel:
            row[f"consent_{channel.value}"] = p.has_consent(channel)
        records.append(row)
    columns = [
        *(name for name in ContactProfile.model_fields if name not in {"consents"}),
        *(f"consent_{c.value}" for c in Channel),
    ]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    return frame

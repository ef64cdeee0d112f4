"""A thin layer over ``feast.FeatureStore`` for ripen: config per profile, apply, materialize, retrieve,
ingest.

``FeatureStoreService(settings)`` writes ``feature_store.yaml`` into ``Settings.feature_repo_dir`` (SQLite
online
store in the embedded profile, Redis in production, the file offline store over Parquet in
``Settings.offline_dir``) and opens Feast on it. Offline tables come from ``features.aggregation``;
ingestion-time
updates (``apply_events``) fold new events into the contacts' online state with the O(1) update of
``features.decay`` and write it back, so a lookup right after ingestion sees them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
import pandas as pd
import pyarrow as pa
import structlog
import yaml
from feast import FeatureStore, FeatureView, FileSource
from feast.utils import _convert_arrow_to_proto

from features.account_state import ACCOUNT_FEATURES, AccountState
from features.aggregation import (
    CONTACT_PROFILE_TABLE,
    EventsInput,
    OfflineTables,
    build_offline_tables,
    first_event_times,
    profile_table,
)
from features.decay import LAST_SEEN, CounterEvent, EngagementState, counter_columns
from features.feature_repo import definitions
from features.feature_repo.feature_views import (
    CONTENT_RATES,
    CONTENT_STATS,
    account_engagement_fv,
    affinity_counters,
    contact_engagement_fv,
    content_stats_fv,
)
from features.online import (
    DecisionFeatures,
    DirectReader,
    FeastSdkReader,
    OnlineReader,
    bump_content_version,
    lookup,
    redis_client,
)
from features.points import DEFAULT_POINTS, PointsWeights
from features.schemas import ContactProfile, ContentBlock, EngagementEvent, EventType
from features.topics import (
    TOPIC_IDS,
    feature_topics,
    read_vocabulary,
    topic_ids,
    topic_vocabulary,
    write_vocabulary,
)
from ripen.settings import Settings

log = structlog.get_logger(__name__)

PROJECT = "ripen"
CONTENT_CATALOG_TABLE = "content_catalog.parquet"
ENGAGEMENT_FEATURES = tuple(f.name for f in contact_engagement_fv.features)
# Rows per proto conversion and online write batch while materializing.
MATERIALIZE_BATCH_ROWS = 10_000
FEATURE_SERVICES = (
    "readiness_v1",
    "churn_v1",
    "content_policy_v1",
    "sales_explanation_v1",
    "content_stats_v1",
)


def repo_config(settings: Settings) -> dict[str, Any]:
    """The ``feature_store.yaml`` content for the settings' profile."""
    repo = settings.feature_repo_dir.resolve()
    online: dict[str, Any]
    if settings.online_store == "redis":
        online = {
            "type": "redis",
            "connection_string": redis_connection_string(settings.redis_url),
            # Ingestion writes a contact's new state even when a late event left as_of unchanged.
            "skip_dedup": True,
        }
    else:
        online = {"type": "sqlite", "path": str(repo / "online_store.db")}
    return {
        "project": PROJECT,
        "provider": "local",
        "registry": {"path": str(repo / "registry.db"), "cache_ttl_seconds": 60},
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }


def latest_rows_sql(path: Path, view: FeatureView, start: datetime, end: datetime) -> str:
    """DuckDB SQL for each entity's latest row of a view's source with ``start <= event_timestamp <= end``
    (the rows ``materialize`` loads; sentinel rows with a null timestamp never qualify)."""
    keys = [e.name for e in view.entity_columns]
    columns = ", ".join(f'"{c}"' for c in [*keys, *(f.name for f in view.features), "event_timestamp"])
    return (
        f"SELECT {columns} FROM read_parquet('{path}') "
        f"WHERE event_timestamp::TIMESTAMPTZ >= '{start.isoformat()}'::TIMESTAMPTZ "
        f"AND event_timestamp::TIMESTAMPTZ <= '{end.isoformat()}'::TIMESTAMPTZ "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY event_timestamp DESC) = 1"
    )


def redis_connection_string(url: str) -> str:
    """Feast's ``host:port,db=N[,password=...]`` form of a ``redis://`` URL."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"redis_url must start with redis:// or rediss://, but got {url!r}")
    parts = [f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"]
    db = parsed.path.strip("/")
    if db:
        parts.append(f"db={int(db)}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


@dataclass(frozen=True)
class MaterializeReport:
    """What a materialization wrote: the window and the feature views."""

    start: datetime
    end: datetime
    feature_views: tuple[str, ...]


class FeatureStoreService:
    """ripen's feature store: one object per process, built from ``Settings``.

    Parameters:
        settings: where the repository, offline tables and online store live.
        weights: points weights used for account points and fit points (the on-demand view uses the defaults).
    """

    def __init__(self, settings: Settings, weights: PointsWeights = DEFAULT_POINTS) -> None:
        self.settings = settings
        self.weights = weights
        self._feast: FeatureStore | None = None
        self._catalog: dict[str, tuple[str, ...]] | None = None
        self._topics: dict[str, tuple[str, ...]] | None = None
        self._vocabulary: tuple[str, ...] | None = None
        self._direct: DirectReader | None = None
        self._redis: Any = None

    @property
    def repo_dir(self) -> Path:
        return self.settings.feature_repo_dir

    @property
    def offline_dir(self) -> Path:
        return self.settings.offline_dir

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The topic vocabulary stored with the repository (fixed by ``build_offline``; default catalog's
        until then)."""
        if self._vocabulary is None:
            self._vocabulary = read_vocabulary(self.repo_dir)
        return self._vocabulary

    @property
    def topics(self) -> tuple[str, ...]:
        """The topic ids with feature columns: the vocabulary plus ``other``."""
        return feature_topics(self.vocabulary)

    @property
    def feast(self) -> FeatureStore:
        """The Feast store on the generated repository (config written on first use)."""
        if self._feast is None:
            self.write_config()
            self._feast = FeatureStore(repo_path=str(self.repo_dir.resolve()))
        return self._feast

    def write_config(self) -> Path:
        """Write ``feature_store.yaml`` for the active profile and return its path."""
        self.settings.ensure_dirs()
        path = self.repo_dir / "feature_store.yaml"
        path.write_text(yaml.safe_dump(repo_config(self.settings), sort_keys=False))
        return path

    def apply(self) -> None:
        """Register entities, views and services with Feast (idempotent). Needs the offline tables to
        exist."""
        self.feast.apply(definitions(self.topics))
        log.info("feature_repo_applied", project=PROJECT, online_store=self.settings.online_store)

    # ----------------------------------------------------------------------------------------------- offline
    def write_profiles(
        self, profiles: Sequence[ContactProfile], known_since: Mapping[str, pd.Timestamp] | None = None
    ) -> Path:
        """Write the contact-profile feature table (replacing the previous one).

        ``known_since`` (contact id -> first event time) back-dates the stable profile facts
        (``features.aggregation.profile_table``)."""
        path = self.offline_dir / CONTACT_PROFILE_TABLE
        self.settings.ensure_dirs()
        profile_table(profiles, self.weights, known_since).to_parquet(path, index=False)
        return path

    def write_contents(self, contents: Sequence[ContentBlock]) -> Path:
        """Write the content catalog (content id -> stages, free-text topics) that stage and topic affinity
        read on both paths."""
        self.settings.ensure_dirs()
        path = self.offline_dir / CONTENT_CATALOG_TABLE
        frame = pd.DataFrame(
            {
                "content_id": [b.content_id for b in contents],
                "stages": [list(b.stages) for b in contents],
                "topics": [list(b.topics) for b in contents],
            }
        )
        schema = pa.schema(
            [
                ("content_id", pa.string()),
                ("stages", pa.list_(pa.string())),
                ("topics", pa.list_(pa.string())),
            ]
        )
        pa.parquet.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)
        self._catalog = None
        self._topics = None
        return path

    def content_stages(self) -> dict[str, tuple[str, ...]]:
        """Content id -> stages, from the written catalog (empty if none)."""
        if self._catalog is None:
            self._load_catalog()
        assert self._catalog is not None
        return self._catalog

    def content_topics(self) -> dict[str, tuple[str, ...]]:
        """Content id -> topic ids (``features.topics.topic_ids`` of its free-text topics), from the
        catalog."""
        if self._topics is None:
            self._load_catalog()
        assert self._topics is not None
        return self._topics

    def _load_catalog(self) -> None:
        path = self.offline_dir / CONTENT_CATALOG_TABLE
        self._catalog, self._topics = {}, {}
        if not path.exists():
            return
        frame = pd.read_parquet(path)
        topics = frame["topics"] if "topics" in frame.columns else [()] * len(frame)
        for cid, stages, free in zip(frame["content_id"], frame["stages"], topics, strict=True):
            self._catalog[str(cid)] = tuple(stages)
            self._topics[str(cid)] = topic_ids(
                (str(t) for t in (free if free is not None else ())), self.vocabulary
            )

    def build_offline(self, events: EventsInput, profiles: Sequence[ContactProfile] = ()) -> OfflineTables:
        """Aggregate events into the offline feature tables (DuckDB), with profiles for the account mapping.

        An empty profile table is written when there is none yet, so every Feast source exists. The topic
        vocabulary is fixed here, from the written catalog's topics, and stored with the repository, so the
        tables, the views ``apply`` registers, ingestion and lookups agree; run ``apply`` after it.
        """
        if not profiles and not (self.offline_dir / CONTACT_PROFILE_TABLE).exists():
            self.write_profiles(profiles)
        self._fix_vocabulary()
        catalog, topics = self.content_stages(), self.content_topics()
        contents = pd.DataFrame(
            {
                "content_id": list(catalog),
                "stages": [list(s) for s in catalog.values()],
                # Already topic ids; mapping them again through topic_ids leaves them unchanged.
                "topics": [list(topics.get(c, ())) for c in catalog],
            }
        )
        # object columns, so an empty profile list stays a (NULL-typed) string column for DuckDB, not float.
        accounts = pd.DataFrame(
            {
                "contact_id": pd.Series([p.contact_id for p in profiles], dtype=object),
                "account_id": pd.Series([p.account_id for p in profiles], dtype=object),
            }
        )
        tables = build_offline_tables(
            events,
            self.offline_dir,
            contents=contents,
            profiles=accounts,
            weights=self.weights,
            vocabulary=self.vocabulary,
        )
        if profiles:
            # Stored profiles are the latest version: their stable facts count from the first event on, so
            # training rows before ``updated_at`` see who the contact is.
            self.write_profiles(profiles, first_event_times(tables.contact_engagement))
        return tables

    def _fix_vocabulary(self) -> None:
        """Store the vocabulary of the written catalog's free-text topics (kept as it is without one)."""
        path = self.offline_dir / CONTENT_CATALOG_TABLE
        if not path.exists():
            return
        frame = pd.read_parquet(path)
        if "topics" not in frame.columns:
            return
        vocabulary = topic_vocabulary(
            str(t) for topics in frame["topics"] if topics is not None for t in topics
        )
        self.settings.ensure_dirs()
        write_vocabulary(self.repo_dir, vocabulary)
        if vocabulary != self._vocabulary:
            self._vocabulary, self._catalog, self._topics, self._direct = vocabulary, None, None, None
            log.info("topic_vocabulary_fixed", topics=len(vocabulary))

    def materialize(
        self,
        end: datetime | None = None,
        start: datetime | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> MaterializeReport:
        """Load the latest offline row per entity (in ``[start, end]``) into the online store, view by
        view.

        Does what ``FeatureStore.materialize`` does (latest row per entity, Feast's own proto conversion and
        ``online_write_batch``, the interval recorded in the registry), but reads each Parquet source with
        one DuckDB query instead of the file offline store's dask pipeline: 2,000 contacts took ~90 s through
        Feast's path and take a few seconds here.
        """
        end = end or datetime.now(UTC)
        start = start or datetime(1970, 1, 2, tzinfo=UTC)
        feast = self.feast
        provider = feast._get_provider()
        views = feast.list_feature_views()
        with duckdb.connect(config={"threads": 2}) as con:
            for view in views:
                written = 0
                join_keys = {e.name: e.dtype.to_value_type() for e in view.entity_columns}
                sql = latest_rows_sql(self._source_path(view), view, start, end)
                for batch in con.sql(sql).to_arrow_reader(MATERIALIZE_BATCH_ROWS):
                    rows = _convert_arrow_to_proto(batch, view, join_keys)
                    provider.online_write_batch(feast.config, view, rows, progress=None)
                    written += len(rows)
                feast.registry.apply_materialization(view, PROJECT, start, end)
                if view.name == content_stats_fv.name:
                    self._content_stats_written()
                log.info("feature_view_materialized", view=view.name, rows=written)
                if progress:
                    progress(view.name)
        names = tuple(v.name for v in views)
        log.info("features_materialized", views=len(names), end=end.isoformat())
        return MaterializeReport(start=start, end=end, feature_views=names)

    def _source_path(self, view: FeatureView) -> Path:
        """The Parquet file behind a feature view (source paths are relative to the repository folder)."""
        source = view.batch_source
        if not isinstance(source, FileSource):
            raise ValueError(f"feature view {view.name} must read a FileSource, but got {type(source)}")
        path = Path(source.path)
        return path if path.is_absolute() else (self.repo_dir / path).resolve()

    def _content_stats_written(self) -> None:
        """Invalidate the fast path's cached content rows in every process after a content-stats write."""
        if self.settings.online_store == "redis":
            bump_content_version(self._redis_client(), PROJECT)

    def _redis_client(self) -> Any:
        if self._redis is None:
            self._redis = redis_client(self.settings.redis_url, self.settings.redis_timeout_seconds)
        return self._redis

    def historical_features(self, entity_df: pd.DataFrame, service_name: str) -> pd.DataFrame:
        """Point-in-time correct features of a feature service for ``(contact_id, event_timestamp)`` rows.

        Each row sees only events at or before its ``event_timestamp`` (Feast's as-of join), decayed to that
        time
        (``request_ts`` is derived from it). ``sales_explanation_v1`` also needs ``account_id``.
        """
        if service_name not in FEATURE_SERVICES:
            raise ValueError(f"service_name must be one of {FEATURE_SERVICES}, but got {service_name!r}")
        key = "content_id" if service_name == "content_stats_v1" else "contact_id"
        required = [key, "event_timestamp"] + (
            ["account_id"] if service_name == "sales_explanation_v1" else []
        )
        missing = [c for c in required if c not in entity_df.columns]
        if missing:
            raise ValueError(f"entity_df is missing columns {missing} needed by {service_name}")
        frame = entity_df.copy()
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        if frame["event_timestamp"].isna().any():
            raise ValueError("entity_df.event_timestamp has missing values")
        frame["request_ts"] = frame["event_timestamp"].map(lambda t: t.value / 1e9)
        service = self.feast.get_feature_service(service_name)
        result = self.feast.get_historical_features(entity_df=frame, features=service).to_df()
        # Feast also returns the on-demand view's inputs (raw as-of counters); keep only what the service
        # declares.
        declared = [f.name for p in service.feature_view_projections for f in p.features]
        keep = [*entity_df.columns, "request_ts", *(n for n in declared if n not in entity_df.columns)]
        return result[[c for c in dict.fromkeys(keep) if c in result.columns]]

    # ------------------------------------------------------------------------------------------------ online
    def online_features(
        self, contact_id: str, content_ids: Sequence[str], at: datetime | None = None, *, fast: bool = True
    ) -> DecisionFeatures:
        """Everything one decision needs for one contact and its candidate blocks, decayed to ``at`` (now).

        ``fast=True`` reads Feast's online tables directly (``features.online.DirectReader``); ``fast=False``
        goes
        through the Feast SDK. Both give the same ``DecisionFeatures``; an unknown contact gets
        ``cold_start``.
        """
        if fast:
            if self._direct is None:
                self._direct = DirectReader(self)
            reader: OnlineReader = self._direct
        else:
            reader = FeastSdkReader(self)
        return lookup(reader, contact_id, content_ids, at=at)

    def read_engagement_states(self, contact_ids: Sequence[str]) -> dict[str, EngagementState]:
        """The online engagement state of each contact (empty state if unknown)."""
        rows = self._read_contact_rows(contact_ids)
        return {cid: state_from_row(row, self.topics) for cid, row in rows.items()}

    def _read_contact_rows(self, contact_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        refs = [f"contact_engagement:{n}" for n in ENGAGEMENT_FEATURES] + [
            f"stage_affinity:{n}" for n in affinity_counters(self.topics)
        ]
        refs.append("contact_profile:account_id")
        data = self.feast.get_online_features(
            features=refs, entity_rows=[{"contact_id": c} for c in contact_ids]
        ).to_dict()
        return {cid: {k: v[i] for k, v in data.items()} for i, cid in enumerate(contact_ids)}

    def read_account_states(self, account_ids: Sequence[str]) -> dict[str, AccountState]:
        """The online account-engagement state of each account (empty state if unknown)."""
        if not account_ids:
            return {}
        refs = [f"{account_engagement_fv.name}:{n}" for n in ACCOUNT_FEATURES]
        data = self.feast.get_online_features(
            features=refs, entity_rows=[{"account_id": a} for a in account_ids]
        ).to_dict()
        return {
            aid: AccountState.from_row({k: v[i] for k, v in data.items()})
            for i, aid in enumerate(account_ids)
        }

    def account_features(self, account_id: str, at: datetime | None = None) -> dict[str, Any]:
        """One account's online features with the decayed ones moved to ``at`` (now); zeros if unknown."""
        if not account_id:
            raise ValueError("account_id must be a non-empty string")
        state = self.read_account_states([account_id])[account_id]
        request_ts = (at or datetime.now(UTC)).timestamp()
        return {**state.to_row(), **state.at(request_ts, self.weights)}

    def apply_events(self, events: pd.DataFrame | Sequence[EngagementEvent]) -> int:
        """Fold newly stored events into the online features of their contacts, accounts and content blocks.

        Call it with events the event store accepted as new (it is idempotent by ``event_id``); duplicates
        within the batch count once. An event without ``account_id`` counts for the account of its contact's
        stored profile. Returns the number of contacts updated.
        """
        frame = events_frame(events)
        frame = frame[frame["contact_id"].notna()].drop_duplicates("event_id", keep="first")
        if frame.empty:
            return 0
        stages, topics = self.content_stages(), self.content_topics()
        by_contact: dict[str, list[tuple[CounterEvent, str | None]]] = {}
        for record in frame.to_dict("records"):
            account = record.get("account_id")
            account = None if account is None or pd.isna(account) else str(account)
            by_contact.setdefault(str(record["contact_id"]), []).append(
                (counter_event(record, stages, topics), account)
            )
        stored = self._read_contact_rows(list(by_contact))
        rows = []
        account_events: dict[str, list[tuple[CounterEvent, bool]]] = {}
        for contact_id, contact_events in by_contact.items():
            state = state_from_row(stored[contact_id], self.topics)
            is_new = state.events_total == 0
            profile_account = stored[contact_id].get("account_id")
            for event, account in sorted(contact_events, key=lambda pair: pair[0].t):
                state = state.apply(event)
                account = account or (str(profile_account) if profile_account else None)
                if account is not None:
                    account_events.setdefault(account, []).append((event, is_new))
                    is_new = False
            rows.append({"contact_id": contact_id, **state_to_row(state, self.topics)})
        engagement = pd.DataFrame(rows)
        engagement["event_timestamp"] = pd.to_datetime(engagement["as_of_ts"], unit="s", utc=True)
        self.feast.write_to_online_store(
            "contact_engagement", engagement[["contact_id", "event_timestamp", *ENGAGEMENT_FEATURES]]
        )
        self.feast.write_to_online_store(
            "stage_affinity", engagement[["contact_id", "event_timestamp", *affinity_counters(self.topics)]]
        )
        self._update_accounts(account_events)
        self._update_content_stats(frame)
        log.info(
            "online_features_updated", contacts=len(rows), accounts=len(account_events), events=len(frame)
        )
        return len(rows)

    def _update_accounts(self, account_events: dict[str, list[tuple[CounterEvent, bool]]]) -> None:
        """Add the batch's events to each account's online engagement (summed over its contacts).

        A contact counts as new to the account when it had no stored engagement before this batch; a contact
        that moved between accounts is therefore not counted again (the batch job counts it in both)."""
        if not account_events:
            return
        states = self.read_account_states(sorted(account_events))
        rows = []
        for account_id, pairs in account_events.items():
            state = states[account_id]
            for event, new_contact in sorted(pairs, key=lambda pair: pair[0].t):
                state = state.apply(event, new_contact, self.weights)
            rows.append({"account_id": account_id, **state.to_row()})
        frame = pd.DataFrame(rows)
        frame["event_timestamp"] = pd.to_datetime(frame["account_as_of_ts"], unit="s", utc=True)
        self.feast.write_to_online_store(account_engagement_fv.name, frame)

    def _update_content_stats(self, frame: pd.DataFrame) -> None:
        """Add the batch's sends/opens/clicks/downloads to each content block's online statistics."""
        content_events = frame[frame["content_id"].notna()]
        if content_events.empty:
            return
        from features.decay import CONSUMPTION_TYPES

        kinds = {
            "sends": {EventType.EMAIL_SENT.value},
            "opens": {EventType.EMAIL_OPEN.value},
            "clicks": {EventType.EMAIL_CLICK.value},
            "downloads": {EventType.CONTENT_DOWNLOAD.value},
            "consumptions": set(CONSUMPTION_TYPES),
        }
        ids = sorted(content_events["content_id"].astype(str).unique())
        refs = [f"content_stats:{n}" for n in CONTENT_STATS]
        current = self.feast.get_online_features(
            features=refs, entity_rows=[{"content_id": c} for c in ids]
        ).to_dict()
        rows = []
        for i, cid in enumerate(ids):
            mine = content_events[content_events["content_id"] == cid]
            row: dict[str, Any] = {"content_id": cid}
            for name, types in kinds.items():
                row[name] = int(current[name][i] or 0) + int(mine["type"].isin(types).sum())
            sends = row["sends"]
            for rate, count in zip(CONTENT_RATES, ("opens", "clicks", "downloads"), strict=True):
                row[rate] = row[count] / sends if sends else None
            row["event_timestamp"] = pd.Timestamp(mine["timestamp"].max()).tz_convert(UTC)
            rows.append(row)
        self.feast.write_to_online_store(content_stats_fv.name, pd.DataFrame(rows))
        self._content_stats_written()


def events_frame(events: pd.DataFrame | Sequence[EngagementEvent]) -> pd.DataFrame:
    """Events in the export schema (a DataFrame passes through after a column check)."""
    if isinstance(events, pd.DataFrame):
        missing = [
            c for c in ("event_id", "contact_id", "timestamp", "type", "content_id") if c not in events
        ]
        if missing:
            raise ValueError(f"events is missing columns {missing}")
        frame = events.copy()
        if "properties" not in frame:
            frame["properties"] = "{}"
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame
    return pd.DataFrame(
        {
            "event_id": [e.event_id for e in events],
            "contact_id": [e.contact_id for e in events],
            "account_id": [e.account_id for e in events],
            "timestamp": pd.to_datetime([e.timestamp for e in events], utc=True),
            "type": [e.type.value for e in events],
            "content_id": [e.content_id for e in events],
            "properties": [json.dumps(e.properties, separators=(",", ":")) for e in events],
        }
    )


def counter_event(
    row: Mapping[Any, Any],
    stages: dict[str, tuple[str, ...]],
    topics: Mapping[str, tuple[str, ...]] | None = None,
) -> CounterEvent:
    """One export row as the counters see it (epoch seconds with microsecond precision, as DuckDB reads
    them); ``topics`` maps content ids to topic ids (``FeatureStoreService.content_topics``)."""
    ts = pd.Timestamp(row["timestamp"])
    content_id = row.get("content_id")
    content_id = None if content_id is None or pd.isna(content_id) else str(content_id)
    returning = False
    if row["type"] == EventType.PAGE_VIEW.value and row.get("properties"):
        try:
            returning = json.loads(row["properties"]).get("returning") is True
        except (ValueError, AttributeError):
            returning = False
    return CounterEvent(
        event_id=str(row["event_id"]),
        t=(ts.value // 1000) / 1e6,
        type=str(row["type"]),
        content_id=content_id,
        stages=stages.get(content_id, ()) if content_id else (),
        returning=returning,
        topics=(topics or {}).get(content_id, ()) if content_id else (),
    )


def state_to_row(state: EngagementState, topics: Sequence[str] = TOPIC_IDS) -> dict[str, Any]:
    """An engagement state as the contact_engagement + stage_affinity online row (topic columns of
    ``topics``)."""
    row: dict[str, Any] = {
        "as_of_ts": state.as_of,
        "first_seen_ts": state.first_seen_ts,
        "events_total": state.events_total,
        "consumed_content_ids": list(state.consumed_content_ids),
    }
    row.update({name: state.last_seen.get(name) for name in LAST_SEEN})
    row.update({name: state.counter(name) for name in counter_columns(topics)})
    return row


def state_from_row(row: dict[str, Any], topics: Sequence[str] = TOPIC_IDS) -> EngagementState:
    """Rebuild an engagement state from an online row (all-missing row: the empty state)."""
    as_of = row.get("as_of_ts")
    if as_of is None or pd.isna(as_of):
        return EngagementState()
    counters = {
        n: float(row[n]) for n in counter_columns(topics) if row.get(n) is not None and not pd.isna(row[n])
    }
    last_seen = {n: float(row[n]) for n in LAST_SEEN if row.get(n) is not None and not pd.isna(row[n])}
    consumed = row.get("consumed_content_ids") or []
    return EngagementState(
        as_of=float(as_of),
        counters=counters,
        last_seen=last_seen,
        first_seen_ts=float(row["first_seen_ts"]) if row.get("first_seen_ts") is not None else None,
        events_total=int(row.get("events_total") or 0),
        consumed_content_ids=tuple(sorted(str(c) for c in consumed)),
    )

"""The decision-time lookup: one call returns what a decision needs for one contact and its candidate content.

Two readers fetch the same stored rows: ``FeastSdkReader`` through ``FeatureStore.get_online_features`` and
``DirectReader``, the fast path, which reads Feast's own online tables with precomputed keys (one pipelined
round trip of ``HMGET`` on Redis, one ``SELECT ... IN`` per table on SQLite) and decodes the protobuf values
itself. Both hand their rows to ``lookup``, which decays engagement to the request time with the same maths as
the on-demand feature view. A contact without stored features gets the cold-start vector and
``cold_start=True``.
"""

from __future__ import annotations

import functools
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from features.decay import (
    HALF_LIVES_DAYS,
    LAST_SEEN,
    SECONDS_PER_DAY,
    counter_columns,
    decay_rate,
    half_life_of,
)
from features.feature_repo.feature_views import (
    CONTENT_RATES,
    CONTENT_STATS,
    affinity_counters,
    contact_engagement_fv,
    contact_profile_fv,
)
from features.points import DEFAULT_POINTS, PointsScore, PointsWeights
from features.topics import TOPIC_IDS


def contact_views(topics: Sequence[str] = TOPIC_IDS) -> dict[str, tuple[str, ...]]:
    """Contact feature view -> its feature names, with the stage_affinity columns of ``topics``."""
    return {
        "contact_engagement": tuple(f.name for f in contact_engagement_fv.features),
        "stage_affinity": affinity_counters(topics),
        "contact_profile": tuple(f.name for f in contact_profile_fv.features),
    }


# The default catalog's layout (view names and the non-topic features are the same for every vocabulary).
CONTACT_VIEWS: dict[str, tuple[str, ...]] = contact_views()
CONTENT_VIEW = "content_stats"
CONTENT_FEATURES = (*CONTENT_STATS, *CONTENT_RATES)

Row = dict[str, Any]


@functools.lru_cache(maxsize=16)
def _counters(topics: tuple[str, ...]) -> tuple[tuple[str, str, int], ...]:
    """(stored counter, request-time name, half-life in days), precomputed once for the lookup loop."""
    return tuple((n, f"{n}_now", half_life_of(n)) for n in counter_columns(topics))


@dataclass(frozen=True)
class ContentStats:
    """Statistics of one candidate content block; ``known=False`` (all zero) for a block never seen in
    events."""

    content_id: str
    known: bool
    sends: int = 0
    opens: int = 0
    clicks: int = 0
    downloads: int = 0
    consumptions: int = 0
    open_rate: float | None = None
    click_rate: float | None = None
    download_rate: float | None = None


@dataclass(frozen=True)
class ProfileFeatures:
    """The contact-profile features (None where the profile does not say)."""

    account_id: str | None = None
    persona: str | None = None
    role: str | None = None
    seniority: str | None = None
    industry: str | None = None
    country: str | None = None
    language: str | None = None
    lead_status: str | None = None
    lifecycle_stage: str | None = None
    company_size: int | None = None
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None
    timeline_months: int | None = None
    consents: Mapping[str, bool] = field(default_factory=dict)
    tracking_consent: bool = False
    is_customer: bool = False
    fit_points: float = 0.0


@dataclass(frozen=True)
class DecisionFeatures:
    """Everything a decision needs about one contact at ``request_ts``, plus its candidate content blocks.

    Attributes:
        contact_id: the contact asked about.
        request_ts: decision time, epoch seconds; every counter is decayed to it.
        cold_start: no engagement is stored for the contact (unknown or never active): counters are zero.
        has_profile: a profile is stored for the contact.
        counters_now: ``{counter}_now`` feature name -> value, e.g. ``email_click_7d_now``.
        events_total: events counted for the contact.
        consumed_content_ids: blocks the contact consumed (never offer them again).
        last_seen: ``LAST_SEEN`` name -> epoch seconds (None if never).
        days_since_last_touch, days_since_first_seen: None when there is no such event.
        profile: the profile features.
        points: the classic points score at ``request_ts``.
        content: candidate content id -> its statistics, in the order asked.
    """

    contact_id: str
    request_ts: float
    cold_start: bool
    has_profile: bool
    counters_now: Mapping[str, float]
    events_total: int
    consumed_content_ids: frozenset[str]
    last_seen: Mapping[str, float | None]
    days_since_last_touch: float | None
    days_since_first_seen: float | None
    profile: ProfileFeatures
    points: PointsScore
    content: Mapping[str, ContentStats]

    def model_row(self) -> dict[str, Any]:
        """Flat features with the column names of the feature services (historical retrieval gives the
        same)."""
        profile = {k: v for k, v in self.profile.__dict__.items() if k != "consents"}
        profile.update({f"consent_{c}": v for c, v in self.profile.consents.items()})
        return {
            **profile,
            "events_total": self.events_total,
            **self.counters_now,
            "days_since_last_touch": self.days_since_last_touch,
            "days_since_first_seen": self.days_since_first_seen,
            "behaviour_points_now": self.points.behaviour,
            "points_score_now": self.points.total,
            "sales_alert": self.points.sales_alert,
        }


class OnlineReader(Protocol):
    """Fetches the stored online rows of one contact (all contact views merged) and of content blocks.

    A content block comes back as its stored row, or as ``ContentStats`` already built from it (a reader
    that caches content keeps the built value). ``topics``: the topic ids the repository has columns for."""

    topics: tuple[str, ...]

    def read(
        self, contact_id: str, content_ids: Sequence[str]
    ) -> tuple[Row, Mapping[str, Row | ContentStats]]: ...


def lookup(
    reader: OnlineReader,
    contact_id: str,
    content_ids: Sequence[str],
    at: datetime | None = None,
    weights: PointsWeights = DEFAULT_POINTS,
) -> DecisionFeatures:
    """Read one contact and its candidate blocks and decay the engagement to ``at`` (default: now)."""
    if not contact_id:
        raise ValueError("contact_id must be a non-empty string")
    request_ts = (at or datetime.now(UTC)).timestamp()
    contact, contents = reader.read(contact_id, list(content_ids))
    return assemble(contact_id, request_ts, contact, contents, content_ids, weights, reader.topics)


def assemble(
    contact_id: str,
    request_ts: float,
    contact: Row,
    contents: Mapping[str, Row | ContentStats],
    content_ids: Sequence[str],
    weights: PointsWeights = DEFAULT_POINTS,
    topics: tuple[str, ...] = TOPIC_IDS,
) -> DecisionFeatures:
    """Build the decision features from stored rows (missing features: None) — the request-time maths.

    ``topics``: the topic ids with columns in the repository (the reader's ``topics``). The same code as
    ``assemble_many`` for one contact, so a single lookup and a batch give identical features."""
    return assemble_many([contact_id], request_ts, [contact], contents, content_ids, weights, topics)[0]


def assemble_many(
    contact_ids: Sequence[str],
    request_ts: float,
    contacts: Sequence[Row],
    contents: Mapping[str, Row | ContentStats],
    content_ids: Sequence[str],
    weights: PointsWeights = DEFAULT_POINTS,
    topics: tuple[str, ...] = TOPIC_IDS,
) -> list[DecisionFeatures]:
    """Decision features of many contacts at one request time, the counters decayed as one matrix.

    ``contacts[i]`` is ``contact_ids[i]``'s stored row; the candidate blocks' statistics are built once and
    shared. Per-contact Python over ~80 counters dominated bulk lookups; each value is still one IEEE
    multiply by the same ``math.exp`` factor, so the result equals the one-contact maths exactly."""
    if len(contacts) != len(contact_ids):
        raise ValueError(
            f"`contacts` must have {len(contact_ids)} rows (one per id), but got {len(contacts)}"
        )
    counters = _counters(topics)
    names = [name for name, _, _ in counters]
    now_names = [now_name for _, now_name, _ in counters]
    half_life_col = [HALF_LIVES_DAYS.index(h) for _, _, h in counters]
    as_of = [_num(contact.get("as_of_ts")) for contact in contacts]
    factors = np.array(
        [
            [
                0.0 if a is None else math.exp(-decay_rate(h) * max(request_ts - a, 0.0))
                for h in HALF_LIVES_DAYS
            ]
            for a in as_of
        ],
        dtype=float,
    ).reshape(len(contacts), len(HALF_LIVES_DAYS))
    stored = np.array([list(map(contact.get, names)) for contact in contacts], dtype=float)
    stored = stored.reshape(len(contacts), len(names))
    decayed = np.where(np.isnan(stored), 0.0, stored * factors[:, half_life_col]).tolist()
    behaviour_columns = [(f"{name}_now", w) for name, w in weights.behaviour_columns().items()]
    content = {cid: _content_stats(cid, contents.get(cid)) for cid in content_ids}
    out = []
    for contact_id, contact, a, values in zip(contact_ids, contacts, as_of, decayed, strict=True):
        get = contact.get
        counters_now = dict(zip(now_names, values, strict=True))
        last_seen = {name: _num(get(name)) for name in LAST_SEEN}
        profile = _profile(contact)
        behaviour = sum(w * counters_now[now_name] for now_name, w in behaviour_columns)
        total = profile.fit_points + behaviour
        out.append(
            DecisionFeatures(
                contact_id=contact_id,
                request_ts=request_ts,
                cold_start=a is None,
                has_profile=get("lead_status") is not None,
                counters_now=counters_now,
                events_total=int(_num(get("events_total")) or 0),
                consumed_content_ids=frozenset(get("consumed_content_ids") or ()),
                last_seen=last_seen,
                days_since_last_touch=_days(request_ts, last_seen["last_touch_ts"]),
                days_since_first_seen=_days(request_ts, _num(get("first_seen_ts"))),
                profile=profile,
                points=PointsScore(
                    fit=profile.fit_points,
                    behaviour=behaviour,
                    total=total,
                    sales_alert=total >= weights.sales_alert,
                ),
                content=content,
            )
        )
    return out


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _days(request_ts: float, ts: float | None) -> float | None:
    return None if ts is None else max(request_ts - ts, 0.0) / SECONDS_PER_DAY


_CONSENT_COLUMNS = tuple(
    (name, name[8:]) for name in CONTACT_VIEWS["contact_profile"] if name.startswith("consent_")
)
"""(stored column, channel) of each consent in the profile view."""


def _profile(row: Row) -> ProfileFeatures:
    def text(name: str) -> str | None:
        value = row.get(name)
        return None if value is None else str(value)

    def integer(name: str) -> int | None:
        value = _num(row.get(name))
        return None if value is None else int(value)

    def flag(name: str) -> bool | None:
        value = row.get(name)
        return None if value is None else bool(value)

    consents = {channel: bool(row.get(name)) for name, channel in _CONSENT_COLUMNS}
    return ProfileFeatures(
        account_id=text("account_id"),
        persona=text("persona"),
        role=text("role"),
        seniority=text("seniority"),
        industry=text("industry"),
        country=text("country"),
        language=text("language"),
        lead_status=text("lead_status"),
        lifecycle_stage=text("lifecycle_stage"),
        company_size=integer("company_size"),
        budget=flag("budget"),
        authority=flag("authority"),
        need=flag("need"),
        timeline_months=integer("timeline_months"),
        consents=consents,
        tracking_consent=bool(row.get("tracking_consent")),
        is_customer=bool(row.get("is_customer")),
        fit_points=_num(row.get("fit_points")) or 0.0,
    )


def _content_stats(content_id: str, row: Row | ContentStats | None) -> ContentStats:
    return row if isinstance(row, ContentStats) else content_stats(content_id, row or {})


def content_stats(content_id: str, row: Row) -> ContentStats:
    """One block's statistics from its stored content_stats row (no row: ``known=False``)."""
    get = row.get
    sends, consumptions = get("sends"), get("consumptions")
    if sends is None and consumptions is None:
        return ContentStats(content_id=content_id, known=False)
    return ContentStats(
        content_id,
        True,
        int(sends or 0),
        int(get("opens") or 0),
        int(get("clicks") or 0),
        int(get("downloads") or 0),
        int(consumptions or 0),
        _rate(get("open_rate")),
        _rate(get("click_rate")),
        _rate(get("download_rate")),
    )


def _rate(value: Any) -> float | None:
    return None if value is None or value != value else float(value)  # value != value: NaN


# ---------------------------------------------------------------------------------------------------- readers
class FeastSdkReader:
    """Reads through ``FeatureStore.get_online_features`` (the reference path)."""

    def __init__(self, store: Any) -> None:
        self.feast = store.feast
        self.topics: tuple[str, ...] = store.topics
        views = contact_views(self.topics)
        self._contact_refs = [f"{view}:{name}" for view, names in views.items() for name in names]
        self._content_refs = [f"{CONTENT_VIEW}:{name}" for name in CONTENT_FEATURES]

    def read(self, contact_id: str, content_ids: Sequence[str]) -> tuple[Row, dict[str, Row]]:
        data = self.feast.get_online_features(
            features=self._contact_refs, entity_rows=[{"contact_id": contact_id}]
        ).to_dict()
        contact = {k: v[0] for k, v in data.items()}
        contents: dict[str, Row] = {}
        if content_ids:
            stats = self.feast.get_online_features(
                features=self._content_refs, entity_rows=[{"content_id": c} for c in content_ids]
            ).to_dict()
            contents = {cid: {k: v[i] for k, v in stats.items()} for i, cid in enumerate(content_ids)}
        return contact, contents


@functools.lru_cache(maxsize=1 << 16)
def decode(raw: bytes | None) -> Any:
    """A serialized Feast ``Value`` proto as a Python value (None if absent or null; lists as tuples).

    Cached by the raw bytes: stored values repeat a lot (zero counters, flags, content statistics read for
    every decision), and a dictionary hit is far cheaper than a protobuf parse."""
    if not raw:
        return None
    fields = _parse_value(raw).ListFields()
    if not fields:
        return None
    descriptor, value = fields[0]
    name = descriptor.name
    if name.endswith("_list_val"):
        return tuple(value.val)
    return None if name == "null_val" else value


_parse_value = ValueProto.FromString


@functools.lru_cache(maxsize=200_000)
def redis_key(project: str, join_key: str, value: str, version: int) -> bytes:
    """Feast's Redis hash key of one entity, cached: building it costs more than reading it."""
    return _redis_key(project, entity_key(join_key, value), version)


def entity_key(join_key: str, value: str) -> EntityKeyProto:
    """The Feast entity key of one string join key."""
    return EntityKeyProto(join_keys=[join_key], entity_values=[ValueProto(string_val=value)])


def hmget_script(contact_fields: Sequence[bytes], content_fields: Sequence[bytes]) -> str:
    """Lua for one round trip: the content version, then ``HMGET`` of the contact and of each content key.

    KEYS: version key, contact key, content keys. The field hashes are constants, so they are written into
    the script (as ``\\ddd`` escapes) instead of being sent with every call."""

    def lua_list(fields: Sequence[bytes]) -> str:
        return "{" + ", ".join('"' + "".join(f"\\{b}" for b in f) + '"' for f in fields) + "}"

    return f"""
local contact_fields = {lua_list(contact_fields)}
local content_fields = {lua_list(content_fields)}
local out = {{redis.call('GET', KEYS[1]) or '0', redis.call('HMGET', KEYS[2], unpack(contact_fields))}}
for i = 3, #KEYS do
    out[i] = redis.call('HMGET', KEYS[i], unpack(content_fields))
end
return out
"""


def redis_client(url: str, timeout_seconds: float) -> Any:
    """A Redis client that gives up on a connect, read or write after ``timeout_seconds``: a stalled server
    raises ``redis.TimeoutError`` (callers answer from their fallback) instead of hanging the caller."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)


def content_version_key(project: str) -> bytes:
    """The Redis key counting content-statistics writes; readers drop cached content rows when it moves."""
    return f"{project}:content_stats:version".encode()


def bump_content_version(client: Any, project: str) -> None:
    """Tell every reader that content statistics changed: call it *after* the write, never before."""
    client.incr(content_version_key(project))


class ContentCache:
    """Content statistics kept between lookups, valid for one version of the online store.

    Content rows change only when content statistics are written (materialize, ingestion), while every
    decision reads 50 of them; keeping them turns 50 hash reads, 400 decodes and 50 objects into dictionary
    hits. The version is read atomically with the rows (Redis: a write counter bumped after each write;
    SQLite: ``PRAGMA data_version``), and a new version empties the cache, so a lookup never returns
    statistics older than the store state it saw.
    """

    def __init__(self, max_blocks: int = 100_000) -> None:
        self.max_blocks = max_blocks
        self.version: object = None
        self.stats: dict[str, ContentStats] = {}

    def missing(self, content_ids: Sequence[str]) -> list[str]:
        """The ids not cached, each once, in the order asked."""
        stats = self.stats
        return [cid for cid in dict.fromkeys(content_ids) if cid not in stats]

    def observe(self, version: object) -> bool:
        """Record the store version a read saw; True when it is the cached one (cached stats still hold)."""
        if version == self.version:
            return True
        self.stats.clear()
        self.version = version
        return False

    def keep(self, rows: Mapping[str, Row]) -> dict[str, ContentStats]:
        """Keep (and return) the statistics of rows freshly read under ``self.version``; a full cache is
        emptied first."""
        built = {cid: content_stats(cid, row) for cid, row in rows.items()}
        if len(self.stats) + len(built) > self.max_blocks:
            self.stats.clear()
        self.stats.update(built)
        return built


class DirectReader:
    """The fast path: reads Feast's online tables directly with precomputed keys and field hashes.

    Built from the store's repo config: Redis (one server-side script for the contact and the content blocks
    not cached yet) or SQLite (the contact views' indexed ``SELECT``s as one ``UNION ALL``, and one for the
    blocks not cached yet). Content statistics are cached between lookups and dropped whenever the online
    store's content version moves (``ContentCache``).
    """

    def __init__(self, store: Any) -> None:
        config = store.feast.config
        self.project: str = config.project
        self.version: int = config.entity_key_serialization_version
        self.topics: tuple[str, ...] = store.topics
        self.contact_views = contact_views(self.topics)
        self.cache = ContentCache()
        online = config.online_store
        self.kind: str = online.type
        if self.kind == "redis":
            settings = store.settings
            self._redis = redis_client(settings.redis_url, settings.redis_timeout_seconds)
            self._version_key = content_version_key(self.project)
            # (feature name, Feast's field hash) of each contact feature; features.bulk_lookup reads them too.
            self._contact_fields = [
                (name, _mmh3(f"{view}:{name}"))
                for view, names in self.contact_views.items()
                for name in names
            ]
            self._contact_names = tuple(name for name, _ in self._contact_fields)
            # One server-side script runs every HMGET: one command and one reply instead of 51.
            self._hmget_many = self._redis.register_script(
                hmget_script(
                    [h for _, h in self._contact_fields],
                    [_mmh3(f"{CONTENT_VIEW}:{name}") for name in CONTENT_FEATURES],
                )
            )
        elif self.kind == "sqlite":
            path = online.path
            self._sqlite = sqlite3.connect(
                path if path.startswith("/") else str(store.repo_dir / path), check_same_thread=False
            )
        else:
            raise ValueError(
                f"online_store.type must be redis or sqlite for the direct reader, but got {self.kind!r}"
            )

    def read(self, contact_id: str, content_ids: Sequence[str]) -> tuple[Row, dict[str, ContentStats]]:
        read_once = self._read_redis if self.kind == "redis" else self._read_sqlite
        cache = self.cache
        for _ in range(2):
            missing = cache.missing(content_ids)
            version, contact, fetched = read_once(contact_id, missing)
            # A new version empties the cache; if some blocks came from it, read again so none is stale.
            if cache.observe(version) or len(missing) == len(set(content_ids)):
                break
        cached = cache.stats
        hits = {cid: cached[cid] for cid in content_ids if cid in cached}  # before keep() may empty it
        built = cache.keep(fetched)
        return contact, {cid: hits[cid] if cid in hits else built[cid] for cid in content_ids}

    def _read_redis(self, contact_id: str, content_ids: Sequence[str]) -> tuple[object, Row, dict[str, Row]]:
        keys = [self._version_key, redis_key(self.project, "contact_id", contact_id, self.version)]
        keys += [redis_key(self.project, "content_id", cid, self.version) for cid in content_ids]
        version, contact_reply, *content_replies = self._hmget_many(keys=keys)
        contact = dict(zip(self._contact_names, map(decode, contact_reply), strict=True))
        contents = {
            cid: dict(zip(CONTENT_FEATURES, map(decode, reply), strict=True))
            for cid, reply in zip(content_ids, content_replies, strict=True)
        }
        return version, contact, contents

    def _read_sqlite(self, contact_id: str, content_ids: Sequence[str]) -> tuple[object, Row, dict[str, Row]]:
        # data_version moves whenever another connection (every writer: Feast, ingestion) commits; read it
        # first, so rows read after it are at least as new as the version they are cached under.
        version = self._sqlite.execute("PRAGMA data_version").fetchone()[0]
        contact_key = serialize_entity_key(entity_key("contact_id", contact_id), self.version)
        contact: Row = {name: decode(raw) for _, name, raw in self._select_contacts([contact_key])}
        contents: dict[str, Row] = {cid: {} for cid in content_ids}
        if content_ids:
            keys = {serialize_entity_key(entity_key("content_id", c), self.version): c for c in content_ids}
            for key, name, raw in self._select(CONTENT_VIEW, list(keys)):
                contents[keys[key]][name] = decode(raw)
        return version, contact, contents

    def _select_contacts(self, keys: list[bytes]) -> list[tuple[bytes, str, bytes]]:
        """The rows of every contact view for ``keys``, in view order: one ``UNION ALL`` statement (one
        execute instead of one per view); view by view while some view's table is not created yet."""
        marks = ",".join("?" * len(keys))
        statement = " UNION ALL ".join(
            f'SELECT entity_key, feature_name, value FROM "{self.project}_{view}" '
            f"WHERE entity_key IN ({marks})"
            for view in self.contact_views
        )
        try:
            rows: list[tuple[bytes, str, bytes]] = self._sqlite.execute(
                statement, keys * len(self.contact_views)
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return [row for view in self.contact_views for row in self._select(view, keys)]
        return rows

    def _select(self, view: str, keys: list[bytes]) -> list[tuple[bytes, str, bytes]]:
        marks = ",".join("?" * len(keys))
        try:
            cursor = self._sqlite.execute(
                f'SELECT entity_key, feature_name, value FROM "{self.project}_{view}" '
                f"WHERE entity_key IN ({marks})",
                keys,
            )
        except sqlite3.OperationalError as exc:  # table not created yet: nothing materialized
            if "no such table" in str(exc):
                return []
            raise
        # Feast's columns are BLOB, TEXT, BLOB: sqlite3 returns bytes, str, bytes already (no copies needed).
        rows: list[tuple[bytes, str, bytes]] = cursor.fetchall()
        return rows

    # -- bulk (features.bulk_lookup) ---------------------------------------------------------------------
    def read_contact_rows(self, contact_ids: Sequence[str]) -> list[Row]:
        """Many contacts' stored rows in ``contact_ids`` order (``{}`` for unknown ids), without content
        statistics: one pipelined round trip of ``HMGET`` on Redis, one ``UNION ALL`` of the views'
        ``SELECT ... IN`` on SQLite. Same field hashes and decoding as ``read``."""
        if self.kind == "redis":
            fields = self._contact_fields
            hashes = [h for _, h in fields]
            pipe = self._redis.pipeline(transaction=False)
            for cid in contact_ids:
                pipe.hmget(redis_key(self.project, "contact_id", cid, self.version), hashes)  # type: ignore[arg-type]
            return [
                {name: decode(raw) for (name, _), raw in zip(fields, reply, strict=True)}
                for reply in pipe.execute()
            ]
        keys = {
            serialize_entity_key(entity_key("contact_id", c), self.version): k
            for k, c in enumerate(contact_ids)
        }
        rows: list[Row] = [{} for _ in contact_ids]
        for key, name, raw in self._select_contacts(list(keys)):
            rows[keys[key]][name] = decode(raw)
        return rows

    def close(self) -> None:
        """Release the Redis connection pool or the SQLite connection."""
        if self.kind == "redis":
            self._redis.close()
        else:
            self._sqlite.close()

"""Batch aggregation: the events Parquet export becomes the offline feature tables Feast reads, in DuckDB SQL.

Each table has one row per entity and distinct event time, holding the features *as of that time*, so Feast's
point-in-time (as-of) join picks, for a training row at time T, the state after the last event at or before T;
the on-demand view then decays it to T. The decayed counters use the cumulative-sum form of
``features.decay``: ``value(t) = exp(-r (t - a)) * sum_{t_i <= t} w_i exp(r (t_i - a))`` with ``a`` the
contact's
first event, which a window ``SUM`` computes in one pass (exact in float64 for histories up to ~19 years at
the
7-day half-life). Everything runs inside DuckDB over Parquet, out of core, so 10M events fit on 2 cores.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import duckdb
import pandas as pd
import pyarrow as pa

from features.decay import (
    CONSUMPTION_TYPES,
    EVENT_TYPES,
    HALF_LIVES_DAYS,
    LAST_SEEN,
    NOT_AFFINITY_TYPES,
    RETURN_VISIT,
    counter_keys,
    decay_rate,
)
from features.points import DEFAULT_POINTS, PointsWeights, fit_points
from features.scan import ScanSpec, scan_to_parquet
from features.schemas import STAGE_IDS, Channel, ContactProfile, ContentBlock, EventType
from features.topics import DEFAULT_TOPICS, feature_topics, topic_ids

EVENT_COLUMNS = ("event_id", "contact_id", "account_id", "timestamp", "type", "content_id", "properties")
CONTACT_ENGAGEMENT_TABLE = "contact_engagement.parquet"
CONTENT_STATS_TABLE = "content_stats.parquet"
ACCOUNT_ENGAGEMENT_TABLE = "account_engagement.parquet"
CONTACT_PROFILE_TABLE = "contact_profile.parquet"
# A profile without ``updated_at`` is valid from this time on (profile rows never expire).
PROFILE_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")

EventsInput: TypeAlias = str | Path | Sequence[str | Path] | pd.DataFrame | pa.Table


@dataclass(frozen=True)
class OfflineTables:
    """Where the offline feature tables were written, and how many rows each has."""

    contact_engagement: Path
    content_stats: Path
    account_engagement: Path
    events: int
    contact_rows: int
    content_rows: int
    account_rows: int


def build_offline_tables(
    events: EventsInput,
    out_dir: Path,
    *,
    contents: Sequence[ContentBlock] | pd.DataFrame | None = None,
    profiles: pd.DataFrame | None = None,
    weights: PointsWeights = DEFAULT_POINTS,
    threads: int = 2,
    memory_limit: str = "8GB",
    vocabulary: Sequence[str] = DEFAULT_TOPICS,
) -> OfflineTables:
    """Aggregate events (Parquet path/glob/list, DataFrame or Arrow table) into the three event feature
    tables.

    ``contents`` gives each content block's stages and, optionally, free-text ``topics`` (stage and topic
    affinity); ``profiles`` (``contact_id``,
    ``account_id``) fills a missing event ``account_id``. Duplicated ``event_id`` rows count once.
    ``vocabulary``: the topic vocabulary (``features.topics``); topics outside it count as ``other``.
    """
    topics = feature_topics(vocabulary)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ripen-duckdb-") as spill:
        con = duckdb.connect(
            config={"threads": threads, "memory_limit": memory_limit, "temp_directory": spill}
        )
        try:
            _register_events(con, events)
            _register_contents(con, contents, vocabulary)
            _register_profiles(con, profiles)
            con.execute(_clean_events_sql()).fetchall()
            n_events = _scalar(con, "SELECT count(*) FROM ev")
            paths = {
                "contact": out_dir / CONTACT_ENGAGEMENT_TABLE,
                "content": out_dir / CONTENT_STATS_TABLE,
                "account": out_dir / ACCOUNT_ENGAGEMENT_TABLE,
            }
            contact_keys, account_keys = _keys(con, "contact_id"), _keys(con, "account_id")
            contact_rows = scan_to_parquet(
                con.sql(contact_groups_sql(topics)).to_arrow_reader(BATCH_ROWS),
                "contact_id",
                contact_scan_spec(topics),
                paths["contact"],
                contact_keys,
            )
            account_rows = scan_to_parquet(
                con.sql(account_groups_sql(weights)).to_arrow_reader(BATCH_ROWS),
                "account_id",
                account_scan_spec(weights),
                paths["account"],
                account_keys,
            )
            content_sql = with_sentinels(content_stats_sql(), "content_id", "content_id IS NOT NULL")
            con.execute(f"COPY ({content_sql}) TO '{paths['content']}' (FORMAT parquet)").fetchall()
            content_rows = _scalar(
                con,
                f"SELECT count(*) FROM read_parquet('{paths['content']}') WHERE event_timestamp IS NOT NULL",
            )
        finally:
            con.close()
    return OfflineTables(
        contact_engagement=paths["contact"],
        content_stats=paths["content"],
        account_engagement=paths["account"],
        events=n_events,
        contact_rows=contact_rows,
        content_rows=content_rows,
        account_rows=account_rows,
    )


def with_sentinels(sql: str, key: str, where: str) -> str:
    """``sql`` plus one row per entity with a null ``event_timestamp`` and null features.

    Feast's file offline store drops an entity row from a training set when the entity has feature rows but
    all
    of them lie after the row's time (or beyond the TTL). It keeps rows whose source timestamp is null, and
    prefers any real match over them, so this sentinel turns "no data yet" into null features instead of a
    missing training row. Materialization filters on the timestamp and never sees the sentinels.
    """
    return f"SELECT * FROM ({sql}) UNION ALL BY NAME SELECT DISTINCT {key} FROM ev WHERE {where}"


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows = con.execute(sql).fetchall()
    return int(rows[0][0]) if rows else 0


def _register_events(con: duckdb.DuckDBPyConnection, events: EventsInput) -> None:
    if isinstance(events, pd.DataFrame | pa.Table):
        missing = [c for c in EVENT_COLUMNS if c not in events.columns]
        if missing:
            raise ValueError(f"events is missing columns {missing}; expected at least {list(EVENT_COLUMNS)}")
        con.register("raw_events", events)
        return
    paths = [str(events)] if isinstance(events, str | Path) else [str(p) for p in events]
    if not paths:
        raise ValueError("events must name at least one Parquet file, but got an empty list")
    con.execute(f"CREATE VIEW raw_events AS SELECT * FROM read_parquet({paths!r})")
    columns = {r[0] for r in con.execute("DESCRIBE raw_events").fetchall()}
    missing = [c for c in EVENT_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"events Parquet {paths} is missing columns {missing}")


def _register_contents(
    con: duckdb.DuckDBPyConnection,
    contents: Sequence[ContentBlock] | pd.DataFrame | None,
    vocabulary: Sequence[str],
) -> None:
    if contents is None:
        frame = pd.DataFrame({"content_id": pd.Series([], dtype=str), "stages": pd.Series([], dtype=object)})
    elif isinstance(contents, pd.DataFrame):
        missing = [c for c in ("content_id", "stages") if c not in contents.columns]
        if missing:
            raise ValueError(f"contents is missing columns {missing}")
        frame = contents[[c for c in ("content_id", "stages", "topics") if c in contents.columns]].copy()
    else:
        frame = pd.DataFrame(
            {
                "content_id": [b.content_id for b in contents],
                "stages": [list(b.stages) for b in contents],
                "topics": [list(b.topics) for b in contents],
            }
        )
    if "topics" not in frame.columns:
        frame["topics"] = [[] for _ in range(len(frame))]
    frame["stages"] = frame["stages"].map(lambda s: [str(x) for x in s] if s is not None else [])
    # Free text becomes topic ids here, with the same function the online path uses.
    frame["topics"] = frame["topics"].map(
        lambda t: list(topic_ids((str(x) for x in t), vocabulary)) if t is not None else []
    )
    table = pa.Table.from_pandas(
        frame,
        schema=pa.schema(
            [
                ("content_id", pa.string()),
                ("stages", pa.list_(pa.string())),
                ("topics", pa.list_(pa.string())),
            ]
        ),
        preserve_index=False,
    )
    con.register("contents_in", table)


def _register_profiles(con: duckdb.DuckDBPyConnection, profiles: pd.DataFrame | None) -> None:
    if profiles is None or "account_id" not in profiles.columns:
        frame = pd.DataFrame({"contact_id": pd.Series([], dtype=str), "account_id": pd.Series([], dtype=str)})
    else:
        frame = profiles[["contact_id", "account_id"]]
    con.register("profiles_in", frame)


def _sql_list(values: frozenset[str] | Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


def _clean_events_sql() -> str:
    """Deduplicated contact events with epoch seconds, content stages and the returning-visit flag."""
    return f"""
    CREATE TEMP TABLE ev AS
    SELECT e.event_id, e.contact_id, coalesce(e.account_id, p.account_id) AS account_id,
           e.timestamp::TIMESTAMPTZ AS ts, epoch_us(e.timestamp::TIMESTAMPTZ) / 1e6 AS t, e.type,
           e.content_id,
           coalesce(c.stages, []::VARCHAR[]) AS stages,
           coalesce(c.topics, []::VARCHAR[]) AS topics,
           (e.type = '{EventType.PAGE_VIEW.value}'
            AND coalesce(try_cast(json_extract(e.properties, '$.returning') AS BOOLEAN), false)) AS
            is_returning
    FROM (SELECT * FROM raw_events WHERE contact_id IS NOT NULL
          QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY timestamp) = 1) AS e
    LEFT JOIN contents_in AS c ON c.content_id = e.content_id
    LEFT JOIN (SELECT contact_id, any_value(account_id) AS account_id FROM profiles_in GROUP BY contact_id)
    AS p
           ON p.contact_id = e.contact_id
    """


BATCH_ROWS = 262_144
_WINDOW = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"


def _keys(con: duckdb.DuckDBPyConnection, key: str) -> pa.Array:
    sql = f"SELECT DISTINCT {key} FROM ev WHERE {key} IS NOT NULL ORDER BY 1"
    return con.sql(sql).to_arrow_table().column(0).combine_chunks()


def contact_groups_sql(topics: Sequence[str] = feature_topics(DEFAULT_TOPICS)) -> str:
    """Per contact and event time, in (contact, time) order: what the events add to each counter, the touch
    times, whether it is the contact's first row, and the consumed content so far (a DuckDB list window)."""
    cols = [f"sum((type = '{et}')::DOUBLE) AS \"k_{et}\"" for et in EVENT_TYPES]
    cols.append(f'sum(is_returning::DOUBLE) AS "k_{RETURN_VISIT}"')
    not_affinity = _sql_list(NOT_AFFINITY_TYPES)
    cols += [
        f"sum((type NOT IN {not_affinity} AND list_contains(stages, '{s}'))::DOUBLE) AS \"k_stage_{s}\""
        for s in STAGE_IDS
    ]
    cols += [
        f"sum((type NOT IN {not_affinity} AND list_contains(topics, '{t}'))::DOUBLE) AS \"k_topic_{t}\""
        for t in topics
    ]
    cols += [
        f'max(CASE WHEN type IN {_sql_list(types)} THEN t END) AS "g_{n}"' for n, types in LAST_SEEN.items()
    ]
    consumption = _sql_list(CONSUMPTION_TYPES)
    cols.append(
        f"list(DISTINCT content_id) FILTER (WHERE type IN {consumption} AND content_id IS NOT NULL) AS c"
    )
    return f"""
    WITH g AS (
        SELECT contact_id, ts, any_value(t) AS t, count(*)::DOUBLE AS n, {", ".join(cols)}
        FROM ev GROUP BY contact_id, ts
    )
    SELECT *, ts AS event_timestamp, row_number() OVER w = 1 AS is_first,
           list_sort(list_distinct(flatten(list(coalesce(c, []::VARCHAR[])) OVER w))) AS consumed_content_ids
    FROM g
    WINDOW w AS (PARTITION BY contact_id ORDER BY t {_WINDOW})
    ORDER BY contact_id, t
    """


def contact_scan_spec(topics: Sequence[str] = feature_topics(DEFAULT_TOPICS)) -> ScanSpec:
    """Contact engagement outputs: decayed counters (topic ids ``topics``), totals, last-seen times, as of
    each row."""
    keys = counter_keys(topics)
    sums = {f"{k}_{h}d": (f"k_{k}", decay_rate(h)) for k in keys for h in HALF_LIVES_DAYS}
    return ScanSpec(
        sums={"events_total": ("n", 0.0), **sums},
        maxes={name: f"g_{name}" for name in LAST_SEEN},
        passthrough=("consumed_content_ids",),
        integers=frozenset({"events_total"}),
        first_seen="first_seen_ts",
    )


def content_stats_sql() -> str:
    """Per content block and event time: cumulative sends, opens, clicks, downloads and their rates per
    send."""

    def count(types: Sequence[str]) -> str:
        return f"sum((type IN {_sql_list(types)})::BIGINT)"

    return f"""
    WITH g AS (
        SELECT content_id, ts,
               {count([EventType.EMAIL_SENT.value])} AS s, {count([EventType.EMAIL_OPEN.value])} AS o,
               {count([EventType.EMAIL_CLICK.value])} AS c, {count([EventType.CONTENT_DOWNLOAD.value])} AS d,
               {count(sorted(CONSUMPTION_TYPES))} AS u
        FROM ev WHERE content_id IS NOT NULL GROUP BY content_id, ts
    ), cum AS (
        SELECT content_id, ts AS event_timestamp, (sum(s) OVER w)::BIGINT AS sends, (sum(o) OVER w)::BIGINT
        AS opens,
               (sum(c) OVER w)::BIGINT AS clicks, (sum(d) OVER w)::BIGINT AS downloads, (sum(u) OVER
               w)::BIGINT AS consumptions
        FROM g WINDOW w AS (PARTITION BY content_id ORDER BY ts {_WINDOW})
    )
    SELECT *, opens / nullif(sends, 0)::DOUBLE AS open_rate, clicks / nullif(sends, 0)::DOUBLE AS click_rate,
           downloads / nullif(sends, 0)::DOUBLE AS download_rate
    FROM cum
    """


def account_groups_sql(weights: PointsWeights = DEFAULT_POINTS) -> str:
    """Per account and event time, in (account, time) order: events, engagement, points and new contacts."""
    points = " ".join(
        f"WHEN type = '{et}' THEN {w!r}" for et, w in weights.behaviour.items() if et in EVENT_TYPES
    )
    return_visit = weights.behaviour.get(RETURN_VISIT, 0.0)
    return f"""
    WITH e AS (
        SELECT account_id, contact_id, ts, t,
               (type NOT IN {_sql_list(NOT_AFFINITY_TYPES)})::DOUBLE AS engaged,
               (CASE {points} ELSE 0.0 END) + is_returning::DOUBLE * {return_visit!r} AS pts,
               (row_number() OVER (PARTITION BY account_id, contact_id ORDER BY t) = 1)::DOUBLE AS new_contact
        FROM ev WHERE account_id IS NOT NULL
    ), g AS (
        SELECT account_id, ts, any_value(t) AS t, count(*)::DOUBLE AS n, sum(engaged) AS engaged,
               sum(pts) AS pts, sum(new_contact) AS new_contacts
        FROM e GROUP BY account_id, ts
    )
    SELECT *, ts AS event_timestamp, row_number() OVER (PARTITION BY account_id ORDER BY t) = 1 AS is_first
    FROM g ORDER BY account_id, t
    """


def account_scan_spec(weights: PointsWeights = DEFAULT_POINTS) -> ScanSpec:
    """Account engagement outputs: totals and decayed engagement and points over the account's contacts."""
    return ScanSpec(
        sums={
            "account_events_total": ("n", 0.0),
            "account_contacts": ("new_contacts", 0.0),
            **{f"account_engagement_{h}d": ("engaged", decay_rate(h)) for h in HALF_LIVES_DAYS},
            "account_points": ("pts", decay_rate(weights.half_life_days)),
        },
        integers=frozenset({"account_events_total", "account_contacts"}),
        as_of="account_as_of_ts",
    )


PROFILE_COLUMNS = (
    "account_id",
    "persona",
    "role",
    "seniority",
    "industry",
    "company_size",
    "country",
    "language",
    "lead_status",
    "lifecycle_stage",
    "budget",
    "authority",
    "need",
    "timeline_months",
)
CONSENT_CHANNELS = tuple(c.value for c in Channel)


FUNNEL_PROFILE_COLUMNS = ("lead_status", "lifecycle_stage")
STABLE_PROFILE_COLUMNS = tuple(c for c in PROFILE_COLUMNS if c not in FUNNEL_PROFILE_COLUMNS)
"""Profile facts taken as known from the contact's first event on (lead-capture form, enrichment): the
profile table back-dates them, with ``fit_points``, so point-in-time rows before ``updated_at`` see them. The
funnel and consent columns change over time and are only known from ``updated_at`` on. A CRM whose BANT
answers are filled in by sales during qualification should not back-date them (they would leak the label)."""


def profile_table(
    profiles: Sequence[ContactProfile],
    weights: PointsWeights = DEFAULT_POINTS,
    known_since: Mapping[str, pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """The contact-profile feature table: one row per profile, consents flattened, fit points computed.

    ``known_since`` (contact id -> first event time, e.g. from :func:`first_event_times`) adds, for every
    profile updated later than that, a row at that time holding only :data:`STABLE_PROFILE_COLUMNS` and
    ``fit_points``: stored profiles are the latest version, and without it Feast's as-of join gives every
    training row before ``updated_at`` an empty profile. The online store still gets the latest row.
    """
    rows = []
    early = []
    for p in profiles:
        row: dict[str, object] = {"contact_id": p.contact_id}
        row.update({c: getattr(p, c) for c in PROFILE_COLUMNS})
        row["lead_status"] = p.lead_status.value
        for channel in CONSENT_CHANNELS:
            row[f"consent_{channel}"] = p.has_consent(Channel(channel))
        row["tracking_consent"] = bool(p.tracking_consent and p.tracking_consent.granted)
        row["is_customer"] = p.is_customer
        row["fit_points"] = fit_points(p, weights)
        updated = pd.Timestamp(p.updated_at) if p.updated_at else PROFILE_EPOCH
        row["event_timestamp"] = updated
        rows.append(row)
        first = (known_since or {}).get(p.contact_id)
        if first is not None and pd.Timestamp(first) < updated:
            early.append(
                {
                    "contact_id": p.contact_id,
                    **{c: row[c] for c in STABLE_PROFILE_COLUMNS},
                    "fit_points": row["fit_points"],
                    "event_timestamp": pd.Timestamp(first),
                }
            )
    columns = [
        "contact_id",
        *PROFILE_COLUMNS,
        *(f"consent_{c}" for c in CONSENT_CHANNELS),
        "tracking_consent",
        "is_customer",
        "fit_points",
        "event_timestamp",
    ]
    frame = pd.DataFrame(rows + early, columns=columns)
    for col in ("company_size", "timeline_months"):
        frame[col] = frame[col].astype("Int64")
    for col in ("budget", "authority", "need", *(f"consent_{c}" for c in CONSENT_CHANNELS)):
        frame[col] = frame[col].astype("boolean")
    for col in ("tracking_consent", "is_customer"):
        frame[col] = frame[col].astype("boolean")
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    # Sentinels as in ``with_sentinels``: a training row before the profile's first row keeps its row.
    sentinels = frame[["contact_id"]].drop_duplicates()
    sentinels["event_timestamp"] = pd.Series(pd.NaT, index=sentinels.index, dtype="datetime64[ns, UTC]")
    return pd.concat([frame, sentinels], ignore_index=True)


def first_event_times(contact_engagement: Path) -> dict[str, pd.Timestamp]:
    """Contact id -> time of its first counted event, read from the contact-engagement table."""
    with duckdb.connect(config={"threads": 2}) as con:
        first = con.execute(
            "SELECT contact_id, min(event_timestamp) AS t FROM read_parquet(?) "
            "WHERE event_timestamp IS NOT NULL GROUP BY contact_id",
            [str(contact_engagement)],
        ).df()
    times = pd.to_datetime(first["t"], utc=True)
    return dict(zip(first["contact_id"].astype(str), times, strict=True))

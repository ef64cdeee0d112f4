"""Event output of the simulator: a columnar buffer filled daily, turned into the export schema.

The day loop appends whole numpy arrays (one row per event, codes instead of strings); only at the end are
rows sorted by time and turned into strings, so 10,000 contacts over 180 days stay fast. The frame has
exactly the columns and dtypes of the event store's Parquet export (no ``ingested_at``: a store sets it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.event_store import EXPORT_COLUMNS
from features.schemas import Channel, EngagementEvent, EventType

EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
CHANNELS: tuple[Channel, ...] = tuple(Channel)
TYPE_CODE = {t: i for i, t in enumerate(EVENT_TYPES)}
CHANNEL_CODE = {c: i for i, c in enumerate(CHANNELS)}

EVENT_COLUMNS = tuple(c for c in EXPORT_COLUMNS if c != "ingested_at")
"""The event store's export schema minus ``ingested_at``: simulated events are what gets ingested."""
EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("contact_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("account_id", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("content_id", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("properties", pa.string(), nullable=False),
    ]
)
"""Arrow schema of ``events.parquet``: the event store's export columns minus ``ingested_at``."""

# Who an event is attributed to.
KNOWN, ANONYMOUS, BOTH = 0, 1, 2
VALUE_SLOT = "__value__"
US_PER_DAY = 86_400_000_000


def compact_json(value: dict[str, Any]) -> str:
    """Properties as the event store writes them: compact, sorted keys, UTF-8 kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class EventBuffer:
    """Columnar, append-only store of simulated events as integer codes; strings are made once, at the end."""

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._templates: list[str] = ["{}"]
        self._template_code: dict[str, int] = {"{}": 0}
        self._template_key: dict[str, int] = {}

    def template(self, properties: dict[str, Any]) -> int:
        """Code of a properties template; a value of ``VALUE_SLOT`` is filled per row from ``value``."""
        key = repr(sorted(properties.items()))
        code = self._template_key.get(key)
        if code is not None:
            return code
        text = compact_json(properties)
        code = self._template_code.get(text)
        if code is None:
            code = len(self._templates)
            self._templates.append(text)
            self._template_code[text] = code
        self._template_key[key] = code
        return code

    def add(
        self,
        contacts: np.ndarray,
        event_type: EventType,
        time_us: np.ndarray,
        *,
        content: np.ndarray | int = -1,
        channel: Channel | np.ndarray | None = None,
        who: int = KNOWN,
        props: np.ndarray | int = 0,
        value: np.ndarray | float = np.nan,
    ) -> None:
        """Append one event of ``event_type`` per contact index in ``contacts`` at absolute ``time_us``."""
        n = len(contacts)
        if n == 0:
            return
        if isinstance(channel, np.ndarray):
            channel_codes = channel.astype(np.int16)
        else:
            channel_codes = np.full(n, -1 if channel is None else CHANNEL_CODE[channel], np.int16)
        self._chunks.append(
            (
                np.asarray(contacts, np.int64),
                np.full(n, TYPE_CODE[event_type], np.int16),
                _column(time_us, n, np.int64),
                _column(content, n, np.int32),
                channel_codes,
                np.full(n, who, np.int8),
                _column(props, n, np.int32),
                _column(value, n, np.float64),
            )
        )

    def __len__(self) -> int:
        return sum(len(c[0]) for c in self._chunks)

    def to_frame(
        self,
        *,
        seed: int,
        contact_ids: np.ndarray,
        anonymous_ids: np.ndarray,
        account_ids: np.ndarray,
        content_ids: tuple[str, ...],
    ) -> pd.DataFrame:
        """All events sorted by (timestamp, contact, insertion), with ids ``sim<seed>-<n>`` in that order."""
        if self._chunks:
            cols = [np.concatenate(parts) for parts in zip(*self._chunks, strict=True)]
        else:
            cols = [
                np.empty(0, dt)
                for dt in (np.int64, np.int16, np.int64, np.int32, np.int16, np.int8, np.int32, np.float64)
            ]
        contact, etype, time_us, content, channel, who, props, value = cols
        order = np.lexsort((np.arange(len(contact)), contact, time_us))
        contact, etype, time_us, content, channel, who, props, value = (
            c[order] for c in (contact, etype, time_us, content, channel, who, props, value)
        )
        n = len(contact)
        known = contact_ids[contact].astype(object)
        known[who == ANONYMOUS] = None
        anon = anonymous_ids[contact].astype(object)
        anon[who == KNOWN] = None
        with_none = np.array([*content_ids, None], dtype=object)
        channel_names = np.array([*(c.value for c in CHANNELS), None], dtype=object)
        type_names = np.array([t.value for t in EVENT_TYPES], dtype=object)
        templates = np.array(self._templates, dtype=object)
        properties = templates[props]
        slot = f'"{VALUE_SLOT}"'
        fill = np.flatnonzero(~np.isnan(value))
        for i in fill:
            v = value[i]
            text = str(int(v)) if float(v).is_integer() else f"{v:.2f}"
            properties[i] = properties[i].replace(slot, text)
        timestamps = pd.Series(time_us.astype("datetime64[us]")).dt.tz_localize("UTC")
        return pd.DataFrame(
            {
                "event_id": _event_ids(seed, n),
                "contact_id": known,
                "anonymous_id": anon,
                "account_id": np.where(who == ANONYMOUS, None, account_ids[contact]),
                "timestamp": timestamps,
                "type": type_names[etype],
                "content_id": with_none[content],
                "channel": channel_names[channel],
                "properties": properties,
            },
            columns=list(EVENT_COLUMNS),
        )


def _column(value: np.ndarray | float, n: int, dtype: type) -> np.ndarray:
    if isinstance(value, np.ndarray) and value.shape == (n,):
        return value.astype(dtype, copy=False)
    return np.full(n, value, dtype)


def _event_ids(seed: int, n: int) -> np.ndarray:
    """``sim<seed>-<000000042>`` for 0..n-1, built in Arrow (a Python loop takes seconds)."""
    digits = pc.utf8_lpad(pa.array(np.arange(n)).cast(pa.string()), width=9, padding="0")
    ids = pc.binary_join_element_wise(f"sim{seed}-", digits, "")
    return np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)


def write_events(frame: pd.DataFrame, path: Path | str) -> int:
    """Write an events frame to Parquet with ``EVENT_SCHEMA``; returns the number of rows."""
    table = pa.Table.from_pandas(frame[list(EVENT_COLUMNS)], schema=EVENT_SCHEMA, preserve_index=False)
    pq.write_table(table, path)
    return table.num_rows


def iter_engagement_events(frame: pd.DataFrame) -> Iterator[EngagementEvent]:
    """Each row of an events frame as a validated ``EngagementEvent`` (properties parsed back from JSON)."""
    for row in frame[list(EVENT_COLUMNS)].to_dict("records"):
        row["timestamp"] = row["timestamp"].to_pydatetime()
        row["properties"] = json.loads(row["properties"])
        yield EngagementEvent.model_validate(row)

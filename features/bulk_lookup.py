"""Bulk reads for batch decisions: many contacts' profiles and decision features in a few round trips.

``read_profiles`` fetches stored profiles with one ``IN`` query per 1,000 ids; ``BulkReader``
reads Feast's online tables like ``features.online.DirectReader`` (one pipelined round trip of ``HMGET`` per
chunk on Redis, one ``SELECT ... IN`` per view and chunk on SQLite), reads the candidate blocks' statistics
once, and builds the contacts' ``DecisionFeatures`` with ``assemble_many`` — the maths the single lookup's
``assemble`` runs for one contact — so a contact's features are identical whichever path read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from feast.infra.key_encoding_utils import serialize_entity_key
from sqlalchemy import select

from features.event_store import EventStore
from features.online import CONTACT_VIEWS, DecisionFeatures, DirectReader, Row, assemble_many, decode
from features.online import entity_key as make_entity_key
from features.online import redis_key as make_redis_key
from features.schemas import ContactProfile

if TYPE_CHECKING:
    from features.store import FeatureStoreService

CHUNK = 1000
"""Ids per ``IN`` query or Redis pipeline."""


def read_profiles(store: EventStore, contact_ids: Sequence[str]) -> dict[str, ContactProfile]:
    """The stored profile of each id that has one (absent ids are unknown contacts)."""
    engine = getattr(store, "engine", None)
    if engine is None:  # another EventStore implementation: its own one-by-one read
        found = {cid: store.get_profile(cid) for cid in contact_ids}
        return {cid: p for cid, p in found.items() if p is not None}
    from features.event_store_sql import profiles_table

    out: dict[str, ContactProfile] = {}
    ids = list(dict.fromkeys(contact_ids))
    with engine.connect() as conn:
        for start in range(0, len(ids), CHUNK):
            rows = conn.execute(
                select(profiles_table.c.contact_id, profiles_table.c.document).where(
                    profiles_table.c.contact_id.in_(ids[start : start + CHUNK])
                )
            )
            for contact_id, document in rows:
                out[str(contact_id)] = ContactProfile.model_validate_json(document)
    return out


class BulkReader:
    """Reads many contacts' decision features from the online store; open once, reuse, then ``close``."""

    def __init__(self, service: FeatureStoreService) -> None:
        self._reader = DirectReader(service)

    def read(
        self, contact_ids: Sequence[str], content_ids: Sequence[str], at: datetime
    ) -> list[DecisionFeatures]:
        """Every contact's features at ``at`` (cold start for unknown ones), in ``contact_ids`` order."""
        unique = list(dict.fromkeys(contact_ids))
        rows = dict(zip(unique, _read_contacts(self._reader, unique), strict=True))
        contents = self._reader.read("__bulk__", list(content_ids))[1] if content_ids else {}
        request_ts = at.timestamp()
        topics = self._reader.topics
        stored = [rows[cid] for cid in contact_ids]
        return assemble_many(contact_ids, request_ts, stored, contents, content_ids, topics=topics)

    def close(self) -> None:
        _close(self._reader)


def _read_contacts(reader: DirectReader, contact_ids: Sequence[str]) -> list[Row]:
    rows: list[Row] = []
    for start in range(0, len(contact_ids), CHUNK):
        chunk = contact_ids[start : start + CHUNK]
        rows.extend(_redis_rows(reader, chunk) if reader.kind == "redis" else _sqlite_rows(reader, chunk))
    return rows


def _redis_rows(reader: DirectReader, contact_ids: Sequence[str]) -> list[Row]:
    fields = reader._contact_fields  # noqa: SLF001 - the same field hashes as the single lookup
    hashes = [h for _, h in fields]
    pipe = reader._redis.pipeline(transaction=False)  # noqa: SLF001
    for cid in contact_ids:
        pipe.hmget(make_redis_key(reader.project, "contact_id", cid, reader.version), hashes)  # type: ignore[arg-type]
    return [
        {name: decode(raw) for (name, _), raw in zip(fields, reply, strict=True)} for reply in pipe.execute()
    ]


def _sqlite_rows(reader: DirectReader, contact_ids: Sequence[str]) -> list[Row]:
    keys = {
        serialize_entity_key(make_entity_key("contact_id", c), reader.version): k
        for k, c in enumerate(contact_ids)
    }
    rows: list[Row] = [{} for _ in contact_ids]
    for view in CONTACT_VIEWS:
        for key, name, raw in reader._select(view, list(keys)):  # noqa: SLF001
            rows[keys[key]][name] = decode(raw)
    return rows


def _close(reader: DirectReader) -> None:
    if reader.kind == "redis":
        reader._redis.close()  # noqa: SLF001
    else:
        reader._sqlite.close()  # noqa: SLF001

"""Final contact profiles of a run: a flat frame for Parquet and ``ContactProfile`` objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from features.schemas import STAGE_IDS, Channel, ConsentRecord, ContactProfile
from training.simulation.events import CHANNELS, US_PER_DAY
from training.simulation.personas import Persona
from training.simulation.population import COUNTRIES, INDUSTRIES, STATUSES, Population

GERMAN_SPEAKING = frozenset({"DE", "AT", "CH"})


def contact_ids(n: int) -> np.ndarray:
    """Stable contact ids ``c000000`` ... as an object array."""
    return np.array([f"c{i:06d}" for i in range(n)], dtype=object)


def account_ids(account: np.ndarray) -> np.ndarray:
    """Account id per contact (``acct-00012``), None for B2C contacts."""
    ids = np.array(
        [f"acct-{a:05d}" if a >= 0 else None for a in range(int(account.max(initial=-1)) + 1)] + [None],
        dtype=object,
    )
    return ids[np.where(account >= 0, account, -1)]


def _utc(start_us: int, days: np.ndarray) -> pd.Series:
    return pd.Series((start_us + days * US_PER_DAY).astype("datetime64[us]")).dt.tz_localize("UTC")


def profiles_frame(pop: Population, personas: Sequence[Persona], start_us: int, end_day: int) -> pd.DataFrame:
    """One row per identified contact: profile fields, ``consent_<channel>`` (+ ``_at``), tracking.

    Timestamps of consent are the day it was last given or withdrawn (start of that day, UTC).
    """
    known = np.flatnonzero(pop.identify_day < end_day)
    persona = pop.persona[known]
    b2b = pop.b2b[known]
    country = np.array(COUNTRIES, dtype=object)[pop.country[known]]
    frame = pd.DataFrame(
        {
            "contact_id": contact_ids(pop.n)[known],
            "account_id": account_ids(pop.account)[known],
            "persona": np.array([p.name for p in personas], dtype=object)[persona],
            "role": np.array([p.role for p in personas], dtype=object)[persona],
            "seniority": np.array([p.seniority for p in personas], dtype=object)[persona],
            "industry": np.where(b2b, np.array(INDUSTRIES, dtype=object)[pop.industry[known]], None),
            "company_size": pd.array(np.where(b2b, pop.company_size[known], 0), dtype="Int64"),
            "country": country,
            "language": np.where(np.isin(country, list(GERMAN_SPEAKING)), "de", "en").astype(object),
            "lead_status": np.array([s.value for s in STATUSES], dtype=object)[pop.status[known]],
            "lifecycle_stage": np.array(STAGE_IDS, dtype=object)[pop.stage[known]],
            "budget": pop.budget[known],
            "authority": pop.authority[known],
            "need": pop.need[known],
            "timeline_months": pop.timeline_months[known],
        }
    )
    frame.loc[~b2b, "company_size"] = pd.NA
    for k, channel in enumerate(CHANNELS):
        frame[f"consent_{channel.value}"] = pop.consent[known, k]
        frame[f"consent_{channel.value}_at"] = _utc(start_us, pop.consent_day[known, k])
    frame["tracking_consent"] = pop.tracking[known]
    frame["tracking_consent_at"] = _utc(start_us, np.maximum(pop.identify_day[known], 0))
    frame["updated_at"] = _utc(start_us, np.full(len(known), end_day))
    return frame


def _ts(value: pd.Timestamp) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value.value // 1000))


def profiles_from_frame(frame: pd.DataFrame) -> list[ContactProfile]:
    """``ContactProfile`` per row of ``profiles_frame`` (consent per channel kept with its timestamp)."""
    out = []
    records: dict[tuple[bool, int], ConsentRecord] = {}  # frozen records, shared: few distinct days

    def record(granted: Any, at: pd.Timestamp) -> ConsentRecord:
        key = (bool(granted), int(at.value))
        if key not in records:
            records[key] = ConsentRecord(granted=key[0], at=_ts(at))
        return records[key]

    for row in frame.to_dict("records"):
        consents = {
            channel: record(row[f"consent_{channel.value}"], row[f"consent_{channel.value}_at"])
            for channel in Channel
        }
        size = row["company_size"]
        out.append(
            ContactProfile(
                contact_id=row["contact_id"],
                account_id=row["account_id"],
                persona=row["persona"],
                role=row["role"],
                seniority=row["seniority"],
                industry=row["industry"],
                company_size=None if pd.isna(size) else int(size),
                country=row["country"],
                language=row["language"],
                lead_status=row["lead_status"],
                lifecycle_stage=row["lifecycle_stage"],
                consents=consents,
                tracking_consent=record(row["tracking_consent"], row["tracking_consent_at"]),
                budget=bool(row["budget"]),
                authority=bool(row["authority"]),
                need=bool(row["need"]),
                timeline_months=int(row["timeline_months"]),
                updated_at=_ts(row["updated_at"]),
            )
        )
    return out

"""Labels for the readiness and churn scorers, built from the event log without looking past the snapshot.

A *snapshot* is (contact_id, snapshot_time): features are computed as of that moment (point-in-time), and the
label looks only at the window (snapshot_time, snapshot_time + horizon]. Snapshots whose window runs past the
end of the data are dropped (their label is not yet known), as are snapshots after the outcome already
happened.

- readiness: the contact reaches SQL (``status_change`` with ``properties.status == "sql"``), asks for a
demo or
  a consultation (``demo_request``, ``contact_request``) or an opportunity opens, within 30 days by default.
- churn: a customer (a ``purchase``, ``renewal`` or ``product_usage`` seen) cancels (``cancellation``) or
  fails to renew (the CRM marks them ``status_change`` to ``churned``) within 90 days by default.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import pandas as pd

READINESS_HORIZON = pd.Timedelta(days=30)
CHURN_HORIZON = pd.Timedelta(days=90)
READINESS_EVENTS = frozenset({"demo_request", "contact_request", "opportunity_open"})
CHURN_EVENTS = frozenset({"cancellation"})
CUSTOMER_EVENTS = frozenset({"purchase", "renewal", "product_usage", "cancellation"})
"""Events only a customer produces: from the first of them on, a contact is churn's, no longer readiness's."""
PAYING_EVENTS = frozenset({"purchase", "renewal", "product_usage"})
"""Events that show a contact is a paying customer: churn snapshots start at the first of them (customers who
bought before the data begins show up through renewals and usage, never through a purchase)."""
LabelKind = Literal["readiness", "churn"]


def _status(properties: Any) -> str | None:
    if isinstance(properties, str):
        try:
            properties = json.loads(properties)
        except json.JSONDecodeError:
            return None
    if isinstance(properties, dict):
        # the brief's events say {"status": "sql"}; the simulator's transitions say {"from": ..., "to": "sql"}
        status = properties.get("status", properties.get("to"))
        return str(status).lower() if status is not None else None
    return None


def as_utc_ns(values: pd.Series) -> pd.Series:
    """UTC timestamps at nanosecond resolution, so frames from different sources (us, ms) join."""
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def _check_events(events: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("contact_id", "timestamp", "type") if c not in events.columns]
    if missing:
        raise ValueError(
            f"`events` lacks columns {missing}; it needs contact_id, timestamp, type (and properties)"
        )
    out = events[events["contact_id"].notna()].copy()
    out["timestamp"] = as_utc_ns(out["timestamp"])
    out["type"] = out["type"].astype(str)
    status = (
        out["properties"].map(_status) if "properties" in out.columns else pd.Series(None, index=out.index)
    )
    out["status"] = status
    return out


def outcome_events(events: pd.DataFrame, kind: LabelKind) -> pd.DataFrame:
    """The (contact_id, timestamp) rows that count as a positive outcome for ``kind``."""
    ev = _check_events(events)
    if kind == "readiness":
        hit = ev["type"].isin(READINESS_EVENTS) | ((ev["type"] == "status_change") & (ev["status"] == "sql"))
    elif kind == "churn":
        hit = ev["type"].isin(CHURN_EVENTS) | ((ev["type"] == "status_change") & (ev["status"] == "churned"))
    else:
        raise ValueError(f"`kind` must be 'readiness' or 'churn', but got {kind!r}")
    return ev.loc[hit, ["contact_id", "timestamp"]].sort_values("timestamp")


def _first_per_contact(frame: pd.DataFrame) -> pd.Series:
    return frame.groupby("contact_id")["timestamp"].min()


def label_snapshots(
    events: pd.DataFrame,
    snapshots: pd.DataFrame,
    kind: LabelKind,
    horizon: pd.Timedelta | None = None,
    data_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Return ``snapshots`` (contact_id, snapshot_time) with a 0/1 ``label`` column, keeping only valid rows.

    Valid: the label window ends by ``data_end`` (default: the last event), the outcome has not already
    happened at or before the snapshot, for churn the contact is a customer (one of :data:`PAYING_EVENTS` at
    or before it) and
    for readiness it is still a lead (no :data:`CUSTOMER_EVENTS` at or before it): sales calls leads, and a
    customer, who cannot "become ready", would only pad the negatives.
    """
    horizon = (
        horizon if horizon is not None else (READINESS_HORIZON if kind == "readiness" else CHURN_HORIZON)
    )
    if horizon <= pd.Timedelta(0):
        raise ValueError(f"`horizon` must be positive, but got {horizon}")
    missing = [c for c in ("contact_id", "snapshot_time") if c not in snapshots.columns]
    if missing:
        raise ValueError(f"`snapshots` lacks columns {missing}")
    ev = _check_events(events)
    end = pd.Timestamp(data_end) if data_end is not None else ev["timestamp"].max()
    snaps = snapshots.copy()
    snaps["snapshot_time"] = as_utc_ns(snaps["snapshot_time"])
    snaps = snaps[snaps["snapshot_time"] + horizon <= end]
    outcomes = outcome_events(events, kind)
    first_outcome = _first_per_contact(outcomes)
    snaps = snaps[~(snaps["contact_id"].map(first_outcome) <= snaps["snapshot_time"])]
    if kind == "churn":
        first_paying = _first_per_contact(ev[ev["type"].isin(PAYING_EVENTS)])
        snaps = snaps[snaps["contact_id"].map(first_paying) <= snaps["snapshot_time"]]
    else:
        first_customer = _first_per_contact(ev[ev["type"].isin(CUSTOMER_EVENTS)])
        snaps = snaps[~(snaps["contact_id"].map(first_customer) <= snaps["snapshot_time"])]
    # next outcome strictly after each snapshot, found with an as-of join per contact
    left = snaps.reset_index().sort_values("snapshot_time")
    right = outcomes.rename(columns={"timestamp": "outcome_time"}).sort_values("outcome_time")
    joined = pd.merge_asof(
        left,
        right,
        left_on="snapshot_time",
        right_on="outcome_time",
        by="contact_id",
        direction="forward",
        allow_exact_matches=False,
    ).set_index("index")
    within = joined["outcome_time"].notna() & (joined["outcome_time"] <= joined["snapshot_time"] + horizon)
    out = snaps.copy()
    out["label"] = within.reindex(out.index).astype(int)
    return out


def sample_snapshots(
    events: pd.DataFrame,
    kind: LabelKind,
    *,
    every: pd.Timedelta = pd.Timedelta(days=7),
    max_per_contact: int | None = 4,
    horizon: pd.Timedelta | None = None,
    seed: int = 7,
) -> pd.DataFrame:
    """Snapshot times per contact on a grid of ``every``, at most ``max_per_contact`` per contact.

    The grid runs from first activity (first of :data:`PAYING_EVENTS` for churn) until the outcome or the
    last complete label window, at most ``max_per_contact`` each, drawn at random (``None``: every grid
    point, as when every lead is scored every ``every`` in a test window).

    Capping per contact keeps contacts with long histories from dominating the training set; sampling on a
    fixed grid (not at event times) keeps the snapshot moment itself from carrying information. Labels are
    attached with :func:`label_snapshots`, which also drops invalid snapshots.
    """
    if max_per_contact is not None and max_per_contact < 1:
        raise ValueError(f"`max_per_contact` must be >= 1, but got {max_per_contact}")
    ev = _check_events(events)
    if ev.empty:
        raise ValueError("`events` has no rows with a contact_id: nothing to sample")
    horizon = (
        horizon if horizon is not None else (READINESS_HORIZON if kind == "readiness" else CHURN_HORIZON)
    )
    rng = np.random.default_rng(seed)
    start_from = ev.groupby("contact_id")["timestamp"].min()
    if kind == "churn":
        start_from = _first_per_contact(ev[ev["type"].isin(PAYING_EVENTS)])
    first_outcome = _first_per_contact(outcome_events(events, kind))
    end = ev["timestamp"].max()
    rows: list[tuple[str, pd.Timestamp]] = []
    # readiness snapshots end where the contact becomes a customer (label_snapshots would drop them anyway)
    last_as_lead = (
        _first_per_contact(ev[ev["type"].isin(CUSTOMER_EVENTS)]) if kind == "readiness" else pd.Series()
    )
    for contact_id, start in start_from.items():
        stop = min(
            end - horizon,
            first_outcome.get(contact_id, end) - pd.Timedelta(seconds=1),
            last_as_lead.get(contact_id, end) - pd.Timedelta(seconds=1),
        )
        grid = pd.date_range(start.ceil("D"), stop, freq=every)
        if len(grid) == 0:
            continue
        chosen = (
            grid
            if max_per_contact is None or len(grid) <= max_per_contact
            else grid[np.sort(rng.choice(len(grid), max_per_contact, False))]
        )
        rows.extend((str(contact_id), t) for t in chosen)
    snapshots = pd.DataFrame(rows, columns=["contact_id", "snapshot_time"])
    return label_snapshots(events, snapshots, kind, horizon=horizon, data_end=end)


def time_split(
    frame: pd.DataFrame,
    time_column: str = "snapshot_time",
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
    gap: pd.Timedelta = pd.Timedelta(0),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split by time into train < valid < test, purged of label windows that reach into the next part.

    The test part is the latest ``test_fraction`` of rows. A row whose label window (``gap``, the horizon)
    would end at or after the next part's start is dropped ("purged", as in purged cross-validation, López de
    Prado 2018), so no label peeks at the period it is evaluated on. The purged rows are taken from the part
    before each cut: valid is the latest ``valid_fraction`` of rows among those purged for the test part, and
    train is everything purged for valid. So valid and test keep their shares even when the horizon is longer
    than their time span; only a history too short for train to keep any row is refused.
    """
    if time_column not in frame.columns:
        raise ValueError(f"`{time_column}` is not a column; a time split needs the snapshot time")
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError(
            f"`valid_fraction` and `test_fraction` must be in (0, 1) with a sum below 1, "
            f"but got {valid_fraction} and {test_fraction}"
        )
    times = pd.to_datetime(frame[time_column], utc=True)
    if times.isna().any():
        raise ValueError(f"`{time_column}` has {int(times.isna().sum())} missing values")
    ordered = times.sort_values(kind="stable")
    n_test = max(1, round(test_fraction * len(times)))
    n_valid = max(1, round(valid_fraction * len(times)))
    test_start = ordered.iloc[-n_test] if len(ordered) >= n_test else None
    before_test = ordered[ordered + gap < test_start] if test_start is not None else ordered.iloc[:0]
    valid_start = before_test.iloc[-n_valid] if len(before_test) >= n_valid else None
    if test_start is None or valid_start is None or not (times + gap < valid_start).any():
        raise ValueError(
            f"time split cannot keep a train, valid and test part: the data spans "
            f"{times.max() - times.min()} ({len(times)} rows), too short for parts of "
            f"{valid_fraction:.0%}/{test_fraction:.0%} of the rows with a label-window gap of {gap} "
            "before each cut"
        )
    train = frame[times + gap < valid_start]
    valid = frame[(times >= valid_start) & (times + gap < test_start)]
    test = frame[times >= test_start]
    return train, valid, test

"""Labels: forward windows, no leakage past the snapshot, censoring, churn eligibility, time split."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

from training.labels import label_snapshots, sample_snapshots, time_split

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def day(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=n)


def events_frame(rows: Sequence[tuple[str, float, str, dict[str, str] | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"contact_id": c, "timestamp": day(d), "type": t, "properties": p or {}} for c, d, t, p in rows]
    )


EVENTS = events_frame(
    [
        ("a", 0, "page_view", None),
        ("a", 20, "demo_request", None),  # ready on day 20
        ("b", 0, "page_view", None),
        ("b", 50, "status_change", {"status": "sql"}),  # ready on day 50
        ("c", 0, "page_view", None),
        ("c", 5, "status_change", {"status": "mql"}),  # MQL is not SQL
        ("f", 0, "page_view", None),
        ("f", 10, "status_change", {"from": "sal", "to": "sql"}),  # the simulator's transition form
        ("d", 0, "purchase", None),
        ("d", 100, "cancellation", None),
        ("e", 10, "page_view", None),
        ("e", 70, "cancellation", None),  # never a customer: not eligible for churn
        ("z", 200, "page_view", None),  # defines the end of data
    ]
)


def snaps(rows: list[tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"contact_id": c, "snapshot_time": day(d)} for c, d in rows])


def by_day(labelled: pd.DataFrame) -> dict[tuple[str, int], int]:
    """{(contact, whole days after T0): label} for compact assertions."""
    days = (labelled["snapshot_time"] - T0).dt.days
    return {
        (str(c), int(d)): int(v)
        for c, d, v in zip(labelled["contact_id"], days, labelled["label"], strict=True)
    }


def test_readiness_window_and_no_leakage() -> None:
    s = snaps(
        [("a", 1), ("a", 19.9), ("a", 20), ("a", 25), ("b", 1), ("b", 25), ("c", 1), ("f", 2), ("z", 180)]
    )
    out = label_snapshots(EVENTS, s, "readiness")
    got = by_day(out)
    assert got[("a", 1)] == 1  # outcome 19 days later, inside 30
    assert got[("a", 19)] == 1
    assert ("a", 20) not in got and ("a", 25) not in got  # outcome already happened: not scored any more
    assert got[("b", 1)] == 0  # SQL on day 50 is outside (1, 31]
    assert got[("b", 25)] == 1
    assert got[("c", 1)] == 0  # MQL does not count
    assert got[("f", 2)] == 1
    assert ("z", 180) not in got  # window runs past the end of data: label unknown, dropped


def test_readiness_horizon_is_a_parameter() -> None:
    s = snaps([("b", 1)])
    assert label_snapshots(EVENTS, s, "readiness", horizon=pd.Timedelta(days=60))["label"].tolist() == [1]


def test_churn_needs_a_customer_and_looks_ahead_90_days() -> None:
    s = snaps([("d", 5), ("d", 9), ("d", 11), ("e", 20), ("c", 20)])
    out = label_snapshots(EVENTS, s, "churn")
    got = by_day(out)
    assert got == {
        ("d", 5): 0,
        ("d", 9): 0,
        ("d", 11): 1,
    }  # day 100 is within (11, 101]; e and c never bought


def test_microsecond_event_times_join_nanosecond_snapshots() -> None:
    events = EVENTS.assign(timestamp=EVENTS["timestamp"].astype("datetime64[us, UTC]"))
    s = snaps([("a", 1), ("b", 25)])
    assert label_snapshots(events, s, "readiness")["label"].tolist() == [1, 1]


def test_labels_ignore_future_features_ordering() -> None:
    shuffled = EVENTS.sample(frac=1.0, random_state=3)
    s = snaps([("a", 1), ("b", 25), ("d", 11)])
    pd.testing.assert_frame_equal(
        label_snapshots(shuffled, s, "readiness").reset_index(drop=True),
        label_snapshots(EVENTS, s, "readiness").reset_index(drop=True),
    )


def test_sample_snapshots_caps_long_histories_and_stays_before_outcome() -> None:
    rows = [("long", float(d), "page_view", None) for d in range(0, 300, 3)]
    rows += [
        ("short", 280.0, "page_view", None),
        ("x", 0.0, "page_view", None),
        ("x", 40.0, "demo_request", None),
    ]
    events = events_frame(rows)
    out = sample_snapshots(events, "readiness", max_per_contact=3)
    counts = out["contact_id"].value_counts()
    assert counts["long"] == 3
    assert "short" not in counts  # first seen 17 days before the end: no complete 30-day window
    x = out[out["contact_id"] == "x"]
    assert (x["snapshot_time"] < day(40)).all() and not x.empty
    assert (out["snapshot_time"] + pd.Timedelta(days=30) <= events["timestamp"].max()).all()


def test_sample_snapshots_without_a_cap_keeps_every_grid_point() -> None:
    rows = [("long", float(d), "page_view", None) for d in range(0, 300, 3)]
    rows += [("x", 0.0, "page_view", None), ("x", 40.0, "demo_request", None)]
    events = events_frame(rows)
    every = sample_snapshots(events, "readiness", max_per_contact=None)
    long = every[every["contact_id"] == "long"]["snapshot_time"]
    # a 7-day grid from the first event (midnight of day 0) to the last complete 30-day window (day 267)
    assert list(long) == list(pd.date_range(day(0), day(267), freq="7D"))
    capped = sample_snapshots(events, "readiness", max_per_contact=3)
    key = ["contact_id", "snapshot_time"]
    shared = capped.merge(every, on=key, suffixes=("_capped", "_every"))
    assert len(shared) == len(capped), "the capped sample is drawn from the same grid"
    assert (shared["label_capped"] == shared["label_every"]).all()


def test_time_split_is_ordered_and_gapped() -> None:
    frame = pd.DataFrame({"snapshot_time": [day(d) for d in range(100)], "x": range(100)})
    train, valid, test = time_split(frame, gap=pd.Timedelta(days=5))
    assert train["snapshot_time"].max() + pd.Timedelta(days=5) < valid["snapshot_time"].min()
    assert valid["snapshot_time"].max() + pd.Timedelta(days=5) < test["snapshot_time"].min()
    assert len(test) >= 14


def test_time_split_purges_a_horizon_longer_than_the_valid_span() -> None:
    # 180 daily snapshots and a 30-day window: 15 % of the rows (27 days) is shorter than the window
    frame = pd.DataFrame({"snapshot_time": [day(d) for d in range(180)]})
    gap = pd.Timedelta(days=30)
    train, valid, test = time_split(frame, gap=gap)
    assert len(test) == 27 and len(valid) == 27  # the shares stay; the purge comes out of train
    assert train["snapshot_time"].max() + gap < valid["snapshot_time"].min()
    assert valid["snapshot_time"].max() + gap < test["snapshot_time"].min()
    assert len(train) + len(valid) + len(test) == 180 - 2 * 30


def test_time_split_refuses_a_history_shorter_than_two_windows() -> None:
    frame = pd.DataFrame({"snapshot_time": [day(d) for d in range(40)]})
    with pytest.raises(ValueError, match="too short"):
        time_split(frame, gap=pd.Timedelta(days=30))


def test_readiness_snapshots_stop_when_the_contact_becomes_a_customer() -> None:
    events = events_frame(
        [
            ("lead", 0, "page_view", None),
            ("buyer", 0, "page_view", None),
            ("buyer", 30, "purchase", None),
            ("buyer", 50, "demo_request", None),  # an upsell talk: not a lead getting ready
            ("user", 0, "product_usage", None),  # a customer from before the data: never a lead here
            ("user", 20, "contact_request", None),
            ("z", 200, "page_view", None),
        ]
    )
    labelled = by_day(
        label_snapshots(events, snaps([("lead", 10), ("buyer", 10), ("buyer", 40)]), "readiness")
    )
    assert labelled == {("lead", 10): 0, ("buyer", 10): 0}
    sampled = sample_snapshots(events, "readiness", max_per_contact=50)
    assert "user" not in set(sampled["contact_id"])
    assert (sampled.loc[sampled["contact_id"] == "buyer", "snapshot_time"] < day(30)).all()


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: label_snapshots(EVENTS.drop(columns=["type"]), snaps([("a", 1)]), "readiness"),
            "lacks columns",
        ),
        (lambda: label_snapshots(EVENTS, snaps([("a", 1)]), "upsell"), "`kind`"),  # type: ignore[arg-type]
        (lambda: label_snapshots(EVENTS, snaps([("a", 1)]), "churn", horizon=pd.Timedelta(0)), "`horizon`"),
        (lambda: time_split(pd.DataFrame({"t": [day(1)]})), "not a column"),
        (
            lambda: time_split(
                pd.DataFrame({"snapshot_time": [day(1)]}), valid_fraction=0.6, test_fraction=0.5
            ),
            "sum below 1",
        ),
        (lambda: sample_snapshots(EVENTS, "readiness", max_per_contact=0), "`max_per_contact`"),
    ],
)
def test_bad_input(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


def test_churn_counts_customers_seen_only_through_renewals_and_usage() -> None:
    # customers who bought before the data begins never show a purchase, only renewals and usage
    events = events_frame(
        [
            ("old", 0, "renewal", None),
            ("old", 60, "cancellation", None),
            ("user", 3, "product_usage", None),
            ("lead", 0, "page_view", None),
            ("z", 200, "page_view", None),
        ]
    )
    got = by_day(label_snapshots(events, snaps([("old", 1), ("user", 1), ("user", 4), ("lead", 5)]), "churn"))
    assert got == {("old", 1): 1, ("user", 4): 0}  # user is a customer from its first usage on
    sampled = sample_snapshots(events, "churn", every=pd.Timedelta(days=7))
    assert set(sampled["contact_id"]) == {"old", "user"}
    assert sampled.loc[sampled["contact_id"] == "old", "label"].eq(1).all()

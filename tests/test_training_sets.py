"""Point-in-time training sets: features see only the past, labels only the future, and the frame trains."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.store import FeatureStoreService
from ripen.cli import app
from ripen.settings import Settings, get_settings
from training.labels import outcome_events
from training.simulation import JourneySimulator, SimulationResult, UniformRandomPolicy
from training.training_sets import (
    FINAL_STATE_COLUMNS,
    SnapshotSampling,
    build_training_set,
    grid_snapshots_from,
    labelled_snapshots,
    point_in_time_features,
    prepare_feature_store,
)

SAMPLING = SnapshotSampling(every_days=5, max_per_contact=3, horizon_days=14)


@pytest.fixture(scope="module")
def world() -> SimulationResult:
    return JourneySimulator(n_contacts=120, n_days=70, seed=11).run(UniformRandomPolicy(seed=11))


def feature_store(root: Path, world: SimulationResult, events: pd.DataFrame) -> FeatureStoreService:
    settings = Settings(data_dir=root)
    settings.ensure_dirs()
    return prepare_feature_store(FeatureStoreService(settings), events, world.profiles(), list(world.catalog))


@pytest.fixture(scope="module")
def full_store(tmp_path_factory: pytest.TempPathFactory, world: SimulationResult) -> FeatureStoreService:
    return feature_store(tmp_path_factory.mktemp("full") / "data", world, world.events)


@pytest.fixture(scope="module")
def frame(full_store: FeatureStoreService, world: SimulationResult) -> pd.DataFrame:
    return build_training_set(full_store, world.events, "readiness", SAMPLING)


def test_labels_look_only_inside_the_window_after_the_snapshot(
    frame: pd.DataFrame, world: SimulationResult
) -> None:
    outcomes = outcome_events(world.events, "readiness")
    horizon = pd.Timedelta(days=14)
    contacts = build_contacts(frame, world)
    for contact_id, t, label in zip(contacts, frame["snapshot_time"], frame["label"], strict=True):
        times = outcomes.loc[outcomes["contact_id"] == contact_id, "timestamp"]
        assert not (times <= t).any(), "a snapshot after the outcome must be dropped"
        assert label == int(((times > t) & (times <= t + horizon)).any())
    assert 0 < frame["label"].sum() < len(frame)


def build_contacts(frame: pd.DataFrame, world: SimulationResult) -> list[str]:
    """The snapshot frame drops contact ids from the features; rebuild them from the same sampling."""
    from training.labels import sample_snapshots

    snaps = sample_snapshots(
        world.events,
        "readiness",
        every=pd.Timedelta(days=5),
        max_per_contact=3,
        horizon=pd.Timedelta(days=14),
    ).reset_index(drop=True)
    assert (snaps["snapshot_time"].to_numpy() == frame["snapshot_time"].to_numpy()).all()
    return [str(c) for c in snaps["contact_id"]]


def test_test_window_holds_every_grid_snapshot_from_its_start(world: SimulationResult) -> None:
    sampled = labelled_snapshots(world.events, "readiness", SAMPLING)
    start = sampled["snapshot_time"].sort_values().iloc[-len(sampled) // 5]
    window = grid_snapshots_from(world.events, "readiness", SAMPLING, start)
    assert (window["snapshot_time"] >= start).all()
    assert not window.duplicated(["contact_id", "snapshot_time"]).any()
    late = sampled[sampled["snapshot_time"] >= start]
    shared = late.merge(window, on=["contact_id", "snapshot_time"], suffixes=("_sampled", "_window"))
    assert len(shared) == len(late), "the capped rows of the window are a subset of it"
    assert (shared["label_sampled"] == shared["label_window"]).all()
    assert len(window) > len(late), "the window is not capped per contact"
    # the same grid: a contact's window dates are its sampled dates' grid, every `every_days`
    step = window.groupby("contact_id")["snapshot_time"].diff().dropna()
    assert (step == pd.Timedelta(days=SAMPLING.every_days)).all()


def test_features_do_not_change_when_later_events_are_removed(
    tmp_path: Path, full_store: FeatureStoreService, world: SimulationResult, frame: pd.DataFrame
) -> None:
    events = world.events
    stamps = pd.to_datetime(events["timestamp"], utc=True)
    cut = stamps.sort_values().iloc[len(stamps) // 2]
    past = events[stamps <= cut]
    snaps = pd.DataFrame(
        {"contact_id": build_contacts(frame, world), "snapshot_time": frame["snapshot_time"].to_numpy()}
    )
    snaps = snaps[snaps["snapshot_time"] <= cut].reset_index(drop=True)
    assert len(snaps) >= 20
    truncated = feature_store(tmp_path / "past" / "data", world, past)
    with_future = point_in_time_features(full_store, snaps, "readiness")
    without_future = point_in_time_features(truncated, snaps, "readiness")
    pd.testing.assert_frame_equal(with_future, without_future, check_exact=False, rtol=1e-9)
    # the comparison is not vacuous: the rows do carry engagement
    assert with_future["events_total"].fillna(0).sum() > 0


def test_frame_has_the_training_contract(frame: pd.DataFrame) -> None:
    assert {"label", "snapshot_time", "baseline_score", "points_score_now"} <= set(frame.columns)
    assert not set(FINAL_STATE_COLUMNS) & set(frame.columns)
    assert not {"contact_id", "event_timestamp", "request_ts"} & set(frame.columns)
    pd.testing.assert_series_equal(
        frame["baseline_score"], frame["points_score_now"].fillna(0.0), check_names=False
    )
    assert isinstance(frame["persona"].dtype, pd.CategoricalDtype)
    numeric = frame.drop(columns=["label", "snapshot_time"]).select_dtypes(exclude="category")
    assert (numeric.dtypes == "float64").all()


PROFILE_FACTS = (
    "persona",
    "seniority",
    "industry",
    "company_size",
    "country",
    "budget",
    "authority",
    "need",
    "timeline_months",
)


def test_profile_columns_are_filled_with_the_stored_profile_as_of_the_snapshot(
    frame: pd.DataFrame, world: SimulationResult
) -> None:
    snapshots = labelled_snapshots(world.events, "readiness", SAMPLING)
    assert (snapshots["snapshot_time"].to_numpy() == frame["snapshot_time"].to_numpy()).all()
    stored = world.profiles_frame.set_index("contact_id").loc[snapshots["contact_id"]]
    # every snapshot lies before the profiles' updated_at (the end of the run) and after the first event
    assert (snapshots["snapshot_time"].to_numpy() < stored["updated_at"].to_numpy()).all()
    for col in PROFILE_FACTS:
        got, want = frame[col].reset_index(drop=True), stored[col].reset_index(drop=True)
        filled = want.notna()
        assert filled.any(), col
        assert got.notna().equals(filled), col
        if isinstance(got.dtype, pd.CategoricalDtype):
            assert (got[filled].astype(str) == want[filled].astype(str)).all(), col
        else:  # numbers and booleans arrive as floats
            assert (got[filled] == want[filled].astype(float)).all(), col
    assert frame["persona"].notna().all() and (frame["fit_points"] > 0).any()
    # the points baseline is fit points + behaviour points, not behaviour alone
    pd.testing.assert_series_equal(
        frame["baseline_score"], frame["fit_points"] + frame["behaviour_points_now"], check_names=False
    )


def test_profile_funnel_state_is_not_back_dated(
    full_store: FeatureStoreService, world: SimulationResult
) -> None:
    profiles = world.profiles_frame
    updated = pd.Timestamp(profiles["updated_at"].iloc[0])
    first = pd.to_datetime(
        world.events.dropna(subset=["contact_id"]).groupby("contact_id")["timestamp"].min(), utc=True
    )
    ids = list(profiles["contact_id"].iloc[:5])
    entity = pd.DataFrame(
        {
            "contact_id": ids * 3,
            "event_timestamp": [first[c] - pd.Timedelta(hours=1) for c in ids]
            + [updated - pd.Timedelta(days=1)] * len(ids)
            + [updated + pd.Timedelta(days=1)] * len(ids),
        }
    )
    got = full_store.historical_features(entity, "readiness_v1").set_index(["contact_id", "event_timestamp"])
    stored = profiles.set_index("contact_id")
    for k, cid in enumerate(ids):
        before, between, after = (
            got.loc[(cid, entity["event_timestamp"][k + n * len(ids)])] for n in range(3)
        )
        assert pd.isna(before["persona"]) and pd.isna(before["lead_status"])
        assert between["persona"] == stored.loc[cid, "persona"]
        assert pd.isna(between["lead_status"]), "the final funnel state must not be seen before updated_at"
        assert after["persona"] == stored.loc[cid, "persona"]
        assert after["lead_status"] == stored.loc[cid, "lead_status"]


def test_too_short_history_is_a_clear_error(full_store: FeatureStoreService, world: SimulationResult) -> None:
    with pytest.raises(ValueError, match="complete label window"):
        build_training_set(full_store, world.events, "churn", SnapshotSampling(horizon_days=365))
    with pytest.raises(ValueError, match="every_days"):
        SnapshotSampling(every_days=0)


@pytest.fixture
def cli_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The CLI reads ``get_settings()``: point it at the test's own stores."""
    monkeypatch.setenv("RIPEN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_train_without_data_on_an_empty_event_store_is_a_clear_error(cli_settings: Settings) -> None:
    result = CliRunner().invoke(app, ["train", "readiness", "--json"])
    assert result.exit_code == 2
    assert "no events" in result.output


def test_train_label_without_data_names_the_missing_option(cli_settings: Settings) -> None:
    result = CliRunner().invoke(app, ["train", "churn", "--label", "Churn"])
    assert result.exit_code == 2
    assert "--data" in result.output

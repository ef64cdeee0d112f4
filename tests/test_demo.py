"""`ripen demo` runs end to end on the embedded default and is safe to re-run."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from features.event_store import open_settings_event_store
from ripen.cli import app
from ripen.settings import Settings
from training.demo import DemoConfig, run_demo


def test_demo_ingests_every_simulated_event_once(settings: Settings) -> None:
    calls: list[tuple[str, int, int]] = []
    config = DemoConfig(contacts=60, days=30, seed=3)

    first = run_demo(settings, config, lambda step, done, total: calls.append((step, done, total)))
    second = run_demo(settings, config, lambda *_: None)

    sim, ingest = first.steps[0].numbers, first.steps[1].numbers
    assert sim["events"] == ingest["events_stored"] == ingest["events_in_store"]
    assert ingest["events_rejected"] == 0
    assert ingest["profiles"] == 60
    rerun = second.steps[1].numbers
    assert rerun["events_stored"] == 0 and rerun["events_duplicate"] == sim["events"]
    assert rerun["events_in_store"] == sim["events"]
    assert {step for step, _, _ in calls} >= {"simulate", "ingest"}
    assert ("simulate", 30, 30) in calls
    names = [step.name for step in first.steps]
    assert names == ["simulate", "ingest", "materialize", "train_readiness", "train_churn"]
    assert int(first.steps[2].numbers["feature_views"]) >= 4
    # 30 days cannot hold a 14-day label window plus a time split: the step says so instead of failing
    assert "skipped" in first.steps[3].numbers
    with open_settings_event_store(settings) as store:
        assert len(store.list_content()) >= 40
        assert store.get_profile(store.list_profiles()[0].contact_id) is not None


def test_demo_cli_prints_json_summary(settings: Settings) -> None:
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--contacts",
            "20",
            "--days",
            "14",
            "--seed",
            "5",
            "--json",
            "--data-dir",
            str(settings.data_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert [s["name"] for s in summary["steps"]][:2] == ["simulate", "ingest"]
    assert summary["steps"][1]["events_in_store"] == summary["steps"][0]["events"] > 0

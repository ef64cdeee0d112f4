"""`ripen demo` runs end to end on the embedded default, is safe to re-run, and serves what it prints."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.decision_log import open_settings_decision_log
from features.event_store import open_settings_event_store
from ripen.cli import app
from ripen.settings import Settings
from tests.server_process import free_port, wait_until_up
from training.demo import DemoConfig, run_demo, simulate, simulated_decisions, simulator

STEPS = [
    "simulate",
    "ingest",
    "log_decisions",
    "materialize",
    "train_readiness",
    "train_churn",
    "train_policy",
]


def test_simulated_decisions_carry_exact_propensities_and_eligible_sets() -> None:
    config = DemoConfig(contacts=80, days=40, seed=3, policy_decisions=300)
    sim = simulator(config)
    result = simulate(sim, config, lambda *_: None)
    records = simulated_decisions(sim, result, config)
    assert 0 < len(records) <= 300
    assert len({r.event_id for r in records}) == len(records)
    last_day = max(r.decided_at for r in records) - sim.start
    assert last_day.days < config.days - 7  # every reward window closed inside the simulated period
    for r in records[:50]:
        eligible = {e.content_id: e.probability for e in r.eligible}
        assert r.content_id in eligible
        np.testing.assert_allclose(sum(eligible.values()), 1.0)
        assert r.probability == pytest.approx(1.0 / len(eligible))
    assert len({len(r.context_features) for r in records}) == 1


def test_the_world_ends_today_and_the_seed_fixes_everything_but_the_dates() -> None:
    today = DemoConfig(contacts=40, days=20, seed=3)
    fixed = DemoConfig(contacts=40, days=20, seed=3, end=date(2025, 7, 26))
    now = datetime.now(UTC)
    events = simulate(simulator(today), today, lambda *_: None).events
    stamps = pd.to_datetime(events["timestamp"], utc=True)
    midnight = pd.Timestamp(now.date(), tz="UTC")
    assert (
        midnight - pd.Timedelta(days=1) <= stamps.max() < midnight <= now
    )  # yesterday's engagement, none ahead
    assert stamps.min() >= midnight - pd.Timedelta(days=20)
    past = simulate(simulator(fixed), fixed, lambda *_: None).events
    assert pd.to_datetime(past["timestamp"], utc=True).max() < pd.Timestamp("2025-07-26", tz="UTC")
    shift = midnight - pd.Timestamp("2025-07-26", tz="UTC")
    pd.testing.assert_series_equal(
        pd.to_datetime(past["timestamp"], utc=True) + shift, stamps, check_names=False
    )
    same = ["contact_id", "type", "channel", "content_id"]
    pd.testing.assert_frame_equal(past[same], events[same])


def test_a_deterministic_logging_policy_is_not_logged_for_policy_training() -> None:
    config = DemoConfig(contacts=30, days=20, seed=3, logging_policy="fixed")
    sim = simulator(config)
    with pytest.raises(ValueError, match="logging_policy"):
        simulated_decisions(sim, simulate(sim, config, lambda *_: None), config)


@pytest.mark.slow
def test_demo_rerun_stores_events_and_decisions_once(settings: Settings) -> None:
    calls: list[tuple[str, int, int]] = []
    config = DemoConfig(contacts=60, days=30, seed=3)

    first = run_demo(settings, config, lambda step, done, total: calls.append((step, done, total)))
    second = run_demo(settings, config, lambda *_: None)

    assert [step.name for step in first.steps] == STEPS
    sim, ingest, logged = (first.steps[i].numbers for i in range(3))
    assert sim["events"] == ingest["events_stored"] == ingest["events_in_store"]
    assert ingest["events_rejected"] == 0
    assert ingest["profiles"] == 60
    assert int(logged["stored"]) == int(logged["decisions"]) > 0
    rerun = {step.name: step.numbers for step in second.steps}
    assert rerun["ingest"]["events_stored"] == 0 and rerun["ingest"]["events_duplicate"] == sim["events"]
    assert rerun["ingest"]["events_in_store"] == sim["events"]
    assert rerun["log_decisions"]["stored"] == 0
    assert rerun["log_decisions"]["decisions_in_log"] == logged["decisions"]
    assert {step for step, _, _ in calls} >= {"simulate", "ingest"}
    assert ("simulate", 30, 30) in calls
    assert int(first.steps[3].numbers["feature_views"]) >= 4
    # 30 days cannot hold a 14-day label window plus a time split: the step says so instead of failing
    assert "skipped" in first.steps[4].numbers
    with open_settings_event_store(settings) as store:
        assert len(store.list_content()) >= 40
        assert store.get_profile(store.list_profiles()[0].contact_id) is not None


def _demo_json(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, f"stdout must hold one JSON line, got {len(lines)}: {output[:500]}"
    summary = json.loads(lines[0])
    assert isinstance(summary, dict)
    return summary


@pytest.mark.slow
def test_demo_no_serve_json_trains_and_registers_champions(settings: Settings) -> None:
    args = ["demo", "--no-serve", "--json", "--contacts", "300", "--days", "120", "--seed", "5"]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    summary = _demo_json(result.stdout)
    steps = {s["name"]: s for s in summary["steps"]}
    assert list(steps) == STEPS
    assert steps["ingest"]["events_in_store"] == steps["simulate"]["events"] > 0
    assert steps["log_decisions"]["stored"] == steps["log_decisions"]["decisions"] > 0
    champions = summary["champions"]
    for kind in ("readiness", "churn"):
        step, champion = steps[f"train_{kind}"], champions[f"ripen-{kind}"]
        if "skipped" in step:  # a small world may be too short or hold too few positives: said, not failed
            assert any(why in step["skipped"] for why in ("positives", "time split")) and champion is None
        else:
            assert 0.0 <= step["roc_auc"] <= 1.0
            assert champion == step["version"] if step["promoted"] == "True" else champion is None
    policy = steps["train_policy"]
    assert "skipped" not in policy and policy["n_train"] > policy["n_eval"] > 0
    assert policy["rewarded"] > 0 and policy["policy_value_dr"] > policy["logged_value"]
    assert policy["gate"].startswith("DR lower bound") and "logging policy" in policy["gate"]
    promoted = policy["promoted"] == "True"  # the gate's call on a small world; the default world promotes
    assert champions["ripen-policy"] == (policy["version"] if promoted else None)
    contact = summary["contact_id"]
    with open_settings_event_store(settings) as store:
        assert isinstance(contact, str) and store.get_profile(contact) is not None
    with open_settings_decision_log(settings) as decision_log:
        assert decision_log.count() == steps["log_decisions"]["decisions"]


def _curl_request(curl: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL, headers and JSON body of the printed ``curl`` command, parsed as a shell would."""
    words = shlex.split(curl)
    assert words[:4] == ["curl", "-s", "-X", "POST"]
    headers: dict[str, str] = {}
    for i, word in enumerate(words):
        if word == "-H":
            name, value = words[i + 1].split(":", 1)
            headers[name.strip()] = value.strip()
    body = json.loads(words[words.index("-d") + 1])
    return words[4], headers, body


@pytest.mark.slow
def test_demo_serves_the_printed_recommend_example(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    demo = subprocess.Popen(
        [sys.executable, "-m", "ripen", "demo", "--json", "--contacts", "40", "--days", "21"]
        + ["--seed", "2", "--port", str(port), "--data-dir", str(data_dir)],
        env={**os.environ, "RIPEN_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        summary = json.loads(demo.stdout.readline())
        access = summary["serve"]
        assert access["url"] == f"http://127.0.0.1:{port}"
        assert access["contact_card"] == f"{access['url']}/sales/contacts/{summary['contact_id']}"
        url, headers, body = _curl_request(access["recommend_curl"])
        assert headers["X-API-Key"] == access["api_key"] and body["contact_id"] == summary["contact_id"]
        wait_until_up(demo, f"{access['url']}/healthz")
        answer = httpx.post(url, headers=headers, json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        decision = answer.json()
        assert decision["action"] in {"content", "wait", "handoff_to_sales", "nothing_eligible"}
        assert decision["event_id"]
        wrong = httpx.post(url, headers={"X-API-Key": "rpn_not-a-key"}, json=body, timeout=30)
        assert wrong.status_code == 401
    finally:
        demo.terminate()
        demo.communicate(timeout=30)
    keys = json.loads((data_dir / "api_keys.json").read_text())["keys"]
    assert [k["label"] for k in keys] == ["ripen demo"]
    assert access["api_key"] not in (data_dir / "api_keys.json").read_text()

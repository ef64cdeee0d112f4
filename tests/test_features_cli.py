"""`ripen features materialize` and `ripen features show` on a small events export."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ripen.cli import app
from tests.features_factory import CONTENTS, random_events


def test_materialize_then_show_a_contact(tmp_path: Path) -> None:
    events = tmp_path / "events.parquet"
    random_events(200, contacts=3, seed=5).to_parquet(events)
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([b.model_dump(mode="json") for b in CONTENTS]))
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text('{"contact_id": "c1", "seniority": "vp", "budget": true}\n')
    data_dir = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "features",
            "materialize",
            "--events",
            str(events),
            "--catalog",
            str(catalog),
            "--profiles",
            str(profiles),
            *data_dir,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "200 events" in result.output
    shown = runner.invoke(app, ["features", "show", "c1", "--content", "k1,k2", *data_dir])
    assert shown.exit_code == 0, shown.output
    payload = json.loads(shown.output)
    assert payload["contact_id"] == "c1" and not payload["cold_start"]
    assert payload["profile"]["fit_points"] == 25.0
    assert set(payload["content"]) == {"k1", "k2"}
    cold = json.loads(runner.invoke(app, ["features", "show", "nobody", "--sdk", *data_dir]).output)
    assert cold["cold_start"] is True

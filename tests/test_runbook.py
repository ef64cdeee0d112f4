"""The retraining runbook's commands are the ones tested: its ``bash runbook`` blocks run as written, in a
small simulated world (only environment variables differ), and every ``ripen`` command it shows exists."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ripen.cli import app
from ripen.settings import Settings
from training.model_card import load_card
from training.registry import CHAMPION, champion_version
from training.tracking import mlflow_client

pytestmark = pytest.mark.xdist_group("runbook_world")  # one worker builds the world once

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbook.md"
SMALL_WORLD = {
    "DEMO_CONTACTS": "2000",
    "DEMO_DAYS": "180",
    "READINESS_HORIZON_DAYS": "14",
    "CHURN_HORIZON_DAYS": "21",
    "SNAPSHOTS_PER_CONTACT": "2",
    "POLICY_BOOTSTRAP": "50",
}
"""The runbook's knobs for a world that builds in minutes; the commands themselves are the runbook's."""


def runbook_blocks(info: str = "bash runbook") -> list[str]:
    """Code blocks of the runbook whose info string is ``info``, in order."""
    return re.findall(rf"^```{info}\n(.*?)^```", RUNBOOK.read_text(), flags=re.S | re.M)


def run_block(block: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run one runbook block in bash, the venv's ``ripen`` first on PATH, the stores under ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPEN_")}
    env.update(SMALL_WORLD, RIPEN_DATA_DIR=str(data_dir), PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, f"runbook block failed:\n{block}\n--- stderr ---\n{done.stderr[-3000:]}"
    return done


def runbook_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world of the runbook's first block, built once per test session and shared (it is mutable)."""
    world = tmp_path_factory.getbasetemp() / "runbook-world"
    if not (world / "demo.json").exists():
        world.mkdir(exist_ok=True)
        run_block(runbook_blocks()[0], world)
    return world


def test_runbook_has_the_blocks_the_tests_run() -> None:
    blocks = runbook_blocks()
    assert len(blocks) == 4
    assert "ripen demo" in blocks[0]
    assert all(f"train {kind}" in blocks[1] for kind in ("readiness", "churn", "policy"))
    assert "ripen models rollback" in blocks[3]


def _ripen_commands() -> list[list[str]]:
    """Every ``ripen ...`` invocation in any code block of the runbook (cron, Airflow and Dask ones too)."""
    commands = []
    for line in RUNBOOK.read_text().replace("\\\n", " ").splitlines():
        for match in re.finditer(r"ripen ((?:[a-z]+ ?){1,3})", line):
            words = shlex.split(match.group(1))
            if words and words[0] in {"demo", "train", "models", "evaluate", "events", "features", "keys"}:
                commands.append(words)
    return commands


def test_every_ripen_command_in_the_runbook_exists() -> None:
    commands = _ripen_commands()
    assert ["train", "readiness"] in commands and ["models", "rollback", "readiness"] in commands
    runner = CliRunner()
    for words in commands:
        path = words[:2]  # group and command; what follows are arguments
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"`ripen {' '.join(path)}` from the runbook: {result.output}"
    dask = runner.invoke(app, ["train", "readiness", "--help"]).output
    assert "--dask" in dask


@pytest.mark.slow
def test_runbook_retrains_checks_and_rolls_back(tmp_path_factory: pytest.TempPathFactory) -> None:
    world = runbook_world(tmp_path_factory)
    settings = Settings(data_dir=world)
    client = mlflow_client(settings)
    blocks = runbook_blocks()

    retrained = run_block(blocks[1], world)  # the scheduled retraining script
    kinds = ("readiness", "churn", "policy")
    outputs = {kind: (world / f"{kind}.json").read_text().strip() for kind in kinds}
    assert outputs["readiness"] and outputs["policy"]
    for kind in ("readiness", "churn"):
        name = f"ripen-{kind}"
        if not outputs[kind]:  # refused by the data: reported with the reason, champion left as it was
            reason = (world / f"{kind}.err").read_text()
            assert f"{kind}: not retrained: error: " in retrained.stderr and "error: " in reason
            continue
        summary = json.loads(outputs[kind])
        tags = client.get_model_version(name, summary["registered_version"]).tags
        assert tags["gate.verdict"] == ("promoted" if summary["promoted"] else "rejected")
        assert load_card(name, summary["registered_version"]).startswith(f"# Model card: {name}")
        assert summary["roc_auc"] > 0.5
    policy = json.loads(outputs["policy"])
    assert policy["version"] and "DR lower bound" in policy["reason"]

    checks = run_block(blocks[2], world).stdout  # what to look at before promotion
    assert "# Model card: ripen-readiness" in checks and "# Model card: ripen-policy" in checks
    assert "policy_value_dr_ci_low" in checks
    assert "champion" in checks and "promoted" in checks  # `ripen models list`: aliases and verdicts

    # a newer version became champion; the runbook's rollback brings back the one promoted before it
    versions = client.search_model_versions("name='ripen-readiness'")
    newest = max(int(v.version) for v in versions)
    promoted = [
        int(v.version)
        for v in versions
        if v.tags.get("gate.verdict") == "promoted" and int(v.version) < newest
    ]
    assert promoted, "the demo's first readiness version was promoted"
    client.set_registered_model_alias("ripen-readiness", CHAMPION, str(newest))
    rolled = json.loads(run_block(blocks[3], world).stdout)
    assert rolled == {"name": "ripen-readiness", "previous": str(newest), "champion": str(max(promoted))}
    assert champion_version(client, "ripen-readiness") == str(max(promoted))
    assert (
        client.get_model_version("ripen-readiness", str(newest))
        .tags["rollback.to"]
        .startswith(str(max(promoted)))
    )


@pytest.mark.slow
def test_runbook_python_rollback_moves_the_alias(tmp_path_factory: pytest.TempPathFactory) -> None:
    world = runbook_world(tmp_path_factory)
    settings = Settings(data_dir=world)
    client = mlflow_client(settings)
    snippet = next(b for b in runbook_blocks("python") if "set_registered_model_alias" in b)
    first = min(int(v.version) for v in client.search_model_versions("name='ripen-readiness'"))
    exec(snippet, {"TRACKING_URI": settings.mlflow_tracking_uri, "PREVIOUS_VERSION": str(first)})  # noqa: S102
    assert champion_version(client, "ripen-readiness") == str(first)


@pytest.mark.parametrize(
    "args, message",
    [
        (["rollback", "readiness"], "ripen-readiness has no 'champion' to roll back"),
        (["card", "churn", "3"], "no card for ripen-churn version 3"),
    ],
)
def test_models_commands_refuse_what_the_registry_does_not_hold(
    settings: Settings, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["models", *args, "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 2
    assert message in result.output

"""Bring your own table: the real datasets through `ripen train ... --json`; messy and bad tables."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import structlog
from typer.testing import CliRunner

from models.scorer import SEARCH_GRID
from ripen.cli import app
from ripen.settings import Settings
from training.scorer_training import train_and_register
from training.tables import load_table
from training.tracking import mlflow_client

LEAKY_LEAD_COLUMNS = (
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
    "Last Notable Activity",
)
runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI's callback configures logging onto CliRunner's temporary stderr; undo that after each test.

    Otherwise later tests in the same process log into a closed stream and fail with "I/O operation on closed
    file" (``ripen/log_config.py`` binds the stream at configure time).
    """
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    structlog.configure(**saved_structlog)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def run_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["train", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.realdata
@pytest.mark.slow
def test_leads_without_leaky_columns(datasets_dir: Path) -> None:
    drops = [a for c in ("Lead Number", *LEAKY_LEAD_COLUMNS) for a in ("--drop", c)]
    out = run_json(
        "readiness",
        "--data",
        str(datasets_dir / "lead_scoring" / "Leads.csv"),
        "--label",
        "Converted",
        "--id",
        "Prospect ID",
        *drops,
        "--cv-folds",
        "3",
    )
    assert out["n_rows"] == 9240 and out["n_features"] == 26
    assert {"roc_auc", "pr_auc", "brier", "roc_auc_sd"} <= set(out)
    # measured with the cross-fitted, additive-blended scorer (docs/training.md): 3-fold 0.9046 ± 0.0070,
    # 5-fold 0.9057 ± 0.0100 (booster alone: 0.9047 / 0.9057; holdout scorer before: 0.9037 / 0.9045); the aim
    # of 0.91 is not reached; margin < one fold sd.
    assert out["roc_auc"] > 0.90
    assert 0.11 < out["brier"] < 0.121  # measured 0.1195; booster alone 0.1196, the holdout scorer had 0.1203


@pytest.mark.realdata
@pytest.mark.slow
def test_telco_churn(datasets_dir: Path) -> None:
    out = run_json(
        "churn",
        "--data",
        str(datasets_dir / "telco_churn" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"),
        "--label",
        "Churn",
        "--id",
        "customerID",
        "--cv-folds",
        "3",
    )
    assert out["n_rows"] == 7043 and out["n_features"] == 19
    # measured with the cross-fitted, additive-blended scorer (docs/training.md): 3-fold 0.8515 ± 0.0060,
    # 5-fold 0.8511 ± 0.0096 (booster alone: 0.8504 / 0.8492; holdout scorer before: 0.8477 / 0.8479); the aim
    # of 0.85 is reached in 5-fold CV too; margin < one fold sd.
    assert out["roc_auc"] > 0.848
    assert 0.12 < out["brier"] < 0.134  # measured 0.1326; booster alone 0.1332, the holdout scorer had 0.1349


@pytest.mark.realdata
def test_loader_handles_the_real_quirks(datasets_dir: Path) -> None:
    leads = load_table(datasets_dir / "lead_scoring" / "Leads.csv", "Converted", id_column="Prospect ID")
    assert not any(c.startswith("Unnamed") for c in leads.X.columns)  # trailing comma's empty column dropped
    assert "Select" not in leads.X["Specialization"].cat.categories  # form default means missing
    assert leads.X["Specialization"].isna().sum() > 1000
    assert leads.y.sum() == 3561
    telco = load_table(
        datasets_dir / "telco_churn" / "WA_Fn-UseC_-Telco-Customer-Churn.csv", "Churn", id_column="customerID"
    )
    assert telco.X["TotalCharges"].dtype == float and telco.X["TotalCharges"].isna().sum() == 11
    assert telco.y.sum() == 1869 and "customerID" not in telco.X.columns
    assert isinstance(telco.X["Contract"].dtype, pd.CategoricalDtype)


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "id,visits,role,won\n" + "".join(
    f"{i},{i % 7},{'cto' if i % 3 else 'dev'},{'yes' if i % 7 > 3 else 'no'}\n" for i in range(1000)
)


@pytest.mark.parametrize(
    "text, args, match",
    [
        (GOOD, ["--label", "converted"], "label column `converted` is not in the table"),
        ("a,won\n1,yes\n2,yes\n3,yes\n", ["--label", "won"], "only one class"),
        ("a,won\n1,yes\n2,maybe\n", ["--label", "won"], r"must be binary .* \['maybe'\]"),
        ("a,won\n", ["--label", "won"], "has no rows"),
        (GOOD, ["--label", "won", "--drop", "nope"], r"`--drop` names columns not in the table: \['nope'\]"),
        (
            GOOD,
            ["--label", "won", "--id", "id", "--drop", "visits", "--drop", "role"],
            "no feature columns left",
        ),
    ],
)
def test_bad_tables_give_clear_errors(tmp_path: Path, text: str, args: list[str], match: str) -> None:
    result = runner.invoke(app, ["train", "readiness", "--data", str(write(tmp_path, text)), *args, "--json"])
    assert result.exit_code == 2
    assert re.search(match, " ".join(result.output.split())), result.output


def test_missing_file_and_wrong_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "churn", "--data", str(tmp_path / "none.csv"), "--label", "x"])
    assert result.exit_code == 2 and "not found" in result.output
    result = runner.invoke(
        app, ["train", "churn", "--data", str(write(tmp_path, "x", "t.xlsx")), "--label", "x"]
    )
    assert result.exit_code == 2 and ".csv or .parquet" in result.output


def test_small_parquet_table_with_labels_in_words(tmp_path: Path) -> None:
    rows = pd.read_csv(write(tmp_path, GOOD))
    rows["won"] = rows["won"].map({"yes": "True", "no": "false"})
    rows["visits"] = rows["visits"].astype(str).where(rows.index % 10 != 0, " ")  # blank numeric strings
    path = tmp_path / "t.parquet"
    rows.to_parquet(path)
    table = load_table(path, "won", id_column="id")
    assert table.X["visits"].dtype == float and table.X["visits"].isna().sum() == 100
    out = run_json("readiness", "--data", str(path), "--label", "won", "--id", "id", "--cv-folds", "2")
    assert out["n_rows"] == 1000 and out["n_features"] == 2 and out["roc_auc"] > 0.9
    assert len(out["blend_weights"]) == 2 and all(0.0 <= w <= 1.0 for w in out["blend_weights"])


def test_search_option_runs_the_inner_cv_grid(tmp_path: Path) -> None:
    out = run_json(
        "readiness", "--data", str(write(tmp_path, GOOD)), "--label", "won", "--id", "id", "--search",
        "--cv-folds", "2",
    )  # fmt: skip
    assert out["search"] is True and out["n_rows"] == 1000 and out["roc_auc"] > 0.9
    grid = [dict(c) for c in SEARCH_GRID]
    assert len(out["chosen_params"]) == 2 and all(c in grid for c in out["chosen_params"])
    plain = run_json("readiness", "--data", str(write(tmp_path, GOOD)), "--label", "won", "--cv-folds", "2")
    assert "chosen_params" not in plain


@pytest.mark.slow
def test_register_without_timestamps_cross_fits_and_logs_the_search(settings: Settings) -> None:
    """A plain export has no time order: train + valid (80% of rows) go to the scorer together, and the
    inner-CV search's candidates and losses land in the MLflow run."""
    frame = pd.read_csv(io.StringIO(GOOD)).drop(columns="id")
    frame["label"] = (frame.pop("won") == "yes").astype(int)
    params = {"n_estimators": 50, "candidates": SEARCH_GRID[:2]}
    result = train_and_register(frame, kind="readiness", settings=settings, params=params)
    assert result.scorer.calibration_rows_ == 800  # out-of-fold margins of all non-test rows
    search = mlflow_client(settings).download_artifacts(result.run_id, "inner_cv_search.json")
    logged = json.loads(Path(search).read_text())
    assert [c["params"] for c in logged["candidates"]] == [dict(c) for c in SEARCH_GRID[:2]]
    assert logged["best_params"] in [dict(c) for c in SEARCH_GRID[:2]]

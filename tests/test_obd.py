"""The generic ``--log`` mode on the Open Bandit Dataset (Saito et al., arXiv:2008.07146), with CIs.

Published ground-truth CTRs of the full dataset (datasets README, Saito et al. Table 1, "All" campaign):
uniform random 0.35 %, Bernoulli Thompson Sampling 0.50 %. The small samples here have 38-42 clicks per file,
so every comparison is "the published value lies inside our 95 % interval".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ripen.cli import app
from tests.conftest import unavailable

RANDOM_CTR = 0.0035
BTS_CTR = 0.0050
CONTEXT = "position,user_feature_0,user_feature_1,user_feature_2,user_feature_3"

pytestmark = pytest.mark.realdata


def obd_log(datasets_dir: Path, logger: str) -> Path:
    path = datasets_dir / "open_bandit" / logger / "all" / "all.csv"
    if not path.exists():
        unavailable(f"Open Bandit Dataset sample missing at {path}")
    return path


def evaluate(*args: str) -> dict[str, float]:
    result = CliRunner().invoke(app, ["evaluate", "policy", *args, "--n-bootstrap", "300", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_random_log_learned_policy_report(datasets_dir: Path) -> None:
    path = obd_log(datasets_dir, "random")
    out = evaluate(
        "--log", str(path), "--action-col", "item_id", "--reward-col", "click",
        "--propensity-col", "propensity_score", "--context-cols", CONTEXT, "--split", "0.7",
    )  # fmt: skip
    for key in ("policy_value_ips", "policy_value_snips", "policy_value_dr", "logged_value"):
        assert out[f"{key}_ci_low"] <= out[key] <= out[f"{key}_ci_high"]
    assert out["n_eval"] == 3000 and out["n_actions"] == 80
    # the logger's own value on the held-out rows agrees with the published random CTR
    assert out["logged_value_ci_low"] <= RANDOM_CTR <= out["logged_value_ci_high"]
    # the learned policy cannot be told apart from random on 38 clicks: its CI must admit the truth
    assert out["policy_value_dr_ci_low"] <= RANDOM_CTR <= out["policy_value_dr_ci_high"]
    assert 0 < out["ess"] <= 3000


def test_uniform_policy_on_random_log_equals_logged_value_and_constant_propensity_matches(
    datasets_dir: Path,
) -> None:
    path = obd_log(datasets_dir, "random")
    common = ["--log", str(path), "--action-col", "item_id", "--reward-col", "click", "--policy", "uniform"]
    with_col = evaluate(*common, "--propensity-col", "propensity_score")
    constant = evaluate(*common, "--propensity", "0.0125")
    assert with_col["policy_value_ips"] == pytest.approx(with_col["logged_value"])  # all weights are 1
    assert with_col["ess"] == pytest.approx(with_col["n_eval"])
    assert constant["policy_value_ips"] == pytest.approx(with_col["policy_value_ips"])


def test_bts_log_estimates_random_policy_off_policy(datasets_dir: Path) -> None:
    """From Thompson-sampling logs, IPS of the uniform policy must cover the published random CTR; the BTS
    log's own CTR must cover the published BTS CTR."""
    path = obd_log(datasets_dir, "bts")
    out = evaluate(
        "--log", str(path), "--action-col", "item_id", "--reward-col", "click",
        "--propensity-col", "propensity_score", "--policy", "uniform", "--split", "0.01",
    )  # fmt: skip
    assert out["policy_value_ips_ci_low"] <= RANDOM_CTR <= out["policy_value_ips_ci_high"]
    assert out["logged_value_ci_low"] <= BTS_CTR <= out["logged_value_ci_high"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--action-col", "nope", "--reward-col", "click", "--propensity", "0.0125"], "columns ['nope']"),
        (["--action-col", "item_id", "--reward-col", "click"], "exactly one of"),
        (["--action-col", "item_id", "--reward-col", "click", "--propensity", "0"], "must be in (0, 1]"),
    ],
)
def test_bad_log_options_fail_with_a_message(datasets_dir: Path, args: list[str], message: str) -> None:
    path = obd_log(datasets_dir, "random")
    result = CliRunner().invoke(app, ["evaluate", "policy", "--log", str(path), *args, "--json"])
    assert result.exit_code == 2
    assert message in result.stderr

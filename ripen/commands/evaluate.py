"""`ripen evaluate policy`: off-policy evaluation on ripen's decision log or on any logged bandit table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

evaluate_app = typer.Typer(help="Evaluate policies and models offline.", no_args_is_help=True)


def _split_cols(values: list[str] | None) -> list[str]:
    """``--context-cols a,b --context-cols c`` -> [a, b, c]."""
    return [c.strip() for v in values or [] for c in v.split(",") if c.strip()]


@evaluate_app.command("policy")
def policy(
    log_file: Annotated[
        Path | None,
        typer.Option("--log", help="A logged bandit table (CSV/Parquet); default: the decision log."),
    ] = None,
    action_col: Annotated[str | None, typer.Option(help="Column with the logged action.")] = None,
    reward_col: Annotated[str | None, typer.Option(help="Column with the observed reward.")] = None,
    propensity_col: Annotated[
        str | None, typer.Option(help="Column with the logging policy's probability of the logged action.")
    ] = None,
    propensity: Annotated[
        float | None, typer.Option(help="One logging probability for every row (uniform logger).")
    ] = None,
    context_cols: Annotated[
        list[str] | None, typer.Option(help="Context columns (comma-separated or repeated); text is one-hot.")
    ] = None,
    split: Annotated[
        float, typer.Option(help="Share of the log (in order) to learn on; the rest evaluates.")
    ] = 0.7,
    policy_kind: Annotated[
        str, typer.Option("--policy", help="Policy to learn: igw, epsilon-greedy, greedy or uniform.")
    ] = "igw",
    gamma: Annotated[float, typer.Option(help="IGW exploration: larger explores less.")] = 100.0,
    epsilon: Annotated[float, typer.Option(help="Epsilon-greedy exploration rate.")] = 0.1,
    alpha: Annotated[float, typer.Option(help="Ridge penalty of the reward model.")] = 100.0,
    n_bootstrap: Annotated[int, typer.Option(min=10, help="Bootstrap resamples for the CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and the policy.")] = 0,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (decision-log mode).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Estimate a learned policy's value (IPS, SNIPS, DM, DR with CIs) and the logging policy's, with ESS."""
    from typing import cast

    from training.bandit_logs import PolicyKind, evaluate_bandit_log, load_bandit_log

    extra: dict[str, object] = {}
    try:
        if log_file is not None:
            if action_col is None or reward_col is None:
                raise typer.BadParameter("--log needs --action-col and --reward-col")
            data = load_bandit_log(
                log_file,
                action_col=action_col,
                reward_col=reward_col,
                propensity_col=propensity_col,
                propensity=propensity,
                context_cols=_split_cols(context_cols),
            )
            report = evaluate_bandit_log(
                data,
                split=split,
                policy=cast(PolicyKind, policy_kind),
                gamma=gamma,
                epsilon=epsilon,
                alpha=alpha,
                seed=seed,
                n_bootstrap=n_bootstrap,
            )
            extra = {"source": str(log_file), "n_rows": data.n_rows, "n_actions": len(data.action_ids)}
        else:
            from ripen.settings import Settings, get_settings
            from training.policy_training import PolicyTrainingConfig, evaluate_decision_log

            settings = get_settings() if data_dir is None else Settings(data_dir=data_dir)
            config = PolicyTrainingConfig(gamma=gamma, split=split, n_bootstrap=n_bootstrap, seed=seed)
            report, without_reward = evaluate_decision_log(settings, config)
            extra = {"source": "decision_log", "without_reward": without_reward}
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    result = {**report.flat(), **extra, "policy": policy_kind}
    if as_json:
        typer.echo(json.dumps(result))
        return
    for name in ("ips", "snips", "dm", "dr"):
        typer.echo(
            f"{name.upper():>6}: {result[f'policy_value_{name}']:.5f} "
            f"[{result[f'policy_value_{name}_ci_low']:.5f}, {result[f'policy_value_{name}_ci_high']:.5f}]"
        )
    typer.echo(f"logged: {report.logged.value:.5f} [{report.logged.ci_low:.5f}, {report.logged.ci_high:.5f}]")
    typer.echo(
        f"n_eval={report.n_eval} ess={report.ess:.1f}" + (" POOR SUPPORT" if report.poor_support else "")
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(evaluate_app, name="evaluate")

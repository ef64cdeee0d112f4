"""`ripen train policy`: fit a content policy from the decision log, gate and register it (policy issue)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def policy(
    gamma: Annotated[
        float, typer.Option(help="IGW exploration of the new policy: larger explores less.")
    ] = 50.0,
    alpha: Annotated[float, typer.Option(help="Ridge penalty of the reward model.")] = 1.0,
    split: Annotated[float, typer.Option(help="Share of decisions (oldest first) to learn on.")] = 0.7,
    n_bootstrap: Annotated[int, typer.Option(min=10, help="Bootstrap resamples for the CIs.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and the policy.")] = 0,
    join_events: Annotated[bool, typer.Option(help="Join rewards from the event store first.")] = True,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (overrides settings).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit a new policy, estimate it against the champion offline, register it, promote it if DR says so."""
    from ripen.settings import Settings, get_settings
    from training.policy_training import PolicyTrainingConfig, train_policy

    settings = get_settings() if data_dir is None else Settings(data_dir=data_dir)
    settings.ensure_dirs()
    config = PolicyTrainingConfig(gamma=gamma, alpha=alpha, split=split, n_bootstrap=n_bootstrap, seed=seed)
    try:
        result = train_policy(settings, config, join_events=join_events)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    verdict = "promoted to champion" if result.promoted else "registered, not promoted"
    typer.echo(f"ripen-policy v{result.version}: {verdict}: {result.reason}")


def register(train_app: typer.Typer) -> None:
    """Attach `policy` to the `train` group."""
    train_app.command("policy")(policy)

"""`ripen models ...`: list versions with their gate verdicts, show a model card, roll the champion back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from ripen.settings import Settings

models_app = typer.Typer(help="Registered models: versions, cards, rollback.", no_args_is_help=True)

SHORT_NAMES = {"readiness": "ripen-readiness", "churn": "ripen-churn", "policy": "ripen-policy"}

NameArg = Annotated[
    str, typer.Argument(help="readiness, churn, policy, or a full registry name such as ripen-readiness.")
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory of embedded stores (overrides settings).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _settings(data_dir: Path | None) -> Settings:
    from ripen.settings import Settings, get_settings

    return get_settings() if data_dir is None else Settings(data_dir=data_dir)


def _client(data_dir: Path | None) -> MlflowClient:
    from training.tracking import mlflow_client

    return mlflow_client(_settings(data_dir))


def _registry_name(name: str) -> str:
    return SHORT_NAMES.get(name, name)


@models_app.command("list")
def list_versions(name: NameArg, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Versions of NAME, newest first, with aliases and the gate's verdict and reason."""
    from rich.console import Console
    from rich.table import Table

    from training.rollback import version_rows

    rows = version_rows(_client(data_dir), _registry_name(name))
    if as_json:
        typer.echo(json.dumps([row.__dict__ for row in rows]))
        return
    table = Table(title=_registry_name(name))
    for column in ("version", "aliases", "verdict", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.version, ", ".join(row.aliases), row.verdict, row.reason)
    Console().print(table)


@models_app.command("card")
def card(
    name: NameArg,
    version: Annotated[str, typer.Argument(help="Version number, or 'champion'.")] = "champion",
    data_dir: DataDirOpt = None,
) -> None:
    """Print the model card stored with one version of NAME."""
    from mlflow.exceptions import MlflowException

    from training.model_card import load_card
    from training.registry import CHAMPION

    client = _client(data_dir)
    registry_name = _registry_name(name)
    try:
        if version == CHAMPION:
            version = str(client.get_model_version_by_alias(registry_name, CHAMPION).version)
        typer.echo(load_card(registry_name, version))
    except (MlflowException, OSError) as exc:
        typer.echo(f"error: no card for {registry_name} version {version}: {exc}", err=True)
        raise typer.Exit(code=2) from None


@models_app.command("rollback")
def rollback(
    name: NameArg,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Version to make champion; default: the one promoted before the current."),
    ] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move the `champion` alias of NAME back; serving picks the version up on its next reload."""
    from training.rollback import rollback_champion

    try:
        result = rollback_champion(_client(data_dir), _registry_name(name), to)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(result.__dict__))
        return
    typer.echo(f"{result.name}: champion moved from v{result.previous} to v{result.champion}")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(models_app, name="models")

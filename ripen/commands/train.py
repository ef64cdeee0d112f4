"""`ripen train ...`: readiness and churn (models issue) and policy (see ``train_policy.py``)."""

from __future__ import annotations

import typer

from ripen.commands import train_policy

train_app = typer.Typer(help="Train, evaluate, register and gate models.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    train_policy.register(train_app)
    app.add_typer(train_app, name="train")

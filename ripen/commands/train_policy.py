"""`ripen train policy`: fit a content policy from the decision log, gate and register it (policy issue)."""

from __future__ import annotations

import typer


def register(train_app: typer.Typer) -> None:
    """Attach `policy` to the `train` group."""

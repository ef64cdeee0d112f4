"""`ripen train` commands (owned by the train work; filled in as that issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""

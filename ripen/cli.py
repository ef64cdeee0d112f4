"""The ``ripen`` command line: parses arguments and calls library functions, nothing more.

Each command group lives in ``ripen/commands/<group>.py`` and exposes ``register(app)``; heavy imports happen
inside the commands so ``ripen --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ripen.commands import decide, demo, evaluate, events, features, models, serve, simulate, train
from ripen.log_config import configure_logging

app = typer.Typer(
    name="ripen",
    help="Next-best-content for lead and customer nurturing.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help="Log level for structured logs on stderr.")] = "WARNING",
    log_json: Annotated[bool, typer.Option(help="Emit logs as JSON lines.")] = False,
) -> None:
    """ripen: choose the next content block per contact, learn from what they do, tell sales who is ripe."""
    configure_logging(level=log_level, json=log_json)


for _module in (simulate, events, features, train, evaluate, models, serve, demo, decide):
    _module.register(app)

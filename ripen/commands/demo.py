"""`ripen demo`: the end-to-end path on the embedded default (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def demo(
    contacts: Annotated[int, typer.Option(min=10, help="Synthetic contacts to simulate.")] = 2_000,
    days: Annotated[int, typer.Option(min=7, help="Days of journeys to simulate.")] = 180,
    seed: Annotated[int | None, typer.Option(help="Random seed; the settings' seed if omitted.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where the embedded stores live (overrides settings).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary instead of a table.")
    ] = False,
) -> None:
    """Simulate journeys, ingest them into the event store, and report what was done."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ripen.settings import Settings, get_settings
    from training.demo import DemoConfig, run_demo

    settings = get_settings() if data_dir is None else Settings(data_dir=data_dir)
    config = DemoConfig(contacts=contacts, days=days, seed=settings.seed if seed is None else seed)
    console = Console(stderr=True)
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
    ) as bars:

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        report = run_demo(settings, config, progress)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    table = Table(title=f"ripen demo — stores under {report.data_dir}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("what it did")
    for step in report.steps:
        table.add_row(
            step.name, f"{step.seconds:.1f}", ", ".join(f"{k}={v}" for k, v in step.numbers.items())
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Attach `demo` to the root app."""
    app.command("demo")(demo)

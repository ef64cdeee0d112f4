"""`ripen simulate`: run the journey simulator and write events.parquet, profiles.parquet and catalog.json."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

import typer

PolicyName = Literal["fixed", "random", "aggressive", "oracle"]


def simulate(
    contacts: Annotated[int, typer.Option("--contacts", min=1, help="Number of synthetic contacts.")] = 1_000,
    days: Annotated[int, typer.Option("--days", min=1, help="Number of simulated days.")] = 180,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed; the settings' seed if omitted.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder; <data_dir>/simulation if omitted.")
    ] = None,
    policy: Annotated[
        PolicyName,
        typer.Option(
            "--policy",
            help="Reference policy choosing content: fixed (next block, weekly), random (weekly), "
            "aggressive (a sales offer daily), oracle (true best, weekly).",
        ),
    ] = "fixed",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run summary as one JSON object.")
    ] = False,
) -> None:
    """Simulate journeys; write events, profiles and decisions (Parquet) and catalog.json."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ripen.settings import get_settings
    from training.simulation import (
        AggressiveSalesPolicy,
        FixedRulePolicy,
        JourneySimulator,
        OraclePolicy,
        ReferencePolicy,
        UniformRandomPolicy,
    )

    settings = get_settings()
    sim = JourneySimulator(n_contacts=contacts, n_days=days, seed=settings.seed if seed is None else seed)
    chosen: ReferencePolicy
    if policy == "fixed":
        chosen = FixedRulePolicy()
    elif policy == "random":
        chosen = UniformRandomPolicy(seed=sim.seed)
    elif policy == "aggressive":
        chosen = AggressiveSalesPolicy()
    else:
        chosen = OraclePolicy(simulator=sim)
    out_dir = out if out is not None else settings.data_dir / "simulation"
    console = Console(stderr=True)
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
    ) as bar:
        task = bar.add_task("days", total=days)
        result = sim.run(chosen, progress=lambda _day: bar.advance(task))
    paths = result.write(out_dir)
    summary = asdict(result.summary)
    if as_json:
        typer.echo(json.dumps({**summary, "policy": policy, "seed": sim.seed, "out": str(out_dir)}))
        return
    console.print(
        f"{summary['n_contacts']} contacts x {summary['n_days']} days, policy {policy}, seed {sim.seed}: "
        f"{summary['n_events']} events, {summary['n_sends']} sends, reward {summary['reward']:.1f}, "
        f"{summary['requests']} requests, {summary['purchases']} purchases, "
        f"{summary['unsubscribes']} unsubscribes"
    )
    for path in paths.values():
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("simulate")(simulate)

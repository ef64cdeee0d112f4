"""`ripen demo`: the end-to-end path on the embedded default, then the HTTP API on the stores it filled.

Like `ripen serve`, this command is a composition root: it may import ``serving`` (the key file and the app).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ripen.settings import Settings
    from training.demo import DemoReport

DEMO_KEY_LABEL = "ripen demo"
"""Label of the key the demo creates; a re-run revokes the previous demo keys before creating a new one."""


@dataclass(frozen=True)
class DemoAccess:
    """How to reach the demo server: its URL, a key with every scope and ready-made examples."""

    url: str
    api_key: str
    key_id: str
    contact_id: str
    recommend_curl: str
    contact_card: str
    contact_card_curl: str


def demo_access(settings: Settings, host: str, port: int, contact_id: str) -> DemoAccess:
    """Create a key with all scopes in the server's key file (revoking earlier demo keys) and the examples."""
    from serving.auth import KeyFile, Scope

    keys = KeyFile.in_dir(settings.data_dir)
    for old in keys.load().keys:
        if old.label == DEMO_KEY_LABEL:
            keys.revoke(old.key_id)
    key, token = keys.create([s.value for s in Scope], label=DEMO_KEY_LABEL)
    url = f"http://{host}:{port}"
    card = f"{url}/sales/contacts/{contact_id}"
    body = json.dumps({"contact_id": contact_id, "channel": "email", "n_slots": 3})
    curl = " ".join(
        [
            "curl -s -X POST",
            f"{url}/v1/recommend",
            "-H",
            shlex.quote(f"X-API-Key: {token}"),
            "-H",
            shlex.quote("Content-Type: application/json"),
            "-d",
            shlex.quote(body),
        ]
    )
    return DemoAccess(
        url=url,
        api_key=token,
        key_id=key.key_id,
        contact_id=contact_id,
        recommend_curl=curl,
        contact_card=card,
        contact_card_curl=f"curl -s -H {shlex.quote(f'X-API-Key: {token}')} {card} > card.html",
    )


def _print_report(report: DemoReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ripen demo — stores under {report.data_dir}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("what it did")
    for step in report.steps:
        table.add_row(
            step.name, f"{step.seconds:.1f}", ", ".join(f"{k}={v}" for k, v in step.numbers.items())
        )
    console = Console()
    console.print(table)
    champions = ", ".join(
        f"{name}@champion=v{v}" if v else f"{name}: none" for name, v in report.champions.items()
    )
    console.print(f"champions: {champions}")


def _print_access(access: DemoAccess) -> None:
    typer.echo(
        "\n".join(
            [
                f"Serving on {access.url} (OpenAPI at {access.url}/docs); Ctrl-C stops it.",
                f"Demo API key (all scopes, shown once): {access.api_key}",
                f"Recommend for contact {access.contact_id}:",
                f"  {access.recommend_curl}",
                f"Contact card {access.contact_card} (key in the X-API-Key header; docs/api.md):",
                f"  {access.contact_card_curl}",
            ]
        )
    )


def demo(
    contacts: Annotated[int, typer.Option(min=10, help="Synthetic contacts to simulate.")] = 2_000,
    days: Annotated[int, typer.Option(min=7, help="Days of journeys to simulate.")] = 180,
    seed: Annotated[int | None, typer.Option(help="Random seed; the settings' seed if omitted.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where the embedded stores live (overrides settings).")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the HTTP API on the demo's stores afterwards.")
    ] = True,
    host: Annotated[str, typer.Option(help="Interface the demo server listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port of the demo server.")] = 8000,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary on stdout instead of a table.")
    ] = False,
) -> None:
    """Simulate journeys, ingest them, log the decisions, materialize features, train readiness, churn and
    the content policy, then serve the API with a demo key (``--no-serve`` stops before serving)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from ripen.settings import Settings, get_settings
    from training.demo import DemoConfig, run_demo

    settings = get_settings() if data_dir is None else Settings(data_dir=data_dir)
    config = DemoConfig(contacts=contacts, days=days, seed=settings.seed if seed is None else seed)
    console = Console(stderr=True)
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:<11}"),
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

        # Feast and MLflow print to stdout; stdout is kept for the summary alone.
        with contextlib.redirect_stdout(sys.stderr):
            report = run_demo(settings, config, progress)
    summary = report.as_dict()
    access = None
    if serve:
        if report.contact_id is None:
            typer.echo("error: the simulated world has no lead in nurturing to show; simulate more", err=True)
            raise typer.Exit(code=2)
        access = demo_access(settings, host, port, report.contact_id)
        summary["serve"] = asdict(access)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _print_report(report)
        if access is not None:
            _print_access(access)
    if access is None:
        return
    sys.stdout.flush()
    import uvicorn

    from serving.main import create_app

    # access_log=False: our middleware logs route templates; uvicorn's would log raw paths and queries.
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_config=None)


def register(app: typer.Typer) -> None:
    """Attach `demo` to the root app."""
    app.command("demo")(demo)

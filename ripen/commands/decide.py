"""`ripen decide`: next actions for a whole audience, in resumable chunks (see docs/batch.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ripen.settings import Settings


def _settings(data_dir: Path | None) -> Settings:
    from ripen.settings import Settings, get_settings

    return get_settings() if data_dir is None else Settings(data_dir=data_dir)


def decide(
    channel: Annotated[str, typer.Option(help="Channel the decisions are for (email, web, ...).")],
    audience: Annotated[
        Path | None,
        typer.Option(help="CSV (header) or Parquet with contact_id and optional program, stage columns."),
    ] = None,
    segment: Annotated[
        str | None,
        typer.Option(
            help="A DuckDB WHERE condition over the profiles, e.g. \"lifecycle_stage = 'information'\"."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Decisions file: .parquet, .csv or .jsonl (default: in the run dir).")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="Resume or name a run; default: audience + channel + UTC day.")
    ] = None,
    chunk_size: Annotated[int | None, typer.Option(min=1, help="Contacts per checkpointed chunk.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Processes deciding chunks in parallel (one per core helps; each loads the models)."
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Data directory of embedded stores (overrides settings)."),
    ] = None,
) -> None:
    """Decide the next action for every contact of an audience; re-running the same run resumes it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from features.decision_log import open_settings_decision_log
    from features.event_store import open_settings_event_store
    from features.schemas import Channel
    from training.batch_decisions import (
        AudienceError,
        open_resources,
        output_format,
        read_audience,
        run_batch,
        segment_audience,
    )

    if (audience is None) == (segment is None):
        raise typer.BadParameter("give exactly one of --audience FILE or --segment EXPR")
    try:
        chosen = Channel(channel)
    except ValueError:
        raise typer.BadParameter(
            f"must be one of {', '.join(c.value for c in Channel)}", param_hint="--channel"
        ) from None
    if out is not None:
        try:
            output_format(out)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--out") from None
    settings = _settings(data_dir)
    settings.ensure_dirs()
    console = Console(stderr=as_json)
    try:
        if audience is not None:
            contacts = read_audience(audience)
        else:
            with open_settings_event_store(settings) as store:
                contacts = segment_audience(store, segment or "")
    except AudienceError as exc:
        raise typer.BadParameter(str(exc), param_hint="--audience" if audience else "--segment") from None
    if workers > 1:  # each worker opens its own stores; create the log's tables once, before they race
        open_settings_decision_log(settings).close()
    resources = open_resources(settings) if workers == 1 else None
    columns = (TextColumn("[bold]decide"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("decide", total=len(contacts))
            report = run_batch(
                settings,
                contacts,
                channel=chosen,
                resources=resources,
                out=out,
                run_id=run_id,
                chunk_size=chunk_size,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                pause_collector=True,  # this process only runs the batch (the API's jobs do not pause)
                workers=workers,
                open_worker_resources=partial(open_resources, settings),
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    finally:
        if resources is not None:
            resources.close()
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=2))
        return
    actions = ", ".join(f"{n} {a}" for a, n in sorted(report.actions.items()))
    console.print(
        f"{report.contacts} contacts ({report.duplicates} duplicate rows dropped): {report.decided} decided "
        f"({actions}), {report.rejected} rejected, {report.cold_start} cold start; "
        f"{report.resumed_chunks}/{report.chunks} chunks resumed; written to {report.out} "
        f"in {report.seconds:.1f} s by {report.workers} process(es) (run {report.run_id})"
    )


def register(app: typer.Typer) -> None:
    app.command("decide")(decide)

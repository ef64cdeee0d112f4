"""`ripen events ...`: load engagement events from files into the event store, export them for offline use."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ripen.settings import Settings

events_app = typer.Typer(help="Ingest and export engagement events.", no_args_is_help=True)

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory of embedded stores (overrides settings).")
]
StartOpt = Annotated[
    datetime | None, typer.Option("--start", help="Only events at or after this UTC time (ISO 8601).")
]
EndOpt = Annotated[
    datetime | None, typer.Option("--end", help="Only events before this UTC time (ISO 8601).")
]


def _settings(data_dir: Path | None) -> Settings:
    from ripen.settings import Settings, get_settings

    return get_settings() if data_dir is None else Settings(data_dir=data_dir)


def _utc(value: datetime | None) -> datetime | None:
    """Typer parses ISO times as naive; the CLI reads them as UTC (the store only knows UTC)."""
    from datetime import UTC

    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@events_app.command("ingest")
def ingest(
    file: Annotated[
        Path, typer.Argument(help="Events as JSON lines (.jsonl) or Parquet (.parquet).", exists=True)
    ],
    data_dir: DataDirOpt = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per committed batch.")] = 1_000,
    show_errors: Annotated[int, typer.Option(min=0, help="How many rejected events to list.")] = 10,
) -> None:
    """Validate and append events from FILE; re-running is safe (stored events come back as duplicates)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from features.event_store import open_settings_event_store
    from features.ingest import count_records, ingest_file

    console = Console()
    settings = _settings(data_dir)
    try:
        total = count_records(file)
        columns = (TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with open_settings_event_store(settings) as store, Progress(*columns, console=console) as progress:
            task = progress.add_task("ingest", total=total)
            summary = ingest_file(
                store,
                file,
                batch_size=batch_size,
                on_batch=lambda n: progress.advance(task, n),
                keep_errors=show_errors,
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console.print(
        f"{summary.records} events read: {summary.stored} stored, {summary.duplicates} duplicates, "
        f"{summary.rejected} rejected"
    )
    for error in summary.first_errors:
        console.print(f"  rejected {error.message}", markup=False)
    if summary.rejected > len(summary.first_errors):
        console.print(f"  ... and {summary.rejected - len(summary.first_errors)} more rejected")


@events_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="Parquet file to write (schema in docs/schemas.md).")],
    data_dir: DataDirOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
) -> None:
    """Write every event attributable to a contact (identity stitching applied) to one Parquet file."""
    from rich.console import Console

    from features.event_store import open_settings_event_store

    console = Console()
    settings = _settings(data_dir)
    with open_settings_event_store(settings) as store, console.status("exporting events"):
        rows = store.export_parquet(out, start=_utc(start), end=_utc(end))
    console.print(f"{rows} events written to {out}")


@events_app.command("erase")
def erase(
    contact_id: Annotated[str, typer.Argument(help="The contact to erase (right to erasure).")],
    data_dir: DataDirOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a contact's events (stitched anonymous ones too), links and profile; keep an audit row."""
    from rich.console import Console

    from features.event_store import open_settings_event_store

    if not yes:
        typer.confirm(f"Erase every trace of contact {contact_id}?", abort=True)
    with open_settings_event_store(_settings(data_dir)) as store:
        report = store.erase_contact(contact_id)
    Console().print(
        f"erased: {report.events_deleted} events, {report.identity_links_deleted} identity links, "
        f"profile {'deleted' if report.profile_deleted else 'not found'}; audit hash {report.contact_hash}"
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(events_app, name="events")

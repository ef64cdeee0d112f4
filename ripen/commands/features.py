"""`ripen features ...`: build the offline feature tables, materialize them online, show one contact's
features."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from features.schemas import ContactProfile, ContentBlock
    from ripen.settings import Settings

features_app = typer.Typer(
    help="Feature store: offline tables, materialization, lookups.", no_args_is_help=True
)

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory of embedded stores (overrides settings).")
]


def _settings(data_dir: Path | None) -> Settings:
    from ripen.settings import Settings, get_settings

    return get_settings() if data_dir is None else Settings(data_dir=data_dir)


def _load_catalog(path: Path) -> list[ContentBlock]:
    """Content blocks from a JSON list (or an object with a ``blocks``/``catalog`` list)."""
    from features.schemas import ContentBlock

    data: Any = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get("blocks", data.get("catalog", data.get("content", [])))
    if not isinstance(data, list):
        raise typer.BadParameter(f"{path} must hold a JSON list of content blocks", param_hint="--catalog")
    return [ContentBlock.model_validate(item) for item in data]


def _load_profiles(path: Path) -> list[ContactProfile]:
    """Profiles from JSON lines, or Parquet whose columns are profile fields (``consent_<channel>``
    flattened)."""
    from features.schemas import Channel, ContactProfile

    if path.suffix == ".jsonl":
        return [
            ContactProfile.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()
        ]
    import pandas as pd

    profiles = []
    fields = set(ContactProfile.model_fields)
    for row in pd.read_parquet(path).to_dict("records"):
        clean = {k: (None if _missing(v) else v) for k, v in row.items()}
        at = clean.get("updated_at") or datetime.now(UTC)
        consents = {
            c.value: {"granted": bool(clean[f"consent_{c.value}"]), "at": at}
            for c in Channel
            if clean.get(f"consent_{c.value}") is not None
        }
        values = {k: v for k, v in clean.items() if k in fields and k not in ("consents", "tracking_consent")}
        if isinstance(clean.get("tracking_consent"), bool):
            values["tracking_consent"] = {"granted": clean["tracking_consent"], "at": at}
        profiles.append(ContactProfile.model_validate({**values, "consents": consents}))
    return profiles


def _missing(value: object) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


@features_app.command("materialize")
def materialize(
    events: Annotated[Path, typer.Option("--events", exists=True, help="Events export (Parquet file).")],
    catalog: Annotated[
        Path | None, typer.Option("--catalog", exists=True, help="Content blocks as JSON (stage affinity).")
    ] = None,
    profiles: Annotated[
        Path | None, typer.Option("--profiles", exists=True, help="Contact profiles (.jsonl or .parquet).")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Aggregate events into offline feature tables, register them with Feast and load the online store."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from features.store import FeatureStoreService

    settings = _settings(data_dir)
    store = FeatureStoreService(settings)
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        step = bar.add_task("reading catalog and profiles", total=None)
        if catalog is not None:
            store.write_contents(_load_catalog(catalog))
        loaded = _load_profiles(profiles) if profiles is not None else []
        bar.update(step, description=f"aggregating {events.name}")
        tables = store.build_offline(events, loaded)
        bar.update(step, description="applying feature definitions")
        store.apply()
        views = store.feast.list_feature_views()
        task = bar.add_task("materializing", total=len(views))
        bar.update(step, description="materializing")
        store.materialize(
            progress=lambda name: bar.update(task, advance=1, description=f"materialized {name}")
        )
    typer.echo(
        f"{tables.events:,} events -> {tables.contact_rows:,} contact rows, "
        f"{tables.content_rows:,} content rows, "
        f"{tables.account_rows:,} account rows; online store: {settings.online_store}"
    )


@features_app.command("show")
def show(
    contact_id: Annotated[str, typer.Argument(help="Contact to look up.")],
    content: Annotated[str, typer.Option("--content", help="Comma-separated candidate content ids.")] = "",
    sdk: Annotated[
        bool, typer.Option("--sdk", help="Read through the Feast SDK instead of the fast path.")
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Print the decision features of one contact (decayed to now) as JSON."""
    from dataclasses import asdict

    from features.store import FeatureStoreService

    store = FeatureStoreService(_settings(data_dir))
    ids = [c.strip() for c in content.split(",") if c.strip()]
    features = store.online_features(contact_id, ids, fast=not sdk)
    payload = asdict(features)
    payload["consumed_content_ids"] = sorted(features.consumed_content_ids)
    payload["counters_now"] = {k: v for k, v in features.counters_now.items() if v}
    typer.echo(json.dumps(payload, indent=2, default=str))


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(features_app, name="features")

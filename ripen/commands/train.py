"""`ripen train ...`: readiness and churn (models issue) and policy (see ``train_policy.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from ripen.commands import train_policy

train_app = typer.Typer(help="Train, evaluate, register and gate models.", no_args_is_help=True)

ScorerKind = Literal["readiness", "churn"]

DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="CSV or Parquet table, one row per contact or snapshot. Without it: train from the project's "
        "event store through the feature store (point-in-time snapshots).",
    ),
]
LabelOpt = Annotated[
    str | None, typer.Option("--label", help="Binary label column (yes/no, true/false, 1/0); needs --data.")
]
HorizonOpt = Annotated[
    int | None,
    typer.Option(
        "--horizon-days", min=1, help="Label window without --data (default 30 readiness, 90 churn)."
    ),
]
EveryOpt = Annotated[int, typer.Option("--every-days", min=1, help="Snapshot grid without --data.")]
PerContactOpt = Annotated[
    int, typer.Option("--max-per-contact", min=1, help="Snapshots per contact at most, without --data.")
]
DropOpt = Annotated[
    list[str] | None,
    typer.Option("--drop", help="Column to leave out (repeatable), e.g. leaky sales-filled ones."),
]
IdOpt = Annotated[str | None, typer.Option("--id", help="Identifier column: kept out of the features.")]
TimeOpt = Annotated[
    str | None,
    typer.Option("--time", help="Snapshot time column: time-forward folds instead of stratified ones."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")]
DaskOpt = Annotated[
    str | None,
    typer.Option("--dask", help="Dask scheduler address: train through LightGBM's Dask estimator."),
]
FoldsOpt = Annotated[int, typer.Option("--cv-folds", min=2, help="Number of cross-validation folds.")]
RegisterOpt = Annotated[
    bool, typer.Option("--register", help="Also fit on a time split, log to MLflow, register and gate.")
]
SearchOpt = Annotated[
    bool,
    typer.Option(
        "--search",
        help="Compare a small grid of LightGBM settings (models.scorer.SEARCH_GRID) on inner folds of each "
        "training part and keep the lowest log loss; about 3x the training time. Tables under 100k rows.",
    ),
]
BaselineOpt = Annotated[
    str | None, typer.Option("--baseline", help="Column holding the points score, evaluated side by side.")
]


def _run(
    kind: ScorerKind,
    data: Path,
    label: str,
    drop: list[str] | None,
    id_column: str | None,
    time_column: str | None,
    as_json: bool,
    dask: str | None,
    folds: int,
    register: bool,
    baseline: str | None,
    search: bool = False,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from models.scorer import SEARCH_GRID
    from ripen.settings import get_settings
    from training.scorer_training import cross_validate, train_and_register
    from training.tables import load_table

    params = {"candidates": SEARCH_GRID} if search else None

    console = Console(stderr=True)
    keep_out = [c for c in (time_column, baseline) if c]
    try:
        table = load_table(data, label, drop=[*(drop or []), *keep_out], id_column=id_column)
        raw = None
        if keep_out:
            import pandas as pd

            from training.tables import read_table

            raw = read_table(data)
            raw = raw[raw[label].notna()].reset_index(drop=True)
        times = raw[time_column] if raw is not None and time_column else None
        base = raw[baseline].astype(float) if raw is not None and baseline else None
        with console.status(f"{folds}-fold cross-validation of the {kind} scorer on {table.X.shape[0]} rows"):
            report = cross_validate(
                table.X,
                table.y,
                folds=folds,
                times=times,
                baseline=base,
                seed=get_settings().seed,
                dask_scheduler=dask,
                params=params,
            )
        summary = {"model": kind, "data": str(data), "label": label, "search": search, **report.summary()}
        if register:
            frame = pd.concat([table.X, table.y.rename("label")], axis=1)
            if times is not None:
                frame["snapshot_time"] = pd.to_datetime(times, utc=True).to_numpy()
            if base is not None:
                frame["baseline_score"] = base.to_numpy()
            result = train_and_register(
                frame, kind=kind, settings=get_settings(), dask_scheduler=dask, params=params
            )
            summary["registered_version"] = result.version
            summary["promoted"] = result.gate.promoted
            summary["gate_reason"] = result.gate.reason
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(summary))
        return
    out = Table(title=f"{kind}: {report.scheme} {folds}-fold CV on {data.name}")
    out.add_column("metric")
    out.add_column("mean ± sd")
    for name in ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift"):
        if name in summary:
            out.add_row(name, f"{summary[name]:.4f} ± {summary[name + '_sd']:.4f}")
        if f"baseline_{name}" in summary:
            out.add_row(
                f"points score {name}",
                f"{summary['baseline_' + name]:.4f} ± {summary['baseline_' + name + '_sd']:.4f}",
            )
    Console().print(out)
    typer.echo(f"rows={summary['n_rows']} features={summary['n_features']}")


def _run_from_stores(
    kind: ScorerKind, sampling_days: tuple[int | None, int, int], as_json: bool, dask: str | None
) -> None:
    """Train on point-in-time snapshots from the project's own stores, register and gate."""
    from rich.console import Console
    from rich.table import Table

    from ripen.settings import get_settings
    from training.training_sets import SnapshotSampling, train_from_stores

    console = Console(stderr=True)
    horizon_days, every_days, max_per_contact = sampling_days
    try:
        sampling = SnapshotSampling(
            every_days=every_days, max_per_contact=max_per_contact, horizon_days=horizon_days
        )
        with console.status(f"building the {kind} training set from the event and feature stores"):
            outcome = train_from_stores(get_settings(), kind, sampling, dask_scheduler=dask)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    summary = outcome.summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    out = Table(title=f"{kind}: model vs points score on the test window {outcome.result.window.test_label}")
    out.add_column("metric")
    out.add_column("model")
    out.add_column("points score")
    for name in ("roc_auc", "pr_auc", "brier", "top_decile_lift"):
        base = summary.get(f"baseline_{name}")
        out.add_row(name, f"{summary[name]:.4f}", "" if base is None else f"{base:.4f}")
    Console().print(out)
    typer.echo(
        f"rows={summary['n_rows']} version={summary['registered_version']} promoted={summary['promoted']}"
    )


def _command(kind: ScorerKind) -> None:
    def command(
        data: DataOpt = None,
        label: LabelOpt = None,
        drop: DropOpt = None,
        id_column: IdOpt = None,
        time_column: TimeOpt = None,
        as_json: JsonOpt = False,
        dask: DaskOpt = None,
        cv_folds: FoldsOpt = 5,
        register: RegisterOpt = False,
        baseline: BaselineOpt = None,
        search: SearchOpt = False,
        horizon_days: HorizonOpt = None,
        every_days: EveryOpt = 7,
        max_per_contact: PerContactOpt = 4,
    ) -> None:
        if data is None and label is not None:
            typer.echo("error: --label names a column of a table: give the table with --data", err=True)
            raise typer.Exit(code=2)
        if data is None:
            _run_from_stores(kind, (horizon_days, every_days, max_per_contact), as_json, dask)
            return
        if label is None:
            typer.echo("error: --label is required with --data (the binary label column)", err=True)
            raise typer.Exit(code=2)
        options = (id_column, time_column, as_json, dask, cv_folds, register, baseline, search)
        _run(kind, data, label, drop, *options)

    command.__doc__ = (
        f"Train the {kind} scorer on the project's stores and gate it; or, with --data, cross-validate it "
        "on your own table (with --register also log, register and gate it)."
    )
    train_app.command(kind)(command)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    _command("readiness")
    _command("churn")
    train_policy.register(train_app)
    app.add_typer(train_app, name="train")

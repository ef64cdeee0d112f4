"""``ripen serve`` (the HTTP API under uvicorn) and ``ripen keys`` (create, list, revoke API keys)."""

from __future__ import annotations

from typing import Annotated

import typer

keys_app = typer.Typer(help="API keys: stored hashed under the data folder, shown once on creation.")


def register(app: typer.Typer) -> None:
    """Attach ``serve`` and the ``keys`` group to the root app."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each opens its own stores).")] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) until interrupted."""
    import uvicorn

    from ripen.settings import get_settings
    from serving.main import create_app

    if workers == 1:
        # access_log=False: our middleware logs route templates; uvicorn's would log raw paths and queries.
        uvicorn.run(create_app(get_settings()), host=host, port=port, access_log=False, log_config=None)
    else:
        from serving.metrics import multiprocess_metrics

        with multiprocess_metrics():  # /metrics sums every worker's counts
            uvicorn.run(
                "serving.main:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                access_log=False,
                log_config=None,
            )


@keys_app.command("create")
def create_key(
    scope: Annotated[list[str], typer.Option(help="engine, sales or admin; repeat for several.")],
    label: Annotated[str | None, typer.Option(help="A note on who uses the key (no personal data).")] = None,
) -> None:
    """Create a key, store only its hash, print the key once: it cannot be shown again."""
    from ripen.settings import get_settings
    from serving.auth import KeyFile

    settings = get_settings()
    try:
        key, token = KeyFile.in_dir(settings.data_dir).create(scope, label=label)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scope") from exc
    typer.echo(token)
    typer.echo(f"key id {key.key_id}, scopes {', '.join(sorted(key.scopes))}; store the key now.", err=True)


@keys_app.command("list")
def list_keys() -> None:
    """Key ids, scopes and creation times (never the keys, which are not stored)."""
    from ripen.settings import get_settings
    from serving.auth import KeyFile

    ring = KeyFile.in_dir(get_settings().data_dir).load()
    for key in ring.keys:
        created = key.created_at.isoformat() if key.created_at else "-"
        typer.echo(f"{key.key_id}\t{','.join(sorted(key.scopes))}\t{created}\t{key.label or ''}")


@keys_app.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(help="The id shown by `ripen keys list`.")]) -> None:
    """Remove a key; running servers stop accepting it within a second."""
    from ripen.settings import get_settings
    from serving.auth import KeyFile

    if not KeyFile.in_dir(get_settings().data_dir).revoke(key_id):
        raise typer.BadParameter(f"no key with id {key_id!r}", param_hint="KEY_ID")
    typer.echo(f"revoked {key_id}")

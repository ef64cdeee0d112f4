"""Rolling a registered model back: move the ``champion`` alias to an earlier version, with an audit trail.

The gate's verdicts live in version tags (``gate.verdict``), so "the version promoted before the current one"
is the newest earlier version whose verdict is ``promoted``. The rollback is recorded as tags on both versions
(``rollback.to`` on the one left, ``rollback.from`` on the new champion); serving loads the alias on reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

log = structlog.get_logger(__name__)

CHAMPION = "champion"


@dataclass(frozen=True)
class VersionRow:
    """One registered version as the runbook shows it."""

    version: str
    aliases: tuple[str, ...]
    verdict: str
    reason: str


@dataclass(frozen=True)
class Rollback:
    """Where the ``champion`` alias of ``name`` was and where it is now."""

    name: str
    previous: str
    champion: str


def version_rows(client: MlflowClient, name: str) -> list[VersionRow]:
    """Every version of ``name``, newest first, with its aliases and gate verdict."""
    versions = client.search_model_versions(f"name='{name}'")
    aliases: dict[str, list[str]] = {}
    if versions:  # search results leave aliases out on some backends; the registered model has them all
        for alias, version in client.get_registered_model(name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
    rows = [
        VersionRow(
            version=str(v.version),
            aliases=tuple(sorted(aliases.get(str(v.version), []))),
            verdict=v.tags.get("gate.verdict", ""),
            reason=v.tags.get("gate.reason", ""),
        )
        for v in versions
    ]
    return sorted(rows, key=lambda r: -int(r.version))


def rollback_champion(client: MlflowClient, name: str, to: str | None = None) -> Rollback:
    """Point ``champion`` at ``to``, or at the newest earlier version the gate promoted; tag both versions."""
    try:
        current = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        raise ValueError(f"{name} has no '{CHAMPION}' to roll back") from None
    rows = {r.version: r for r in version_rows(client, name)}
    if to is None:
        earlier = [r for r in rows.values() if int(r.version) < int(current) and r.verdict == "promoted"]
        if not earlier:
            raise ValueError(f"{name} has no version promoted before champion v{current}: give --to")
        to = max(earlier, key=lambda r: int(r.version)).version
    if to not in rows:
        raise ValueError(f"`--to` must be a version of {name} ({', '.join(sorted(rows, key=int))}), got {to}")
    if to == current:
        raise ValueError(f"{name} v{to} already is the champion")
    at = datetime.now(UTC).isoformat()
    client.set_registered_model_alias(name, CHAMPION, to)
    client.set_model_version_tag(name, current, "rollback.to", f"{to} at {at}")
    client.set_model_version_tag(name, to, "rollback.from", f"{current} at {at}")
    log.info("champion_rolled_back", model=name, previous=current, champion=to)
    return Rollback(name=name, previous=current, champion=to)

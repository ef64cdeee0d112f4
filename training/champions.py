"""The champions a decision uses: readiness and churn scorers and the content policy, as one snapshot.

``load_champions`` reads the ``champion`` aliases from the MLflow registry and loads only what changed: a
version already in use is kept as it is, so polling it is cheap. Every champion loaded from the registry is
copied to a disk cache (``data_dir/champions``: the pyfunc directory and a manifest), and when the registry
cannot be reached at start the cached champions serve. A model that cannot be loaded (corrupted,
incompatible) is refused and remembered: the version in use, or the fallback (points score, no churn risk,
cold-start policy), keeps serving. Serving swaps the whole snapshot at once, so a request never mixes models
of two loads.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import structlog

from models.policy.base import ContentPolicy
from models.policy.inverse_gap_weighting import InverseGapWeighting
from ripen.settings import Settings

if TYPE_CHECKING:  # the registry imports MLflow: loaded only when champions are
    from mlflow import MlflowClient

    from training.registry import LoadedScorer

log = structlog.get_logger(__name__)

POINTS_VERSION = "points"
NO_CHURN_VERSION = "none"
COLD_START_POLICY = "cold-start"
READINESS_MODEL = "ripen-readiness"
CHURN_MODEL = "ripen-churn"
POLICY_MODEL = "ripen-policy"
MANIFEST = "manifest.json"
REGISTRY_PROBE_TIMEOUT_SECONDS = 3

ChampionSource = Literal["registry", "cache", "none"]
"""Where the snapshot's models came from: the registry, the disk cache (registry unreachable), or nowhere."""

Model = TypeVar("Model")


@dataclass(frozen=True)
class Champions:
    """The models in use; ``None`` scorers mean the fallback (points score, churn risk 0).

    ``refused`` holds ``name/version`` of versions that failed their checks: they are not tried again.
    """

    readiness: LoadedScorer | None = None
    churn: LoadedScorer | None = None
    policy: ContentPolicy = field(default_factory=InverseGapWeighting)
    policy_version: str = COLD_START_POLICY
    source: ChampionSource = "none"
    refused: frozenset[str] = frozenset()

    @property
    def readiness_version(self) -> str:
        return f"{READINESS_MODEL}/{self.readiness.version}" if self.readiness else POINTS_VERSION

    @property
    def churn_version(self) -> str:
        return f"{CHURN_MODEL}/{self.churn.version}" if self.churn else NO_CHURN_VERSION

    @property
    def versions(self) -> dict[str, str]:
        """What the snapshot serves, by role (for logs, metrics and ``/readyz``)."""
        return {
            "readiness": self.readiness_version,
            "churn": self.churn_version,
            "policy": self.policy_version,
        }


@dataclass(frozen=True)
class CachedModel:
    """A champion's local copy, as its manifest records it."""

    name: str
    version: str
    loaded_at: str
    path: Path


class ChampionCache:
    """Local copies of champions under ``root/<model name>/v<version>``, one manifest per model name."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def fetch(self, name: str, version: str) -> Path:
        """The local pyfunc directory of ``name`` ``version``, downloaded from the registry if missing."""
        import mlflow

        target = self.root / name / f"v{version}"
        if (target / "MLmodel").exists():
            return target
        staging = self.root / name / f".v{version}.{os.getpid()}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(staging))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # a half-downloaded copy is never under the final name
        return target

    def record(self, name: str, version: str) -> None:
        """Mark ``version`` as the cached champion of ``name`` and drop older copies."""
        manifest = {"name": name, "version": version, "loaded_at": datetime.now(UTC).isoformat()}
        path = self.root / name / MANIFEST
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, path)
        for old in (self.root / name).glob("v*"):
            if old.name != f"v{version}":
                shutil.rmtree(old, ignore_errors=True)

    def discard(self, name: str, version: str) -> None:
        """Remove a refused version's copy, so it can never be served from the cache."""
        shutil.rmtree(self.root / name / f"v{version}", ignore_errors=True)

    def cached(self, name: str) -> CachedModel | None:
        """The cached champion of ``name``, or None when there is none (or its manifest is unreadable)."""
        try:
            manifest = json.loads((self.root / name / MANIFEST).read_text())
            version = str(manifest["version"])
            cached = CachedModel(name, version, str(manifest["loaded_at"]), self.root / name / f"v{version}")
        except (OSError, ValueError, KeyError):
            return None
        return cached if (cached.path / "MLmodel").exists() else None


def champion_cache(settings: Settings) -> ChampionCache:
    return ChampionCache(settings.data_dir / "champions")


def registry_problem(tracking_uri: str) -> str | None:
    """Why the registry cannot be used now (None when it can), checked fast and without MLflow.

    MLflow retries an unreachable database for minutes before failing; serving must not wait that long.
    """
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not path.exists():
            return f"no registry database at {path}"
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return f"registry database unreadable: {exc}"
        return None
    if tracking_uri.startswith(("postgresql://", "postgresql+psycopg://")):
        import psycopg

        try:
            conninfo = tracking_uri.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(conninfo, connect_timeout=REGISTRY_PROBE_TIMEOUT_SECONDS):
                pass
        except psycopg.Error as exc:
            return f"registry database unreachable: {type(exc).__name__}"
        return None
    return None  # other stores (HTTP tracking server): MLflow's own errors tell


def load_champions(settings: Settings, current: Champions | None = None) -> Champions:
    """The registry's champions, loading only versions not in use; ``current`` itself when nothing changed.

    When the registry cannot be reached, ``current`` keeps serving; a process that has loaded nothing yet
    serves the disk cache instead (logged, and ``source == "cache"``).
    """
    current = current or Champions()
    cache = champion_cache(settings)
    problem = registry_problem(settings.mlflow_tracking_uri)
    if problem is not None:
        if current.source != "none":
            return current
        return _from_cache(cache, current, problem)
    try:
        from training.tracking import mlflow_client

        client = mlflow_client(settings)
    except Exception as exc:  # noqa: BLE001 - the registry is optional for serving
        log.warning("model_registry_unavailable", error=str(exc)[:200])
        return current if current.source != "none" else _from_cache(cache, current, str(exc)[:200])
    return _from_registry(client, cache, current)


def _from_registry(client: MlflowClient, cache: ChampionCache, current: Champions) -> Champions:
    from training.registry import champion_version, load_version

    refused = set(current.refused)

    def scorer(name: str, in_use: LoadedScorer | None) -> LoadedScorer | None:
        version = champion_version(client, name)
        if version is None or (in_use is not None and in_use.version == version):
            return in_use
        return _load_new(
            cache, name, version, lambda path: load_version(name, version, uri=str(path)), in_use, refused
        )

    readiness = scorer(READINESS_MODEL, current.readiness)
    churn = scorer(CHURN_MODEL, current.churn)
    policy, policy_version = current.policy, current.policy_version
    version = champion_version(client, POLICY_MODEL)
    if version is not None and f"{POLICY_MODEL}/{version}" != policy_version:
        loaded = _load_new(cache, POLICY_MODEL, version, _policy_from_dir, None, refused)
        if loaded is not None:
            policy, policy_version = loaded, f"{POLICY_MODEL}/{version}"
    updated = Champions(readiness, churn, policy, policy_version, "registry", frozenset(refused))
    unchanged = (
        current.source == "registry"
        and readiness is current.readiness
        and churn is current.churn
        and policy is current.policy
        and updated.refused == current.refused
    )
    return current if unchanged else updated


def _load_new(
    cache: ChampionCache,
    name: str,
    version: str,
    loader: Callable[[Path], Model],
    in_use: Model | None,
    refused: set[str],
) -> Model | None:
    """Download, check and cache ``name`` ``version``; on failure keep ``in_use`` and say why."""
    from mlflow.exceptions import MlflowException

    from training.registry import ModelLoadError

    key = f"{name}/{version}"
    if key in refused:
        return in_use
    try:
        path = cache.fetch(name, version)
    except (MlflowException, OSError) as exc:  # transient: tried again at the next poll
        log.warning("champion_download_failed", model=name, version=version, error=str(exc)[:200])
        return in_use
    try:
        loaded = loader(path)
    except (ModelLoadError, ValueError, TypeError, OSError) as exc:
        cache.discard(name, version)
        refused.add(key)
        log.error("champion_refused_keeping_previous", model=name, refused=version, reason=str(exc)[:300])
        return in_use
    cache.record(name, version)
    log.info("champion_loaded", model=name, version=version, source="registry")
    return loaded


def _policy_from_dir(path: Path) -> ContentPolicy:
    """The content policy of a local ``ripen-policy`` pyfunc directory, checked for its format."""
    import mlflow

    from training.policy_training import POLICY_FORMAT, PolicyModel

    try:
        model = mlflow.pyfunc.load_model(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle or read means "cannot use"
        raise ValueError(f"cannot load {POLICY_MODEL} from {path.name}: {type(exc).__name__}: {exc}") from exc
    metadata = model.metadata.metadata or {}
    if metadata.get("ripen_format") != POLICY_FORMAT:
        raise ValueError(f"{POLICY_MODEL} {path.name} has format {metadata.get('ripen_format')!r}")
    wrapped = model.unwrap_python_model()
    if not isinstance(wrapped, PolicyModel):
        raise TypeError(f"{POLICY_MODEL} {path.name} holds a {type(wrapped).__name__}, not a PolicyModel")
    return wrapped.policy


def _from_cache(cache: ChampionCache, current: Champions, problem: str) -> Champions:
    """The cached champions (what is not cached keeps ``current``'s model or the fallback)."""
    from training.registry import load_version

    found: dict[str, CachedModel] = {}
    for name in (READINESS_MODEL, CHURN_MODEL, POLICY_MODEL):
        cached = cache.cached(name)
        if cached is not None:
            found[name] = cached
    if not found:
        log.info(
            "no_model_registry_or_cache", reason=problem, hint="fallbacks serve until models are promoted"
        )
        return current

    def load(name: str, loader: Callable[[CachedModel], Model]) -> Model | None:
        try:
            return loader(found[name]) if name in found else None
        except Exception as exc:  # noqa: BLE001 - a damaged copy means the fallback for this role
            log.error(
                "cached_champion_unusable", model=name, version=found[name].version, error=str(exc)[:200]
            )
            return None

    readiness = load(READINESS_MODEL, lambda c: load_version(c.name, c.version, uri=str(c.path)))
    churn = load(CHURN_MODEL, lambda c: load_version(c.name, c.version, uri=str(c.path)))
    policy = load(POLICY_MODEL, lambda c: _policy_from_dir(c.path))
    snapshot = replace(
        current, readiness=readiness or current.readiness, churn=churn or current.churn, source="cache"
    )
    if policy is not None:
        snapshot = replace(
            snapshot, policy=policy, policy_version=f"{POLICY_MODEL}/{found[POLICY_MODEL].version}"
        )
    log.warning(
        "serving_cached_champions",
        reason=problem,
        **snapshot.versions,
        cached_at={name: c.loaded_at for name, c in found.items()},
    )
    return snapshot

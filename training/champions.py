"""The champions a decision uses: readiness and churn scorers and the content policy, as one snapshot.

``load_champions`` reads the ``champion`` aliases from the MLflow registry. A model that cannot be loaded
keeps its fallback (points score, no churn risk, cold-start policy) or, given ``current``, the version in use.
Serving swaps the whole snapshot at once, so a request never mixes models of two loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from models.policy.base import ContentPolicy
from models.policy.inverse_gap_weighting import InverseGapWeighting
from ripen.settings import Settings

if TYPE_CHECKING:  # the registry imports MLflow: loaded only when champions are
    from training.registry import LoadedScorer

log = structlog.get_logger(__name__)

POINTS_VERSION = "points"
NO_CHURN_VERSION = "none"
COLD_START_POLICY = "cold-start"
READINESS_MODEL = "ripen-readiness"
CHURN_MODEL = "ripen-churn"


@dataclass(frozen=True)
class Champions:
    """The models in use; ``None`` scorers mean the fallback (points score, churn risk 0)."""

    readiness: LoadedScorer | None = None
    churn: LoadedScorer | None = None
    policy: ContentPolicy = field(default_factory=InverseGapWeighting)
    policy_version: str = COLD_START_POLICY

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


def load_champions(settings: Settings, current: Champions | None = None) -> Champions:
    """The registry's champions; what cannot be loaded keeps ``current``'s model or the fallback (logged)."""
    current = current or Champions()
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        log.info("no_model_registry_yet", hint="train and promote models; fallbacks serve until then")
        return current
    try:
        from training.policy_training import champion_policy
        from training.registry import load_champion
        from training.tracking import mlflow_client

        client = mlflow_client(settings)
    except Exception as exc:  # noqa: BLE001 - the registry is optional for serving
        log.warning("model_registry_unavailable", error=str(exc)[:200])
        return current
    scorers: dict[str, LoadedScorer | None] = {}
    for role, name in ((("readiness", READINESS_MODEL)), ("churn", CHURN_MODEL)):
        in_use: LoadedScorer | None = getattr(current, role)
        try:
            scorers[role] = load_champion(client, name, current=in_use)
        except Exception as exc:  # noqa: BLE001
            log.info("no_champion", model=name, reason=str(exc)[:200])
            scorers[role] = in_use
    policy, policy_version = current.policy, current.policy_version
    try:
        found = champion_policy(client)
    except Exception as exc:  # noqa: BLE001
        log.info("no_champion", model="ripen-policy", reason=str(exc)[:200])
        found = None
    if found is not None:
        policy_version, policy = f"ripen-policy/{found[0]}", found[1]
    return Champions(
        readiness=scorers["readiness"], churn=scorers["churn"], policy=policy, policy_version=policy_version
    )

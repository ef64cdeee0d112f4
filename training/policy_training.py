"""`ripen train policy`: learn a content policy from the decision log, evaluate it offline, gate, register.

Steps: join rewards from the event store into the decision log (``training.rewards``); turn the logged content
decisions into arrays (context features, the eligible set with each candidate's features and logged
probability, the chosen action, its reward); fit a new policy on the first part in time; estimate its value
and the champion's on the rest with IPS/SNIPS/DM/DR (``training.ope``); register the new policy in MLflow
as ``ripen-policy`` and move the ``champion`` alias only if the new policy's DR lower confidence bound beats
the champion's DR estimate on the same rows (or the logging policy's observed value when there is no
champion yet). The verdict and the numbers are recorded as version tags.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import structlog
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from features.decision_log import DecisionLog, DecisionRecord, RewardRecord, open_settings_decision_log
from models.policy.base import ContentPolicy
from models.policy.inverse_gap_weighting import InverseGapWeighting
from ripen.settings import Settings
from training.model_card import log_policy_card
from training.ope import OPEReport, evaluate_policy
from training.rewards import RewardConfig, RewardJoin, join_rewards

log = structlog.get_logger(__name__)

POLICY_MODEL_NAME = "ripen-policy"
POLICY_EXPERIMENT = "ripen-policy"
POLICY_FORMAT = "ripen-policy/1"
CHAMPION = "champion"
_ARTIFACT = "policy"


@dataclass(frozen=True)
class DecisionLogData:
    """Logged content decisions as arrays over one action table (every content id ever eligible).

    context: shape (n, d); action_features: shape (k, m); eligible: bool, shape (n, k); logging_dist: the
    logged probabilities, shape (n, k); actions, rewards, propensities: shape (n,).
    """

    context: np.ndarray
    action_ids: tuple[str, ...]
    action_features: np.ndarray
    eligible: np.ndarray
    logging_dist: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    decided_at: tuple[datetime, ...]

    @property
    def n_rows(self) -> int:
        return int(self.actions.shape[0])

    def split(self, fraction: float) -> tuple[DecisionLogData, DecisionLogData]:
        """Earlier ``fraction`` of decisions (time order) to learn on, the rest to evaluate on."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"`split` must be in (0, 1), but got {fraction}")
        cut = int(round(self.n_rows * fraction))
        if cut == 0 or cut == self.n_rows:
            raise ValueError(f"`split` {fraction} leaves an empty part of {self.n_rows} decisions")
        return self._rows(slice(0, cut)), self._rows(slice(cut, None))

    def _rows(self, index: slice) -> DecisionLogData:
        return replace(
            self,
            context=self.context[index],
            eligible=self.eligible[index],
            logging_dist=self.logging_dist[index],
            actions=self.actions[index],
            rewards=self.rewards[index],
            propensities=self.propensities[index],
            decided_at=self.decided_at[index],
        )


def decision_log_data(
    records: Sequence[DecisionRecord], rewards: Mapping[str, RewardRecord]
) -> tuple[DecisionLogData, int]:
    """Arrays from logged content decisions that have a reward; returns them and how many had none yet.

    Decisions whose chosen action is missing from their eligible set, or whose logged probability differs
    from the eligible set's, are inconsistent logs: rejected with counts.
    """
    content = [r for r in records if r.content_id is not None]
    usable = sorted((r for r in content if r.event_id in rewards), key=lambda r: (r.decided_at, r.event_id))
    without_reward = len(content) - len(usable)
    if not usable:
        raise ValueError(
            f"no logged content decision has a reward yet ({without_reward} are waiting for one)"
        )
    not_eligible = sum(1 for r in usable if r.content_id not in {e.content_id for e in r.eligible})
    if not_eligible:
        raise ValueError(f"{not_eligible} logged decisions chose a block outside their logged eligible set")
    widths = {len(r.context_features) for r in usable}
    if len(widths) != 1:
        raise ValueError(
            f"`context_features` must have one length across decisions, but got {sorted(widths)}"
        )
    features: dict[str, tuple[float, ...]] = {}
    for r in usable:
        for e in r.eligible:
            features[e.content_id] = e.features  # the latest description of each block wins
    action_ids = tuple(sorted(features))
    index = {a: j for j, a in enumerate(action_ids)}
    widths_a = {len(f) for f in features.values()}
    if len(widths_a) != 1:
        raise ValueError(
            f"eligible `features` must have one length across blocks, but got {sorted(widths_a)}"
        )
    n, k = len(usable), len(action_ids)
    eligible = np.zeros((n, k), dtype=bool)
    dist = np.zeros((n, k))
    for i, r in enumerate(usable):
        for e in r.eligible:
            eligible[i, index[e.content_id]] = True
            dist[i, index[e.content_id]] = e.probability
    actions = np.array([index[r.content_id] for r in usable], dtype=np.int64)  # type: ignore[index]
    propensities = np.array([r.probability for r in usable], dtype=float)
    mismatch = int((np.abs(dist[np.arange(n), actions] - propensities) > 1e-9).sum())
    if mismatch:
        raise ValueError(
            f"{mismatch} logged decisions have a probability that differs from their eligible set's"
        )
    data = DecisionLogData(
        context=np.array([r.context_features for r in usable], dtype=float),
        action_ids=action_ids,
        action_features=np.array([features[a] for a in action_ids], dtype=float),
        eligible=eligible,
        logging_dist=dist,
        actions=actions,
        rewards=np.array([rewards[r.event_id].reward for r in usable], dtype=float),
        propensities=propensities,
        decided_at=tuple(r.decided_at for r in usable),
    )
    return data, without_reward


def estimate_on_log(
    policy: ContentPolicy, data: DecisionLogData, *, n_bootstrap: int = 500, seed: int = 0
) -> OPEReport:
    """IPS/SNIPS/DM/DR of ``policy`` restricted to each logged decision's eligible set."""
    dist = policy.action_distribution(data.context, data.action_features, data.eligible)
    q = policy.scores(data.context, data.action_features) if policy.is_fitted else np.zeros(dist.scores.shape)
    return evaluate_policy(
        data.rewards,
        data.actions,
        data.propensities,
        dist.probabilities,
        q,
        n_bootstrap=n_bootstrap,
        random_state=seed,
    )


@dataclass(frozen=True)
class PolicyTrainingConfig:
    """Hyperparameters of the new policy and of its evaluation and gate."""

    gamma: float = 50.0
    alpha: float = 1.0
    split: float = 0.7
    n_bootstrap: int = 500
    seed: int = 0
    min_decisions: int = 50
    reward: RewardConfig = field(default_factory=RewardConfig)


@dataclass(frozen=True)
class PolicyTrainingResult:
    """What ``train_policy`` did: the registered version, the gate's verdict and the numbers behind it."""

    version: str
    promoted: bool
    reason: str
    report: OPEReport
    champion_version: str | None
    champion_value: float
    n_train: int
    n_eval: int
    without_reward: int
    rewards_joined: RewardJoin | None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": POLICY_MODEL_NAME,
            "version": self.version,
            "promoted": self.promoted,
            "reason": self.reason,
            "champion_version": self.champion_version,
            "champion_value": self.champion_value,
            "n_train": self.n_train,
            "without_reward": self.without_reward,
        }
        out.update(self.report.flat())
        return out


class PolicyModel(PythonModel):
    """MLflow pyfunc of a content policy.

    Input: one row per (contact, candidate) pair with columns ``row`` (the contact's group), ``ctx_0..``
    (context features) and ``act_0..`` (candidate features). Output: each pair's exact probability.
    """

    def load_context(self, context: Any) -> None:
        with Path(context.artifacts[_ARTIFACT]).open("rb") as fh:
            policy = pickle.load(fh)  # noqa: S301 - our own artifact, written by log_policy_model
        if not isinstance(policy, ContentPolicy):
            raise TypeError(f"artifact holds a {type(policy).__name__}, not a ContentPolicy")
        self.policy = policy

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        ctx_cols = [c for c in model_input.columns if str(c).startswith("ctx_")]
        act_cols = [c for c in model_input.columns if str(c).startswith("act_")]
        out = np.zeros(len(model_input))
        positions = np.arange(len(model_input))
        for _, group in model_input.groupby("row", sort=False):
            where = positions[model_input.index.get_indexer(group.index)]
            X = group[ctx_cols].to_numpy(dtype=float)[:1]
            A = group[act_cols].to_numpy(dtype=float)
            out[where] = self.policy.action_distribution(X, A).probabilities[0]
        return out


def policy_input_example(policy: ContentPolicy, data: DecisionLogData, n_candidates: int = 3) -> pd.DataFrame:
    """A small (contact, candidate) frame in the pyfunc's input format, from logged rows."""
    k = min(n_candidates, len(data.action_ids))
    rows = []
    for j in range(k):
        row: dict[str, float | int] = {"row": 0}
        row.update({f"ctx_{i}": float(v) for i, v in enumerate(data.context[0])})
        row.update({f"act_{i}": float(v) for i, v in enumerate(data.action_features[j])})
        rows.append(row)
    return pd.DataFrame(rows)


def load_policy(client: MlflowClient, version: str) -> ContentPolicy:
    """The policy object of ``ripen-policy`` version ``version`` (serving calls it on promotion)."""
    model = mlflow.pyfunc.load_model(f"models:/{POLICY_MODEL_NAME}/{version}")
    metadata = model.metadata.metadata or {}
    if metadata.get("ripen_format") != POLICY_FORMAT:
        raise ValueError(f"{POLICY_MODEL_NAME} v{version} has format {metadata.get('ripen_format')!r}")
    wrapped = model.unwrap_python_model()
    assert isinstance(wrapped, PolicyModel)
    return wrapped.policy


def champion_policy(client: MlflowClient) -> tuple[str, ContentPolicy] | None:
    """The current champion's version and policy, or None when there is none."""
    try:
        version = str(client.get_model_version_by_alias(POLICY_MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None
    return version, load_policy(client, version)


def join_and_record_rewards(
    settings: Settings, decision_log: DecisionLog, config: RewardConfig, now: datetime
) -> RewardJoin:
    """Join rewards from the event store for every logged decision and store them in the log."""
    from features.event_store import open_settings_event_store

    with open_settings_event_store(settings) as store:
        events = store.read_frame()
    joined = join_rewards(decision_log.decisions(), events, now=now, config=config)
    decision_log.record_rewards(list(joined.rewards))
    log.info(
        "rewards_joined",
        rewarded=joined.rewarded,
        defaulted=joined.defaulted,
        pending=joined.pending,
        late_events=joined.late_events,
        duplicate_events=joined.duplicate_events,
    )
    return joined


def train_policy(
    settings: Settings,
    config: PolicyTrainingConfig | None = None,
    *,
    join_events: bool = True,
    now: datetime | None = None,
) -> PolicyTrainingResult:
    """Fit, evaluate against the champion, register ``ripen-policy`` and gate the ``champion`` alias."""
    from training.tracking import ensure_experiment, mlflow_client

    config = config or PolicyTrainingConfig()
    now = now or datetime.now(UTC)
    with open_settings_decision_log(settings) as decision_log:
        joined = join_and_record_rewards(settings, decision_log, config.reward, now) if join_events else None
        data, without_reward = decision_log_data(decision_log.decisions(), decision_log.rewards())
    if data.n_rows < config.min_decisions:
        raise ValueError(
            f"the decision log has {data.n_rows} rewarded content decisions; "
            f"training needs at least {config.min_decisions}"
        )
    train, test = data.split(config.split)
    policy = InverseGapWeighting(gamma=config.gamma, alpha=config.alpha, random_state=config.seed)
    policy.fit(train.context, train.action_features, train.actions, train.rewards)
    report = estimate_on_log(policy, test, n_bootstrap=config.n_bootstrap, seed=config.seed)
    client = mlflow_client(settings)
    champion = champion_policy(client)
    if champion is None:
        champion_version, champion_value = None, report.logged.value
        bar = f"the logging policy's observed value {champion_value:.4f}"
    else:
        champion_version = champion[0]
        champion_value = estimate_on_log(
            champion[1], test, n_bootstrap=config.n_bootstrap, seed=config.seed
        ).dr.value
        bar = f"champion v{champion_version}'s DR estimate {champion_value:.4f}"
    promoted = report.dr.ci_low > champion_value
    reason = f"DR lower bound {report.dr.ci_low:.4f} {'beats' if promoted else 'does not beat'} {bar}"
    experiment_id = ensure_experiment(client, POLICY_EXPERIMENT, settings)
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_params(
            {"gamma": config.gamma, "alpha": config.alpha, "split": config.split, "seed": config.seed}
        )
        mlflow.log_metrics({k: float(v) for k, v in report.flat().items()})
        example = policy_input_example(policy, data)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "policy.pkl"
            with path.open("wb") as fh:
                pickle.dump(policy, fh)
            info = mlflow.pyfunc.log_model(
                name="policy",
                python_model=PolicyModel(),
                artifacts={_ARTIFACT: str(path)},
                input_example=example,
                metadata={"ripen_format": POLICY_FORMAT, "action_ids": list(data.action_ids)},
                registered_model_name=POLICY_MODEL_NAME,
            )
        log_policy_card(
            info.model_id, POLICY_MODEL_NAME, (train, test), report, (bar, reason), asdict(config)
        )
    version = str(info.registered_model_version)
    tags = {
        "gate.verdict": "promoted" if promoted else "rejected",
        "gate.reason": reason,
        "gate.dr_ci_low": f"{report.dr.ci_low:.6f}",
        "gate.champion_value": f"{champion_value:.6f}",
        "gate.champion_version": champion_version or "",
    }
    for key, value in tags.items():
        client.set_model_version_tag(POLICY_MODEL_NAME, version, key, value)
    if promoted:
        client.set_registered_model_alias(POLICY_MODEL_NAME, CHAMPION, version)
    log.info("policy_gate", version=version, promoted=promoted, reason=reason)
    return PolicyTrainingResult(
        version=version,
        promoted=promoted,
        reason=reason,
        report=report,
        champion_version=champion_version,
        champion_value=champion_value,
        n_train=train.n_rows,
        n_eval=test.n_rows,
        without_reward=without_reward,
        rewards_joined=joined,
    )


def evaluate_decision_log(
    settings: Settings, config: PolicyTrainingConfig | None = None
) -> tuple[OPEReport, int]:
    """``ripen evaluate policy`` on ripen's own log: learn on the first part, estimate on the rest."""
    config = config or PolicyTrainingConfig()
    with open_settings_decision_log(settings) as decision_log:
        data, without_reward = decision_log_data(decision_log.decisions(), decision_log.rewards())
    train, test = data.split(config.split)
    policy = InverseGapWeighting(gamma=config.gamma, alpha=config.alpha, random_state=config.seed)
    policy.fit(train.context, train.action_features, train.actions, train.rewards)
    return estimate_on_log(policy, test, n_bootstrap=config.n_bootstrap, seed=config.seed), without_reward

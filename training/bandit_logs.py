"""Any logged bandit table (CSV or Parquet) as arrays for off-policy learning and evaluation.

A row is one logged decision: the action shown, the reward seen, the logging policy's probability of that
action (a column, or one constant for a uniform logger) and optional context columns (numeric columns as
they are, other columns one-hot encoded). ``evaluate_bandit_log`` learns a policy on the first part of the
log and estimates its value, and the logger's, on the rest, as ``ripen evaluate policy --log`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from models.policy.base import ContentPolicy
from models.policy.epsilon_greedy import EpsilonGreedy
from models.policy.inverse_gap_weighting import InverseGapWeighting
from training.ope import OPEReport, evaluate_policy

PolicyKind = Literal["igw", "epsilon-greedy", "greedy", "uniform"]


@dataclass(frozen=True)
class LoggedBandit:
    """Logged decisions as arrays.

    context: shape (n_rows, n_context_features); actions: indices into ``action_ids``, shape (n_rows,);
    rewards, propensities: shape (n_rows,).
    """

    context: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    action_ids: tuple[str, ...]
    context_names: tuple[str, ...]

    @property
    def n_rows(self) -> int:
        return int(self.rewards.shape[0])

    def rows(self, index: slice | np.ndarray) -> LoggedBandit:
        return replace(
            self,
            context=self.context[index],
            actions=self.actions[index],
            rewards=self.rewards[index],
            propensities=self.propensities[index],
        )

    def split(self, fraction: float) -> tuple[LoggedBandit, LoggedBandit]:
        """The first ``fraction`` of rows (in log order) to learn on, the rest to evaluate on."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"`split` must be in (0, 1), but got {fraction}")
        cut = int(round(self.n_rows * fraction))
        if cut == 0 or cut == self.n_rows:
            raise ValueError(f"`split` {fraction} leaves an empty part of a log with {self.n_rows} rows")
        return self.rows(slice(0, cut)), self.rows(slice(cut, None))


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; drops an unnamed leading index column (as in the Open Bandit Dataset)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"`--log` file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    elif path.suffix.lower() in (".csv", ".txt", ".gz"):
        frame = pd.read_csv(path)
    else:
        raise ValueError(f"`--log` must be a .csv or .parquet file, but got {path.name}")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: 0")]
    return frame.drop(columns=unnamed)


def _encode_context(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    parts: list[pd.DataFrame] = []
    for col in columns:
        values = frame[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            missing = int(values.isna().sum())
            if missing:
                raise ValueError(
                    f"context column `{col}` must not be missing, but got {missing} missing values"
                )
            parts.append(values.astype(float).to_frame(col))
        else:
            parts.append(pd.get_dummies(values.astype(str).fillna("missing"), prefix=col, dtype=float))
    if not parts:
        return np.zeros((len(frame), 0)), ()
    encoded = pd.concat(parts, axis=1)
    return encoded.to_numpy(dtype=float), tuple(str(c) for c in encoded.columns)


def bandit_from_frame(
    frame: pd.DataFrame,
    *,
    action_col: str,
    reward_col: str,
    propensity_col: str | None = None,
    propensity: float | None = None,
    context_cols: Sequence[str] = (),
    catalog: Sequence[str] | None = None,
) -> LoggedBandit:
    """Validate and encode a logged bandit table; bad rows are rejected with counts, never dropped."""
    if (propensity_col is None) == (propensity is None):
        raise ValueError("give exactly one of `--propensity-col` and `--propensity`")
    wanted = [action_col, reward_col, *([propensity_col] if propensity_col else []), *context_cols]
    missing_cols = [c for c in wanted if c not in frame.columns]
    if missing_cols:
        raise ValueError(f"columns {missing_cols} are not in the log; it has {list(frame.columns)[:20]}")
    if frame.empty:
        raise ValueError("the log has no rows")
    actions_raw = frame[action_col]
    missing_actions = int(actions_raw.isna().sum())
    if missing_actions:
        raise ValueError(f"`{action_col}` must not be missing, but got {missing_actions} missing values")
    action_str = actions_raw.astype(str)
    if catalog is None:
        values = actions_raw.drop_duplicates()
        ordered = (
            values.sort_values()
            if pd.api.types.is_numeric_dtype(values)
            else values.astype(str).sort_values()
        )
        action_ids = tuple(str(v) for v in ordered)
    else:
        action_ids = tuple(str(v) for v in catalog)
        outside = int((~action_str.isin(action_ids)).sum())
        if outside:
            raise ValueError(
                f"`{action_col}` must name catalog actions, but {outside} rows are outside the catalog"
            )
    index = {a: i for i, a in enumerate(action_ids)}
    rewards = pd.to_numeric(frame[reward_col], errors="coerce").to_numpy(dtype=float)
    bad_rewards = int(np.isnan(rewards).sum())
    if bad_rewards:
        raise ValueError(
            f"`{reward_col}` must be numeric, but got {bad_rewards} missing or non-numeric values"
        )
    if propensity_col is not None:
        props = pd.to_numeric(frame[propensity_col], errors="coerce").to_numpy(dtype=float)
        name = propensity_col
    else:
        props = np.full(len(frame), float(propensity))  # type: ignore[arg-type]
        name = "--propensity"
    missing_p = int(np.isnan(props).sum())
    if missing_p:
        raise ValueError(f"`{name}` must not be missing, but got {missing_p} missing or non-numeric values")
    bad_p = int(((props <= 0) | (props > 1)).sum())
    if bad_p:
        raise ValueError(f"`{name}` must be in (0, 1], but got {bad_p} rows outside (e.g. zero)")
    context, names = _encode_context(frame, context_cols)
    return LoggedBandit(
        context=context,
        actions=action_str.map(index).to_numpy(dtype=np.int64),
        rewards=rewards,
        propensities=props,
        action_ids=action_ids,
        context_names=names,
    )


def load_bandit_log(
    path: str | Path,
    *,
    action_col: str,
    reward_col: str,
    propensity_col: str | None = None,
    propensity: float | None = None,
    context_cols: Sequence[str] = (),
    catalog: Sequence[str] | None = None,
) -> LoggedBandit:
    """Read ``path`` (CSV or Parquet) and validate it as a logged bandit table (see ``bandit_from_frame``)."""
    return bandit_from_frame(
        read_table(path),
        action_col=action_col,
        reward_col=reward_col,
        propensity_col=propensity_col,
        propensity=propensity,
        context_cols=context_cols,
        catalog=catalog,
    )


def make_policy(kind: PolicyKind, *, gamma: float, epsilon: float, alpha: float, seed: int) -> ContentPolicy:
    """The policy a generic evaluation learns: IGW, epsilon-greedy, greedy or uniform (IGW with gamma 0)."""
    if kind == "igw":
        return InverseGapWeighting(gamma=gamma, alpha=alpha, random_state=seed)
    if kind == "epsilon-greedy":
        return EpsilonGreedy(epsilon=epsilon, alpha=alpha, random_state=seed)
    if kind == "greedy":
        return InverseGapWeighting(alpha=alpha, greedy=True, random_state=seed)
    if kind == "uniform":
        return InverseGapWeighting(gamma=0.0, alpha=alpha, random_state=seed)
    raise ValueError(f"`policy` must be igw, epsilon-greedy, greedy or uniform, but got {kind!r}")


def evaluate_bandit_log(
    data: LoggedBandit,
    *,
    split: float = 0.7,
    policy: PolicyKind = "igw",
    gamma: float = 100.0,
    epsilon: float = 0.1,
    alpha: float = 100.0,
    seed: int = 0,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
) -> OPEReport:
    """Learn a policy on the first ``split`` of the log, estimate its value and the logger's on the rest.

    Actions are one-hot action features (a generic log knows only action ids); the same reward model is the
    ``q`` of DM and DR. It is fitted on the learning part only, so the evaluated rows stay unseen.
    """
    train, test = data.split(split)
    action_features = np.eye(len(data.action_ids))
    learner = make_policy(policy, gamma=gamma, epsilon=epsilon, alpha=alpha, seed=seed)
    learner.fit(train.context, action_features, train.actions, train.rewards)
    dist = learner.action_distribution(test.context, action_features)
    return evaluate_policy(
        test.rewards,
        test.actions,
        test.propensities,
        dist.probabilities,
        dist.scores,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        random_state=seed,
    )

"""Off-policy evaluation: the value a new policy would have had, estimated from another policy's logs.

Estimators (per logged row i with context x_i, logged action a_i, reward r_i, logging propensity mu_i and the
evaluation policy's probability pi_i = pi(a_i | x_i); weight w_i = pi_i / mu_i; reward model q(x, a)):

- IPS, inverse propensity scoring (Horvitz & Thompson 1952): mean(w_i r_i);
- SNIPS, self-normalized IPS (Swaminathan & Joachims, "The Self-Normalized Estimator for Counterfactual
  Learning", NeurIPS 2015): sum(w_i r_i) / sum(w_i);
- DM, direct method: mean over rows of sum_a pi(a | x_i) q(x_i, a);
- DR, doubly robust (Dudik, Langford & Li, "Doubly Robust Policy Evaluation and Learning", ICML 2011):
  DM + mean(w_i (r_i - q(x_i, a_i))).

Confidence intervals are percentile bootstraps over logged rows (rows resampled together, so SNIPS keeps its
ratio form). The effective sample size (sum w)^2 / sum w^2 (Kish) says how many logged rows the estimate is
really worth; poor support (a small ESS) is warned about.
All input checks live in ``check_ope_inputs``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np


class PoorSupportWarning(UserWarning):
    """The logged data barely covers the evaluation policy's choices: estimates are unreliable."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap confidence interval."""

    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class OPEReport:
    """Estimates of an evaluation policy's value on logged data, and of the logging policy's own value."""

    ips: Estimate
    snips: Estimate
    dm: Estimate
    dr: Estimate
    logged: Estimate
    n_eval: int
    ess: float
    max_weight: float
    poor_support: bool
    confidence: float

    def flat(self) -> dict[str, float | int | bool]:
        """Flat keys for JSON (``policy_value_ips``, ``policy_value_ips_ci_low``, ..., ``logged_value``)."""
        out: dict[str, float | int | bool] = {}
        for name in ("ips", "snips", "dm", "dr"):
            est: Estimate = getattr(self, name)
            out[f"policy_value_{name}"] = est.value
            out[f"policy_value_{name}_ci_low"] = est.ci_low
            out[f"policy_value_{name}_ci_high"] = est.ci_high
        out["logged_value"] = self.logged.value
        out["logged_value_ci_low"] = self.logged.ci_low
        out["logged_value_ci_high"] = self.logged.ci_high
        out.update(
            n_eval=self.n_eval,
            ess=self.ess,
            max_weight=self.max_weight,
            poor_support=self.poor_support,
            confidence=self.confidence,
        )
        return out

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def check_ope_inputs(
    rewards: np.ndarray,
    actions: np.ndarray,
    propensities: np.ndarray,
    action_dist: np.ndarray,
    estimated_rewards: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate every OPE input in one place; errors name the argument and count the offending rows.

    rewards, actions, propensities: shape (n_rounds,); action_dist: shape (n_rounds, n_actions), the
    evaluation policy's probabilities; estimated_rewards: shape (n_rounds, n_actions), the reward model.
    """
    r = np.asarray(rewards, dtype=float)
    a = np.asarray(actions)
    p = np.asarray(propensities, dtype=float)
    pi = np.asarray(action_dist, dtype=float)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"`rewards` must be a non-empty 1-D array, but got shape {r.shape}")
    n = r.shape[0]
    if a.shape != (n,) or p.shape != (n,):
        raise ValueError(
            f"`actions` and `propensities` must have shape ({n},), but got {a.shape} and {p.shape}"
        )
    if pi.ndim != 2 or pi.shape[0] != n:
        raise ValueError(f"`action_dist` must have shape ({n}, n_actions), but got {pi.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"`actions` must be integer action indices, but got dtype {a.dtype}")
    outside = int(((a < 0) | (a >= pi.shape[1])).sum())
    if outside:
        raise ValueError(
            f"`actions` must be in [0, {pi.shape[1]}) (the catalog), but {outside} rows are outside"
        )
    missing_r = int(np.isnan(r).sum())
    if missing_r:
        raise ValueError(f"`rewards` must not be missing, but got {missing_r} missing values")
    missing_p = int(np.isnan(p).sum())
    if missing_p:
        raise ValueError(f"`propensities` must not be missing, but got {missing_p} missing values")
    bad_p = int(((p <= 0) | (p > 1)).sum())
    if bad_p:
        raise ValueError(
            f"`propensities` must be in (0, 1], but got {bad_p} rows outside (zero or negative or > 1)"
        )
    bad_rows = int((np.abs(pi.sum(axis=1) - 1.0) > 1e-6).sum() + (pi < 0).any(axis=1).sum())
    if bad_rows:
        raise ValueError(
            f"`action_dist` rows must be probabilities summing to 1, but {bad_rows} rows are not"
        )
    q = None
    if estimated_rewards is not None:
        q = np.asarray(estimated_rewards, dtype=float)
        if q.shape != pi.shape:
            raise ValueError(f"`estimated_rewards` must have shape {pi.shape}, but got {q.shape}")
        bad_q = int((~np.isfinite(q)).sum())
        if bad_q:
            raise ValueError(
                f"`estimated_rewards` must be finite, but got {bad_q} missing or infinite values"
            )
    return r, a.astype(np.int64), p, pi, q


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def evaluate_policy(
    rewards: np.ndarray,
    actions: np.ndarray,
    propensities: np.ndarray,
    action_dist: np.ndarray,
    estimated_rewards: np.ndarray,
    *,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    random_state: int = 0,
    min_ess_fraction: float = 0.01,
) -> OPEReport:
    """IPS, SNIPS, DM and DR estimates with bootstrap CIs, ESS and a poor-support warning.

    Shapes as in ``check_ope_inputs``. A ``PoorSupportWarning`` is issued (and ``poor_support`` set) when
    the effective sample size falls below ``min_ess_fraction`` of the logged rows.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1), but got {confidence}")
    if n_bootstrap < 10:
        raise ValueError(f"`n_bootstrap` must be >= 10, but got {n_bootstrap}")
    r, a, mu, pi, q = check_ope_inputs(rewards, actions, propensities, action_dist, estimated_rewards)
    assert q is not None
    n = r.shape[0]
    rows = np.arange(n)
    w = pi[rows, a] / mu
    q_logged = q[rows, a]
    dm_terms = (pi * q).sum(axis=1)
    dr_terms = dm_terms + w * (r - q_logged)

    def point(idx: np.ndarray | slice) -> dict[str, np.ndarray]:
        wr, ww = w[idx] * r[idx], w[idx]
        return {
            "ips": wr.mean(axis=-1),
            "snips": wr.sum(axis=-1) / np.maximum(ww.sum(axis=-1), 1e-300),
            "dm": dm_terms[idx].mean(axis=-1),
            "dr": dr_terms[idx].mean(axis=-1),
            "logged": r[idx].mean(axis=-1),
        }

    values = point(slice(None))
    rng = np.random.default_rng(random_state)
    samples: dict[str, list[np.ndarray]] = {k: [] for k in values}
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_bootstrap, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_bootstrap - start), n))
        for key, val in point(idx).items():
            samples[key].append(val)
    estimates = {
        key: Estimate(float(values[key]), *_percentile_ci(np.concatenate(samples[key]), confidence))
        for key in values
    }
    ess = float(w.sum() ** 2 / max((w**2).sum(), 1e-300))
    poor = ess < min_ess_fraction * n
    if poor:
        warnings.warn(
            f"poor support: effective sample size {ess:.1f} of {n} logged rows; the estimates are unreliable",
            PoorSupportWarning,
            stacklevel=2,
        )
    return OPEReport(
        ips=estimates["ips"],
        snips=estimates["snips"],
        dm=estimates["dm"],
        dr=estimates["dr"],
        logged=estimates["logged"],
        n_eval=n,
        ess=ess,
        max_weight=float(w.max()),
        poor_support=poor,
        confidence=confidence,
    )

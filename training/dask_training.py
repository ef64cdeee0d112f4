"""The same scorer, boosted on a Dask cluster through LightGBM's ``DaskLGBMClassifier``.

Used when ``--dask SCHEDULER`` is given. Only the boosting is distributed; schema learning, calibration and
evaluation stay local (they are small). LightGBM's Dask estimators do not support early-stopping callbacks
reliably across workers, so the Dask path boosts ``n_estimators`` rounds and then picks the best iteration
afterwards, on the same held-out stopping rows the local path uses: the same choice, paid for with the extra
rounds.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import structlog
from sklearn.metrics import log_loss

from models.scorer import BinaryScorer

log = structlog.get_logger(__name__)


class DaskBinaryScorer(BinaryScorer):
    """``BinaryScorer`` boosted on the Dask cluster at ``scheduler`` (an address or a ``Client``).

    ``npartitions`` splits the training rows; 0 means one partition per worker. ``inner_folds`` defaults to
    0 (a holdout for early stopping and calibration): the cross-fitted path boosts locally through
    ``lightgbm.cv``, and tables big enough for a cluster have rows to spare for a holdout.
    """

    def __init__(
        self,
        *,
        scheduler: Any = None,
        npartitions: int = 0,
        n_estimators: int = 600,
        inner_folds: int = 0,
        **params: Any,
    ) -> None:
        super().__init__(n_estimators=n_estimators, inner_folds=inner_folds, **params)
        self.scheduler = scheduler
        self.npartitions = npartitions

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted({*BinaryScorer._get_param_names(), "scheduler", "npartitions"})

    def _train_booster(
        self, X: pd.DataFrame, y: np.ndarray, X_stop: pd.DataFrame, y_stop: np.ndarray
    ) -> tuple[lgb.Booster, int]:
        import dask.dataframe as dd
        from distributed import Client

        if self.scheduler is None:
            raise ValueError("`scheduler` must be a Dask scheduler address or Client, but got None")
        client = self.scheduler if isinstance(self.scheduler, Client) else Client(self.scheduler)
        try:
            n_workers = max(1, len(client.scheduler_info().get("workers", {})))
            parts = self.npartitions or n_workers
            frame = X.assign(__label__=y, __weight__=self.sample_weight(y) if self.class_weight else 1.0)
            ddf = dd.from_pandas(frame.reset_index(drop=True), npartitions=parts)
            params = self.lgb_params()
            params.pop("n_jobs")  # each Dask worker's threads decide
            seed = params.pop("seed")
            params.pop("objective")
            model = lgb.DaskLGBMClassifier(
                client=client, n_estimators=self.n_estimators, random_state=seed, **params
            )
            model.fit(
                ddf[list(X.columns)],
                ddf["__label__"],
                sample_weight=ddf["__weight__"],
            )
            booster = model.booster_
        finally:
            if client is not self.scheduler:
                client.close()
        best = self._best_iteration(booster, X_stop, y_stop)
        log.info("dask_boosting_done", workers=n_workers, partitions=parts, best_iteration=best)
        return booster, best

    def _best_iteration(self, booster: lgb.Booster, X_stop: pd.DataFrame, y_stop: np.ndarray) -> int:
        """Iteration with the lowest weighted log loss on the stopping rows (checked every 10 rounds)."""
        weight = self.sample_weight(y_stop)
        rounds = booster.current_iteration()
        candidates = sorted({*range(10, rounds + 1, 10), rounds})
        losses = [
            log_loss(y_stop, booster.predict(X_stop, num_iteration=k), sample_weight=weight, labels=[0, 1])
            for k in candidates
        ]
        return int(candidates[int(np.argmin(losses))])

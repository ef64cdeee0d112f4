"""The Dask path trains the same scorer on a local 2-worker cluster and matches the local path's quality."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from distributed import Client, LocalCluster

from models.metrics import binary_metrics
from models.scorer import BinaryScorer
from tests.test_scorer import make_frame
from training.dask_training import DaskBinaryScorer


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            yield c


@pytest.mark.slow
def test_dask_scorer_on_two_workers_matches_local(client: Client) -> None:
    X, y = make_frame(4000)
    X_test, y_test = make_frame(2000, seed=3)
    dask_scorer = DaskBinaryScorer(scheduler=client, n_estimators=200).fit(X, y)
    local = BinaryScorer(n_estimators=200).fit(X, y)
    auc_dask = binary_metrics(y_test, dask_scorer.predict_proba(X_test)[:, 1]).roc_auc
    auc_local = binary_metrics(y_test, local.predict_proba(X_test)[:, 1]).roc_auc
    assert len(client.scheduler_info()["workers"]) == 2
    assert auc_dask > 0.7
    assert abs(auc_dask - auc_local) < 0.03
    assert 10 <= dask_scorer.best_iteration_ <= 200
    assert np.isfinite(dask_scorer.predict_proba(X_test)).all()


def test_dask_scorer_needs_a_scheduler() -> None:
    X, y = make_frame(300)
    with pytest.raises(ValueError, match="`scheduler` must be a Dask scheduler"):
        DaskBinaryScorer(n_estimators=10).fit(X, y)

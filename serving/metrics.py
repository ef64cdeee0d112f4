"""Prometheus metrics of one app: request latency per route template, decisions, guardrails, ingest, models.

Every app owns a ``CollectorRegistry`` (no process-global default registry), so test apps never see each
other's numbers and two apps in one process do not collide. Labels hold route templates, actions, reasons and
model versions only: never contact ids or paths with ids in them (unbounded cardinality and personal data).

Under ``ripen serve --workers N`` each worker process counts into files of a shared folder
(prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics``, whichever worker
answers it, renders the sum over all workers: a scrape sees the server, not one random worker.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus_client's multiprocess mode keeps each process's values (read at its first import)."""
WORKERS_METRICS_ENV = "RIPEN_WORKERS_METRICS_DIR"
"""Set by ``multiprocess_metrics`` only: Feast sets ``PROMETHEUS_MULTIPROC_DIR`` to a folder of its own when
its metrics module is imported, so that variable alone does not mean our workers share a folder."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds; dense below 25 ms because the recommend goal is a p99 of 10 ms."""

BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
"""Requests per coalesced recommend batch (``serving.coalescer``)."""

UNMATCHED_ROUTE = "unmatched"


class ServingMetrics:
    """The app's collectors, registered on its own ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.request_latency = Histogram(
            "ripen_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status code.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "ripen_decisions",
            "Recommendation decisions by action kind (content, wait, handoff_to_sales, nothing_eligible).",
            ["action"],
            registry=self.registry,
        )
        self.guardrail_exclusions = Counter(
            "ripen_guardrail_exclusions",
            "Candidates removed by a guardrail, by reason (consent, stage, repeat, frequency, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "ripen_model_version_info",
            "1 for the model version currently served, by model name and version.",
            ["model", "version"],
            registry=self.registry,
            multiprocess_mode="max",  # several workers serving one version still show 1
        )
        self.model_reloads = Counter(
            "ripen_model_reloads",
            "Champion polls that changed the served models (swapped) or failed (error).",
            ["outcome"],
            registry=self.registry,
        )
        self.recommend_batch_size = Histogram(
            "ripen_recommend_batch_size",
            "Concurrent POST /v1/recommend requests decided together in one batch (1: decided alone).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.events_ingested = Counter(
            "ripen_events_ingested",
            "Events received on POST /v1/events, by outcome (stored, duplicate, rejected).",
            ["status"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.request_latency.labels(method, route, str(status)).observe(seconds)

    def count_decision(self, action: str, n: int = 1) -> None:
        """Add ``n`` decisions of kind ``action``."""
        self.decisions.labels(action).inc(n)

    def count_exclusions(self, reasons: Mapping[str, int]) -> None:
        """Add the number of candidates each guardrail removed (in one decision or a batch of them)."""
        for reason, n in reasons.items():
            if n:
                self.guardrail_exclusions.labels(reason).inc(n)

    def observe_batch_size(self, size: int) -> None:
        self.recommend_batch_size.observe(size)

    def count_ingested(self, stored: int, duplicates: int, rejected: int) -> None:
        for status, n in (("stored", stored), ("duplicate", duplicates), ("rejected", rejected)):
            if n:
                self.events_ingested.labels(status).inc(n)

    def set_model_version(self, model: str, version: str) -> None:
        """Mark ``version`` as the served version of ``model``; any previous version is no longer served."""
        for labels in list(self._served_labels(model)):
            self.model_version.labels(*labels).set(0)  # a multiprocess file keeps a removed child's value
            self.model_version.remove(*labels)
        self.model_version.labels(model, version).set(1)

    def set_model_versions(self, versions: Mapping[str, str]) -> None:
        """Mark every role's served version (``Champions.versions``: readiness, churn, policy)."""
        for model, version in versions.items():
            self.set_model_version(model, version)

    def count_reload(self, outcome: str) -> None:
        self.model_reloads.labels(outcome).inc()

    def _served_labels(self, model: str) -> list[tuple[str, str]]:
        return [
            (sample.labels["model"], sample.labels["version"])
            for metric in self.model_version.collect()
            for sample in metric.samples
            if sample.labels.get("model") == model
        ]

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (summed over all workers in multiprocess mode)."""
        folder = os.environ.get(WORKERS_METRICS_ENV)
        if folder:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=folder)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


@contextmanager
def multiprocess_metrics() -> Iterator[str]:
    """A fresh folder for the worker processes' metric files, announced in the environment they inherit.

    Enter before the workers start (prometheus_client picks its mode when first imported in a process); the
    folder and its files are removed on exit, so a restarted server never adds up an earlier run's counts.
    """
    with tempfile.TemporaryDirectory(prefix="ripen-metrics-") as folder:
        previous = {name: os.environ.get(name) for name in (MULTIPROCESS_DIR_ENV, WORKERS_METRICS_ENV)}
        os.environ.update({MULTIPROCESS_DIR_ENV: folder, WORKERS_METRICS_ENV: folder})
        try:
            yield folder
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

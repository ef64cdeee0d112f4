"""Async batch-decision jobs: submit an audience, poll, download — run by ``training.batch_decisions``.

Each job lives in ``data_dir/batch_jobs/<job_id>/``: ``job.json`` (state, replaced atomically), the audience
(``audience.parquet``) and, once done, ``decisions.parquet``. One worker thread per app runs jobs in order,
with the same ``run_batch`` as ``ripen decide`` (run id ``job-<job_id>``, so its checkpoints are the run's
parts). A job left queued or running by a stopped process is picked up again when the app next uses jobs
and resumes from its last finished chunk, without logging a decision twice.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from features.schemas import Channel
from ripen.settings import Settings
from serving.schemas_batch import BatchJob
from training.batch_decisions import (
    OUTPUT_FORMATS,
    Audience,
    open_resources,
    run_batch,
    write_output,
)

log = structlog.get_logger(__name__)

UNFINISHED = ("queued", "running")


class JobNotFound(KeyError):
    """No job with this id."""


class JobManager:
    """Job state on disk and one daemon worker thread that runs queued jobs one after the other."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir / "batch_jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._queue: queue.Queue[str] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="batch-jobs", daemon=True)
        self._worker.start()
        for job in sorted(self._all(), key=lambda j: j.created_at):
            if job.status in UNFINISHED:
                log.info("batch_job_resumed", job_id=job.job_id, status=job.status)
                self._queue.put(job.job_id)

    # -- API ----------------------------------------------------------------------------------------------
    def submit(self, audience: Audience, channel: Channel) -> BatchJob:
        """Store the audience and queue the job; returns it as ``queued``."""
        job_id = uuid.uuid4().hex
        directory = self.root / job_id
        directory.mkdir()
        table = pa.table(
            {"contact_id": audience.contact_ids, "program": audience.programs, "stage": audience.stages},
            schema=pa.schema([("contact_id", pa.string()), ("program", pa.string()), ("stage", pa.string())]),
        )
        pq.write_table(table, directory / "audience.parquet")
        job = BatchJob(
            job_id=job_id,
            status="queued",
            channel=channel,
            contacts=len(audience),
            duplicates=audience.duplicates,
            created_at=datetime.now(UTC),
        )
        self._save(job)
        self._queue.put(job_id)
        return job

    def get(self, job_id: str) -> BatchJob:
        path = self._path(job_id) / "job.json"
        if not path.exists():
            raise JobNotFound(job_id)
        return BatchJob.model_validate_json(path.read_text())

    def result(self, job_id: str, fmt: str) -> Path:
        """The finished job's decisions as ``fmt`` (parquet, csv, jsonl), converted on first request."""
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"`format` must be one of {', '.join(OUTPUT_FORMATS)}, but got {fmt!r}")
        directory = self._path(job_id)
        parquet = directory / "decisions.parquet"
        if fmt == "parquet":
            return parquet
        target = directory / f"decisions.{fmt}"
        with self._lock:
            if not target.exists():
                write_output([parquet], target)
        return target

    def wait(self, timeout: float | None = None) -> None:
        """Block until every queued job has run (tests, shutdown)."""
        done = threading.Event()

        def joined() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=joined, daemon=True).start()
        done.wait(timeout)

    # -- worker -------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                self._run(job_id)
            except Exception as exc:  # noqa: BLE001 - a failed job is reported on the job, the worker lives on
                log.error("batch_job_failed", job_id=job_id, error=f"{type(exc).__name__}: {exc}"[:300])
                self._update(job_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
            finally:
                self._queue.task_done()

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        if job.status not in UNFINISHED:
            return
        directory = self._path(job_id)
        table = pq.read_table(directory / "audience.parquet")
        audience = Audience(
            table.column("contact_id").to_pylist(),
            table.column("program").to_pylist(),
            table.column("stage").to_pylist(),
            job.duplicates,
        )
        self._update(job_id, status="running")
        resources = open_resources(self.settings)
        try:
            report = run_batch(
                self.settings,
                audience,
                channel=job.channel,
                resources=resources,
                out=directory / "decisions.parquet",
                run_id=f"job-{job_id}",
                progress=lambda done, _total: self._update(job_id, done=done),
            )
        finally:
            resources.close()
        self._update(
            job_id,
            status="succeeded",
            done=len(audience),
            finished_at=datetime.now(UTC),
            report={k: v for k, v in report.__dict__.items() if k not in ("run_dir", "out")},
        )

    # -- storage ------------------------------------------------------------------------------------------
    def _path(self, job_id: str) -> Path:
        if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
            raise JobNotFound(job_id)
        return self.root / job_id

    def _all(self) -> list[BatchJob]:
        jobs = []
        for path in self.root.glob("*/job.json"):
            try:
                jobs.append(BatchJob.model_validate_json(path.read_text()))
            except ValueError as exc:
                log.warning("batch_job_unreadable", path=str(path), error=str(exc)[:200])
        return jobs

    def _update(self, job_id: str, **changes: object) -> None:
        with self._lock:
            job = self.get(job_id).model_copy(update=changes)
            self._save(job)

    def _save(self, job: BatchJob) -> None:
        path = self.root / job.job_id / "job.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(job.model_dump(mode="json")))
        os.replace(tmp, path)

"""Batch decisions for a whole audience (``ripen decide`` and the API's async jobs), in resumable chunks.

An audience (CSV/Parquet of ``contact_id`` with optional ``program``/``stage``, or a segment expression over
the profiles) is decided chunk by chunk by the same core as a single ``recommend``
(``models.decision_batch.decide_contacts``): bulk profile and online-feature reads, batch scoring, every
guardrail, the policy with exact probabilities. Each chunk's decision-log records are inserted, then its rows
are written to ``<run dir>/part-NNNNN.parquet`` (atomic rename). Event ids are deterministic per
(run id, contact) and the log insert is idempotent, so an interrupted run re-run with the same run id skips
finished chunks, redoes at most the one in flight, and never logs a decision twice. The decision time is
fixed in the run's manifest, so the resumed chunks decide exactly as the first attempt would have.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import itertools
import json
import multiprocessing
import multiprocessing.util
import os
import queue
import re
import resource
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import structlog

from features.decision_log import DecisionLog, DecisionRecord
from features.event_store import EventStore
from features.schemas import DEFAULT_TAXONOMY, Channel, StageTaxonomy
from models.context import Candidate
from models.decision_batch import (
    ContactData,
    ContactRequest,
    ModelSet,
    Outcome,
    batch_event_id,
    decide_contacts,
)
from models.policy.base import ContentPolicy
from models.policy.decide import PreparedCatalog, prepare_catalog
from models.policy.inverse_gap_weighting import InverseGapWeighting
from ripen.settings import Settings

log = structlog.get_logger(__name__)

MAX_ID_LENGTH = 128
REJECTED = "rejected"
DECIDED = "decided"
OUTPUT_FORMATS = ("parquet", "csv", "jsonl")
OUTPUT_SCHEMA = pa.schema(
    [
        ("contact_id", pa.string()),
        ("program", pa.string()),
        ("requested_stage", pa.string()),
        ("status", pa.string()),
        ("event_id", pa.string()),
        ("action", pa.string()),
        ("content_id", pa.string()),
        ("probability", pa.float64()),
        ("alternatives", pa.string()),
        ("wait_until", pa.timestamp("us", tz="UTC")),
        ("reason", pa.string()),
        ("stage", pa.string()),
        ("readiness", pa.float64()),
        ("churn_risk", pa.float64()),
        ("cold_start", pa.bool_()),
        ("degraded", pa.bool_()),
        ("policy_version", pa.string()),
        ("readiness_version", pa.string()),
        ("churn_version", pa.string()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""One row per audience contact: what the journey engine does next (``alternatives`` joined by ``|``)."""


class AudienceError(ValueError):
    """A malformed audience or segment; the message names the line or the problem."""


@dataclass(frozen=True)
class Audience:
    """Contacts to decide for, first occurrence of each id kept; ``duplicates`` counts the dropped repeats."""

    contact_ids: list[str]
    programs: list[str | None]
    stages: list[str | None]
    duplicates: int = 0

    def __len__(self) -> int:
        return len(self.contact_ids)

    def fingerprint(self) -> str:
        """A digest of ids, programs and stages: a run id may only resume the audience it started with."""
        digest = hashlib.sha256()
        for cid, program, stage in zip(self.contact_ids, self.programs, self.stages, strict=True):
            digest.update(f"{cid}\x1f{program or ''}\x1f{stage or ''}\x1e".encode())
        return digest.hexdigest()


class _AudienceBuilder:
    def __init__(self, taxonomy: StageTaxonomy) -> None:
        self.ids: list[str] = []
        self.programs: list[str | None] = []
        self.stages: list[str | None] = []
        self.seen: set[str] = set()
        self.duplicates = 0
        self.taxonomy = taxonomy

    def add(self, line: int, contact_id: Any, program: Any, stage: Any) -> None:
        cid = "" if contact_id is None else str(contact_id).strip()
        if not cid:
            raise AudienceError(f"line {line}: `contact_id` is empty")
        if len(cid) > MAX_ID_LENGTH:
            raise AudienceError(f"line {line}: `contact_id` must be at most {MAX_ID_LENGTH} characters")
        stage_text = None if stage is None or str(stage).strip() == "" else str(stage).strip()
        if stage_text is not None and stage_text not in self.taxonomy.ids:
            raise AudienceError(
                f"line {line}: `stage` must be one of {', '.join(self.taxonomy.ids)}, but got {stage_text!r}"
            )
        if cid in self.seen:
            self.duplicates += 1
            return
        self.seen.add(cid)
        self.ids.append(cid)
        self.programs.append(None if program is None or str(program) == "" else str(program))
        self.stages.append(stage_text)

    def build(self) -> Audience:
        return Audience(self.ids, self.programs, self.stages, self.duplicates)


def read_audience(path: Path, taxonomy: StageTaxonomy = DEFAULT_TAXONOMY) -> Audience:
    """Read a CSV (header row) or Parquet audience; ``AudienceError`` names the first bad line.

    Lines count from 1 with the CSV header as line 1 (Parquet: row r is line r + 2, as if a header).
    """
    if not path.exists():
        raise AudienceError(f"audience file {path} does not exist")
    builder = _AudienceBuilder(taxonomy)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise AudienceError(f"{path} is not a readable Parquet file: {exc}") from None
        if "contact_id" not in table.column_names:
            raise AudienceError(
                f"line 1: the audience needs a `contact_id` column, found {table.column_names}"
            )
        columns = {
            n: table.column(n).to_pylist()
            for n in ("contact_id", "program", "stage")
            if n in table.column_names
        }
        n = table.num_rows
        for r in range(n):
            builder.add(
                r + 2,
                columns["contact_id"][r],
                columns.get("program", [None] * n)[r],
                columns.get("stage", [None] * n)[r],
            )
        return builder.build()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise AudienceError(
                "line 1: the audience file is empty (expected a header with `contact_id`)"
            ) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AudienceError(f"line 1: {exc}") from None
        if "contact_id" not in header:
            raise AudienceError(f"line 1: the header needs a `contact_id` column, found {header}")
        unknown = [h for h in header if h not in ("contact_id", "program", "stage")]
        if unknown:
            raise AudienceError(f"line 1: unknown columns {unknown}; allowed: contact_id, program, stage")
        position = {h: i for i, h in enumerate(header)}
        try:
            for fields in reader:
                line = reader.line_num
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise AudienceError(f"line {line}: expected {len(header)} fields, but got {len(fields)}")
                builder.add(
                    line,
                    fields[position["contact_id"]],
                    fields[position["program"]] if "program" in position else None,
                    fields[position["stage"]] if "stage" in position else None,
                )
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AudienceError(f"line {reader.line_num + 1}: {exc}") from None
    return builder.build()


_FORBIDDEN = re.compile(
    r";|--|/\*|\*/|\b(select|from|attach|copy|pragma|install|load|create|drop|insert|update|delete|call|export|import|set|read_\w+)\b",
    re.IGNORECASE,
)


def validate_segment(expression: str) -> str:
    """The segment expression, checked to be one boolean SQL condition (no statements, no table functions)."""
    text = expression.strip()
    if not text:
        raise AudienceError(
            "`--segment` is empty; e.g. \"lifecycle_stage = 'information' AND consent_email\""
        )
    found = _FORBIDDEN.search(text)
    if found:
        raise AudienceError(
            f"`--segment` must be a WHERE condition over profile columns; {found.group(0)!r} is not allowed"
        )
    return text


def segment_audience(store: EventStore, expression: str) -> Audience:
    """The contacts whose profile matches ``expression``, a DuckDB WHERE condition over ``profiles``.

    The condition runs in an in-memory DuckDB with external access disabled and only the profiles frame
    registered; ``validate_segment`` rejects statements, sub-queries and table functions first.
    """
    import duckdb

    text = validate_segment(expression)
    profiles = store.profiles_frame()
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.register("profiles", profiles)
        con.execute("SET lock_configuration = true")
        try:
            ids = [
                str(r[0])
                for r in con.execute(
                    f"SELECT contact_id FROM profiles WHERE ({text}) ORDER BY contact_id"
                ).fetchall()
            ]
        except duckdb.Error as exc:
            columns = ", ".join(map(str, profiles.columns))
            raise AudienceError(f"`--segment` is not a valid condition over ({columns}): {exc}") from None
    finally:
        con.close()
    return Audience(ids, [None] * len(ids), [None] * len(ids))


ContactSource = Callable[[Sequence[str], datetime], list[ContactData]]
"""Reads the profiles and decision features of a chunk of contact ids at the decision time."""


@dataclass
class BatchResources:
    """What a batch run reads and writes: contact source, catalog, models and the decision log."""

    source: ContactSource
    catalog: PreparedCatalog
    models: ModelSet
    decision_log: DecisionLog
    fallback_policy: ContentPolicy = field(default_factory=lambda: InverseGapWeighting(greedy=True))
    close: Callable[[], None] = lambda: None


def open_resources(settings: Settings) -> BatchResources:
    """The stores ``settings`` names: event store profiles, online features in bulk, champions, the log."""
    from features.bulk_lookup import BulkReader, read_profiles
    from features.decision_log import open_settings_decision_log
    from features.event_store import open_settings_event_store
    from features.store import FeatureStoreService
    from training.champions import load_champions

    store = open_settings_event_store(settings)
    catalog = prepare_catalog([Candidate.from_block(b) for b in store.list_content(active_only=True)])
    reader = BulkReader(FeatureStoreService(settings))
    decision_log = open_settings_decision_log(settings)
    content_ids = catalog.sorted_content_ids

    def source(ids: Sequence[str], now: datetime) -> list[ContactData]:
        profiles = read_profiles(store, ids)
        features = reader.read(ids, content_ids, now)
        return [ContactData(profiles.get(c), f) for c, f in zip(ids, features, strict=True)]

    def close() -> None:
        reader.close()
        decision_log.close()
        store.close()

    return BatchResources(source, catalog, load_champions(settings), decision_log, close=close)


@dataclass(frozen=True)
class BatchReport:
    """What a run did; ``resumed_chunks`` were already done by an earlier attempt with the same run id."""

    run_id: str
    run_dir: str
    out: str
    contacts: int
    duplicates: int
    decided: int
    rejected: int
    cold_start: int
    degraded: int
    actions: dict[str, int]
    chunks: int
    resumed_chunks: int
    log_stored: int
    log_duplicates: int
    seconds: float
    workers: int = 1
    worker_peak_rss_mb: float = 0.0
    """Sum over the worker processes of each one's peak RSS (0 when deciding in this process)."""


class Progress(Protocol):
    def __call__(self, done: int, total: int) -> None: ...


def default_run_id(audience: Audience, channel: Channel, day: datetime | None = None) -> str:
    """Same audience, channel and UTC day → same run id, so re-running after a crash resumes."""
    day = day or datetime.now(UTC)
    digest = hashlib.sha256(f"{audience.fingerprint()}/{channel.value}".encode()).hexdigest()[:16]
    return f"{day:%Y%m%d}-{digest}"


def run_dir(settings: Settings, run_id: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", run_id) or run_id.startswith("."):
        raise ValueError(f"`run_id` must be 1-80 letters, digits, '.', '_' or '-', but got {run_id!r}")
    return settings.data_dir / "batch_runs" / run_id


def run_batch(
    settings: Settings,
    audience: Audience,
    *,
    channel: Channel,
    resources: BatchResources | None = None,
    out: Path | None = None,
    run_id: str | None = None,
    chunk_size: int | None = None,
    progress: Progress | None = None,
    pause_collector: bool = False,
    workers: int = 1,
    open_worker_resources: Callable[[], BatchResources] | None = None,
) -> BatchReport:
    """Decide for the whole audience chunk by chunk (resumable; see the module docstring); write ``out``.

    ``workers == 1`` (default) decides in this process with ``resources``: while chunk k+1 is decided, a
    writer thread logs chunk k and writes its part (at most one more chunk waits for it). ``workers > 1``
    decides, logs and writes chunks in that many spawned processes, each opening its own resources with
    the picklable ``open_worker_resources`` (stores and connections cannot cross processes); this process
    only tracks progress and concatenates the parts in audience order, so the output and the log rows are
    those of one worker. ``progress(done, total)`` counts contacts whose part is written.
    ``pause_collector`` pauses the cyclic garbage collector while each chunk is decided
    (``collector_paused``): for a process that only runs the batch (``ripen decide``), not a server, where
    the pause is process-wide.
    """
    if workers < 1:
        raise ValueError(f"`workers` must be at least 1, but got {workers}")
    if workers == 1 and resources is None:
        raise ValueError("run_batch needs `resources` to decide in this process (workers = 1)")
    if workers > 1 and open_worker_resources is None:
        raise ValueError("run_batch needs `open_worker_resources` for worker processes (workers > 1)")
    started = time.perf_counter()
    run_id = run_id or default_run_id(audience, channel)
    directory = run_dir(settings, run_id)
    manifest = _manifest(directory, audience, channel, chunk_size or settings.batch_chunk_size)
    size = int(manifest["chunk_size"])
    now = datetime.fromisoformat(str(manifest["decided_at"]))
    n_chunks = max(1, -(-len(audience) // size))
    reject_unknown = settings.batch_unknown_contacts == "reject"
    parts = [directory / f"part-{k:05d}.parquet" for k in range(n_chunks)]
    todo = [k for k in range(n_chunks) if not parts[k].exists()]
    resumed = n_chunks - len(todo)
    done = len(audience) - sum(min((k + 1) * size, len(audience)) - k * size for k in todo)
    stored = duplicates = 0

    def report_finished(chunks: list[_Written]) -> None:
        nonlocal done, stored, duplicates
        for written in chunks:
            done, stored, duplicates = (
                done + written.contacts,
                stored + written.stored,
                duplicates + written.dupes,
            )
            if progress is not None:
                progress(done, len(audience))

    if progress is not None and resumed:
        progress(done, len(audience))
    peak_rss: dict[int, float] = {}
    if workers > 1 and todo:
        assert open_worker_resources is not None
        tasks = [
            _Task(parts[k], _slice(audience, k * size, min((k + 1) * size, len(audience))), run_id,
                  channel, now, settings.seed, reject_unknown)
            for k in todo
        ]  # fmt: skip
        with closing(_run_in_workers(tasks, workers, open_worker_resources, pause_collector)) as chunks:
            for written in chunks:
                peak_rss[written.pid] = max(peak_rss.get(written.pid, 0.0), written.peak_rss_mb)
                report_finished([written])
    elif todo:
        assert resources is not None
        writer = _ChunkWriter(resources.decision_log)
        try:
            for k in todo:
                lo, hi = k * size, min((k + 1) * size, len(audience))
                with collector_paused() if pause_collector else nullcontext():
                    records, table = _decide_chunk(
                        audience, lo, hi, run_id, channel, now, settings.seed, resources, reject_unknown
                    )
                writer.submit(_Chunk(parts[k], records, table))
                del records, table
                report_finished(writer.finished())
            writer.close()
        except BaseException:
            writer.abort()
            raise
        report_finished(writer.finished())
    target = out or directory / "decisions.parquet"
    counts = write_output(parts, target)
    manifest["completed"] = True
    _write_json(directory / "manifest.json", manifest)
    report = BatchReport(
        run_id=run_id,
        run_dir=str(directory),
        out=str(target),
        contacts=len(audience),
        duplicates=audience.duplicates,
        decided=counts["decided"],
        rejected=counts["rejected"],
        cold_start=counts["cold_start"],
        degraded=counts["degraded"],
        actions=counts["actions"],
        chunks=n_chunks,
        resumed_chunks=resumed,
        log_stored=stored,
        log_duplicates=duplicates,
        seconds=round(time.perf_counter() - started, 3),
        workers=workers,
        worker_peak_rss_mb=round(sum(peak_rss.values()), 1),
    )
    log.info("batch_decisions_done", run_id=run_id, contacts=len(audience), resumed_chunks=resumed)
    return report


@dataclass(frozen=True)
class _Chunk:
    """A decided chunk waiting for the writer: its log records and output rows, and where they go."""

    part: Path
    records: list[DecisionRecord]
    table: pa.Table


@dataclass(frozen=True)
class _Written:
    contacts: int
    stored: int
    dupes: int
    pid: int = 0
    peak_rss_mb: float = 0.0


def _store_chunk(decision_log: DecisionLog, chunk: _Chunk) -> _Written:
    """Log the chunk's records, then (once committed) write its part atomically: a part implies its log."""
    logged = decision_log.log(chunk.records)
    tmp = chunk.part.with_suffix(".tmp")
    pq.write_table(chunk.table, tmp)
    os.replace(tmp, chunk.part)
    return _Written(chunk.table.num_rows, logged.stored, logged.duplicates)


def _slice(audience: Audience, lo: int, hi: int) -> Audience:
    return Audience(audience.contact_ids[lo:hi], audience.programs[lo:hi], audience.stages[lo:hi])


@dataclass(frozen=True)
class _Task:
    """One chunk for a worker process: its part path, its contacts and the run's fixed decision inputs."""

    part: Path
    audience: Audience
    run_id: str
    channel: Channel
    now: datetime
    seed: int
    reject_unknown: bool


_worker: dict[str, Any] = {}
"""A worker process's resources and collector setting, opened once by ``_init_worker``."""


def _init_worker(open_worker_resources: Callable[[], BatchResources], pause_collector: bool) -> None:
    resources = open_worker_resources()
    multiprocessing.util.Finalize(resources, resources.close, exitpriority=10)  # closed when the worker exits
    _worker.update(resources=resources, pause_collector=pause_collector)


def _worker_chunk(task: _Task) -> _Written:
    """In a worker: decide the chunk, log it, write its part (as the writer thread does for one process)."""
    resources: BatchResources = _worker["resources"]
    # The pause covers the log insert too: a worker runs nothing else, and the collector re-scanning the
    # chunk's records while they are encoded cost as much as while they were decided.
    with collector_paused() if _worker["pause_collector"] else nullcontext():
        records, table = _decide_chunk(
            task.audience, 0, len(task.audience), task.run_id, task.channel, task.now, task.seed, resources,
            task.reject_unknown,
        )  # fmt: skip
        written = _store_chunk(resources.decision_log, _Chunk(task.part, records, table))
        del records, table
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return _Written(written.contacts, written.stored, written.dupes, os.getpid(), peak)


def _run_in_workers(
    tasks: list[_Task],
    workers: int,
    open_worker_resources: Callable[[], BatchResources],
    pause_collector: bool,
) -> Generator[_Written, None, None]:
    """Run the chunks in ``workers`` spawned processes; yield each as it is written (any order).

    At most two chunks per worker are submitted at a time (one deciding, one waiting), so the parent holds
    no more than that and a stop leaves little in flight. On an error or Ctrl-C, no new chunk is submitted
    and the ones already submitted finish (each is logged before its part is written), so the run resumes
    like a single-process one.
    """
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=multiprocessing.get_context("spawn"),  # no fork of a process holding threads/connections
        initializer=_init_worker,
        initargs=(open_worker_resources, pause_collector),
    )
    waiting = iter(tasks)
    running: set[Future[_Written]] = set()
    try:
        for task in itertools.islice(waiting, 2 * workers):
            running.add(pool.submit(_worker_chunk, task))
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:  # reported before refilling: a stop here submits nothing more
                yield future.result()
            for task in itertools.islice(waiting, len(finished)):
                running.add(pool.submit(_worker_chunk, task))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _ChunkWriter:
    """One thread that logs each decided chunk and then writes its part atomically, in submission order.

    A part exists only once its log records are committed, so a crash at any point leaves finished parts
    whose decisions are logged, and at most the chunks in flight to redo (their log rows come back as
    duplicates). ``submit`` blocks while one chunk already waits (memory stays at ~3 chunks).
    """

    def __init__(self, decision_log: DecisionLog) -> None:
        self._log = decision_log
        self._queue: queue.Queue[_Chunk | None] = queue.Queue(maxsize=1)
        self._written: queue.SimpleQueue[_Written] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self._thread.start()

    def submit(self, chunk: _Chunk | None) -> None:
        """Queue a chunk (``None``: no more); re-raises a write error instead of queueing after it."""
        while True:
            self._raise_error()
            try:
                self._queue.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue

    def finished(self) -> list[_Written]:
        """Chunks written since the last call, in order."""
        out = []
        while True:
            try:
                out.append(self._written.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Write everything submitted, stop the thread; re-raise a write error."""
        self.submit(None)
        self._thread.join()
        self._raise_error()

    def abort(self) -> None:
        """Drop chunks not started; let the one being written finish (its log and part stay consistent)."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None or self._stop.is_set():
                return
            try:
                written = _store_chunk(self._log, chunk)
            except BaseException as exc:  # noqa: BLE001 - handed to the deciding thread, which raises it
                self._error = exc
                return
            self._written.put(written)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Cyclic garbage collection off while one chunk is decided, back on (as it was) afterwards.

    A chunk creates millions of short-lived, acyclic objects (features, outcomes, log records) that reference
    counting frees; the collector re-scanning them took ~30% of a run's CPU (measured, 20k contacts). Any
    cycle left behind is collected by the next ordinary collection after the chunk, so memory stays bounded.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _manifest(directory: Path, audience: Audience, channel: Channel, chunk_size: int) -> dict[str, Any]:
    """The run's manifest: created on the first attempt, checked (same audience and channel) on resume."""
    path = directory / "manifest.json"
    if path.exists():
        manifest: dict[str, Any] = json.loads(path.read_text())
        if manifest["fingerprint"] != audience.fingerprint() or manifest["channel"] != channel.value:
            raise ValueError(
                f"run {directory.name} was started for another audience or channel; use a new --run-id"
            )
        return manifest
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "run_id": directory.name,
        "channel": channel.value,
        "decided_at": datetime.now(UTC).isoformat(),
        "chunk_size": chunk_size,
        "contacts": len(audience),
        "fingerprint": audience.fingerprint(),
        "completed": False,
    }
    _write_json(path, manifest)
    return manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _decide_chunk(
    audience: Audience,
    lo: int,
    hi: int,
    run_id: str,
    channel: Channel,
    now: datetime,
    seed: int,
    resources: BatchResources,
    reject_unknown: bool,
) -> tuple[list[DecisionRecord], pa.Table]:
    """Decide contacts ``lo:hi``: their decision-log records and output rows (the writer stores both)."""
    ids = audience.contact_ids[lo:hi]
    data = resources.source(ids, now)
    keep = [i for i, d in enumerate(data) if not (reject_unknown and d.unknown)]
    requests = [
        ContactRequest(ids[i], audience.stages[lo + i], event_id=batch_event_id(run_id, ids[i])) for i in keep
    ]
    result = decide_contacts(
        requests,
        [data[i] for i in keep],
        resources.catalog,
        resources.models,
        channel=channel,
        now=now,
        seed=seed,
        fallback_policy=resources.fallback_policy,
    )
    outcomes: list[Outcome | None] = [None] * len(ids)
    for i, outcome in zip(keep, result.outcomes, strict=True):
        outcomes[i] = outcome
    return result.records, _rows(audience, lo, ids, outcomes, _stages(result.records))


def _stages(records: Sequence[Any]) -> dict[str, str]:
    """Contact id -> the stage the decision used (from the log record's context snapshot)."""
    return {r.contact_id: str(r.context.get("stage")) for r in records}


def _rows(
    audience: Audience,
    lo: int,
    ids: Sequence[str],
    outcomes: Sequence[Outcome | None],
    stages: dict[str, str],
) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in OUTPUT_SCHEMA.names}
    for i, (cid, outcome) in enumerate(zip(ids, outcomes, strict=True)):
        columns["contact_id"].append(cid)
        columns["program"].append(audience.programs[lo + i])
        columns["requested_stage"].append(audience.stages[lo + i])
        if outcome is None:
            for name in OUTPUT_SCHEMA.names[3:]:
                columns[name].append(None)
            columns["status"][-1] = REJECTED
            columns["reason"][-1] = "unknown contact (no profile, no features)"
            continue
        d = outcome.decision
        columns["status"].append(DECIDED)
        columns["event_id"].append(d.event_id)
        columns["action"].append(d.action.value)
        columns["content_id"].append(d.content_id)
        columns["probability"].append(d.probability)
        columns["alternatives"].append("|".join(a.content_id for a in d.alternatives) or None)
        columns["wait_until"].append(d.wait_until)
        columns["reason"].append(d.reason)
        columns["stage"].append(stages.get(cid))
        columns["readiness"].append(outcome.readiness)
        columns["churn_risk"].append(outcome.churn_risk)
        columns["cold_start"].append(outcome.cold_start)
        columns["degraded"].append(outcome.degraded)
        columns["policy_version"].append(d.policy_version)
        columns["readiness_version"].append(outcome.readiness_version)
        columns["churn_version"].append(outcome.churn_version)
        columns["decided_at"].append(d.decided_at)
    return pa.table(columns, schema=OUTPUT_SCHEMA)


def output_format(path: Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` from the file name; ``ValueError`` for anything else."""
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"pq": "parquet", "ndjson": "jsonl"}.get(suffix, suffix)
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"`--out` must end in .parquet, .csv or .jsonl, but got {path.name!r}")
    return fmt


def iter_parts(parts: Sequence[Path]) -> Iterator[pa.Table]:
    for part in parts:
        yield pq.read_table(part, schema=OUTPUT_SCHEMA)


def write_output(parts: Sequence[Path], target: Path) -> dict[str, Any]:
    """Concatenate the parts into ``target`` one part at a time (bounded memory); return the counts."""
    fmt = output_format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    counts: dict[str, Any] = {"decided": 0, "rejected": 0, "cold_start": 0, "degraded": 0, "actions": {}}
    parquet_writer: pq.ParquetWriter | None = None
    csv_writer: pa_csv.CSVWriter | None = None
    with tmp.open("wb") as sink:
        if fmt == "parquet":
            parquet_writer = pq.ParquetWriter(sink, OUTPUT_SCHEMA)
        elif fmt == "csv":
            csv_writer = pa_csv.CSVWriter(sink, OUTPUT_SCHEMA)
        for table in iter_parts(parts):
            _count(table, counts)
            if parquet_writer is not None:
                parquet_writer.write_table(table)
            elif csv_writer is not None:
                csv_writer.write_table(table)
            else:
                if table.num_rows:
                    text = table.to_pandas().to_json(orient="records", lines=True, date_format="iso")
                    sink.write(text.encode() if text.endswith("\n") else (text + "\n").encode())
        if parquet_writer is not None:
            parquet_writer.close()
        if csv_writer is not None:
            csv_writer.close()
    os.replace(tmp, target)
    return counts


def _count(table: pa.Table, counts: dict[str, Any]) -> None:
    status = table.column("status").to_pylist()
    counts["decided"] += status.count(DECIDED)
    counts["rejected"] += status.count(REJECTED)
    counts["cold_start"] += sum(1 for v in table.column("cold_start").to_pylist() if v)
    counts["degraded"] += sum(1 for v in table.column("degraded").to_pylist() if v)
    for action in table.column("action").to_pylist():
        if action is not None:
            counts["actions"][action] = counts["actions"].get(action, 0) + 1

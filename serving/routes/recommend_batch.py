"""``POST /v1/recommend/batch`` and batch jobs: many contacts through the same decision core as one.

The synchronous form decides up to ``max_batch_contacts`` contacts in one vectorised pass of the decision
pipeline (413 beyond); larger audiences go to a job (``/v1/recommend/batch/jobs``): 202 with the job id,
poll its status, download the decisions as Parquet, CSV or JSON lines.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi import Path as FastApiPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from serving.deps import EngineKey, EventStoreDep, MetricsDep, SettingsDep
from serving.errors import error_responses
from serving.jobs import JobManager, JobNotFound
from serving.pipeline import RecommendInput
from serving.routes.recommend import PipelineDep, response
from serving.schemas_batch import (
    BatchItemResult,
    BatchJob,
    BatchJobRequest,
    BatchRecommendRequest,
    BatchRecommendResponse,
)
from training.batch_decisions import Audience, AudienceError, segment_audience, validate_segment

UNKNOWN_CONTACT = "unknown contact: no stored profile or features (batch_unknown_contacts = reject)"
MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
}

JobId = Annotated[
    str,
    FastApiPath(pattern=r"^[0-9a-f]{32}$", description="The id the job submission returned."),
]

router = APIRouter(
    prefix="/v1/recommend/batch", tags=["decisions"], responses=error_responses(401, 403, 413, 422, 503)
)


async def get_jobs(request: Request, settings: SettingsDep) -> JobManager:
    """The app's job manager, started on first use (it resumes jobs a stopped process left unfinished).

    Built on the event loop without awaiting (a directory scan and a thread start), so two first requests
    cannot start two managers."""
    jobs: JobManager | None = getattr(request.app.state, "batch_jobs", None)
    if jobs is None:
        jobs = JobManager(settings)
        request.app.state.batch_jobs = jobs
    return jobs


JobsDep = Annotated[JobManager, Depends(get_jobs)]


@router.post("", response_model=BatchRecommendResponse, summary="Decide the next content for many contacts")
async def recommend_batch(
    body: BatchRecommendRequest,
    pipeline: PipelineDep,
    store: EventStoreDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    _key: EngineKey,
) -> BatchRecommendResponse:
    """Same semantics as ``POST /v1/recommend`` per item; a repeated ``contact_id`` is decided once.

    Unknown contacts get a cold-start decision, or are rejected per item when the service is configured
    with ``batch_unknown_contacts = "reject"``.
    """
    if len(body.items) > settings.max_batch_contacts:
        raise HTTPException(
            413,
            f"`items` may hold at most {settings.max_batch_contacts} contacts, but got {len(body.items)}; "
            "submit larger audiences as a job (POST /v1/recommend/batch/jobs)",
        )
    first: dict[str, int] = {}
    unique: list[int] = []
    for i, item in enumerate(body.items):
        if item.contact_id not in first:
            first[item.contact_id] = i
            unique.append(i)
    requests = [
        RecommendInput(
            contact_id=body.items[i].contact_id,
            channel=body.channel,
            stage=body.items[i].stage,
            candidate_ids=tuple(c) if (c := body.items[i].candidate_ids) is not None else None,
            excluded_ids=tuple(body.items[i].excluded_ids),
            n_slots=body.n_slots,
        )
        for i in unique
    ]
    outcomes = await run_in_threadpool(
        pipeline.recommend_batch,
        requests,
        store,
        metrics,
        reject_unknown=settings.batch_unknown_contacts == "reject",
    )
    by_index = dict(zip(unique, outcomes, strict=True))
    results: list[BatchItemResult] = []
    for i, item in enumerate(body.items):
        if first[item.contact_id] != i:
            results.append(
                BatchItemResult(
                    index=i,
                    contact_id=item.contact_id,
                    status="duplicate",
                    duplicate_of=first[item.contact_id],
                )
            )
            continue
        outcome = by_index[i]
        if outcome is None:
            results.append(
                BatchItemResult(index=i, contact_id=item.contact_id, status="rejected", error=UNKNOWN_CONTACT)
            )
            continue
        results.append(
            BatchItemResult(
                index=i,
                contact_id=item.contact_id,
                status="decided",
                decision=response(outcome, pipeline, explain=body.explain),
            )
        )
    counts = {s: sum(1 for r in results if r.status == s) for s in ("decided", "rejected", "duplicate")}
    return BatchRecommendResponse(
        results=results,
        decided=counts["decided"],
        rejected=counts["rejected"],
        duplicates=counts["duplicate"],
    )


@router.post(
    "/jobs",
    response_model=BatchJob,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit a batch-decision job for a large audience",
)
async def submit_job(
    body: BatchJobRequest, jobs: JobsDep, store: EventStoreDep, request: Request, _key: EngineKey
) -> BatchJob:
    """Queue the audience (listed contacts, or a segment condition over the profiles); poll the job."""
    try:
        if body.segment is not None:
            validate_segment(body.segment)
            audience = await run_in_threadpool(segment_audience, store, body.segment)
        else:
            audience = _listed(body)
    except AudienceError as exc:  # named like pydantic's own refusals: the field and the reason
        field = "segment" if body.segment is not None else "contacts"
        raise RequestValidationError(
            [{"loc": ("body", field), "msg": str(exc), "type": "value_error"}]
        ) from None
    job = await run_in_threadpool(jobs.submit, audience, body.channel)
    return _with_link(job, request)


@router.get(
    "/jobs/{job_id}",
    response_model=BatchJob,
    summary="A batch-decision job's status",
    responses=error_responses(404),
)
async def job_status(job_id: JobId, jobs: JobsDep, request: Request, _key: EngineKey) -> BatchJob:
    """Queued, running (``done`` of ``contacts``), succeeded (``report``, ``result_url``) or failed."""
    return _with_link(_job(jobs, job_id), request)


@router.get(
    "/jobs/{job_id}/result",
    response_class=FileResponse,
    summary="Download a finished job's decisions",
    responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}}, **error_responses(404, 409)},
)
async def job_result(
    job_id: JobId,
    jobs: JobsDep,
    _key: EngineKey,
    format: Annotated[Literal["parquet", "csv", "jsonl"], Query(description="File format.")] = "parquet",  # noqa: A002
) -> FileResponse:
    """The decisions file (one row per audience contact); 409 until the job has succeeded."""
    job = _job(jobs, job_id)
    if job.status != "succeeded":
        raise HTTPException(409, f"job {job_id} is {job.status}; the result exists once it has succeeded")
    path = await run_in_threadpool(jobs.result, job_id, format)
    return FileResponse(path, media_type=MEDIA_TYPES[format], filename=f"decisions-{job_id}.{format}")


def _job(jobs: JobManager, job_id: str) -> BatchJob:
    try:
        return jobs.get(job_id)
    except JobNotFound:
        raise HTTPException(404, f"no batch job {job_id!r}") from None


def _listed(body: BatchJobRequest) -> Audience:
    seen: set[str] = set()
    ids: list[str] = []
    programs: list[str | None] = []
    stages: list[str | None] = []
    for contact in body.contacts or ():
        if contact.contact_id in seen:
            continue
        seen.add(contact.contact_id)
        ids.append(contact.contact_id)
        programs.append(contact.program)
        stages.append(contact.stage)
    return Audience(ids, programs, stages, duplicates=len(body.contacts or ()) - len(ids))


def _with_link(job: BatchJob, request: Request) -> BatchJob:
    if job.status != "succeeded":
        return job
    return job.model_copy(update={"result_url": str(request.url_for("job_result", job_id=job.job_id).path)})

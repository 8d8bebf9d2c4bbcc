"""`/jobs`: how far a job got, and cancelling it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from leadflow.deps import CurrentCaller, Session
from leadflow.errors import Conflict, found, responses
from leadflow.jobs import reads
from leadflow.jobs.models import JobState
from leadflow.jobs.reads import job_by_id, job_json
from leadflow.jobs.repository import JobRepository
from leadflow.jobs.schemas import JobRead
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response
from leadflow.tenancy import Caller, viewer_params

router = APIRouter(tags=["jobs"])


class JobFinished(Conflict):
    slug = "job-finished"
    title = "The job has already finished"


async def job_answer(session: Session, caller: Caller, job_id: uuid.UUID) -> dict[str, object]:
    """The job as `JobRead` writes it (404 unless the caller may see it)."""
    params = {**viewer_params(caller), "job_id": job_id}
    return job_json(found(await job_by_id(caller.is_admin).fetchrow(session, params), "job"))


@router.get(
    "/jobs",
    name="jobs:list",
    response_model=Page[JobRead],
    responses=responses(401, 422),
)
async def list_jobs(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    kind: Annotated[
        str | None,
        Query(max_length=64, description="Only jobs of this kind (`conversion_rule.apply`, ...)."),
    ] = None,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
) -> Response:
    """The jobs the caller started (an admin: every job of the company), newest first."""
    return json_response(await reads.jobs(session, caller, page, kind, state))


@router.get(
    "/jobs/{job_id}",
    name="jobs:get",
    response_model=JobRead,
    responses=responses(401, 404, 422),
)
async def get_job(job_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """A job the caller started (an admin: any job of the company): its state and
    progress. Poll it until `state` is `done`, `failed` or `cancelled`."""
    return json_response(await job_answer(session, caller, job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    name="jobs:cancel",
    response_model=JobRead,
    responses=responses(401, 404, 409, 422, JobFinished),
)
async def cancel_job(job_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """Stop a job: a queued one is `cancelled` at once; a running one finishes the chunk
    it is in (what it committed stays done) and is then `cancelled`; meanwhile
    `cancel_requested` is true. A finished job is 409 `job-finished`."""
    state = await JobRepository(session).cancel(job_id, caller)
    answer = await job_answer(session, caller, job_id)
    if state is None:
        raise JobFinished(f"The job is {answer['state']}; only a queued or running job stops.")
    return json_response(answer)

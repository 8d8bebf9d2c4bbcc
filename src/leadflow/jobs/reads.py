"""The job answers of the GETs (`leadflow.readpath`): one statement each, visible jobs
only (an admin: the company's; anyone else: the jobs they started)."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Integer, Select, String, Uuid, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.jobs.models import Job, JobState
from leadflow.jobs.schemas import JobRead
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, fields, page_of, rfc3339
from leadflow.tenancy import Caller, in_viewer_company, viewer_params

# Newest first: ids are UUIDv7, in the order the jobs were enqueued (ix_job_company_id_id).
JOBS_NEWEST_FIRST = Keyset(Job.id, Job.id, descending=True)
_FIELDS = tuple(JobRead.model_fields)
_TIMES = {"created_at", "started_at", "finished_at"}


def _visible(admin: bool) -> Select[Any]:
    columns = [
        as_text(Job.id)
        if name == "id"
        else rfc3339(getattr(Job, name)).label(name)
        if name in _TIMES
        else getattr(Job, name)
        for name in _FIELDS
    ]
    visible = in_viewer_company(Job)
    if not admin:
        visible = and_(visible, Job.user_id == bindparam("viewer_user_id", type_=Uuid))
    return select(*columns).where(visible)


@functools.cache
def job_by_id(admin: bool) -> ReadStatement:
    """A job of the company: any for an admin, one's own for anyone else."""
    return ReadStatement(_visible(admin).where(Job.id == bindparam("job_id", type_=Uuid)))


@functools.cache
def job_page(admin: bool, kind: bool, state: bool, after: bool) -> ReadStatement:
    stmt = _visible(admin)
    if kind:
        stmt = stmt.where(Job.kind == bindparam("kind", type_=String))
    if state:
        stmt = stmt.where(Job.state == bindparam("state", type_=String))
    if after:
        stmt = stmt.where(Job.id < bindparam("after_id", type_=Uuid))
    return ReadStatement(stmt.order_by(Job.id.desc()).limit(bindparam("limit", type_=Integer)))


def job_json(row: Any) -> dict[str, Any]:
    return fields(row, _FIELDS)


async def jobs(
    session: AsyncSession,
    caller: Caller,
    page: PageRequest,
    kind: str | None,
    state: JobState | None,
) -> dict[str, Any]:
    """`GET /jobs`: the visible jobs, newest first, of a kind or in a state if asked."""
    params: dict[str, Any] = {
        **viewer_params(caller),
        "limit": page.limit + 1,
        "kind": kind,
        "state": state.value if state else None,
    }
    if page.cursor is not None:
        params["after_id"] = decode_cursor(page.cursor, JOBS_NEWEST_FIRST)[1]
    statement = job_page(
        caller.is_admin, kind is not None, state is not None, page.cursor is not None
    )
    rows = await statement.fetch(session, params)
    return page_of(rows, page, "id", job_json)

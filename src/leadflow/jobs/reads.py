"""The job answers of the GETs (`leadflow.readpath`): one statement, visible jobs only."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Uuid, and_, bindparam, select

from leadflow.jobs.models import Job
from leadflow.jobs.schemas import JobRead
from leadflow.readpath import ReadStatement, as_text, fields, rfc3339
from leadflow.tenancy import in_viewer_company

_FIELDS = tuple(JobRead.model_fields)
_TIMES = {"created_at", "started_at", "finished_at"}


@functools.cache
def job_by_id(admin: bool) -> ReadStatement:
    """A job of the company: any for an admin, one's own for anyone else."""
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
    return ReadStatement(select(*columns).where(visible, Job.id == bindparam("job_id", type_=Uuid)))


def job_json(row: Any) -> dict[str, Any]:
    return fields(row, _FIELDS)

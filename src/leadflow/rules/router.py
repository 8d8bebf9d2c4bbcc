"""`/conversion-rules`: admins write, everyone reads; dry-run and apply."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from leadflow.deps import AdminCaller, CurrentCaller, Session
from leadflow.errors import NotFound, found, responses
from leadflow.jobs.router import job_answer
from leadflow.jobs.schemas import JobRead
from leadflow.pagination import MAX_LIMIT, Page, PageParams, PageRequest
from leadflow.readpath import json_response
from leadflow.rules import reads, service
from leadflow.rules.repository import RuleRepository
from leadflow.rules.schemas import (
    ConversionRuleCreate,
    ConversionRuleRead,
    ConversionRuleUpdate,
    DryRun,
)
from leadflow.rules.service import RuleDisabled

router = APIRouter(tags=["conversion rules"])


@router.post(
    "/conversion-rules",
    name="conversion-rules:create",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversionRuleRead,
    responses=responses(401, 403, 422),
)
async def create_rule(
    data: ConversionRuleCreate, session: Session, caller: AdminCaller
) -> ConversionRuleRead:
    """Create a conversion rule (admins only).

    When all its conditions hold for an inbox lead, the lead is marked ready (`readiness`)
    or converted into a deal. Rules are evaluated in the transaction of every write that
    can change a condition: a lead created or updated, an activity created, marked done
    or deleted, a capture."""
    rule = await service.create_rule(session, caller, data)
    return ConversionRuleRead.model_validate(rule)


@router.get(
    "/conversion-rules",
    name="conversion-rules:list",
    response_model=Page[ConversionRuleRead],
    responses=responses(401, 422),
)
async def list_rules(session: Session, caller: CurrentCaller, page: PageParams) -> Response:
    """List the company's conversion rules.

    Oldest first: the order in which `convert` rules are tried."""
    return json_response(await reads.rules(session, caller, page))


@router.get(
    "/conversion-rules/{rule_id}",
    name="conversion-rules:get",
    response_model=ConversionRuleRead,
    responses=responses(401, 404, 422),
)
async def get_rule(rule_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One conversion rule."""
    return json_response(found(await reads.rule(session, caller, rule_id), "conversion rule"))


@router.patch(
    "/conversion-rules/{rule_id}",
    name="conversion-rules:update",
    response_model=ConversionRuleRead,
    responses=responses(401, 403, 404, 422),
)
async def update_rule(
    rule_id: uuid.UUID, data: ConversionRuleUpdate, session: Session, caller: AdminCaller
) -> ConversionRuleRead:
    """Change a conversion rule (admins only).

    Only the fields sent change. New conditions, a new action or disabling clear the
    readiness the rule gave; `apply` marks the inbox again."""
    rule = await service.update_rule(session, caller, rule_id, data)
    return ConversionRuleRead.model_validate(rule)


@router.delete(
    "/conversion-rules/{rule_id}",
    name="conversion-rules:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 403, 404, 422),
)
async def delete_rule(rule_id: uuid.UUID, session: Session, caller: AdminCaller) -> None:
    """Delete a conversion rule (admins only).

    The readiness it gave goes with it; conversions it made keep a null `rule_id`."""
    if not await RuleRepository(session, caller).delete(rule_id):
        raise NotFound("conversion rule")


@router.post(
    "/conversion-rules/{rule_id}/dry-run",
    name="conversion-rules:dry-run",
    response_model=DryRun,
    responses=responses(401, 404, 422),
)
async def dry_run(
    rule_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="How many matching leads to return.")
    ] = 50,
) -> DryRun:
    """Try a conversion rule on the inbox without writing anything.

    Which inbox leads visible to the caller the rule matches now, enabled or not: their
    number and the newest of them."""
    rule = await service.get_rule(session, caller, rule_id)
    return await service.dry_run(session, caller, rule, PageRequest(limit, None))


_APPLY_RESPONSES = responses(401, 403, 404, 409, 422, RuleDisabled)
_APPLY_RESPONSES[409] = {
    **_APPLY_RESPONSES[409],
    "description": "The rule is disabled (`conversion-rule-disabled`); nothing was enqueued",
}


@router.post(
    "/conversion-rules/{rule_id}/apply",
    name="conversion-rules:apply",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    responses=_APPLY_RESPONSES,
)
async def apply_rule(
    rule_id: uuid.UUID, request: Request, session: Session, caller: AdminCaller
) -> Response:
    """Apply an enabled conversion rule to the whole inbox (admins only), as a job.

    Answers 202 with the job (`Location: /api/v1/jobs/{id}`); the worker runs it once
    this request has committed, in chunks of 200 leads, each committed with its progress
    (`done` of `total`; `result` counts `matched`, `marked_ready`, `converted`,
    `blocked`). It marks the leads the rule matches ready, or converts them (a blocked
    conversion marks the lead ready with the reason), and drops the rule's readiness on
    leads it no longer matches. It resumes after a worker restart where it stopped, and
    can be cancelled (`POST /jobs/{id}/cancel`). Applying a rule whose apply is still
    queued or running answers that job. Running it again later is safe."""
    rule = await service.get_rule(session, caller, rule_id)
    job_id = await service.apply_rule(session, caller, rule)
    return json_response(
        await job_answer(session, caller, job_id),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": str(request.app.url_path_for("jobs:get", job_id=str(job_id)))},
    )

"""`/conversion-rules`: admins write, everyone reads; dry-run and apply."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from leadflow.deps import AdminCaller, AppSettings, CurrentCaller, Session
from leadflow.errors import NotFound, found, responses
from leadflow.pagination import MAX_LIMIT, Page, PageParams, PageRequest
from leadflow.readpath import json_response
from leadflow.rules import reads, service
from leadflow.rules.repository import RuleRepository
from leadflow.rules.schemas import (
    Applied,
    ConversionRuleCreate,
    ConversionRuleRead,
    ConversionRuleUpdate,
    DryRun,
)

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


_APPLY_RESPONSES = responses(401, 403, 404, 409, 422)
_APPLY_RESPONSES[409] = {
    **_APPLY_RESPONSES[409],
    "description": (
        "The rule is disabled (`conversion-rule-disabled`), or it matches more inbox leads "
        "than one apply may change (`apply-limit-exceeded`, with `matches` and `limit`); "
        "nothing was changed"
    ),
}


@router.post(
    "/conversion-rules/{rule_id}/apply",
    name="conversion-rules:apply",
    response_model=Applied,
    responses=_APPLY_RESPONSES,
)
async def apply_rule(
    rule_id: uuid.UUID, session: Session, caller: AdminCaller, settings: AppSettings
) -> Applied:
    """Apply an enabled conversion rule to the whole inbox now (admins only).

    Marks the leads it matches ready, or converts them (a blocked conversion marks the
    lead ready with the reason). All or nothing, in one transaction, and bounded: a rule
    matching more inbox leads than the server's limit (1,000 unless configured, setting
    `LEADFLOW_RULE_APPLY_MAX_LEADS`) is refused with 409 `apply-limit-exceeded`, which
    gives `matches` and `limit`, and nothing changes; narrow its conditions (a dry-run
    counts the matches). Running it again is safe."""
    rule = await service.get_rule(session, caller, rule_id)
    return await service.apply_rule(session, caller, rule, settings.rule_apply_max_leads)

"""Use cases of conversion rules: saving them (references checked, target resolved),
trying one on the inbox without writing (dry-run), and applying one to the inbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.conversion import lead_to_deal
from leadflow.conversion.errors import ConversionsFailed, LeadAlreadyConverted
from leadflow.conversion.schemas import LeadConversionCreate
from leadflow.deals.repository import DealRepository
from leadflow.deals.service import stage_of_new_deal
from leadflow.errors import (
    CONFLICTS_WITH_RECORD,
    Conflict,
    DomainError,
    InvalidInput,
    UnknownReference,
    found,
)
from leadflow.jobs.repository import JobRepository
from leadflow.jobs.runner import JobContext, Step, caller_params
from leadflow.leads.models import Lead, LeadLabel, LeadReadiness, in_inbox
from leadflow.leads.reads import INBOX_ORDER, read_leads
from leadflow.pagination import PageRequest, paginate
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.rules.evaluate import (
    Block,
    Rule,
    readiness_row,
    rule_matches_sql,
    upsert_readiness,
)
from leadflow.rules.models import ConversionRule
from leadflow.rules.repository import RuleRepository
from leadflow.rules.schemas import (
    Applied,
    ConversionRuleCreate,
    ConversionRuleUpdate,
    DryRun,
    RuleAction,
)
from leadflow.tenancy import Caller

# Leads converted or marked in one set-based step of an apply (a savepoint each).
APPLY_BATCH = 200
EXAMPLE_RULE = {
    "name": "First email sent",
    "enabled": False,
    "action": RuleAction.convert.value,
    "conditions": [{"type": "activity_done", "activity_type": "email"}],
}


class RuleDisabled(Conflict):
    slug = "conversion-rule-disabled"
    title = "The conversion rule is disabled"


async def get_rule(
    session: AsyncSession, caller: Caller, rule_id: uuid.UUID, *, for_update: bool = False
) -> ConversionRule:
    rule = found(
        await RuleRepository(session, caller).get(rule_id, for_update=for_update), "conversion rule"
    )
    return rule


async def _check_labels(session: AsyncSession, caller: Caller, conditions: list[Any]) -> None:
    wanted = {c["label_id"] for c in conditions if c["type"] == "has_label"}
    if not wanted:
        return
    known = {
        str(label_id)
        for label_id in await session.scalars(
            select(LeadLabel.id).where(
                LeadLabel.company_id == caller.company_id,
                LeadLabel.id.in_([uuid.UUID(w) for w in wanted]),
            )
        )
    }
    for index, condition in enumerate(conditions):
        if condition["type"] == "has_label" and condition["label_id"] not in known:
            raise UnknownReference(
                ["body", "conditions", index, "label_id"], "No such lead label in your company."
            )


async def _target(
    session: AsyncSession,
    caller: Caller,
    action: str,
    pipeline_id: uuid.UUID | None,
    stage_id: uuid.UUID | None,
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """Where a `convert` rule's deals go, resolved and checked as the company's."""
    if action != RuleAction.convert.value:
        if pipeline_id is not None or stage_id is not None:
            field = "pipeline_id" if pipeline_id is not None else "stage_id"
            raise InvalidInput(
                ["body", field], "Only a `convert` rule has a target stage.", CONFLICTS_WITH_RECORD
            )
        return None, None
    stage = await stage_of_new_deal(DealRepository(session, caller), pipeline_id, stage_id)
    return stage.pipeline_id, stage.id


async def create_rule(
    session: AsyncSession, caller: Caller, data: ConversionRuleCreate
) -> ConversionRule:
    conditions = [c.model_dump(mode="json") for c in data.conditions]
    await _check_labels(session, caller, conditions)
    pipeline_id, stage_id = await _target(
        session, caller, data.action.value, data.pipeline_id, data.stage_id
    )
    return await RuleRepository(session, caller).add(
        name=data.name,
        enabled=data.enabled,
        action=data.action.value,
        pipeline_id=pipeline_id,
        stage_id=stage_id,
        conditions=conditions,
    )


async def update_rule(
    session: AsyncSession, caller: Caller, rule_id: uuid.UUID, data: ConversionRuleUpdate
) -> ConversionRule:
    """Changing what the rule means (conditions, action) or disabling it clears the
    readiness it gave: the rows would claim something the rule no longer says."""
    rules = RuleRepository(session, caller)
    rule = await get_rule(session, caller, rule_id, for_update=True)
    sent = data.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    if "name" in sent:
        changes["name"] = data.name
    if "enabled" in sent:
        changes["enabled"] = data.enabled
    if "conditions" in sent:
        changes["conditions"] = [c.model_dump(mode="json") for c in data.conditions]
        await _check_labels(session, caller, changes["conditions"])
    action = data.action.value if "action" in sent else rule.action
    if "action" in sent:
        changes["action"] = action
    if {"action", "pipeline_id", "stage_id"} & sent.keys():
        keeps_target = action == RuleAction.convert.value and not (
            {"pipeline_id", "stage_id"} & sent.keys()
        )
        pipeline_id = sent.get("pipeline_id", rule.pipeline_id if keeps_target else None)
        stage_id = sent.get("stage_id", rule.stage_id if keeps_target else None)
        if "pipeline_id" in sent and "stage_id" not in sent:
            stage_id = None  # a new pipeline: its first stage unless one is named
        changes["pipeline_id"], changes["stage_id"] = await _target(
            session, caller, action, pipeline_id, stage_id
        )
    meaning_changed = any(
        key in changes and changes[key] != getattr(rule, key) for key in ("conditions", "action")
    )
    if meaning_changed or changes.get("enabled") is False:
        await rules.clear_readiness(rule.id)
    return await rules.update(rule, changes)


async def dry_run(
    session: AsyncSession, caller: Caller, rule: ConversionRule, page: PageRequest
) -> DryRun:
    """How many inbox leads visible to the caller the rule matches, and the first page
    (newest first); reads only."""
    rules = RuleRepository(session, caller)
    stmt = rules.matching_inbox(rule_matches_sql(rule.conditions))
    total = await rules.count(stmt)
    leads, _ = await paginate(session, stmt, INBOX_ORDER, PageRequest(page.limit, None))
    return DryRun(matches=total, data=await read_leads(session, caller.company_id, leads))


def _as_rule(rule: ConversionRule) -> Rule:
    return Rule(
        id=rule.id,
        name=rule.name,
        action=rule.action,
        pipeline_id=rule.pipeline_id,
        stage_id=rule.stage_id,
        conditions=list(rule.conditions),
    )


APPLY_JOB = "conversion_rule.apply"


async def apply_rule(session: AsyncSession, caller: Caller, rule: ConversionRule) -> uuid.UUID:
    """Enqueue applying an enabled rule to the company's inbox, in the request's
    transaction (the job exists if and only if the request commits); the worker runs it
    (`apply_step`). An apply of the same rule still queued or running is that job."""
    if not rule.enabled:
        raise RuleDisabled("Enable the rule before applying it; a dry-run works on any rule.")
    jobs = JobRepository(session)
    pending = await jobs.pending_of(caller, APPLY_JOB, "rule_id", str(rule.id))
    if pending is not None:
        return pending
    params = {"rule_id": str(rule.id), "caller": caller_params(caller)}
    return await jobs.enqueue(APPLY_JOB, params, caller)


async def apply_step(session: AsyncSession, job: JobContext) -> Step:
    """One chunk of applying a rule to the inbox, in the runner's transaction.

    The first chunk drops the rule's readiness on leads it no longer matches and counts
    the matches (`total`); each next one takes up to `batch` matching inbox leads after
    the checkpoint (in lead id order), marks them ready or converts them (set-based, a
    savepoint per attempt), and moves the checkpoint past them. A lead that starts to
    match behind the checkpoint is left to the rule's own evaluation on its next change.
    A rule deleted or disabled meanwhile ends the job with that error."""
    batch = APPLY_BATCH
    caller = job.caller()
    rule = await RuleRepository(session, caller).get(uuid.UUID(job.params["rule_id"]))
    if rule is None or not rule.enabled:
        gone = "deleted" if rule is None else "disabled"
        return Step(finished=True, result=job.result, errors=[{"error": f"The rule was {gone}."}])
    target = _as_rule(rule)
    counts = Applied.model_validate(
        job.result or {"matched": 0, "marked_ready": 0, "converted": 0, "blocked": 0}
    )
    if job.checkpoint is None:
        await _clear_unmatched(session, caller, target)
        total = await _count(session, caller, target)
        return Step(
            total=total, checkpoint={"after": None}, result=counts.model_dump(), finished=not total
        )
    after = job.checkpoint["after"]
    ids = await _batch(session, caller, target, uuid.UUID(after) if after else None, batch)
    counts.matched += len(ids)
    if target.action == RuleAction.mark_ready.value:
        counts.marked_ready += await upsert_readiness(
            session, [readiness_row(caller.company_id, lead_id, target.id) for lead_id in ids]
        )
    elif ids:
        converted, blocked = await _convert_batch(session, caller, target, ids)
        counts.converted += converted
        counts.blocked += blocked
    return Step(
        done=len(ids),
        checkpoint={"after": str(ids[-1]) if ids else after},
        result=counts.model_dump(),
        finished=len(ids) < batch,
    )


def _matching(caller: Caller, rule: Rule) -> Select[uuid.UUID]:
    return select(Lead.id).where(
        Lead.company_id == caller.company_id, in_inbox(), rule_matches_sql(rule.conditions)
    )


async def _count(session: AsyncSession, caller: Caller, rule: Rule) -> int:
    matching = _matching(caller, rule).subquery()
    return int(await session.scalar(select(func.count()).select_from(matching)) or 0)


async def _batch(
    session: AsyncSession, caller: Caller, rule: Rule, after: uuid.UUID | None, size: int
) -> list[uuid.UUID]:
    stmt = _matching(caller, rule)
    if after is not None:
        stmt = stmt.where(Lead.id > after)
    return list(await session.scalars(stmt.order_by(Lead.id).limit(size)))


async def _clear_unmatched(session: AsyncSession, caller: Caller, rule: Rule) -> None:
    """Readiness of this rule on leads it no longer matches (or that left the inbox)."""
    still = select(Lead.id).where(
        Lead.id == LeadReadiness.lead_id, in_inbox(), rule_matches_sql(rule.conditions)
    )
    await session.execute(
        delete(LeadReadiness).where(
            LeadReadiness.company_id == caller.company_id,
            LeadReadiness.rule_id == rule.id,
            ~still.exists(),
        )
    )


async def _convert_batch(
    session: AsyncSession, caller: Caller, rule: Rule, lead_ids: Sequence[uuid.UUID]
) -> tuple[int, int]:
    """Converted and blocked counts. The batch converts in one set-based call; the leads a
    bulk refuses are marked ready with their reason and the rest tried once more; what is
    refused as a whole (the open-deal limit) goes lead by lead, so that the slots left
    are used. Each attempt is a savepoint: a refusal leaves nothing behind."""
    choices = LeadConversionCreate(pipeline_id=rule.pipeline_id, stage_id=rule.stage_id)
    pending = list(lead_ids)
    blocked: dict[uuid.UUID, Block] = {}
    converted: list[uuid.UUID] = []
    for _ in range(2):
        if len(pending) <= 1:
            break
        try:
            async with session.begin_nested():
                done = await lead_to_deal.convert_leads(
                    session,
                    caller,
                    [lead_to_deal.Order(lead_id, choices) for lead_id in pending],
                    rule_id=rule.id,
                )
            converted += [c.conversion.lead_id for c in done]
            pending = []
        except ConversionsFailed as failed:
            for failure in failed.extensions["failures"]:
                lead_id = uuid.UUID(failure["lead_id"])
                pending.remove(lead_id)
                if failure["type"] != LeadAlreadyConverted.slug:
                    blocked[lead_id] = Block.of_failure(failure)
        except DomainError:
            break
    for lead_id in pending:
        try:
            async with session.begin_nested():
                await lead_to_deal.convert_leads(
                    session, caller, [lead_to_deal.Order(lead_id, choices)], rule_id=rule.id
                )
            converted.append(lead_id)
        except LeadAlreadyConverted:
            continue
        except DomainError as error:
            blocked[lead_id] = Block.of(error)
    await upsert_readiness(
        session,
        [
            readiness_row(caller.company_id, lead_id, rule.id, block)
            for lead_id, block in blocked.items()
        ],
    )
    if converted:  # readiness is for inbox leads
        await session.execute(delete(LeadReadiness).where(LeadReadiness.lead_id.in_(converted)))
    return len(converted), len(blocked)


async def add_example_rule(session: AsyncSession, company_id: uuid.UUID) -> None:
    """A new company's disabled example: convert when an email is marked done, into the
    first stage of the default pipeline."""
    first_stage = (
        await session.execute(
            select(Stage.pipeline_id, Stage.id)
            .join(Pipeline, Pipeline.id == Stage.pipeline_id)
            .where(Pipeline.company_id == company_id)
            .order_by(Pipeline.position, Pipeline.id, Stage.position, Stage.id)
            .limit(1)
        )
    ).one_or_none()
    session.add(
        ConversionRule(
            company_id=company_id,
            pipeline_id=first_stage[0] if first_stage else None,
            stage_id=first_stage[1] if first_stage else None,
            **EXAMPLE_RULE,
        )
    )
    await session.flush()

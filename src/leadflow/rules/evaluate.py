"""Evaluating conversion rules for one lead, inside the transaction of the write that
could change a condition (`rules.subscriptions` calls it for the domain events of such
writes; the writers do not know it exists).

Each condition type is written twice, side by side: `holds` decides it in Python over
the facts of one lead (the per-write path: one statement loads the company's enabled
rules and the lead's facts, whatever the number of rules), and `matches_sql` decides it in
SQL over many leads (dry-run and apply). Both use the same regular expressions, which
Python's `re` and PostgreSQL's ARE read alike.

A `convert` rule that holds runs the conversion use case (`convert_leads`) in a
SAVEPOINT: when the conversion is refused (duplicate contacts that need a choice, the
open-deal limit, any domain error) only the savepoint rolls back, the triggering write
stands, and the lead is marked ready with the reason instead.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi.encoders import jsonable_encoder
from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    delete,
    distinct,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from leadflow.activities.models import Activity, Note
from leadflow.contacts.models import Organization
from leadflow.conversion import lead_to_deal
from leadflow.conversion.errors import LeadAlreadyConverted
from leadflow.conversion.schemas import LeadConversionCreate
from leadflow.errors import DomainError
from leadflow.leads.models import Lead, LeadReadiness, in_inbox
from leadflow.rules.models import ConversionRule
from leadflow.rules.schemas import RuleAction
from leadflow.tenancy import Caller

_WORD = re.compile(r"\w+")


# The patterns both engines run (case-insensitively).


@functools.lru_cache(maxsize=1024)
def keywords_pattern(keywords: tuple[str, ...]) -> str:
    """Any keyword as whole words: its words in order, separated by any non-word run."""
    alternatives = [r"\W+".join(_WORD.findall(keyword.lower())) for keyword in keywords]
    return r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"


@functools.lru_cache(maxsize=1024)
def host_pattern(host: str) -> str:
    """The host or a subdomain of it, as a host name: not inside a longer name
    (`notlinkedin.com`, `linkedin.com.evil.org`) nor after an `@` (an e-mail address)."""
    escaped = host.lower().replace(".", r"\.")
    return r"(?<![\w.@-])(?:[\w-]+\.)*" + escaped + r"(?![\w-]|\.[\w-])"


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# The facts of one lead, and the conditions in Python.


@dataclass(frozen=True, slots=True)
class LeadFacts:
    id: uuid.UUID
    company_id: uuid.UUID
    in_inbox: bool
    source: str
    label_ids: frozenset[uuid.UUID]
    value_amount: Decimal | None
    value_currency: str | None
    organization_name: str | None
    prospect_person_name: str | None
    prospect_organization_name: str | None
    fields: Any
    done_types: frozenset[str]
    ready_rule_ids: frozenset[uuid.UUID]


def _strings(value: Any) -> Iterator[str]:
    """Every string value inside captured JSON, at any depth (keys are not values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def holds(condition: dict[str, Any], lead: LeadFacts) -> bool:
    kind = condition["type"]
    if kind == "activity_done":
        return condition["activity_type"] in lead.done_types
    if kind == "organization_matches":
        regex = _compiled(keywords_pattern(tuple(condition["keywords"])))
        names = (lead.organization_name, lead.prospect_organization_name)
        return any(name is not None and regex.search(name) for name in names)
    if kind == "has_label":
        return uuid.UUID(str(condition["label_id"])) in lead.label_ids
    if kind == "source_is":
        return bool(lead.source == condition["source"])
    if kind == "has_link":
        regex = _compiled(host_pattern(condition["host"]))
        texts = (lead.prospect_person_name, lead.prospect_organization_name)
        return any(t is not None and regex.search(t) for t in texts) or any(
            regex.search(t) for t in _strings(lead.fields)
        )
    if kind == "value_at_least":
        return (
            lead.value_amount is not None
            and lead.value_currency == condition["currency"]
            and lead.value_amount >= Decimal(str(condition["amount"]))
        )
    return False  # a type this version does not know never holds


def rule_holds(conditions: Sequence[dict[str, Any]], lead: LeadFacts) -> bool:
    return bool(conditions) and all(holds(c, lead) for c in conditions)


# The same conditions in SQL, over `lead` rows.


def _regex(column: Any, pattern: str) -> ColumnElement[bool]:
    matched: ColumnElement[bool] = column.op("~*", is_comparison=True)(literal(pattern))
    return matched


def _organization_name() -> Any:
    return (
        select(Organization.name)
        .where(Organization.id == Lead.organization_id, Organization.company_id == Lead.company_id)
        .scalar_subquery()
    )


def _field_strings_match(pattern: str) -> ColumnElement[bool]:
    values = (
        func.jsonb_path_query(Lead.fields, literal_column("'strict $.**'::jsonpath"))
        .table_valued("value")
        .render_derived()
    )
    return exists(
        select(literal(1))
        .select_from(values)
        .where(
            func.jsonb_typeof(values.c.value) == "string",
            _regex(values.c.value.op("#>>")(literal_column("'{}'")), pattern),
        )
    )


def matches_sql(condition: dict[str, Any]) -> ColumnElement[bool]:
    kind = condition["type"]
    if kind == "activity_done":
        return exists(
            select(Activity.id).where(
                Activity.lead_id == Lead.id,
                Activity.done,
                Activity.type == condition["activity_type"],
            )
        )
    if kind == "organization_matches":
        pattern = keywords_pattern(tuple(condition["keywords"]))
        return or_(
            _regex(_organization_name(), pattern),
            _regex(Lead.prospect_organization_name, pattern),
        )
    if kind == "has_label":
        label = literal([uuid.UUID(str(condition["label_id"]))], ARRAY(UUID(as_uuid=True)))
        carries: ColumnElement[bool] = Lead.label_ids.contains(label)
        return carries
    if kind == "source_is":
        return Lead.source == str(condition["source"])
    if kind == "has_link":
        pattern = host_pattern(condition["host"])
        return or_(
            _regex(Lead.prospect_person_name, pattern),
            _regex(Lead.prospect_organization_name, pattern),
            _field_strings_match(pattern),
        )
    if kind == "value_at_least":
        return and_(
            Lead.value_currency == condition["currency"],
            Lead.value_amount >= Decimal(str(condition["amount"])),
        )
    return false()


def rule_matches_sql(conditions: Sequence[dict[str, Any]]) -> ColumnElement[bool]:
    if not conditions:
        return false()
    return and_(*(matches_sql(c) for c in conditions))


# Evaluating one lead.


@dataclass(frozen=True, slots=True)
class Rule:
    id: uuid.UUID
    name: str
    action: str
    pipeline_id: uuid.UUID | None
    stage_id: uuid.UUID | None
    conditions: Sequence[dict[str, Any]]  # read-only: parsed rules are shared (cached)


@dataclass(slots=True)
class Outcome:
    """What an evaluation did; `deal_id` is set when a rule converted the lead."""

    marked: list[uuid.UUID]
    cleared: list[uuid.UUID]
    blocked: dict[uuid.UUID, str]
    deal_id: uuid.UUID | None = None


@functools.lru_cache(maxsize=256)
def _parse_rules(document: str) -> tuple[Rule, ...]:
    """The enabled rules from their JSON text. Cached by that text: a company's rules
    rarely change while its leads are written all day, and the text is their content."""
    return tuple(
        Rule(
            id=uuid.UUID(rule_id),
            name=name,
            action=action,
            pipeline_id=uuid.UUID(pipeline_id) if pipeline_id else None,
            stage_id=uuid.UUID(stage_id) if stage_id else None,
            conditions=tuple(conditions),
        )
        for rule_id, name, action, pipeline_id, stage_id, conditions in json.loads(document)
    )


@functools.cache
def _rules_and_facts_statement() -> Select[Any]:
    """Built once: its values are the bind parameters `company_id` and `lead_id`
    (building this CTE and its subqueries again on every write was ~15% of its CPU)."""
    company_id = bindparam("company_id", type_=Uuid)
    lead_id = bindparam("lead_id", type_=Uuid)
    rules = (
        select(
            ConversionRule.id,
            ConversionRule.name,
            ConversionRule.action,
            ConversionRule.pipeline_id,
            ConversionRule.stage_id,
            ConversionRule.conditions,
            ConversionRule.created_at,
        )
        .where(ConversionRule.company_id == company_id, ConversionRule.enabled)
        .cte("rules")
    )
    rules_json = select(
        cast(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(
                        rules.c.id,
                        rules.c.name,
                        rules.c.action,
                        rules.c.pipeline_id,
                        rules.c.stage_id,
                        rules.c.conditions,
                    ),
                    rules.c.created_at,
                    rules.c.id,
                )
            ),
            Text,
        )
    ).scalar_subquery()
    done_types = (
        select(func.array_agg(distinct(Activity.type)))
        .where(Activity.lead_id == Lead.id, Activity.done)
        .scalar_subquery()
    )
    ready = (
        select(func.array_agg(LeadReadiness.rule_id))
        .where(LeadReadiness.lead_id == Lead.id)
        .scalar_subquery()
    )
    return select(
        rules_json,
        Lead.id,
        Lead.company_id,
        in_inbox(),
        Lead.source,
        Lead.label_ids,
        Lead.value_amount,
        Lead.value_currency,
        _organization_name(),
        Lead.prospect_person_name,
        Lead.prospect_organization_name,
        cast(Lead.fields, Text),  # parsed only if a has_link condition needs it
        done_types,
        ready,
    ).where(
        Lead.company_id == company_id,
        Lead.id == lead_id,
        exists(select(rules.c.id)),
    )


async def rules_and_facts(
    session: AsyncSession, company_id: uuid.UUID, lead_id: uuid.UUID
) -> tuple[tuple[Rule, ...], LeadFacts] | None:
    """The company's enabled rules (oldest first: the order `convert` rules are tried in)
    and everything their conditions look at on the lead, in one statement.

    None when the company has no enabled rule or no such lead. Without enabled rules the
    lead is not even read: the EXISTS on the rules is a one-time filter (an InitPlan)
    that PostgreSQL checks before scanning anything else.
    """
    row = (
        await session.execute(
            _rules_and_facts_statement(), {"company_id": company_id, "lead_id": lead_id}
        )
    ).one_or_none()
    if row is None:
        return None
    parsed = _parse_rules(row[0])
    links = any(c["type"] == "has_link" for rule in parsed for c in rule.conditions)
    facts = LeadFacts(
        id=row[1],
        company_id=row[2],
        in_inbox=row[3],
        source=row[4],
        label_ids=frozenset(row[5] or ()),
        value_amount=row[6],
        value_currency=row[7],
        organization_name=row[8],
        prospect_person_name=row[9],
        prospect_organization_name=row[10],
        fields=json.loads(row[11]) if links and row[11] else {},
        done_types=frozenset(row[12] or ()),
        ready_rule_ids=frozenset(row[13] or ()),
    )
    return parsed, facts


@dataclass(frozen=True, slots=True)
class Block:
    """Why a `convert` rule could not convert a lead: the refusal's slug and its body."""

    reason: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, error: DomainError) -> Block:
        return cls(error.slug, jsonable_encoder({"detail": error.detail, **error.extensions}))

    @classmethod
    def of_failure(cls, failure: dict[str, Any]) -> Block:
        """One lead's entry of a bulk refusal (`ConversionsFailed.failures`)."""
        detail = {k: v for k, v in failure.items() if k not in ("lead_id", "type")}
        return cls(str(failure["type"]), jsonable_encoder(detail))


async def reload_stale(session: AsyncSession, *, converted: bool) -> None:
    """Load again what a conversion or a rolled-back savepoint left stale.

    The triggering write's objects (the lead, the activity) are still in the session and
    about to be serialized. A rolled-back savepoint expires what it touched, and an
    expired attribute would need a lazy load, which an async session cannot do there; a
    conversion moves notes and activities and updates the lead with bulk statements that
    leave the session's copies as they were.
    """
    moved_by_conversion = (Lead, Activity, Note)
    for obj in list(session.sync_session.identity_map.values()):
        state = sa_inspect(obj)
        if state.expired_attributes or (converted and isinstance(obj, moved_by_conversion)):
            try:
                await session.refresh(obj)
            except sa_exc.InvalidRequestError:  # its row is gone
                session.expunge(obj)


async def convert_by_rule(
    session: AsyncSession, caller: Caller, lead_id: uuid.UUID, rule: Rule
) -> uuid.UUID | DomainError:
    """The deal a `convert` rule made, or why it could not; in a savepoint either way."""
    choices = LeadConversionCreate(pipeline_id=rule.pipeline_id, stage_id=rule.stage_id)
    try:
        async with session.begin_nested():
            converted = await lead_to_deal.convert_leads(
                session, caller, [lead_to_deal.Order(lead_id, choices)], rule_id=rule.id
            )
    except DomainError as error:
        return error
    return converted[0].deal.id


def readiness_row(
    company_id: uuid.UUID, lead_id: uuid.UUID, rule_id: uuid.UUID, block: Block | None = None
) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "rule_id": rule_id,
        "company_id": company_id,
        "blocked_reason": block.reason if block is not None else None,
        "blocked_detail": block.detail if block is not None else null(),
    }


async def upsert_readiness(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Mark leads ready (keeping `since` of rows already there); returns new rows only."""
    if not rows:
        return 0
    insert = pg_insert(LeadReadiness).values(rows)
    upsert: Any = insert.on_conflict_do_update(
        index_elements=[LeadReadiness.lead_id, LeadReadiness.rule_id],
        set_={
            "blocked_reason": insert.excluded.blocked_reason,
            "blocked_detail": insert.excluded.blocked_detail,
        },
    ).returning(literal_column("xmax = 0"))  # true for an insert, false for an update
    return sum(1 for inserted in await session.scalars(upsert) if inserted)


async def clear_readiness_of_label(
    session: AsyncSession, company_id: uuid.UUID, label_id: uuid.UUID
) -> None:
    """Readiness of the company's rules that have a `has_label` condition on this label
    (served by the readiness rows' (company_id, since, lead_id) index and the rules')."""
    naming = ConversionRule.conditions.contains([{"type": "has_label", "label_id": str(label_id)}])
    await session.execute(
        delete(LeadReadiness).where(
            LeadReadiness.company_id == company_id,
            LeadReadiness.rule_id.in_(
                select(ConversionRule.id).where(ConversionRule.company_id == company_id, naming)
            ),
        )
    )


async def evaluate_lead(
    session: AsyncSession, company_id: uuid.UUID, actor: Caller | None, lead_id: uuid.UUID
) -> Outcome | None:
    """Apply the company's enabled rules to one lead, in the transaction of the write.

    A conversion acts as `actor`, who made the triggering write (for a capture: the
    form's owner with an admin's view); without one, `convert` rules cannot convert and
    only readiness is kept. Returns None when the company has no enabled rule or the
    lead is not in the inbox.
    """
    loaded = await rules_and_facts(session, company_id, lead_id)
    if loaded is None:
        return None
    rules, lead = loaded
    if not lead.in_inbox:
        return None
    holding = [rule for rule in rules if rule_holds(rule.conditions, lead)]
    outcome = Outcome(marked=[], cleared=[], blocked={})
    blocked: dict[uuid.UUID, Block] = {}
    converting = [rule for rule in holding if rule.action == RuleAction.convert]
    left_inbox = False
    if converting:
        for rule in converting:
            if actor is None:
                break
            result = await convert_by_rule(session, actor, lead_id, rule)
            if isinstance(result, LeadAlreadyConverted):
                left_inbox = True  # a concurrent request converted it first
                break
            if isinstance(result, DomainError):
                blocked[rule.id] = Block.of(result)
                continue
            outcome.deal_id = result
            left_inbox = True
            break
        await reload_stale(session, converted=left_inbox)
    if left_inbox:
        # Readiness is for inbox leads: a converted lead keeps none.
        await session.execute(delete(LeadReadiness).where(LeadReadiness.lead_id == lead_id))
        outcome.cleared = sorted(lead.ready_rule_ids)
        _forget_loaded_readiness(session, lead_id)
        return outcome
    held = {rule.id for rule in holding}
    stale = lead.ready_rule_ids - held
    if stale:
        await session.execute(
            delete(LeadReadiness).where(
                LeadReadiness.lead_id == lead_id, LeadReadiness.rule_id.in_(stale)
            )
        )
        outcome.cleared = sorted(stale)
    # Rows to write: new mark_ready readiness, and every blocked conversion (its reason
    # may have changed); rows already there keep their `since`.
    to_mark = [
        rule
        for rule in holding
        if rule.id in blocked
        or (rule.action == RuleAction.mark_ready and rule.id not in lead.ready_rule_ids)
    ]
    await upsert_readiness(
        session,
        [readiness_row(company_id, lead_id, rule.id, blocked.get(rule.id)) for rule in to_mark],
    )
    outcome.marked = [rule.id for rule in to_mark if rule.id not in lead.ready_rule_ids]
    outcome.blocked = {rule_id: block.reason for rule_id, block in blocked.items()}
    if stale or to_mark:
        _forget_loaded_readiness(session, lead_id)
    return outcome


def _forget_loaded_readiness(session: AsyncSession, lead_id: uuid.UUID) -> None:
    """The session's copy of the lead, if it holds one, no longer knows its readiness:
    the lead read model loads it again. (A lead's writer sets the readiness of a lead it
    just created to none, which spares that read when no rule marks it.)"""
    lead = session.sync_session.identity_map.get(identity_key(Lead, lead_id))
    if lead is not None:
        set_committed_value(lead, "readiness_rows", None)

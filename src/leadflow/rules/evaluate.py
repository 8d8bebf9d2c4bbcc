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
from dataclasses import dataclass, field
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
    tuple_,
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
    return select(rules_json, *_facts_columns()).where(
        Lead.company_id == company_id,
        Lead.id == lead_id,
        exists(select(rules.c.id)),
    )


def _rules_json() -> Any:
    """The company's enabled rules as one JSON text (oldest first), NULL without any."""
    return cast(
        func.json_agg(
            aggregate_order_by(
                func.json_build_array(
                    ConversionRule.id,
                    ConversionRule.name,
                    ConversionRule.action,
                    ConversionRule.pipeline_id,
                    ConversionRule.stage_id,
                    ConversionRule.conditions,
                ),
                ConversionRule.created_at,
                ConversionRule.id,
            )
        ),
        Text,
    )


def _facts_columns() -> tuple[Any, ...]:
    """What the conditions look at on a lead, in the order `_facts` reads them."""
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
    return (
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
    )


@functools.cache
def _batch_statements() -> tuple[Select[Any], Select[Any]]:
    """Built once, for many leads: the company's enabled rules (one row, NULL without
    any), then the facts of the leads `lead_ids` of company `company_id` (one statement
    whatever their number)."""
    company_id = bindparam("company_id", type_=Uuid)
    lead_ids = bindparam("lead_ids", type_=ARRAY(UUID(as_uuid=True)))
    rules = select(_rules_json()).where(
        ConversionRule.company_id == company_id, ConversionRule.enabled
    )
    facts = select(*_facts_columns()).where(
        Lead.company_id == company_id, Lead.id == func.any(lead_ids)
    )
    return rules, facts


def _facts(row: Any, links: bool) -> LeadFacts:
    """A row of `_facts_columns` (from its first column on) as the facts of its lead."""
    return LeadFacts(
        id=row[0],
        company_id=row[1],
        in_inbox=row[2],
        source=row[3],
        label_ids=frozenset(row[4] or ()),
        value_amount=row[5],
        value_currency=row[6],
        organization_name=row[7],
        prospect_person_name=row[8],
        prospect_organization_name=row[9],
        fields=json.loads(row[10]) if links and row[10] else {},
        done_types=frozenset(row[11] or ()),
        ready_rule_ids=frozenset(row[12] or ()),
    )


def _has_links(rules: Sequence[Rule]) -> bool:
    return any(c["type"] == "has_link" for rule in rules for c in rule.conditions)


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
    return parsed, _facts(row[1:], _has_links(parsed))


async def rules_and_facts_of_many(
    session: AsyncSession, company_id: uuid.UUID, lead_ids: Sequence[uuid.UUID]
) -> tuple[tuple[Rule, ...], list[LeadFacts]] | None:
    """`rules_and_facts` for many leads in two statements whatever their number: the
    rules, then (only when there is one) the leads' facts, in the order of `lead_ids`."""
    rules_statement, facts_statement = _batch_statements()
    document = await session.scalar(rules_statement, {"company_id": company_id})
    if document is None or not lead_ids:
        return None
    parsed = _parse_rules(document)
    links = _has_links(parsed)
    rows = await session.execute(
        facts_statement, {"company_id": company_id, "lead_ids": list(lead_ids)}
    )
    by_id = {facts.id: facts for facts in (_facts(row, links) for row in rows)}
    return parsed, [by_id[i] for i in lead_ids if i in by_id]


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
    writes = _ReadinessWrites()
    outcome = await _judge(session, company_id, actor, rules, lead, writes)
    await writes.apply(session)
    return outcome


async def evaluate_leads(
    session: AsyncSession,
    company_id: uuid.UUID,
    actor: Caller | None,
    lead_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, Outcome]:
    """`evaluate_lead` for many leads of one company written by one actor (an import's
    chunk, any batch publisher), in a few statements whatever their number: the rules,
    the leads' facts, then one DELETE per kind and one upsert of the readiness they all
    need. Only a `convert` rule that holds runs per lead (each conversion is a use case
    in its own savepoint, tried in the leads' order, as one write after another would).
    Returns the outcome of each lead in the inbox (none when no rule is enabled)."""
    unique = list(dict.fromkeys(lead_ids))
    loaded = await rules_and_facts_of_many(session, company_id, unique)
    if loaded is None:
        return {}
    rules, leads = loaded
    writes = _ReadinessWrites()
    outcomes: dict[uuid.UUID, Outcome] = {}
    for lead in leads:
        if lead.in_inbox:
            outcomes[lead.id] = await _judge(session, company_id, actor, rules, lead, writes)
    await writes.apply(session)
    return outcomes


@dataclass(slots=True)
class _ReadinessWrites:
    """What evaluations change in readiness, written together (leads are independent:
    each statement touches only the rows of the leads it names)."""

    left_inbox: list[uuid.UUID] = field(default_factory=list)
    stale: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    forget: list[uuid.UUID] = field(default_factory=list)

    async def apply(self, session: AsyncSession) -> None:
        if self.left_inbox:
            await session.execute(
                delete(LeadReadiness).where(LeadReadiness.lead_id.in_(self.left_inbox))
            )
        for start in range(0, len(self.stale), _PAIRS_PER_STATEMENT):
            pairs = self.stale[start : start + _PAIRS_PER_STATEMENT]
            if len({lead for lead, _ in pairs}) == 1:  # one lead: the single write's form
                await session.execute(
                    delete(LeadReadiness).where(
                        LeadReadiness.lead_id == pairs[0][0],
                        LeadReadiness.rule_id.in_([rule for _, rule in pairs]),
                    )
                )
            else:
                await session.execute(
                    delete(LeadReadiness).where(
                        tuple_(LeadReadiness.lead_id, LeadReadiness.rule_id).in_(pairs)
                    )
                )
        for start in range(0, len(self.rows), _ROWS_PER_UPSERT):
            await upsert_readiness(session, self.rows[start : start + _ROWS_PER_UPSERT])
        for lead_id in self.forget:
            _forget_loaded_readiness(session, lead_id)


# Bounds on one statement's bind parameters (PostgreSQL takes at most 32,767).
_PAIRS_PER_STATEMENT = 5_000
_ROWS_PER_UPSERT = 2_000


async def _judge(
    session: AsyncSession,
    company_id: uuid.UUID,
    actor: Caller | None,
    rules: Sequence[Rule],
    lead: LeadFacts,
    writes: _ReadinessWrites,
) -> Outcome:
    """The rules over one inbox lead: its conversion (when a `convert` rule holds and
    an actor can convert), and the readiness it needs, added to `writes`."""
    lead_id = lead.id
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
        writes.left_inbox.append(lead_id)
        outcome.cleared = sorted(lead.ready_rule_ids)
        writes.forget.append(lead_id)
        return outcome
    held = {rule.id for rule in holding}
    stale = lead.ready_rule_ids - held
    if stale:
        writes.stale.extend((lead_id, rule_id) for rule_id in sorted(stale))
        outcome.cleared = sorted(stale)
    # Rows to write: new mark_ready readiness, and every blocked conversion (its reason
    # may have changed); rows already there keep their `since`.
    to_mark = [
        rule
        for rule in holding
        if rule.id in blocked
        or (rule.action == RuleAction.mark_ready and rule.id not in lead.ready_rule_ids)
    ]
    writes.rows.extend(
        readiness_row(company_id, lead_id, rule.id, blocked.get(rule.id)) for rule in to_mark
    )
    outcome.marked = [rule.id for rule in to_mark if rule.id not in lead.ready_rule_ids]
    outcome.blocked = {rule_id: block.reason for rule_id, block in blocked.items()}
    if stale or to_mark:
        writes.forget.append(lead_id)
    return outcome


def _forget_loaded_readiness(session: AsyncSession, lead_id: uuid.UUID) -> None:
    """The session's copy of the lead, if it holds one, no longer knows its readiness:
    the lead read model loads it again. (A lead's writer sets the readiness of a lead it
    just created to none, which spares that read when no rule marks it.)"""
    lead = session.sync_session.identity_map.get(identity_key(Lead, lead_id))
    if lead is not None:
        set_committed_value(lead, "readiness_rows", None)

"""The conversion rule answers of the GETs: statements compiled once per shape
(`leadflow.readpath`), rows straight to JSON, spelled as `ConversionRuleRead` writes them
(tests hold them alike). Rules are company settings: every user of the company sees
them all."""

from __future__ import annotations

import functools
import uuid
from typing import Any, get_args

from sqlalchemy import DateTime, Integer, Uuid, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, fields, page_of
from leadflow.rules.models import ConversionRule
from leadflow.rules.schemas import Condition, ConversionRuleRead
from leadflow.tenancy import Caller, in_viewer_company, viewer_params

# Oldest first: the order in which `convert` rules are tried.
RULES_ORDER = Keyset(ConversionRule.created_at, ConversionRule.id)

_FIELDS = tuple(ConversionRuleRead.model_fields)
_IDS = {"id", "pipeline_id", "stage_id"}
_COLUMNS = [
    as_text(getattr(ConversionRule, n)) if n in _IDS else getattr(ConversionRule, n)
    for n in _FIELDS
]

# Each condition's fields in the order its model writes them, by `type`. Conditions are
# stored as their model dumps them (values already as the answer spells them), but jsonb
# keeps an object's keys in its own order (shorter keys first), e.g. `host` before `type`.
_CONDITION_FIELDS: dict[str, tuple[str, ...]] = {
    get_args(model.model_fields["type"].annotation)[0]: tuple(model.model_fields)
    for model in get_args(get_args(Condition)[0])
}


def _rule_json(row: Any) -> dict[str, Any]:
    answer = fields(row, _FIELDS)
    answer["conditions"] = [
        {name: condition[name] for name in _CONDITION_FIELDS[condition["type"]]}
        for condition in answer["conditions"]
    ]
    return answer


@functools.cache
def rule_by_id() -> ReadStatement:
    return ReadStatement(
        select(*_COLUMNS).where(
            in_viewer_company(ConversionRule), ConversionRule.id == bindparam("id", type_=Uuid)
        )
    )


@functools.cache
def rule_page(after: bool) -> ReadStatement:
    stmt = select(*_COLUMNS).where(in_viewer_company(ConversionRule))
    if after:
        key = tuple_(
            bindparam("after_key", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=Uuid),
        )
        stmt = stmt.where(tuple_(ConversionRule.created_at, ConversionRule.id) > key)
    order = stmt.order_by(ConversionRule.created_at, ConversionRule.id)
    return ReadStatement(order.limit(bindparam("limit", type_=Integer)))


async def rule(session: AsyncSession, caller: Caller, rule_id: uuid.UUID) -> dict[str, Any] | None:
    """`GET /conversion-rules/{rule_id}`: a rule of the caller's company, or None."""
    row = await rule_by_id().fetchrow(session, {**viewer_params(caller), "id": rule_id})
    return None if row is None else _rule_json(row)


async def rules(session: AsyncSession, caller: Caller, page: PageRequest) -> dict[str, Any]:
    """`GET /conversion-rules`: the company's rules, oldest first."""
    params: dict[str, Any] = {**viewer_params(caller), "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, RULES_ORDER)
    rows = await rule_page(page.cursor is not None).fetch(session, params)
    return page_of(rows, page, "created_at", _rule_json)

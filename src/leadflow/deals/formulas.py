"""Formula field values of deals (`leadflow.fields.formulas`), kept in the deal's
`custom_fields` and recomputed in the transaction of any change to an input: the deal's
value, probability or custom fields (deal writes), its line items, its activities (a
subscriber of activity events) and the formulas themselves (every deal of the company).

One statement reads the company's deal fields; one more counts line items and activities,
only when a formula reads them; the deal is written once whatever the number of formulas.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from lark import Token, Tree
from sqlalchemy import Boolean, Integer, Uuid, column, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.changes import publish_changed, snapshot
from leadflow.deals.models import Deal, DealProduct
from leadflow.deals.repository import DealRepository
from leadflow.events import ChangeSource
from leadflow.fields import formulas
from leadflow.fields.models import FieldDefinition
from leadflow.jobs.repository import JobRepository
from leadflow.jobs.runner import JobContext, Step, caller_params
from leadflow.tenancy import Caller, in_company

# A formula change recomputes the company's deals as a job, this many deals a chunk.
RECOMPUTE_JOB = "deal_formulas.recompute"
RECOMPUTE_CHUNK = 500
MAX_NUMBER_DECIMALS = 6

# Activities sit above deals (they name deals as parents): read by their columns.
_ACTIVITY = table(
    "activity", column("deal_id", Uuid), column("done", Boolean), column("company_id", Uuid)
)


@dataclass(frozen=True, slots=True)
class DealFormulas:
    types: dict[str, str]  # every live deal field: key -> type
    trees: dict[str, Tree[Token]]  # the formula fields, parsed
    counted: frozenset[str]  # the counted inputs they read

    @property
    def ordered(self) -> list[str]:
        return list(formulas.order(self.trees))


async def deal_formulas(session: AsyncSession, company_id: uuid.UUID) -> DealFormulas:
    rows = await session.execute(
        select(FieldDefinition.key, FieldDefinition.field_type, FieldDefinition.formula).where(
            FieldDefinition.company_id == company_id,
            FieldDefinition.entity == "deal",
            FieldDefinition.deleted_at.is_(None),
        )
    )
    return from_rows(rows)


# A formula's tree by its text: every deal write of a company with formulas reads them
# (1.8 ms to parse ten short formulas on a loaded 2-core machine, per write). The trees
# are only read once parsed; a stored formula was checked when it was defined.
_parsed = functools.lru_cache(maxsize=4096)(formulas.parse)


def from_rows(rows: Iterable[Sequence[Any]]) -> DealFormulas:
    """From (key, type, formula) rows of the company's deal fields."""
    types: dict[str, str] = {}
    trees: dict[str, Tree[Token]] = {}
    for key, kind, source in rows:
        types[key] = kind
        if source is not None:
            trees[key] = _parsed(source)
    read = set().union(*(formulas.references(t) for t in trees.values())) if trees else set()
    return DealFormulas(types, trees, frozenset(read & formulas.COUNTED_INPUTS))


async def _counts(
    session: AsyncSession, company_id: uuid.UUID, deal_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Line-item total (with its currency) and activity counts of these deals, in one
    statement."""
    items = (
        select(
            DealProduct.deal_id,
            func.sum(DealProduct.sum).label("total"),
            func.min(DealProduct.currency).label("currency"),
        )
        .where(DealProduct.company_id == company_id, DealProduct.deal_id.in_(deal_ids))
        .group_by(DealProduct.deal_id)
        .subquery()
    )
    activities = (
        select(
            _ACTIVITY.c.deal_id,
            func.count().label("n"),
            func.count().filter(_ACTIVITY.c.done).label("done"),
        )
        .where(_ACTIVITY.c.company_id == company_id, _ACTIVITY.c.deal_id.in_(deal_ids))
        .group_by(_ACTIVITY.c.deal_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Deal.id,
            items.c.total,
            items.c.currency,
            func.coalesce(activities.c.n, 0).cast(Integer),
            func.coalesce(activities.c.done, 0).cast(Integer),
        )
        .outerjoin(items, items.c.deal_id == Deal.id)
        .outerjoin(activities, activities.c.deal_id == Deal.id)
        .where(Deal.company_id == company_id, Deal.id.in_(deal_ids))
    )
    return {
        deal_id: {
            "products_total": formulas.Amount(total, currency) if total is not None else None,
            "activities_count": formulas.Amount(Decimal(n)),
            "done_activities_count": formulas.Amount(Decimal(done)),
        }
        for deal_id, total, currency, n, done in rows
    }


def _input(kind: str | None, value: Any) -> formulas.Amount | None:
    if value is None:
        return None
    if kind == "monetary":
        return formulas.Amount(Decimal(value["amount"]), value["currency"])
    if kind in ("number", "formula"):
        if isinstance(value, dict):
            return formulas.Amount(Decimal(value["amount"]), value["currency"])
        return formulas.Amount(Decimal(value))
    return None


def _stored(result: formulas.Amount | None) -> Any:
    """A formula's value as `custom_fields` holds it: money with 2 decimals, a number as a
    decimal string; None: not calculated (the key is absent)."""
    if result is None:
        return None
    # A result past what a number or an amount holds (14 integer digits) is not
    # calculated, rather than stored as something no input could be.
    if not result.number.is_finite() or abs(result.number) >= Decimal(10) ** 14:
        return None
    if result.currency is not None:
        return {
            "amount": f"{result.number.quantize(Decimal('0.01'), ROUND_HALF_UP):f}",
            "currency": result.currency,
        }
    exponent = Decimal(1).scaleb(-MAX_NUMBER_DECIMALS)
    number = result.number.quantize(exponent, ROUND_HALF_UP).normalize()
    return "0" if number == 0 else f"{number:f}"


async def deal_counts(
    session: AsyncSession, company_id: uuid.UUID, deal_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """What formulas count on these deals (line items, activities), in one statement: for
    writers that compute formulas of many deals at once (an import's matched deals)."""
    return await _counts(session, company_id, deal_ids)


def with_formulas(
    found: DealFormulas,
    *,
    value_amount: Decimal | None,
    value_currency: str | None,
    probability: int | None,
    custom_fields: Mapping[str, Any],
    counted: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`custom_fields` with every formula's value computed anew."""
    values = {k: v for k, v in custom_fields.items() if k not in found.trees}
    value = (
        formulas.Amount(Decimal(value_amount), value_currency)
        if value_amount is not None and value_currency is not None
        else None
    )
    inputs: dict[str, formulas.Amount | None] = {
        "value": value,
        "probability": None if probability is None else formulas.Amount(Decimal(probability)),
        "weighted_value": None
        if value is None or probability is None
        else formulas.Amount(value.number * probability / 100, value.currency),
        **(counted or {}),
    }
    for key, raw in values.items():
        inputs[key] = _input(found.types.get(key), raw)
    for key in found.ordered:
        stored = _stored(formulas.evaluate(found.trees[key], inputs))
        inputs[key] = _input("formula", stored)
        if stored is not None:
            values[key] = stored
    return values


async def computed(
    session: AsyncSession, deal: Deal, values: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The deal's `custom_fields` with its formulas computed over the deal as an update
    of `values` will leave it (its value, probability and custom fields), so that the
    update writes them in its own statement; None when the company has no formula."""
    found = await deal_formulas(session, deal.company_id)
    if not found.trees:
        return None
    counted = (
        (await _counts(session, deal.company_id, [deal.id])).get(deal.id) if found.counted else None
    )
    return with_formulas(
        found,
        value_amount=values.get("value_amount", deal.value_amount),
        value_currency=values.get("value_currency", deal.value_currency),
        probability=values.get("probability", deal.probability),
        custom_fields=values.get("custom_fields", deal.custom_fields) or {},
        counted=counted,
    )


async def refresh(session: AsyncSession, caller: Caller, deal: Deal) -> None:
    """Recompute a loaded (locked) deal's formula values; written when one changed."""
    found = await deal_formulas(session, deal.company_id)
    if not found.trees:
        return
    counted = (
        (await _counts(session, deal.company_id, [deal.id])).get(deal.id) if found.counted else None
    )
    new = with_formulas(
        found,
        value_amount=deal.value_amount,
        value_currency=deal.value_currency,
        probability=deal.probability,
        custom_fields=deal.custom_fields or {},
        counted=counted,
    )
    if new != (deal.custom_fields or {}):
        await DealRepository(session, caller).update(deal, {"custom_fields": new})


async def enqueue_recompute(session: AsyncSession, caller: Caller) -> None:
    """Every deal of the company gets its formula values anew, as a job enqueued in the
    transaction of the formula's change (`recompute_step` runs it): a company of any
    size can change a formula, and its deals show the new values once the job is done."""
    await JobRepository(session).enqueue(RECOMPUTE_JOB, {"caller": caller_params(caller)}, caller)


async def recompute_step(session: AsyncSession, job: JobContext) -> Step:
    """One chunk of a recompute: the next RECOMPUTE_CHUNK deals of the company by id
    (converted ones aside), locked, each written only when its values change."""
    caller = job.caller()
    found = await deal_formulas(session, caller.company_id)
    after = (job.checkpoint or {}).get("after")
    stmt = select(Deal).where(in_company(Deal, caller), Deal.converted_lead_id.is_(None))
    if after is not None:
        stmt = stmt.where(Deal.id > uuid.UUID(after))
    deals = list(
        await session.scalars(stmt.order_by(Deal.id).limit(RECOMPUTE_CHUNK).with_for_update())
    )
    counts = (
        await _counts(session, caller.company_id, [d.id for d in deals]) if found.counted else {}
    )
    repository = DealRepository(session, caller)
    changed = 0
    written: list[tuple[Deal, dict[str, Any]]] = []
    for deal in deals:
        new = with_formulas(
            found,
            value_amount=deal.value_amount,
            value_currency=deal.value_currency,
            probability=deal.probability,
            custom_fields=deal.custom_fields or {},
            counted=counts.get(deal.id),
        )
        if new != (deal.custom_fields or {}):
            written.append((deal, snapshot(deal)))
            await repository.update(deal, {"custom_fields": new})
            changed += 1
    # The chunk's deal.updated events in one publish (one outbox statement).
    await publish_changed(session, caller, written, ChangeSource.system)
    return Step(
        done=len(deals),
        checkpoint={"after": str(deals[-1].id) if deals else after},
        result={"changed": int(job.result.get("changed", 0)) + changed},
        finished=len(deals) < RECOMPUTE_CHUNK,
    )

"""Use cases of deals: placing them in a pipeline, moving and closing them.

Every change of a tracked field is written to the changelog in the request's
transaction; opening a deal (creating it open, reopening it) first takes a slot under
the company's open-deal limit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import attribution, capabilities
from leadflow.auth.repository import UserRepository
from leadflow.capabilities import Capability, Entity
from leadflow.contacts.access import ensure_links_visible
from leadflow.deals import formulas as deal_formulas
from leadflow.deals.changes import WATCHED
from leadflow.deals.limits import OpenDealLimit, ensure_open_deal_slot
from leadflow.deals.line_items.service import sync_deal_value
from leadflow.deals.models import Deal, DealStatus, NewDeal
from leadflow.deals.repository import DealRepository, Destination
from leadflow.deals.schemas import (
    DealCreate,
    DealRead,
    DealUpdate,
)
from leadflow.errors import (
    CONFLICTS_WITH_RECORD,
    Conflict,
    InvalidInput,
    UnknownReference,
)
from leadflow.events import (
    Change,
    DealChanged,
    DealCreated,
    DealDeleted,
    DealStageChanged,
    DealStatusChanged,
    DomainEvent,
    changes_between,
    publish,
)
from leadflow.fields import values as custom_values
from leadflow.leads.repository import ensure_labels_exist
from leadflow.pipelines.models import Stage
from leadflow.schemas import Money
from leadflow.tenancy import Caller, Visibility

__all__ = [
    "DealsInTheWay",
    "OpenDealLimit",
    "archive_deal",
    "create_deal",
    "deal_read",
    "ensure_no_deals_in",
    "ensure_open_deal_slot",
    "update_deal",
]


class DealsInTheWay(Conflict):
    slug = "holds-deals"
    title = "The pipeline or stage still holds deals"
    members = {"open_deals": int, "deals": int}  # noqa: RUF012 - read-only class data

    def __init__(self, what: str, open_deals: int, deals: int) -> None:
        if open_deals:
            detail = f"The {what} holds {open_deals} open deals; move or close them first."
        else:
            detail = (
                f"The {what} holds {deals} won, lost or converted deals, kept as history; "
                "move them to another stage first."
            )
        super().__init__(detail, open_deals=open_deals, deals=deals)


def is_rotten(deal: Deal | NewDeal, rotten_days: int | None, now: datetime) -> bool:
    """Open and in its stage (since it entered it, else since created) over `rotten_days`."""
    if deal.status != DealStatus.open or rotten_days is None:
        return False
    since = deal.stage_changed_at or deal.created_at
    return now - since > timedelta(days=rotten_days)


def deal_read(
    deal: Deal | NewDeal, rotten_days: int | None, now: datetime | None = None
) -> DealRead:
    return DealRead(
        id=deal.id,
        title=deal.title,
        owner_id=deal.owner_id,
        person_id=deal.person_id,
        organization_id=deal.organization_id,
        pipeline_id=deal.pipeline_id,
        stage_id=deal.stage_id,
        status=DealStatus(deal.status),
        lost_reason=deal.lost_reason,
        value=Money.of(deal.value_amount, deal.value_currency),
        value_from_products=deal.value_from_products,
        probability=deal.probability,
        expected_close_date=deal.expected_close_date,
        won_at=deal.won_at,
        lost_at=deal.lost_at,
        closed_at=deal.closed_at,
        stage_changed_at=deal.stage_changed_at,
        rotten=is_rotten(deal, rotten_days, now or datetime.now(UTC)),
        label_ids=deal.label_ids,
        visible_to=deal.visible_to,
        source_lead_id=deal.source_lead_id,
        fields=deal.fields,
        custom_fields=deal.custom_fields,
        **attribution.of(deal),
        created_at=deal.created_at,
        updated_at=deal.updated_at,
    )


def deal_answer(
    deal: Deal | NewDeal, rotten_days: int | None, now: datetime | None = None
) -> dict[str, Any]:
    """`deal_read`'s answer as the dict `readpath.json_response` writes to the same bytes
    (`DealRead`'s fields in its order; ids as text, `value` as `Money` spells it, enums
    as their values), without building the model and FastAPI validating and serializing
    it again: for a write whose answer is one new deal (a conversion). A test holds the
    two alike."""
    amount, currency = deal.value_amount, deal.value_currency
    return {
        "id": str(deal.id),
        "title": deal.title,
        "owner_id": _text(deal.owner_id),
        "person_id": _text(deal.person_id),
        "organization_id": _text(deal.organization_id),
        "pipeline_id": str(deal.pipeline_id),
        "stage_id": str(deal.stage_id),
        "status": DealStatus(deal.status).value,
        "lost_reason": deal.lost_reason,
        "value": None
        if amount is None or currency is None
        else {"amount": f"{amount:.2f}", "currency": currency},
        "value_from_products": deal.value_from_products,
        "probability": deal.probability,
        "expected_close_date": deal.expected_close_date,
        "won_at": deal.won_at,
        "lost_at": deal.lost_at,
        "closed_at": deal.closed_at,
        "stage_changed_at": deal.stage_changed_at,
        "rotten": is_rotten(deal, rotten_days, now or datetime.now(UTC)),
        "label_ids": [str(label_id) for label_id in deal.label_ids],
        "visible_to": Visibility(deal.visible_to).value,
        "source_lead_id": _text(deal.source_lead_id),
        "fields": deal.fields,
        "custom_fields": deal.custom_fields,
        **attribution.of(deal),
        "created_at": deal.created_at,
        "updated_at": deal.updated_at,
    }


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


async def stage_of_new_deal(
    deals: DealRepository, pipeline_id: uuid.UUID | None, stage_id: uuid.UUID | None
) -> Stage:
    if stage_id is not None:
        stage = await deals.stage(stage_id)
        if stage is None:
            raise UnknownReference(["body", "stage_id"], "No such stage in your company.")
        if pipeline_id is not None and stage.pipeline_id != pipeline_id:
            raise InvalidInput(["body", "stage_id"], "The stage is not a stage of `pipeline_id`.")
        return stage
    if pipeline_id is not None:
        return await _first_stage(deals, pipeline_id, ["body", "pipeline_id"])
    default_id = await deals.default_pipeline_id()
    if default_id is None:
        raise InvalidInput(["body", "pipeline_id"], "The company has no pipeline; create one.")
    return await _first_stage(deals, default_id, ["body", "pipeline_id"])


async def destination_of_new_deals(
    deals: DealRepository, pipeline_id: uuid.UUID | None, stage_id: uuid.UUID | None
) -> Destination:
    """`stage_of_new_deal` with the company's open-deal limit, in one statement when it
    finds a stage (the same errors when it does not)."""
    destination = await deals.destination(pipeline_id, stage_id)
    if destination is None:
        if stage_id is not None:
            raise UnknownReference(["body", "stage_id"], "No such stage in your company.")
        if pipeline_id is None and await deals.default_pipeline_id() is None:
            raise InvalidInput(["body", "pipeline_id"], "The company has no pipeline; create one.")
        if pipeline_id is not None and await deals.pipeline(pipeline_id) is None:
            raise UnknownReference(["body", "pipeline_id"], "No such pipeline in your company.")
        raise InvalidInput(
            ["body", "pipeline_id"], "The pipeline has no stages; add one or choose `stage_id`."
        )
    if stage_id is not None and pipeline_id is not None and destination.pipeline_id != pipeline_id:
        raise InvalidInput(["body", "stage_id"], "The stage is not a stage of `pipeline_id`.")
    return destination


async def _first_stage(deals: DealRepository, pipeline_id: uuid.UUID, loc: list[str]) -> Stage:
    stage = await deals.first_stage(pipeline_id)
    if stage is not None:
        return stage
    if await deals.pipeline(pipeline_id) is None:
        raise UnknownReference(loc, "No such pipeline in your company.")
    raise InvalidInput(loc, "The pipeline has no stages; add one or choose `stage_id`.")


async def _check_references(deals: DealRepository, fields: dict[str, Any]) -> None:
    """Owner in the company, person and organization visible, labels of the company."""
    session, caller = deals.session, deals.caller
    owner_id = fields.get("owner_id")
    if owner_id is not None and owner_id != caller.user_id:
        await UserRepository(session, caller.company_id).ensure_exist([owner_id])
    await ensure_links_visible(
        session,
        caller,
        person_id=fields.get("person_id"),
        organization_id=fields.get("organization_id"),
    )
    await ensure_labels_exist(session, caller.company_id, fields.get("label_ids") or [])


def _check_lost_reason(status: str, lost_reason: str | None) -> None:
    if lost_reason is not None and status != DealStatus.lost:
        raise InvalidInput(
            ["body", "lost_reason"],
            "`lost_reason` is only for a deal whose status is `lost`.",
            CONFLICTS_WITH_RECORD,
        )


def _closing(status: str) -> dict[str, Any]:
    """The timestamps that a status sets (transaction time) and clears."""
    now = func.now()
    if status == DealStatus.won:
        return {"won_at": now, "lost_at": None, "closed_at": now, "lost_reason": None}
    if status == DealStatus.lost:
        return {"won_at": None, "lost_at": now, "closed_at": now}
    return {"won_at": None, "lost_at": None, "closed_at": None, "lost_reason": None}


async def create_deal(
    session: AsyncSession, caller: Caller, data: DealCreate, phone_region: str | None = None
) -> tuple[Deal, int | None]:
    """The new deal and its stage's `rotten_days`."""
    custom = await custom_values.validate(session, caller, "deal", data.custom_fields, phone_region)
    deals = DealRepository(session, caller)
    stage = await stage_of_new_deal(deals, data.pipeline_id, data.stage_id)
    owner_id = data.owner_id or caller.user_id
    await _check_references(
        deals,
        {
            "owner_id": owner_id,
            "person_id": data.person_id,
            "organization_id": data.organization_id,
            "label_ids": data.label_ids,
        },
    )
    _check_lost_reason(data.status, data.lost_reason)
    if data.status == DealStatus.open:
        await ensure_open_deal_slot(session, caller.company_id)
    amount = data.value.amount if data.value else None
    if amount is not None and data.value_from_products:
        amount = Decimal(0)  # the total of its line items, of which it has none yet
    closing = _closing(data.status) if data.status != DealStatus.open else {}
    closing.pop("lost_reason", None)  # a won deal has none; a lost one keeps the one given
    deal = await deals.add(
        title=data.title,
        owner_id=owner_id,
        person_id=data.person_id,
        organization_id=data.organization_id,
        pipeline_id=stage.pipeline_id,
        stage_id=stage.id,
        status=data.status.value,
        lost_reason=data.lost_reason,
        value_amount=amount,
        value_currency=data.value.currency if data.value else None,
        value_from_products=data.value_from_products,
        probability=data.probability if data.probability is not None else stage.probability,
        expected_close_date=data.expected_close_date,
        stage_changed_at=func.now(),
        label_ids=data.label_ids,
        visible_to=data.visible_to.value,
        custom_fields=custom_values.merged({}, custom),
        **closing,
    )
    await deal_formulas.refresh(session, caller, deal)
    await publish(session, DealCreated(id=deal.id, company_id=deal.company_id, actor=caller))
    return deal, stage.rotten_days


# Fields a PATCH stores as sent; the others are translated or have rules of their own.
_AS_SENT = (
    "title",
    "owner_id",
    "person_id",
    "organization_id",
    "probability",
    "expected_close_date",
    "label_ids",
    "value_from_products",
)


async def update_deal(
    session: AsyncSession,
    caller: Caller,
    deal_id: uuid.UUID,
    data: DealUpdate,
    phone_region: str | None = None,
) -> tuple[Deal, int | None]:
    """Apply the fields sent; returns the deal and its stage's `rotten_days`."""
    deals = DealRepository(session, caller)
    deal = await deals.get(deal_id, for_update=True)
    sent = data.model_dump(exclude_unset=True)
    values: dict[str, Any] = {field: sent[field] for field in _AS_SENT if field in sent}
    if "visible_to" in sent:
        values["visible_to"] = data.visible_to.value
    if "custom_fields" in sent:
        custom = await custom_values.validate(
            session, caller, "deal", data.custom_fields, phone_region
        )
        values["custom_fields"] = custom_values.merged(deal.custom_fields, custom)
    if "value" in sent:
        values["value_amount"] = data.value.amount if data.value else None
        values["value_currency"] = data.value.currency if data.value else None
        follows_products = sent.get("value_from_products", deal.value_from_products)
        unchanged = (values["value_amount"], values["value_currency"]) == (
            deal.value_amount,
            deal.value_currency,
        )
        if follows_products and not unchanged:
            raise InvalidInput(
                ["body", "value"],
                "The value follows the deal's products; set `value_from_products` to false "
                "to set it by hand.",
            )
    # A reference sent back unchanged is not re-checked: a client may resend what it read.
    await _check_references(
        deals,
        {field: value for field, value in values.items() if value != getattr(deal, field, None)},
    )

    stage = await _stage_after_move(deals, deal, sent.get("pipeline_id"), sent.get("stage_id"))
    if stage is not None and stage.id != deal.stage_id:
        values.update(pipeline_id=stage.pipeline_id, stage_id=stage.id, stage_changed_at=func.now())
        if "probability" not in sent:
            values["probability"] = stage.probability

    status = data.status.value if "status" in sent else deal.status
    _check_lost_reason(status, sent.get("lost_reason"))
    if status != deal.status:
        values["status"] = status
        values.update(_closing(status))
        if status == DealStatus.open:
            await ensure_open_deal_slot(session, caller.company_id)
    if "lost_reason" in sent:
        values["lost_reason"] = sent["lost_reason"]

    if stage is not None:
        rotten_days = stage.rotten_days
    else:
        rotten_days = (await deals.rotten_days({deal.stage_id})).get(deal.stage_id)
    if not values:
        return deal, rotten_days
    starts_following = values.get("value_from_products") is True and not deal.value_from_products
    if not starts_following:
        # The formulas over the deal as this update leaves it, written by the same UPDATE
        # (a second UPDATE and changelog insert cost a deal write with 10 formulas 1.6x
        # the write without: bench/fields.py).
        with_formulas = await deal_formulas.computed(session, deal, values)
        if with_formulas is not None and with_formulas != (deal.custom_fields or {}):
            values["custom_fields"] = with_formulas
    # The watched columns too: following the products changes them.
    before = {field: getattr(deal, field) for field in (*values, *WATCHED)}
    deal = await deals.update(deal, values)
    if starts_following:
        # Logs its own `value` change when the products' total differs.
        await sync_deal_value(session, caller, deal)
        await deals.reload(deal)
        await deal_formulas.refresh(session, caller, deal)
    await _publish_changes(session, caller, deal, before)
    return deal, rotten_days


async def _publish_changes(
    session: AsyncSession, caller: Caller, deal: Deal, before: dict[str, Any]
) -> None:
    """`DealChanged` with every changed field, and beside it `DealStageChanged` for a
    move and `DealStatusChanged` for a status change (what report history follows)."""
    changes = changes_between(before, {field: getattr(deal, field) for field in before})
    if not changes:
        return
    published: list[DomainEvent] = [
        DealChanged(id=deal.id, company_id=deal.company_id, actor=caller, changes=changes)
    ]
    if "stage_id" in changes:
        moved: dict[str, Change] = {
            f: changes[f] for f in ("pipeline_id", "stage_id") if f in changes
        }
        published.append(
            DealStageChanged(id=deal.id, company_id=deal.company_id, actor=caller, changes=moved)
        )
    if "status" in changes:
        status = {"status": changes["status"]}
        published.append(
            DealStatusChanged(id=deal.id, company_id=deal.company_id, actor=caller, changes=status)
        )
    await publish(session, *published)


async def _stage_after_move(
    deals: DealRepository,
    deal: Deal,
    pipeline_id: uuid.UUID | None,
    stage_id: uuid.UUID | None,
) -> Stage | None:
    """The stage a PATCH moves the deal to, or None when it names no move."""
    if stage_id is not None:
        stage = await deals.stage(stage_id)
        if stage is None:
            raise UnknownReference(["body", "stage_id"], "No such stage in your company.")
        if stage.pipeline_id != (pipeline_id or deal.pipeline_id):
            raise InvalidInput(
                ["body", "stage_id"],
                "The stage is not in the deal's pipeline; send `pipeline_id` with it to move "
                "the deal to another pipeline."
                if pipeline_id is None
                else "The stage is not a stage of `pipeline_id`.",
            )
        return stage
    if pipeline_id is not None and pipeline_id != deal.pipeline_id:
        return await _first_stage(deals, pipeline_id, ["body", "pipeline_id"])
    return None


async def delete_deal(session: AsyncSession, caller: Caller, deal_id: uuid.UUID) -> list[str]:
    """Delete the deal; the storage keys of its files are returned (see DealRepository)."""
    deals = DealRepository(session, caller)
    deal = await deals.get(deal_id, for_update=True)
    keys = await deals.delete(deal_id)
    await publish(session, DealDeleted(id=deal.id, company_id=deal.company_id, actor=caller))
    return keys


async def archive_deal(session: AsyncSession, caller: Caller, deal_id: uuid.UUID) -> None:
    """Deals are never archived: 404/410 for a deal the caller cannot use, else 409."""
    await DealRepository(session, caller).get(deal_id)
    capabilities.require(Entity.deal, Capability.archiving, "archive")


async def ensure_no_deals_in(
    session: AsyncSession,
    caller: Caller,
    *,
    pipeline_id: uuid.UUID | None = None,
    stage_id: uuid.UUID | None = None,
) -> None:
    """Refuse (409) deleting a pipeline or stage that deals still sit in.

    Open deals are the contract's rule. Won, lost and converted deals are history that
    keeps its stage (the foreign keys are ON DELETE RESTRICT), so they refuse it too,
    rather than failing on the constraint. The caller holds the company's pipelines
    FOR UPDATE, which waits for deals being placed (they share-lock their stage's
    pipeline), so the count stays true until the delete commits.
    """
    open_deals, all_deals = await DealRepository(session, caller).count_in(
        pipeline_id=pipeline_id, stage_id=stage_id
    )
    if all_deals:
        raise DealsInTheWay("stage" if stage_id is not None else "pipeline", open_deals, all_deals)

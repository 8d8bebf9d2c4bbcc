"""Deal to lead: an open deal that was qualified too early goes back to the inbox.

Notes and activities move to the new lead. Deal-only data (products, participants,
files, changelog, and what packages above register: invoices, documents, projects)
cannot live on a lead: it stays on the original deal, which leaves the deal lists and
is kept as history, linked from the lead by `source_deal_id`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import attribution
from leadflow.activities.repository import move_activities_to_lead, move_notes_to_lead
from leadflow.capabilities import TABLE, Capability, Entity
from leadflow.conversion.errors import DealNotOpen
from leadflow.conversion.models import Conversion
from leadflow.db import new_id
from leadflow.deals import left_behind as left_behind_registry
from leadflow.deals.formulas import deal_formulas
from leadflow.deals.models import DealFile, DealParticipant, DealProduct, DealStatus
from leadflow.deals.repository import DealRepository
from leadflow.events import ActivityChanged, Change, DealConverted, NoteChanged, publish
from leadflow.leads.models import Lead
from leadflow.leads.repository import LeadRepository
from leadflow.tenancy import Caller

# What stays behind is read off the capability table: deal-only capabilities with data.
_LEFT_BEHIND: dict[Capability, type[DealProduct] | type[DealParticipant] | type[DealFile]] = {
    Capability.products: DealProduct,
    Capability.participants: DealParticipant,
    Capability.files: DealFile,
}
assert all(Entity.lead not in TABLE[c][0] for c in _LEFT_BEHIND)


@dataclass
class ConvertedToLead:
    conversion: Conversion
    lead: Lead


async def _left_on_deal(session: AsyncSession, deal_id: uuid.UUID) -> dict[str, int]:
    # With what the packages above registered (invoices, documents, projects).
    left_behind: dict[Capability, Any] = {**_LEFT_BEHIND, **left_behind_registry.registered()}
    counts = [
        select(func.count()).select_from(model).where(model.deal_id == deal_id).scalar_subquery()
        for model in left_behind.values()
    ]
    row = (await session.execute(select(*counts))).one()
    return {capability.value: int(n) for capability, n in zip(left_behind, row, strict=True)}


async def convert_deal(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID
) -> ConvertedToLead:
    deals = DealRepository(session, caller)
    deal = await deals.get(deal_id, for_update=True)
    if deal.status != DealStatus.open:
        raise DealNotOpen(deal.status)
    custom_fields = dict(deal.custom_fields)
    if custom_fields:
        # A lead has no formula fields (a deal capability): their values stay on the deal.
        computed = (await deal_formulas(session, caller.company_id)).trees
        custom_fields = {k: v for k, v in custom_fields.items() if k not in computed}
    lead = await LeadRepository(session, caller).add(
        title=deal.title,
        owner_id=deal.owner_id,
        person_id=deal.person_id,
        organization_id=deal.organization_id,
        value_amount=deal.value_amount,
        value_currency=deal.value_currency,
        expected_close_date=deal.expected_close_date,
        label_ids=list(deal.label_ids),
        # The same `deal` custom fields: the values go back as they are.
        custom_fields=custom_fields,
        # What a capture kept goes back with the deal.
        fields=dict(deal.fields or {}),
        # The attribution the deal got from its lead (or capture) goes back with it.
        **attribution.of(deal),
        source="deal",
        visible_to=deal.visible_to,
        source_deal_id=deal.id,
    )
    notes = await move_notes_to_lead(session, caller.company_id, deal.id, lead.id)
    activities = await move_activities_to_lead(session, caller.company_id, deal.id, lead.id)
    left = await _left_on_deal(session, deal.id)
    await deals.mark_converted_to_lead(deal, lead.id)
    conversion = Conversion(
        id=new_id(),
        company_id=caller.company_id,
        direction="deal_to_lead",
        lead_id=lead.id,
        deal_id=deal.id,
        status="completed",
        moved={"notes": len(notes), "activities": len(activities)},
        left_on_deal=left,
        user_id=caller.user_id,
    )
    session.add(conversion)
    await session.flush()
    await session.refresh(conversion)
    # No `LeadCreated`: conversion rules would judge the lead again and might convert
    # it straight back; the lead's history is this conversion.
    # The moved notes and activities changed parent: from the deal to the lead.
    moved = {"deal_id": Change(deal.id, None), "lead_id": Change(None, lead.id)}
    await publish(
        session,
        DealConverted(
            id=deal.id,
            company_id=caller.company_id,
            actor=caller,
            lead_id=lead.id,
            conversion_id=conversion.id,
        ),
        *(
            NoteChanged(id=note_id, company_id=caller.company_id, actor=caller, changes=moved)
            for note_id in notes
        ),
        *(
            ActivityChanged(
                id=activity_id,
                company_id=caller.company_id,
                actor=caller,
                changes=moved,
                lead_id=lead.id,
            )
            for activity_id in activities
        ),
    )
    return ConvertedToLead(conversion=conversion, lead=lead)

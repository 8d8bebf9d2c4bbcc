from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response, status

from leadflow.conversion import deal_to_lead, lead_to_deal, reads
from leadflow.conversion.contacts import Resolution
from leadflow.conversion.errors import (
    ConversionsFailed,
    DealNotOpen,
    DuplicateContacts,
    LeadAlreadyConverted,
)
from leadflow.conversion.lead_to_deal import Order
from leadflow.conversion.schemas import (
    BulkConversionCreate,
    ConversionPreview,
    ConversionRead,
    DealConverted,
    LeadConversionCreate,
    LeadConverted,
    LeadsConverted,
)
from leadflow.deals.access import DealConverted as DealGone
from leadflow.deals.limits import OpenDealLimit
from leadflow.deals.service import deal_answer, deal_read
from leadflow.deps import CurrentCaller, Session
from leadflow.errors import found, responses
from leadflow.leads.reads import read_lead
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response

router = APIRouter(tags=["conversion"])


# What converting a lead may answer beyond the generic problems: the lead already became
# a deal, its prospect details match contacts and no choice was made, the `deal_id` to
# convert into is not open or went back to the inbox, the open-deal limit.
_PREVIEW_PROBLEMS = (LeadAlreadyConverted, DuplicateContacts, DealNotOpen, DealGone)
_CONVERT_PROBLEMS = (*_PREVIEW_PROBLEMS, OpenDealLimit)


@router.post(
    "/leads/convert",
    name="leads:convert-bulk",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadsConverted,
    responses=responses(401, 403, 404, 422, *_CONVERT_PROBLEMS, ConversionsFailed),
)
async def convert_leads(
    data: BulkConversionCreate, session: Session, caller: CurrentCaller
) -> LeadsConverted:
    """Convert 1 to 500 leads into one stage, all or nothing.

    If any lead cannot be converted the answer is 409 with `failures` (each
    `{"lead_id", "type", ...}`) and nothing changes. `resolutions` chooses contacts
    per lead when its prospect details match existing ones.
    """
    orders = [
        Order(
            lead_id,
            LeadConversionCreate(
                pipeline_id=data.pipeline_id,
                stage_id=data.stage_id,
                person=data.resolutions.get(lead_id, Resolution()).person,
                organization=data.resolutions.get(lead_id, Resolution()).organization,
            ),
        )
        for lead_id in data.lead_ids
    ]
    converted = await lead_to_deal.convert_leads(session, caller, orders)
    return LeadsConverted(conversions=[ConversionRead.of(c.conversion) for c in converted])


@router.post(
    "/leads/{lead_id}/convert",
    name="leads:convert",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadConverted,
    responses=responses(401, 403, 404, 422, *_CONVERT_PROBLEMS),
)
async def convert_lead(
    lead_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    data: LeadConversionCreate | None = None,
) -> Response | LeadConverted:
    """Convert a lead into a deal (or into an existing open deal with `deal_id`).

    Defaults: the lead's title, value, owner, visibility and expected close date; the
    first stage of the default pipeline. Notes (with comments and mentions) and
    activities move to the deal; the lead leaves the inbox. Prospect details become
    contacts; when they match existing contacts and `person`/`organization` do not
    choose, the answer is 409 `duplicate-contacts` and nothing is written.
    """
    converted = await lead_to_deal.convert_leads(
        session, caller, [Order(lead_id, data or LeadConversionCreate())]
    )
    result = converted[0]
    # Written straight to JSON, as `LeadConverted` spells it (a test holds the two
    # alike): building the models and FastAPI validating and serializing them again
    # was 2 % of a conversion's CPU. An integer orjson cannot write (beyond 64 bits, in
    # captured `fields`) leaves the answer to the models.
    try:
        return json_response(
            {
                "conversion": reads.record_json(result.conversion),
                "deal": deal_answer(result.deal, result.rotten_days),
            },
            status.HTTP_201_CREATED,
        )
    except orjson.JSONEncodeError:
        return LeadConverted(
            conversion=ConversionRead.of(result.conversion),
            deal=deal_read(result.deal, result.rotten_days),
        )


@router.post(
    "/leads/{lead_id}/convert/preview",
    name="leads:convert-preview",
    response_model=ConversionPreview,
    responses=responses(401, 404, 422, *_PREVIEW_PROBLEMS),
)
async def preview_lead_conversion(
    lead_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    data: LeadConversionCreate | None = None,
) -> ConversionPreview:
    """What converting the lead would do (deal with defaults, duplicates, moves); writes nothing."""
    return await lead_to_deal.preview_conversion(
        session, caller, lead_id, data or LeadConversionCreate()
    )


@router.post(
    "/deals/{deal_id}/convert",
    name="deals:convert",
    status_code=status.HTTP_201_CREATED,
    response_model=DealConverted,
    responses=responses(401, 404, 422, DealNotOpen, DealGone),
)
async def convert_deal(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> DealConverted:
    """Send an open deal back to the leads inbox.

    Notes and activities move to the new lead; products, participants, files and the
    changelog stay on the original deal, kept as history (`conversion.left_on_deal`).
    """
    result = await deal_to_lead.convert_deal(session, caller, deal_id)
    return DealConverted(
        conversion=ConversionRead.of(result.conversion),
        lead=await read_lead(session, caller.company_id, result.lead),
    )


@router.get(
    "/conversions/{conversion_id}",
    name="conversions:get",
    response_model=ConversionRead,
    responses=responses(401, 404, 422),
)
async def get_conversion(
    conversion_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> Response:
    """One conversion record."""
    answer = await reads.conversion(session, caller, conversion_id)
    return json_response(found(answer, "conversion"))


@router.get(
    "/conversions",
    name="conversions:list",
    response_model=Page[ConversionRead],
    responses=responses(401, 422),
)
async def list_conversions(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    lead_id: Annotated[uuid.UUID | None, Query()] = None,
    deal_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    """Conversions, newest first; filter by `lead_id` or `deal_id`."""
    return json_response(await reads.conversions_page(session, caller, page, lead_id, deal_id))

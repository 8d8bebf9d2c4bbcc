"""`POST /persons/{id}/merge`, `/organizations/{id}/merge`, `/leads/{id}/merge`: the record
in the path goes into the one named by `into`, which the answer shows as it is now."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import Field

from leadflow.contacts.schemas import OrganizationRead, PersonRead
from leadflow.deps import CurrentCaller, Session
from leadflow.errors import RecordMerged, responses
from leadflow.leads.access import LeadConverted
from leadflow.leads.reads import read_lead
from leadflow.leads.schemas import LeadRead
from leadflow.merge import service
from leadflow.merge.service import MergeRefused
from leadflow.schemas import Input

router = APIRouter(tags=["merge"])


class MergeRequest(Input):
    into: uuid.UUID = Field(
        description=(
            "The survivor: a record of the same kind, visible to the caller, not merged "
            "itself (and for leads not converted)."
        )
    )


_ANSWERS = responses(401, 404, 422, MergeRefused, RecordMerged)
_WHAT_MOVES = (
    " In one transaction; the merged record is then deleted (it leaves every list, search "
    "and `GET /deleted` logs it) and its id answers 410 with `merged_into`. 404 when "
    "either record is not visible to the caller (another company's included); 409 when "
    "the survivor was itself merged (`merged_into` names where) or cannot take what the "
    "merged record holds; 410 when the record in the path was merged already; 422 when "
    "`into` is the record itself."
)


_MERGE_PERSON = (
    "Merge this person into another: its leads, deals, deal participations, projects, "
    "notes, activities and the custom field values naming it move to the survivor, "
    "whose emails and phones become those of both (each once) and whose empty "
    "organization and custom fields take the merged person's."
)


@router.post(
    "/persons/{person_id}/merge",
    name="persons:merge",
    response_model=PersonRead,
    responses=_ANSWERS,
    description=_MERGE_PERSON + _WHAT_MOVES,
)
async def merge_person(
    person_id: uuid.UUID, data: MergeRequest, session: Session, caller: CurrentCaller
) -> PersonRead:
    """Merge a person into another."""
    person = await service.merge_person(session, caller, person_id, data.into)
    return PersonRead.model_validate(person)


_MERGE_ORGANIZATION = (
    "Merge this organization into another: its persons, leads, deals, projects, "
    "notes, activities and the custom field values naming it move to the survivor, "
    "whose empty address, website and custom fields take the merged organization's."
)


@router.post(
    "/organizations/{organization_id}/merge",
    name="organizations:merge",
    response_model=OrganizationRead,
    responses=_ANSWERS,
    description=_MERGE_ORGANIZATION + _WHAT_MOVES,
)
async def merge_organization(
    organization_id: uuid.UUID, data: MergeRequest, session: Session, caller: CurrentCaller
) -> OrganizationRead:
    """Merge an organization into another."""
    organization = await service.merge_organization(session, caller, organization_id, data.into)
    return OrganizationRead.model_validate(organization)


_MERGE_LEAD = (
    "Merge this lead into another of the inbox or archive: its notes, activities, the "
    "captures that made it and the deals that name it move to the survivor, which "
    "takes the labels of both, the captured `fields` it lacks, and the person, "
    "organization, prospect details, value, expected close date and custom fields it "
    "has none of. A converted lead (history of its deal) cannot be merged: 410 with "
    "`deal_id`."
)


@router.post(
    "/leads/{lead_id}/merge",
    name="leads:merge",
    response_model=LeadRead,
    responses=responses(401, 404, 422, MergeRefused, RecordMerged, LeadConverted),
    description=_MERGE_LEAD + _WHAT_MOVES,
)
async def merge_lead(
    lead_id: uuid.UUID, data: MergeRequest, session: Session, caller: CurrentCaller
) -> LeadRead:
    """Merge a lead into another."""
    lead = await service.merge_lead(session, caller, lead_id, data.into)
    return await read_lead(session, caller.company_id, lead)

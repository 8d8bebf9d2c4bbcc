"""Participants of a deal: persons of the company involved in it besides its main contact.

A person takes part in a deal once (409 `participant-exists`); only a person visible to
the caller can be added. Listing shows every participant of the deal, with the person's
name only when the caller may see that person.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import Field
from sqlalchemy import DateTime, Integer, and_, bindparam, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leadflow.contacts.models import Person
from leadflow.db import new_id
from leadflow.deals.access import DealConverted, visible_deal
from leadflow.deals.models import Deal, DealParticipant
from leadflow.deals.reads import after_key, of_visible_deal, page_of_deal
from leadflow.deps import CurrentCaller, Session
from leadflow.errors import Conflict, NotFound, UnknownReference, responses
from leadflow.pagination import Keyset, Page, PageParams
from leadflow.readpath import ReadStatement, as_text, json_response
from leadflow.schemas import Input, Output
from leadflow.tenancy import (
    Caller,
    Viewer,
    in_company,
    in_viewer_company,
    visible_to_caller,
    visible_to_viewer,
)


class ParticipantExists(Conflict):
    slug = "participant-exists"
    title = "This person already takes part in the deal"


class ParticipantCreate(Input):
    person_id: uuid.UUID = Field(description="A person visible to the caller.")


class ParticipantPerson(Output):
    id: uuid.UUID
    name: str = Field(examples=["Ana Silva"])


class ParticipantRead(Output):
    id: uuid.UUID
    deal_id: uuid.UUID
    person_id: uuid.UUID
    person: ParticipantPerson | None = Field(
        description="The person's id and name; null when the person is not visible to you."
    )
    created_at: datetime


class ParticipantRepository:
    """Participants of one deal of the caller's company (the deal is checked by the caller)."""

    def __init__(self, session: AsyncSession, caller: Caller, deal_id: uuid.UUID) -> None:
        self.session = session
        self.caller = caller
        self.deal_id = deal_id

    async def add(self, person_id: uuid.UUID) -> DealParticipant | None:
        """None when the person already takes part (the unique index decides, race-free)."""
        return await self.session.scalar(
            insert(DealParticipant)
            .values(
                id=new_id(),
                company_id=self.caller.company_id,
                deal_id=self.deal_id,
                person_id=person_id,
            )
            .on_conflict_do_nothing(index_elements=["deal_id", "person_id"])
            .returning(DealParticipant)
        )

    async def delete(self, participant_id: uuid.UUID) -> bool:
        deleted = await self.session.scalar(
            delete(DealParticipant)
            .where(
                in_company(DealParticipant, self.caller),
                DealParticipant.deal_id == self.deal_id,
                DealParticipant.id == participant_id,
            )
            .returning(DealParticipant.id)
        )
        return deleted is not None

    @staticmethod
    async def move_person(
        session: AsyncSession, company_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID
    ) -> None:
        """A merge: every deal `from_id` takes part in has `to_id` instead; where `to_id`
        already takes part, the merged person's row goes (a person takes part once)."""
        survivor = aliased(DealParticipant)
        await session.execute(
            delete(DealParticipant).where(
                DealParticipant.company_id == company_id,
                DealParticipant.person_id == from_id,
                select(survivor.id)
                .where(survivor.deal_id == DealParticipant.deal_id, survivor.person_id == to_id)
                .exists(),
            )
        )
        await session.execute(
            update(DealParticipant)
            .where(DealParticipant.company_id == company_id, DealParticipant.person_id == from_id)
            .values(person_id=to_id)
        )

    async def visible_persons(self, person_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Names of those of `person_ids` the caller may see."""
        if not person_ids:
            return {}
        rows = await self.session.execute(
            select(Person.id, Person.name).where(
                visible_to_caller(Person, self.caller), Person.id.in_(person_ids)
            )
        )
        return {row.id: row.name for row in rows}


def _read(participant: DealParticipant, names: dict[uuid.UUID, str]) -> ParticipantRead:
    name = names.get(participant.person_id)
    return ParticipantRead(
        id=participant.id,
        deal_id=participant.deal_id,
        person_id=participant.person_id,
        person=None if name is None else ParticipantPerson(id=participant.person_id, name=name),
        created_at=participant.created_at,
    )


async def add_participant(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, data: ParticipantCreate
) -> ParticipantRead:
    deal = await visible_deal(session, caller, deal_id)
    participants = ParticipantRepository(session, caller, deal.id)
    names = await participants.visible_persons([data.person_id])
    if data.person_id not in names:
        raise UnknownReference(["body", "person_id"], "No such person is visible to you.")
    participant = await participants.add(data.person_id)
    if participant is None:
        raise ParticipantExists("This person already takes part in the deal.")
    return _read(participant, names)


# The GET answer: one statement per shape and viewer kind that checks the deal and reads
# its participants with the names of the persons the caller may see
# (`deals.reads.of_visible_deal`), rows straight to JSON as `ParticipantRead` writes them.

IN_ORDER_ADDED = Keyset(DealParticipant.created_at, DealParticipant.id)


@functools.lru_cache(maxsize=16)
def participant_page(viewer: Viewer, after: bool) -> ReadStatement:
    """A deal's participants in the order they were added; `person_name` is null when
    the viewer may not see the person."""
    seen = and_(Person.id == DealParticipant.person_id, visible_to_viewer(Person, viewer))
    participants = (
        select(
            as_text(DealParticipant.id),
            as_text(DealParticipant.deal_id),
            as_text(DealParticipant.person_id),
            Person.name.label("person_name"),
            DealParticipant.created_at,
        )
        .select_from(DealParticipant)
        .outerjoin(Person, seen)
        .where(DealParticipant.deal_id == Deal.id, in_viewer_company(DealParticipant))
    )
    if after:
        participants = participants.where(
            tuple_(DealParticipant.created_at, DealParticipant.id)
            > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    order = (DealParticipant.created_at, DealParticipant.id)
    return of_visible_deal(viewer, participants.order_by(*order).limit(limit))


def _participant_json(row: Any) -> dict[str, Any]:
    name = row["person_name"]
    return {
        "id": row["id"],
        "deal_id": row["deal_id"],
        "person_id": row["person_id"],
        "person": None if name is None else {"id": row["person_id"], "name": name},
        "created_at": row["created_at"],
    }


router = APIRouter(tags=["deals"])


@router.post(
    "/deals/{deal_id}/participants",
    name="deals:participants:create",
    status_code=status.HTTP_201_CREATED,
    response_model=ParticipantRead,
    responses=responses(401, 404, 409, 422, DealConverted),
)
async def create_participant(
    deal_id: uuid.UUID, data: ParticipantCreate, session: Session, caller: CurrentCaller
) -> ParticipantRead:
    """Add a person to a deal's participants; the same person twice is 409."""
    return await add_participant(session, caller, deal_id, data)


@router.get(
    "/deals/{deal_id}/participants",
    name="deals:participants:list",
    response_model=Page[ParticipantRead],
    responses=responses(401, 404, 422, DealConverted),
)
async def list_participants(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """List the participants of a deal, in the order they were added."""
    answer = await page_of_deal(
        session, caller, participant_page, IN_ORDER_ADDED, deal_id, page, _participant_json
    )
    return json_response(answer)


@router.delete(
    "/deals/{deal_id}/participants/{participant_id}",
    name="deals:participants:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422, DealConverted),
)
async def delete_participant(
    deal_id: uuid.UUID, participant_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> None:
    """Remove a participant from a deal (the person stays in contacts)."""
    deal = await visible_deal(session, caller, deal_id)
    if not await ParticipantRepository(session, caller, deal.id).delete(participant_id):
        raise NotFound("participant")

"""Whether the caller may link a record to a person or an organization: the one check
that leads, deals, contacts and conversion share (a link to a contact the caller cannot
see is refused as if it did not exist)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.models import Organization, Person
from leadflow.errors import UnknownReference
from leadflow.tenancy import Caller, visible_to_caller


async def visible_person_ids(
    session: AsyncSession, caller: Caller, person_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    if not person_ids:
        return set()
    rows = await session.scalars(
        select(Person.id).where(visible_to_caller(Person, caller), Person.id.in_(person_ids))
    )
    return set(rows)


async def visible_organization_ids(
    session: AsyncSession, caller: Caller, organization_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    if not organization_ids:
        return set()
    rows = await session.scalars(
        select(Organization.id).where(
            visible_to_caller(Organization, caller), Organization.id.in_(organization_ids)
        )
    )
    return set(rows)


async def ensure_links_visible(
    session: AsyncSession,
    caller: Caller,
    *,
    person_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    loc: Sequence[str] = ("body",),
) -> None:
    """422 `unknown_reference` at `loc` + the field when a given contact is not visible."""
    if person_id is not None and not await visible_person_ids(session, caller, [person_id]):
        raise UnknownReference([*loc, "person_id"], "No such person is visible to you.")
    if organization_id is not None and not await visible_organization_ids(
        session, caller, [organization_id]
    ):
        raise UnknownReference(
            [*loc, "organization_id"], "No such organization is visible to you."
        )

"""Whether the caller may link a record to a person or an organization: the one check
that leads, deals, contacts and conversion share (a link to a contact the caller cannot
see is refused as if it did not exist)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.models import Organization, Person
from leadflow.errors import UnknownReference
from leadflow.tenancy import Caller, Viewer, visible_to_caller, visible_to_viewer


async def visible_ids(
    session: AsyncSession,
    caller: Caller,
    model: type[Person] | type[Organization],
    ids: Collection[uuid.UUID],
) -> set[uuid.UUID]:
    """Which of these persons (or organizations) the caller may see."""
    if not ids:
        return set()
    rows = await session.scalars(
        select(model.id).where(visible_to_caller(model, caller), model.id.in_(ids))
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
    links = (("person", Person, person_id), ("organization", Organization, organization_id))
    for what, model, linked in links:
        if linked is not None and not await visible_ids(session, caller, model, [linked]):
            raise UnknownReference([*loc, f"{what}_id"], f"No such {what} is visible to you.")


def link_visible(
    model: type[Person] | type[Organization], linked_id: ColumnElement[Any], kind: Viewer
) -> ColumnElement[bool]:
    """`ensure_links_visible` as SQL, for statements built once per kind of caller that
    check and write at once: no link given, or a contact the caller may see."""
    return linked_id.is_(None) | exists(
        select(model.id).where(visible_to_viewer(model, kind), model.id == linked_id)
    )

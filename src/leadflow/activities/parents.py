"""The record a note or an activity hangs on, and who may see it.

A note or an activity has no visibility of its own: the caller sees it exactly when
the caller sees its parent (lead, deal, person or organization). Both the look-up of a
parent named in a request and the filter on every note/activity query live here.
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.models import Organization, Person
from leadflow.deals.access import visible_deal
from leadflow.deals.models import Deal
from leadflow.errors import NotFound
from leadflow.leads.access import visible_lead
from leadflow.leads.models import Lead
from leadflow.tenancy import (
    Caller,
    Viewer,
    in_company,
    in_viewer_company,
    visible_to_caller,
    visible_to_viewer,
)


class ParentKind(enum.StrEnum):
    lead = "lead"
    deal = "deal"
    person = "person"
    organization = "organization"

    @property
    def column(self) -> str:
        return f"{self.value}_id"


PARENT_FIELDS = tuple(kind.column for kind in ParentKind)


@dataclass(frozen=True, slots=True)
class Parent:
    kind: ParentKind
    id: uuid.UUID

    def columns(self) -> dict[str, uuid.UUID | None]:
        """The four parent columns with this parent set and the others null."""
        return {kind.column: self.id if kind is self.kind else None for kind in ParentKind}


def parent_of(fields: Any) -> Parent | None:
    """The one parent named by `fields` (a schema or a row with the four `*_id` fields)."""
    named = [kind for kind in ParentKind if getattr(fields, kind.column) is not None]
    if len(named) != 1:
        return None
    return Parent(named[0], getattr(fields, named[0].column))


async def ensure_visible(session: AsyncSession, caller: Caller, parent: Parent) -> None:
    """404 unless the caller may see `parent`; a converted lead or deal takes no new notes."""
    if parent.kind is ParentKind.lead:
        await visible_lead(session, caller, parent.id, allow_converted=False)
        return
    if parent.kind is ParentKind.deal:
        await visible_deal(session, caller, parent.id, allow_converted=False)
        return
    model: type[Person] | type[Organization] = (
        Person if parent.kind is ParentKind.person else Organization
    )
    found = await session.scalar(
        select(model.id).where(visible_to_caller(model, caller), model.id == parent.id)
    )
    if found is None:
        raise NotFound(parent.kind.value)


_PARENT_TABLES: tuple[tuple[Any, str], ...] = (
    (Lead, "lead_id"),
    (Deal, "deal_id"),
    (Person, "person_id"),
    (Organization, "organization_id"),
)


def parent_visible(model: Any, caller: Caller) -> ColumnElement[bool]:
    """Rows of `model` (Note or Activity) in the caller's company whose parent the caller sees.

    One correlated EXISTS per parent kind (a semi-join on the parent's primary key):
    unlike outer joins it never multiplies rows, and it works in SELECT, UPDATE and DELETE.
    """
    return _parent_seen(
        model, in_company(model, caller), lambda parent: visible_to_caller(parent, caller)
    )


@functools.cache
def parent_visible_to_viewer(model: Any, viewer: Viewer) -> ColumnElement[bool]:
    """`parent_visible` with the caller's ids as bind parameters (`tenancy.viewer_params`),
    for the read path's statements compiled once per viewer kind."""
    return _parent_seen(
        model, in_viewer_company(model), lambda parent: visible_to_viewer(parent, viewer)
    )


def _parent_seen(
    model: Any, same_company: ColumnElement[bool], sees: Callable[[Any], ColumnElement[bool]]
) -> ColumnElement[bool]:
    return and_(
        same_company,
        or_(
            *(
                select(parent.id).where(parent.id == getattr(model, column), sees(parent)).exists()
                for parent, column in _PARENT_TABLES
            )
        ),
    )

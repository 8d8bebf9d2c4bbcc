"""Leads and deals found by the name of their linked person or organization (`q`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, any_, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from leadflow.contacts.models import Organization, Person
from leadflow.tenancy import Viewer, visible_to_viewer
from leadflow.textsearch import matches, search_doc


def _ids(model: Any, viewer: Viewer) -> ColumnElement[Any]:
    """ARRAY(the ids of the contacts `viewer` sees whose document matches `q`): one
    look-up of their GIN index, run once per statement (an InitPlan)."""
    found = select(model.id).where(visible_to_viewer(model, viewer), matches(search_doc(model)))
    return func.array(found.scalar_subquery(), type_=ARRAY(UUID(as_uuid=True)))


def linked_matches(record: Any, viewer: Viewer) -> ColumnElement[bool]:
    """`record` (a lead or a deal) is linked to a person or an organization that matches
    `q` and that the viewer sees: through `ix_<table>_person_id` / `_organization_id`."""
    return or_(
        record.person_id == any_(_ids(Person, viewer)),
        record.organization_id == any_(_ids(Organization, viewer)),
    )


def person_matches(viewer: Viewer) -> ColumnElement[Any]:
    return _ids(Person, viewer)


def organization_matches(viewer: Viewer) -> ColumnElement[Any]:
    return _ids(Organization, viewer)

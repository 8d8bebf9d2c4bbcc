"""The leads a conversion reads: one statement compiled once per kind of caller and lock,
run on the driver, and each lead as a row of the columns conversion uses (`LeadToConvert`).

No `Lead` entity: conversion only reads the lead (its update is `leads.repository`'s
`converted_update`, in the conversion's last statement), and loading entities through
the ORM (its execution, cache key and identity map, 35 columns a lead) was about a fifth
of a single conversion's CPU in issue 14's py-spy profile.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import UUID, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.leads.models import Lead
from leadflow.readpath import ReadStatement, autoflushed
from leadflow.tenancy import Caller, Viewer, viewer_params, visible_to_viewer


@dataclass(frozen=True, slots=True)
class LeadToConvert:
    """A lead as conversion reads it (the columns of `Lead` it uses, same names)."""

    id: uuid.UUID
    title: str
    owner_id: uuid.UUID | None
    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    prospect_person_name: str | None
    prospect_email: str | None
    prospect_phone: str | None
    prospect_phone_e164: str | None
    prospect_organization_name: str | None
    expected_close_date: date | None
    label_ids: list[uuid.UUID]
    fields: dict[str, Any] | None
    visible_to: str
    converted_deal_id: uuid.UUID | None
    value_amount: Decimal | None
    value_currency: str | None
    custom_fields: dict[str, Any]
    # Attribution (`attribution.FIELDS`): the deal's revenue is the lead's campaign's.
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    channel: str | None


_COLUMNS = tuple(field.name for field in fields(LeadToConvert))


@functools.cache
def _statement(viewer: Viewer, lock: bool) -> ReadStatement:
    """The leads of `lead_ids` the viewer may see, in id order (the order locks are
    taken in, so that concurrent bulks cannot deadlock)."""
    ids = bindparam("lead_ids", type_=ARRAY(UUID(as_uuid=True)))
    stmt = (
        select(*(getattr(Lead, name) for name in _COLUMNS))
        .where(visible_to_viewer(Lead, viewer), Lead.id == any_(ids))
        .order_by(Lead.id)
    )
    return ReadStatement(stmt.with_for_update() if lock else stmt)


async def leads_to_convert(
    session: AsyncSession, caller: Caller, lead_ids: Sequence[uuid.UUID], lock: bool
) -> dict[uuid.UUID, LeadToConvert]:
    """The visible leads of `lead_ids` by id, locked FOR UPDATE when `lock`."""
    await autoflushed(session)  # a lead changed earlier in the request is read as changed
    rows = await _statement(Viewer.of(caller), lock).fetch(
        session, {**viewer_params(caller), "lead_ids": list(lead_ids)}
    )
    return {row["id"]: LeadToConvert(*row) for row in rows}

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CTE, Uuid, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.models import User
from leadflow.capture.models import CaptureDelivery, Form
from leadflow.db import move_references, new_id
from leadflow.deals.repository import stage_for_new_deal
from leadflow.leads.models import Lead
from leadflow.leads.repository import insert_when, rules_enabled
from leadflow.pipelines.models import Stage
from leadflow.readpath import ReadStatement, autoflushed
from leadflow.tenancy import Caller, Role, in_company


class FormRepository:
    """Forms of the caller's company (forms carry no owner visibility: company settings)."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, form_id: uuid.UUID, *, for_update: bool = False) -> Form | None:
        stmt = select(Form).where(in_company(Form, self.caller), Form.id == form_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def add(self, form: Form) -> Form:
        self.session.add(form)
        await self.session.flush()
        await self.session.refresh(form)
        return form

    async def save(self, form: Form) -> Form:
        await self.session.flush()
        await self.session.refresh(form)  # updated_at comes from the database
        return form

    async def delete(self, form: Form) -> None:
        await self.session.execute(
            delete(Form).where(in_company(Form, self.caller), Form.id == form.id)
        )

    async def stage(self, stage_id: uuid.UUID) -> Stage | None:
        return await self.session.scalar(
            select(Stage).where(in_company(Stage, self.caller), Stage.id == stage_id)
        )


@dataclass(frozen=True, slots=True)
class CapturingForm:
    """A form as a capture reads it (the signed webhook and the hosted page): the columns
    it uses, read by one statement compiled once, and no ORM object, which a capture
    never changes. Loading a `Form` entity with a statement built per request was about
    a third of a capture's CPU (profiled in-process, 2026-12-05)."""

    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    creates: str
    stage_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    label_ids: list[uuid.UUID]
    field_map: dict[str, Any]
    signing_secret_sealed: str
    previous_secret_sealed: str | None
    previous_secret_expires_at: datetime | None


_CAPTURING = tuple(field.name for field in fields(CapturingForm))


@functools.cache
def _form_and_owner() -> ReadStatement:
    first_admin = (
        select(User.id)
        .where(User.company_id == Form.company_id, User.role == Role.admin.value)
        .order_by(User.created_at, User.id)
        .limit(1)
        .scalar_subquery()
    )
    return ReadStatement(
        select(
            *(getattr(Form, name) for name in _CAPTURING),
            func.coalesce(Form.owner_id, first_admin).label("capture_owner_id"),
        ).where(Form.id == bindparam("form_id", type_=Uuid))
    )


class CaptureRepository:
    """What a capture reads and writes. There is no caller: the form names the company,
    and every statement below is bound to that company."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def form_and_owner(
        self, form_id: uuid.UUID
    ) -> tuple[CapturingForm, uuid.UUID | None] | None:
        """The form and who will own what it captures: its owner, else the first admin."""
        row = await _form_and_owner().fetchrow(self.session, {"form_id": form_id})
        if row is None:
            return None
        return CapturingForm(*(row[name] for name in _CAPTURING)), row["capture_owner_id"]

    async def claim_delivery(self, form: CapturingForm, webhook_id: str) -> uuid.UUID | None:
        """Record the delivery; None if this webhook id was already delivered to the form.

        A concurrent delivery of the same id waits here on the unique index until the
        first one's transaction ends, then sees the conflict (or, if the first rolled
        back, takes its place).
        """
        return await self.session.scalar(
            pg_insert(CaptureDelivery)
            .values(company_id=form.company_id, form_id=form.id, webhook_id=webhook_id)
            .on_conflict_do_nothing(index_elements=["form_id", "webhook_id"])
            .returning(CaptureDelivery.id)
        )

    async def delivered(
        self, form_id: uuid.UUID, webhook_id: str
    ) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """(lead id, deal id) of the delivery that came first."""
        row = (
            await self.session.execute(
                select(CaptureDelivery.lead_id, CaptureDelivery.deal_id).where(
                    CaptureDelivery.form_id == form_id, CaptureDelivery.webhook_id == webhook_id
                )
            )
        ).one()
        return row.lead_id, row.deal_id

    async def record_outcome(
        self, delivery_id: uuid.UUID, lead_id: uuid.UUID | None, deal_id: uuid.UUID | None
    ) -> None:
        await self.session.execute(
            update(CaptureDelivery)
            .where(CaptureDelivery.id == delivery_id)
            .values(lead_id=lead_id, deal_id=deal_id)
        )

    async def claim_delivery_with_lead(
        self, form: CapturingForm, webhook_id: str, lead: dict[str, Any]
    ) -> tuple[uuid.UUID, bool] | None:
        """Record the delivery and insert its lead in one statement; None, and neither
        row, when this webhook id was already delivered to the form. With the lead's id:
        whether its company has an enabled conversion rule (`rules_enabled`).

        The lead is inserted only from the claim's RETURNING row, so a conflict writes
        nothing; the delivery names the lead's id up front, and its foreign key is
        checked at the end of the statement, when the lead exists.
        """
        await autoflushed(self.session)
        row = await _claim_with_lead_statement(tuple(lead)).fetchrow(
            self.session,
            {
                **{f"lead_{name}": _driver_value(name, value) for name, value in lead.items()},
                "delivery_id": new_id(),
                "company_id": form.company_id,
                "form_id": form.id,
                "webhook_id": webhook_id,
                "lead_id": lead["id"],
            },
        )
        return None if row is None else (lead["id"], bool(row["rules_enabled"]))

    async def stage(self, company_id: uuid.UUID, stage_id: uuid.UUID) -> Stage | None:
        """The form's stage, locked as for any new deal: a pipeline or stage delete running
        meanwhile either waits and then counts the captured deal (409), or commits first
        and the stage is not found."""
        return await self.session.scalar(stage_for_new_deal(company_id, stage_id))


@functools.cache
def _claim_statement() -> CTE:
    """Claim a delivery, naming its lead up front (bind parameters); nothing on conflict."""
    return (
        pg_insert(CaptureDelivery)
        .values(
            id=bindparam("delivery_id"),
            company_id=bindparam("company_id"),
            form_id=bindparam("form_id"),
            webhook_id=bindparam("webhook_id"),
            lead_id=bindparam("lead_id"),
        )
        .on_conflict_do_nothing(index_elements=["form_id", "webhook_id"])
        .returning(CaptureDelivery.id)
        .cte("claim")
    )


@functools.lru_cache(maxsize=64)
def _claim_with_lead_statement(names: tuple[str, ...]) -> ReadStatement:
    """`claim_delivery_with_lead`'s statement for a lead of these columns, built and
    compiled once per set of columns (a form gives the same set every time) with bind
    parameters, and run on the request's connection past the ORM: through
    `session.execute` each capture paid the ORM's per-statement work (cache key, compile
    lookup, ORM result) for a row of two values. The lead INSERT is the leads' writer's
    (`insert_when`), guarded by the claim."""
    created = insert_when(_claim_statement(), names)
    company_id = bindparam("company_id", type_=Uuid)
    return ReadStatement(select(created.c.id, rules_enabled(company_id).label("rules_enabled")))


# JSONB columns of a lead, which the driver takes as JSON text past SQLAlchemy's binds:
# written by json.dumps, as SQLAlchemy's own JSON bind would write them (the answers of
# `fields` are any JSON numbers, which json.dumps writes at any size).
_LEAD_JSON = frozenset(c.key for c in Lead.__table__.c if isinstance(c.type, JSONB))


def _driver_value(name: str, value: Any) -> Any:
    return json.dumps(value) if name in _LEAD_JSON and value is not None else value


# Deliveries are kept to answer a retried submission (same webhook-id) with what it
# created. A signature older than signing.TIMESTAMP_TOLERANCE_SECONDS is refused, so an
# older webhook-id can never be accepted again; a day keeps a wide margin for clocks.
DELIVERY_RETENTION = timedelta(hours=24)


async def move_deliveries(
    session: AsyncSession, company_id: uuid.UUID, from_lead_id: uuid.UUID, to_lead_id: uuid.UUID
) -> None:
    """A lead merge: deliveries that made the merged lead name the survivor, so that a
    retried delivery answers the lead its capture lives on now."""
    await move_references(session, CaptureDelivery, "lead_id", company_id, from_lead_id, to_lead_id)


async def purge_deliveries(session: AsyncSession, limit: int) -> int:
    """At most `limit` deliveries past DELIVERY_RETENTION (a periodic job of the worker)."""
    old = (
        select(CaptureDelivery.id)
        .where(CaptureDelivery.created_at < func.now() - DELIVERY_RETENTION)
        .limit(limit)
    )
    result = await session.execute(delete(CaptureDelivery).where(CaptureDelivery.id.in_(old)))
    return int(result.rowcount)  # type: ignore[attr-defined]

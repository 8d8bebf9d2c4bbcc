"""Leads and lead labels of the caller's company; every lead statement goes through
`visible_to_caller`, every label statement through `in_company`."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, delete, func, literal, not_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from leadflow.contacts.models import Organization, Person
from leadflow.leads.models import Lead, LeadLabel
from leadflow.pagination import Keyset, PageRequest, paginate
from leadflow.rules.repository import ready_page, with_readiness
from leadflow.tenancy import Caller, in_company, visible_to_caller

INBOX_ORDER = Keyset(Lead.created_at, Lead.id, descending=True)


def _in_inbox() -> ColumnElement[bool]:
    """Spelled exactly as the partial indexes' predicate (`NOT is_archived AND
    converted_deal_id IS NULL`) so that PostgreSQL can prove they apply."""
    return not_(Lead.is_archived) & Lead.converted_deal_id.is_(None)


def _in_archive() -> ColumnElement[bool]:
    """The predicate of `ix_lead_archived`; converted leads are history, not archive."""
    return Lead.is_archived & Lead.converted_deal_id.is_(None)


def _uuid_array(ids: list[uuid.UUID]) -> Any:
    return literal(ids, ARRAY(UUID(as_uuid=True)))


class LeadRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def list_inbox(
        self,
        page: PageRequest,
        *,
        archived: bool = False,
        owner_id: uuid.UUID | None = None,
        label_ids: list[uuid.UUID] | None = None,
        person_id: uuid.UUID | None = None,
        organization_id: uuid.UUID | None = None,
        source: str | None = None,
        email: str | None = None,
        ready: bool = False,
    ) -> tuple[list[Lead], str | None]:
        """The inbox (or the archive), newest first; every filter given must hold.
        `ready`: only leads with readiness, oldest readiness first (see `ready_page`)."""
        stmt = (
            select(Lead)
            .options(with_readiness())
            .where(visible_to_caller(Lead, self.caller), _in_archive() if archived else _in_inbox())
        )
        if owner_id is not None:
            stmt = stmt.where(Lead.owner_id == owner_id)
        if label_ids:
            stmt = stmt.where(Lead.label_ids.contains(_uuid_array(label_ids)))
        if person_id is not None:
            stmt = stmt.where(Lead.person_id == person_id)
        if organization_id is not None:
            stmt = stmt.where(Lead.organization_id == organization_id)
        if source is not None:
            stmt = stmt.where(Lead.source == source)
        if email is not None:  # spelled as ix_lead_prospect_email
            stmt = stmt.where(func.lower(Lead.prospect_email) == email.lower())
        if ready:
            return await ready_page(self.session, self.caller, stmt, page)
        return await paginate(self.session, stmt, INBOX_ORDER, page)

    async def add(self, lead: Lead) -> Lead:
        """Insert the lead; the INSERT returns the columns the database fills (`Lead`'s
        eager defaults), so the new lead is complete without a re-select."""
        lead.company_id = self.caller.company_id
        self.session.add(lead)
        await self.session.flush()
        return lead

    async def update(self, lead: Lead, changes: dict[str, Any]) -> Lead:
        """Apply `changes` (column -> value) to a visible lead got for update."""
        for column, value in changes.items():
            setattr(lead, column, value)
        await self.session.flush()
        await self.session.refresh(lead)
        return lead

    async def mark_seen(self, lead: Lead) -> None:
        """Being opened is not an edit: `updated_at` stays as it was."""
        await self.session.execute(
            update(Lead)
            .where(visible_to_caller(Lead, self.caller), Lead.id == lead.id, not_(Lead.was_seen))
            .values(was_seen=True, updated_at=Lead.updated_at)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(lead, "was_seen", True)  # the only column the UPDATE changed

    async def delete(self, lead_id: uuid.UUID) -> bool:
        deleted = await self.session.scalar(
            delete(Lead)
            .where(visible_to_caller(Lead, self.caller), Lead.id == lead_id)
            .returning(Lead.id)
        )
        return deleted is not None

    async def person_visible(self, person_id: uuid.UUID) -> bool:
        """A lead may only link to a person the caller can see."""
        found = await self.session.scalar(
            select(Person.id).where(visible_to_caller(Person, self.caller), Person.id == person_id)
        )
        return found is not None

    async def organization_visible(self, organization_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(Organization.id).where(
                visible_to_caller(Organization, self.caller), Organization.id == organization_id
            )
        )
        return found is not None


class LeadLabelRepository:
    """The company's lead labels (deals share them)."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, label_id: uuid.UUID) -> LeadLabel | None:
        return await self.session.scalar(
            select(LeadLabel).where(in_company(LeadLabel, self.caller), LeadLabel.id == label_id)
        )

    async def get_for_update(self, label_id: uuid.UUID) -> LeadLabel | None:
        return await self.session.scalar(
            select(LeadLabel)
            .where(in_company(LeadLabel, self.caller), LeadLabel.id == label_id)
            .with_for_update()
        )

    async def list_by_name(self, page: PageRequest) -> tuple[list[LeadLabel], str | None]:
        stmt = select(LeadLabel).where(in_company(LeadLabel, self.caller))
        return await paginate(self.session, stmt, Keyset(LeadLabel.name, LeadLabel.id), page)

    async def existing_ids(self, label_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        rows = await self.session.scalars(
            select(LeadLabel.id).where(
                in_company(LeadLabel, self.caller), LeadLabel.id.in_(label_ids)
            )
        )
        return set(rows)

    async def lock_names(self) -> None:
        """Serialize label name changes within the company until the transaction ends.

        The table has no unique index on lower(name), so two concurrent requests could
        each find a name free; this lock makes the check-then-write atomic.
        """
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(
                literal(f"lead_label:{self.caller.company_id}"), 0
            )))
        )

    async def name_taken(self, name: str, *, except_id: uuid.UUID | None = None) -> bool:
        stmt = select(LeadLabel.id).where(
            in_company(LeadLabel, self.caller), func.lower(LeadLabel.name) == name.lower()
        )
        if except_id is not None:
            stmt = stmt.where(LeadLabel.id != except_id)
        return await self.session.scalar(stmt.limit(1)) is not None

    async def add(self, name: str, color: str) -> LeadLabel:
        label = LeadLabel(company_id=self.caller.company_id, name=name, color=color)
        self.session.add(label)
        await self.session.flush()
        await self.session.refresh(label)
        return label

    async def update(self, label: LeadLabel, changes: dict[str, Any]) -> LeadLabel:
        for column, value in changes.items():
            setattr(label, column, value)
        await self.session.flush()
        await self.session.refresh(label)
        return label

    async def delete(self, label_id: uuid.UUID) -> bool:
        """Delete the label and take its id off every lead and deal of the company.

        Deals get a changelog row for the change of their `label_ids`, like any edit.
        """
        deleted = await self.session.scalar(
            delete(LeadLabel)
            .where(in_company(LeadLabel, self.caller), LeadLabel.id == label_id)
            .returning(LeadLabel.id)
        )
        if deleted is None:
            return False
        await self.session.execute(
            update(Lead)
            .where(in_company(Lead, self.caller), Lead.label_ids.contains(_uuid_array([label_id])))
            .values(label_ids=func.array_remove(Lead.label_ids, label_id))
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            _REMOVE_FROM_DEALS,
            {
                "company_id": self.caller.company_id,
                "label_id": label_id,
                "user_id": self.caller.user_id,
            },
        )
        return True


# One statement: update every deal carrying the label and write its changelog row.
# The self-join reads each deal's label_ids as they were before the update.
_REMOVE_FROM_DEALS = text(
    """
    WITH changed AS (
        UPDATE deal AS d
        SET label_ids = array_remove(d.label_ids, :label_id), updated_at = now()
        FROM deal AS prior
        WHERE prior.id = d.id
          AND d.company_id = :company_id
          AND d.label_ids @> ARRAY[CAST(:label_id AS uuid)]
        RETURNING d.id, d.company_id, prior.label_ids AS old, d.label_ids AS new
    )
    INSERT INTO deal_change (id, company_id, deal_id, field, old, new, user_id, at)
    SELECT gen_random_uuid(), company_id, id, 'label_ids', to_jsonb(old), to_jsonb(new),
           :user_id, now()
    FROM changed
    """
)

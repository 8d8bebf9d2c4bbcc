"""Leads and lead labels of the caller's company; every lead statement goes through
`visible_to_caller` (or `in_company` for company-wide batch work), every label statement
through `in_company`. The one module that writes `lead` rows: the API, capture and
conversion insert and update leads here."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import (
    CTE,
    ColumnElement,
    Table,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from leadflow.db import json_rows, move_references, new_id, rows_of
from leadflow.errors import UnknownReference
from leadflow.fields import storage
from leadflow.leads.models import CONVERSION_RULE, Lead, LeadLabel
from leadflow.readpath import ReadStatement
from leadflow.tenancy import Caller, in_company, visible_to_caller


def _uuid_array(ids: list[uuid.UUID]) -> Any:
    return literal(ids, ARRAY(UUID(as_uuid=True)))


# Columns the driver takes as JSON text when a statement runs past SQLAlchemy's binds.
_JSON_COLUMNS = frozenset(c.key for c in Lead.__table__.c if isinstance(c.type, JSONB))


def _driver_value(name: str, value: Any) -> Any:
    return orjson.dumps(value).decode() if name in _JSON_COLUMNS and value is not None else value


class LeadRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def add(self, **columns: Any) -> Lead:
        """Insert a lead; the INSERT returns the columns the database fills (`Lead`'s
        eager defaults), so the new lead is complete without a re-select. It has no
        readiness yet (conversion rules, evaluating it next, say otherwise if they mark it)."""
        lead = Lead(company_id=self.caller.company_id, **columns)
        self.session.add(lead)
        await self.session.flush()
        set_committed_value(lead, "readiness_rows", [])
        return lead

    async def add_checked(
        self, statement: ReadStatement, params: Mapping[str, Any], **columns: Any
    ) -> Any:
        """Insert a lead with a statement compiled once that checks and writes at once:
        one built on `insert_when(guard, names, whole=True)` (the lead is written only
        when the guard lets it). `columns` are the lead's `names` but `id` and
        `company_id`; `params` the guard's own. Runs in the request's transaction on its
        connection, past the ORM (the session holds no copy of the lead). Returns the
        statement's one row (an asyncpg record)."""
        values = {"id": new_id(), "company_id": self.caller.company_id, **columns}
        return await statement.fetchrow(
            self.session,
            {**params, **{f"lead_{name}": _driver_value(name, v) for name, v in values.items()}},
        )

    async def update(self, lead: Lead, changes: dict[str, Any]) -> Lead:
        """Apply `changes` (column -> value) to a visible lead got for update."""
        for column, value in changes.items():
            setattr(lead, column, value)
        await self.session.flush()
        await self.session.refresh(lead)
        return lead

    async def mark_seen(self, lead_id: uuid.UUID) -> None:
        """Being opened is not an edit: `updated_at` stays as it was."""
        await self.session.execute(
            update(Lead)
            .where(visible_to_caller(Lead, self.caller), Lead.id == lead_id, not_(Lead.was_seen))
            .values(was_seen=True, updated_at=Lead.updated_at)
            .execution_options(synchronize_session=False)
        )

    async def delete(self, lead_id: uuid.UUID) -> bool:
        deleted = await self.session.scalar(
            delete(Lead)
            .where(visible_to_caller(Lead, self.caller), Lead.id == lead_id)
            .returning(Lead.id)
        )
        return deleted is not None

    async def move_references(
        self, column: str, from_id: uuid.UUID, to_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """A merge: the company's leads whose `column` (`person_id`, `organization_id`)
        names `from_id` name `to_id` instead, whoever may see them; their ids."""
        assert column in ("person_id", "organization_id")
        return await move_references(
            self.session, Lead, column, self.caller.company_id, from_id, to_id
        )

    async def move_custom_references(
        self, keys: Sequence[str], from_id: uuid.UUID, to_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """A merge: values of `person`/`organization` fields `keys` naming `from_id`."""
        return await storage.move_custom_references(
            self.session, Lead, self.caller.company_id, keys, from_id, to_id
        )

    async def retire_custom_field(self, key: str) -> None:
        """A deleted custom field's values leave the leads' answers, kept for history."""
        await self.session.execute(
            update(Lead)
            .where(in_company(Lead, self.caller), storage.holds(Lead, key))
            .values(**storage.retired(Lead, key))
            .execution_options(synchronize_session=False)
        )

    async def count_using_options(self, key: str, option_ids: Sequence[int]) -> int:
        count = await self.session.scalar(
            select(func.count()).where(
                in_company(Lead, self.caller), storage.uses_options(Lead, key, option_ids)
            )
        )
        return int(count or 0)

    async def clear_options(self, key: str, option_ids: Sequence[int], is_set: bool) -> None:
        """Removed options leave the leads that used them."""
        await self.session.execute(
            update(Lead)
            .where(in_company(Lead, self.caller), storage.uses_options(Lead, key, option_ids))
            .values(custom_fields=storage.options_cleared(Lead, key, option_ids, is_set))
            .execution_options(synchronize_session=False)
        )

    async def remove_label(
        self, label_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]]:
        """Take a deleted label off every lead of the company carrying it, in one UPDATE
        that reads each lead's labels before and after (a self-join sees the row as it
        was): (lead id, labels before, labels after) of each. Not an edit of the lead by
        anyone: `updated_at` stays."""
        prior = aliased(Lead)
        rows = await self.session.execute(
            update(Lead)
            .where(
                prior.id == Lead.id,
                in_company(Lead, self.caller),
                Lead.label_ids.contains(_uuid_array([label_id])),
            )
            .values(label_ids=func.array_remove(Lead.label_ids, label_id))
            .returning(Lead.id, prior.label_ids, Lead.label_ids)
            .execution_options(synchronize_session=False)
        )
        return [(lead_id, list(old), list(new)) for lead_id, old, new in rows]


class LeadLabelRepository:
    """The company's lead labels (deals share them)."""

    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get_for_update(self, label_id: uuid.UUID) -> LeadLabel | None:
        return await self.session.scalar(
            select(LeadLabel)
            .where(in_company(LeadLabel, self.caller), LeadLabel.id == label_id)
            .with_for_update()
        )

    async def existing_ids(self, label_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return await existing_label_ids(self.session, self.caller.company_id, label_ids)

    async def lock_names(self) -> None:
        """Serialize label name changes within the company until the transaction ends.

        The table has no unique index on lower(name), so two concurrent requests could
        each find a name free; this lock makes the check-then-write atomic.
        """
        await self.session.execute(
            select(
                func.pg_advisory_xact_lock(
                    func.hashtextextended(literal(f"lead_label:{self.caller.company_id}"), 0)
                )
            )
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
        return deleted is not None


async def existing_label_ids(
    session: AsyncSession, company_id: uuid.UUID, label_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these ids are labels of the company: the one check of labels a lead, a
    deal or a form names (labels are company-wide, visible to all its users)."""
    if not label_ids:
        return set()
    rows = await session.scalars(
        select(LeadLabel.id).where(LeadLabel.company_id == company_id, LeadLabel.id.in_(label_ids))
    )
    return set(rows)


def first_unknown_label(
    label_ids: ColumnElement[Any], company_id: ColumnElement[Any]
) -> ColumnElement[Any]:
    """`ensure_labels_exist` as SQL, for statements that check and write at once: the
    0-based index of the first id of the array `label_ids` that is not a label of the
    company, NULL when all are."""
    given = func.unnest(label_ids).table_valued("id", with_ordinality="n").render_derived()
    return (
        select(func.min(given.c.n) - 1)
        .where(
            ~exists(
                select(LeadLabel.id).where(
                    LeadLabel.company_id == company_id, LeadLabel.id == given.c.id
                )
            )
        )
        .scalar_subquery()
    )


async def ensure_labels_exist(
    session: AsyncSession,
    company_id: uuid.UUID,
    label_ids: Sequence[uuid.UUID],
    loc: Sequence[str] = ("body", "label_ids"),
) -> None:
    """422 `unknown_reference` at `loc` + the index of the first id that is not a label of
    the company: the one check of the labels a lead, a deal or a form names."""
    existing = await existing_label_ids(session, company_id, label_ids)
    for index, label_id in enumerate(label_ids):
        if label_id not in existing:
            raise UnknownReference([*loc, index], "No such lead label in your company.")


def _unnest(values: Sequence[uuid.UUID]) -> Any:
    return func.unnest(_uuid_array(list(values)))


def rules_enabled(company_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether the company has an enabled conversion rule: asked by a lead's INSERT at
    no extra round trip, so that a company without one runs no rules statement after it
    (`LeadCreated.rules_enabled`). Served by ix_conversion_rule_company_id_enabled."""
    return exists(
        select(CONVERSION_RULE.c.company_id).where(
            CONVERSION_RULE.c.company_id == company_id, CONVERSION_RULE.c.enabled
        )
    )


@functools.lru_cache(maxsize=64)
def insert_when(guard: CTE, names: tuple[str, ...], *, whole: bool = False) -> CTE:
    """The one INSERT of a lead that depends on another write or on checks in the same
    statement: the lead (columns `names`, as bind parameters `lead_<column>`) is inserted
    only when `guard` returns a row, so a statement whose guard returns nothing writes no
    lead. Capture's guard claims a delivery; `POST /leads`' guard is its reference checks.
    The CTE returns the new lead's id, or every column when `whole` (an ORM `Lead` can
    be loaded from it: `aliased(Lead, cte)`). Built once per (guard, columns)."""
    columns = Lead.__table__.c
    return (
        insert(Lead)
        .from_select(
            list(names),
            select(
                *(bindparam(f"lead_{name}", type_=columns[name].type) for name in names)
            ).select_from(guard),
            # The caller gives every column it means; the rest take server defaults.
            include_defaults=False,
        )
        .returning(*(Lead.__table__.c if whole else [Lead.id]))
        .cte("created")
    )


@functools.cache
def converted_update() -> CTE:
    """Leads marked converted, as a CTE conversion composes with its other writes, built once: each
    lead of `pair_lead_ids` (of the company `move_company_id`, locked by the caller) converted
    into the deal at the same place of `pair_deal_ids`. Returns the columns it sets."""
    uuids = ARRAY(UUID(as_uuid=True))
    pairs = select(
        func.unnest(bindparam("pair_lead_ids", type_=uuids)).label("lead_id"),
        func.unnest(bindparam("pair_deal_ids", type_=uuids)).label("deal_id"),
    ).subquery("pairs")
    return (
        update(Lead)
        .where(
            Lead.company_id == bindparam("move_company_id", type_=Uuid), Lead.id == pairs.c.lead_id
        )
        .values(converted_deal_id=pairs.c.deal_id, converted_at=func.now(), updated_at=func.now())
        .returning(Lead.id, Lead.converted_deal_id, Lead.converted_at, Lead.updated_at)
        .cte("converted_lead")
    )


def set_converted(lead: Lead, row: Mapping[str, Any]) -> None:
    """Give a loaded lead the values `converted_update` returned for it."""
    for column in ("converted_deal_id", "converted_at", "updated_at"):
        set_committed_value(lead, column, row[column])


# Batch writes of an import (`leadflow.imports`): new leads in one statement, updates of
# matched leads and the deletions of a revert, scoped to the company.


_IMPORTED_COLUMNS = (
    "id",
    "company_id",
    "title",
    "owner_id",
    "person_id",
    "organization_id",
    "value_amount",
    "value_currency",
    "expected_close_date",
    "label_ids",
    "source",
    "custom_fields",
    "visible_to",
)


@functools.cache
def _imported_insert() -> Any:
    rows = rows_of(Lead, "rows")
    # On the table: the ORM would read a dict of parameters as a bulk insert of rows.
    return insert(cast(Table, Lead.__table__)).from_select(
        _IMPORTED_COLUMNS,
        select(*(rows.c[name] for name in _IMPORTED_COLUMNS)),
        include_defaults=False,
    )


async def insert_leads(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Leads of an import in one statement (the rows as one JSON parameter), each with
    every column of `_IMPORTED_COLUMNS`."""
    if rows:
        await session.execute(_imported_insert(), {"rows": json_rows([dict(r) for r in rows])})


async def update_leads(
    session: AsyncSession, company_id: uuid.UUID, changes: Sequence[tuple[Any, Mapping[str, Any]]]
) -> None:
    """Apply each (id, column -> value) to the company's lead."""
    table = cast(Table, Lead.__table__)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record_id, values in changes:
        by_columns.setdefault(tuple(sorted(values)), []).append(
            {"b_id": record_id, "b_company": company_id, **values}
        )
    for columns, params in by_columns.items():
        statement = (
            update(table)
            .where(
                table.c.company_id == bindparam("b_company", type_=Uuid),
                table.c.id == bindparam("b_id", type_=Uuid),
            )
            .values({**{name: bindparam(name) for name in columns}, "updated_at": func.now()})
        )
        await session.execute(statement, params)


async def delete_leads(
    session: AsyncSession, company_id: uuid.UUID, ids: Sequence[Any]
) -> list[Any]:
    """Delete the company's leads of `ids`; the ids deleted."""
    if not ids:
        return []
    table = cast(Table, Lead.__table__)
    rows = await session.execute(
        delete(table)
        .where(table.c.company_id == company_id, table.c.id.in_(list(ids)))
        .returning(table.c.id)
    )
    return [row.id for row in rows]

"""Deals the caller may see; every statement on `deal` goes through `visible_to_caller`."""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    CTE,
    Select,
    Table,
    Uuid,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leadflow import attribution
from leadflow.auth.models import Company
from leadflow.db import json_rows, move_references, new_id, rows_of
from leadflow.deals import changelog
from leadflow.deals.access import visible_deal
from leadflow.deals.models import Deal, DealChange, DealFile, DealStatus
from leadflow.fields import storage
from leadflow.fields.models import FieldDefinition
from leadflow.pagination import Keyset
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.readpath import ReadStatement
from leadflow.tenancy import Caller, in_company, visible_to_caller

# Deal lists and board columns: newest first (ix_deal_*_created_at and ix_deal_stage_id).
NEWEST_FIRST = Keyset(Deal.created_at, Deal.id, descending=True)
CHANGELOG_ORDER = Keyset(DealChange.at, DealChange.id)


class DealRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(
        self, deal_id: uuid.UUID, *, for_update: bool = False, allow_converted: bool = False
    ) -> Deal:
        """The deal, 404 if not visible, 410 if converted back to a lead (unless allowed)."""
        return await visible_deal(
            self.session,
            self.caller,
            deal_id,
            for_update=for_update,
            allow_converted=allow_converted,
        )

    async def rotten_days(self, stage_ids: set[uuid.UUID]) -> dict[uuid.UUID, int | None]:
        """`rotten_days` of the given stages (of the caller's company)."""
        if not stage_ids:
            return {}
        rows = await self.session.execute(
            select(Stage.id, Stage.rotten_days).where(
                in_company(Stage, self.caller), Stage.id.in_(stage_ids)
            )
        )
        return {stage_id: days for stage_id, days in rows}

    async def add(self, **values: Any) -> Deal:
        """Insert a deal and its first changelog entry."""
        deal = Deal(company_id=self.caller.company_id, **values)
        self.session.add(deal)
        await self.session.flush()
        await self.session.refresh(deal)
        await changelog.record_creations(self.session, [deal], self.caller.user_id)
        return deal

    async def update(self, deal: Deal, values: dict[str, Any]) -> Deal:
        """Apply `values` to a deal got for update; each tracked field that changed gets
        its changelog row."""
        before = changelog.snapshot(deal)
        for field, value in values.items():
            setattr(deal, field, value)
        await self.session.flush()
        await self.session.refresh(deal)
        await changelog.record_snapshot_changes(self.session, deal, before, self.caller.user_id)
        return deal

    async def move_references(
        self, column: str, from_id: uuid.UUID, to_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """A merge: the company's deals whose `column` (`person_id`, `organization_id`,
        `source_lead_id`, `converted_lead_id`) names `from_id` name `to_id` instead,
        whoever may see them; a tracked field's move is in each deal's changelog. Their ids."""
        assert column in ("person_id", "organization_id", "source_lead_id", "converted_lead_id")
        moved = await move_references(
            self.session, Deal, column, self.caller.company_id, from_id, to_id
        )
        if column in changelog.TRACKED_FIELDS:
            await changelog.record_many(
                self.session,
                self.caller.company_id,
                self.caller.user_id,
                ((deal_id, column, from_id, to_id) for deal_id in moved),
            )
        return moved

    async def move_custom_references(
        self, keys: Sequence[str], from_id: uuid.UUID, to_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """A merge: values of `person`/`organization` fields `keys` naming `from_id`."""
        return await storage.move_custom_references(
            self.session, Deal, self.caller.company_id, keys, from_id, to_id
        )

    async def mark_converted_to_lead(self, deal: Deal, lead_id: uuid.UUID) -> None:
        """The deal went back to the inbox as `lead_id`: it leaves the deal lists."""
        deal.converted_lead_id = lead_id
        deal.converted_at = func.now()
        await self.session.flush()
        await self.session.refresh(deal)
        await changelog.record_changes(
            self.session,
            company_id=deal.company_id,
            deal_id=deal.id,
            user_id=self.caller.user_id,
            changes={"converted_lead_id": (None, lead_id)},
        )

    async def remove_label(
        self, label_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]]:
        """Take a deleted label off every deal of the company carrying it, each change in
        the changelog like any edit. One UPDATE reads each deal's labels before and after
        (a self-join sees the row as it was), one INSERT writes the changelog. Returns
        (deal id, labels before, labels after) of each."""
        prior = aliased(Deal)
        rows = await self.session.execute(
            update(Deal)
            .where(
                prior.id == Deal.id,
                in_company(Deal, self.caller),
                Deal.label_ids.contains(_uuid_array([label_id])),
            )
            .values(label_ids=func.array_remove(Deal.label_ids, label_id), updated_at=func.now())
            .returning(Deal.id, prior.label_ids, Deal.label_ids)
            .execution_options(synchronize_session=False)
        )
        changed = [(deal_id, list(old), list(new)) for deal_id, old, new in rows]
        await changelog.record_many(
            self.session,
            self.caller.company_id,
            self.caller.user_id,
            [(deal_id, "label_ids", old, new) for deal_id, old, new in changed],
        )
        return changed

    async def retire_custom_field(self, key: str) -> None:
        """A deleted custom field's values leave the deals' answers, kept for history (no
        changelog entry: the value did not change, its field went)."""
        await self.session.execute(
            update(Deal)
            .where(in_company(Deal, self.caller), storage.holds(Deal, key))
            .values(**storage.retired(Deal, key))
            .execution_options(synchronize_session=False)
        )

    async def count_using_options(self, key: str, option_ids: Sequence[int]) -> int:
        count = await self.session.scalar(
            select(func.count()).where(
                in_company(Deal, self.caller), storage.uses_options(Deal, key, option_ids)
            )
        )
        return int(count or 0)

    async def clear_options(self, key: str, option_ids: Sequence[int], is_set: bool) -> None:
        """Removed options leave the deals that used them, each change in the changelog
        (the self-join reads the value as it was, as `remove_label` does)."""
        prior = aliased(Deal)
        rows = await self.session.execute(
            update(Deal)
            .where(
                prior.id == Deal.id,
                in_company(Deal, self.caller),
                storage.uses_options(Deal, key, option_ids),
            )
            .values(custom_fields=storage.options_cleared(Deal, key, option_ids, is_set))
            .returning(Deal.id, prior.custom_fields[key], Deal.custom_fields[key])
            .execution_options(synchronize_session=False)
        )
        await changelog.record_many(
            self.session,
            self.caller.company_id,
            self.caller.user_id,
            [(deal_id, f"{changelog.CUSTOM_FIELD}{key}", old, new) for deal_id, old, new in rows],
        )

    async def reload(self, deal: Deal) -> None:
        """Read the deal's row again (after a change that expired its attributes)."""
        await self.session.refresh(deal)

    async def delete(self, deal_id: uuid.UUID) -> list[str]:
        """Delete the deal; its line items, participants, files and changelog go with it.
        Returns the storage keys of its files, whose stored bytes the caller removes once
        the deletion has committed."""
        keys = list(
            await self.session.scalars(
                select(DealFile.storage_key).where(DealFile.deal_id == deal_id)
            )
        )
        await self.session.execute(
            delete(Deal).where(visible_to_caller(Deal, self.caller), Deal.id == deal_id)
        )
        return keys

    # Where a deal goes. The stage and its pipeline are share-locked (FOR KEY SHARE) until
    # commit: deleting them takes FOR UPDATE on the company's pipelines first, so a delete
    # either waits and then counts this deal, or commits first and the stage is not found.

    async def stage(self, stage_id: uuid.UUID) -> Stage | None:
        return await self.session.scalar(stage_for_new_deal(self.caller.company_id, stage_id))

    async def destination(
        self, pipeline_id: uuid.UUID | None, stage_id: uuid.UUID | None
    ) -> Destination | None:
        """The chosen stage, else the first stage of the chosen pipeline, else of the
        default one; None when there is none (the caller tells why)."""
        if stage_id is not None:
            kind, params = DestinationKind.stage, {"stage_id": stage_id}
        elif pipeline_id is not None:
            kind, params = DestinationKind.pipeline, {"pipeline_id": pipeline_id}
        else:
            kind, params = DestinationKind.default, {}
        row = await destination_statement(kind).fetchrow(
            self.session, {"company_id": self.caller.company_id, **params}
        )
        return None if row is None else Destination(*row)

    async def first_stage(self, pipeline_id: uuid.UUID) -> Stage | None:
        """The pipeline's stage with the lowest position (ties: lowest id)."""
        return await self.session.scalar(
            select(Stage)
            .join(Pipeline, Pipeline.id == Stage.pipeline_id)
            .where(in_company(Stage, self.caller), Stage.pipeline_id == pipeline_id)
            .order_by(Stage.position, Stage.id)
            .limit(1)
            .with_for_update(key_share=True, read=True)
        )

    async def default_pipeline_id(self) -> uuid.UUID | None:
        """The pipeline with the lowest position (ties: lowest id)."""
        return await self.session.scalar(
            select(Pipeline.id)
            .where(in_company(Pipeline, self.caller))
            .order_by(Pipeline.position, Pipeline.id)
            .limit(1)
        )

    async def pipeline(self, pipeline_id: uuid.UUID) -> Pipeline | None:
        return await self.session.scalar(
            select(Pipeline).where(in_company(Pipeline, self.caller), Pipeline.id == pipeline_id)
        )

    async def count_in(
        self, *, pipeline_id: uuid.UUID | None = None, stage_id: uuid.UUID | None = None
    ) -> tuple[int, int]:
        """(open, all) deals of the company in a pipeline or stage, whoever may see them.

        Converted deals count in `all`: they stay as history and still reference the stage.
        """
        stmt = select(
            func.count().filter(Deal.status == DealStatus.open, Deal.converted_lead_id.is_(None)),
            func.count(),
        ).where(in_company(Deal, self.caller))
        if pipeline_id is not None:
            # The pipeline's stages go with it, so deals in them count even if their
            # `pipeline_id` were stale.
            stmt = stmt.where(
                or_(
                    Deal.pipeline_id == pipeline_id,
                    Deal.stage_id.in_(select(Stage.id).where(Stage.pipeline_id == pipeline_id)),
                )
            )
        if stage_id is not None:
            stmt = stmt.where(Deal.stage_id == stage_id)
        row = (await self.session.execute(stmt)).one()
        return int(row[0]), int(row[1])

    async def set_value(self, deal: Deal, amount: Decimal | None, currency: str | None) -> None:
        """Set the value of a deal got locked (the line items' total, when it follows them);
        the changelog gets its `value` row."""
        await self.update(deal, {"value_amount": amount, "value_currency": currency})


@dataclass(frozen=True, slots=True)
class Destination:
    """The stage new deals go to (share-locked as by `DealRepository.stage`) and the
    company's open-deal limit (`max_open_deals`, None: unlimited), read in one statement."""

    id: uuid.UUID
    pipeline_id: uuid.UUID
    probability: int | None
    rotten_days: int | None
    max_open_deals: int | None
    # The company's formula fields and the number/monetary fields they may read, as
    # [[key, type, formula], ...] (None: none), so that a conversion computes the new
    # deals' formulas with no statement more (`deals.formulas.from_rows`).
    deal_fields: list[list[Any]] | None = None


class DestinationKind(enum.Enum):
    stage = "stage"  # the stage chosen (bind parameter `stage_id`)
    pipeline = "pipeline"  # the first stage of the pipeline chosen (`pipeline_id`)
    default = "default"  # the first stage of the default pipeline


@functools.cache
def destination_statement(kind: DestinationKind) -> ReadStatement:
    """Where new deals go, built and compiled once per kind with bind parameters
    (`company_id` and `stage_id` or `pipeline_id`): the default pipeline, its first stage
    and the limit in one statement. The stage and its pipeline are locked FOR KEY SHARE
    (see `stage`). It reads no entity and runs on the driver (`ReadStatement`)."""
    company_id = bindparam("company_id", type_=Uuid)
    limit = select(Company.max_open_deals).where(Company.id == company_id).scalar_subquery()
    fields = (
        select(
            func.jsonb_agg(
                func.jsonb_build_array(
                    FieldDefinition.key, FieldDefinition.field_type, FieldDefinition.formula
                )
            )
        )
        .where(
            FieldDefinition.company_id == company_id,
            FieldDefinition.entity == "deal",
            FieldDefinition.deleted_at.is_(None),
            # Not IN (...): an expanding parameter cannot be compiled once.
            FieldDefinition.field_type == any_(array(("number", "monetary", "formula"))),
        )
        .scalar_subquery()
    )
    stmt = (
        select(Stage.id, Stage.pipeline_id, Stage.probability, Stage.rotten_days, limit, fields)
        .join(Pipeline, Pipeline.id == Stage.pipeline_id)
        .where(Stage.company_id == company_id)
    )
    if kind is DestinationKind.stage:
        stmt = stmt.where(Stage.id == bindparam("stage_id", type_=Uuid))
    else:
        default = aliased(Pipeline)
        pipeline_id = (
            bindparam("pipeline_id", type_=Uuid)
            if kind is DestinationKind.pipeline
            else select(default.id)
            .where(default.company_id == company_id)
            .order_by(default.position, default.id)
            .limit(1)
            .scalar_subquery()
        )
        stmt = stmt.where(Stage.pipeline_id == pipeline_id).order_by(Stage.position, Stage.id)
    return ReadStatement(stmt.limit(1).with_for_update(key_share=True, read=True))


def stage_for_new_deal(company_id: uuid.UUID, stage_id: uuid.UUID) -> Select[Stage]:
    """The company's stage a new deal goes to, it and its pipeline share-locked (FOR KEY
    SHARE) until commit (see DealRepository.stage); captured deals use it too."""
    return (
        select(Stage)
        .join(Pipeline, Pipeline.id == Stage.pipeline_id)
        .where(Stage.company_id == company_id, Stage.id == stage_id)
        .with_for_update(key_share=True, read=True)
    )


def _uuid_array(ids: list[uuid.UUID]) -> Any:
    return literal(ids, ARRAY(PgUUID(as_uuid=True)))


async def insert_deals(
    session: AsyncSession,
    company_id: uuid.UUID,
    user_id: uuid.UUID | None,
    rows: Sequence[dict[str, Any]],
) -> list[Deal]:
    """New open deals of one company in one INSERT ... RETURNING (loaded objects, server
    defaults included, in the order of `rows`) and their first changelog entries in one
    more: the set-based path of conversion and capture. Each row gives every column but
    `company_id`, `status` and `stage_changed_at` (now)."""
    if not rows:
        return []
    # insertmanyvalues: one statement for all rows. `render_nulls` keeps every row's
    # column set identical (otherwise the ORM omits None values and runs one INSERT per
    # run of rows with the same columns); no None here has a default.
    deals = list(
        await session.scalars(
            insert(Deal)
            .values(
                company_id=company_id, status=DealStatus.open.value, stage_changed_at=func.now()
            )
            .returning(Deal, sort_by_parameter_order=True)
            .execution_options(render_nulls=True),
            [{"id": new_id(), **row} for row in rows],
        )
    )
    await changelog.record_creations(session, deals, user_id)
    return deals


# The columns a new deal of `deals_insert` gets from its row (`status` is open and
# `stage_changed_at` now; `company_id` given in every row).
_NEW_DEAL_COLUMNS = (
    "id",
    "company_id",
    "title",
    "owner_id",
    "person_id",
    "organization_id",
    "pipeline_id",
    "stage_id",
    "value_amount",
    "value_currency",
    "probability",
    "expected_close_date",
    "label_ids",
    "visible_to",
    "source_lead_id",
    "custom_fields",
    "fields",
    *attribution.FIELDS,
)


@functools.cache
def deals_insert() -> CTE:
    """`insert_deals` as a CTE another write composes (conversion: with the contacts the
    deals name), built once: the rows are the bind parameter `deal_rows` (`deal_rows()`),
    the CTE returns every column (`aliased(Deal, cte)` loads them). The caller records
    the deals' creation in the changelog (`changelog.creations_insert`)."""
    rows = rows_of(Deal, "deal_rows")
    return (
        insert(Deal)
        .from_select(
            [*_NEW_DEAL_COLUMNS, "status", "stage_changed_at"],
            select(
                *(rows.c[name] for name in _NEW_DEAL_COLUMNS),
                literal(DealStatus.open.value),
                func.now(),
            ),
            include_defaults=False,
        )
        .returning(*Deal.__table__.c)
        .cte("new_deal")
    )


def deal_rows(company_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> tuple[list[uuid.UUID], str]:
    """The new deals' ids (in the order of `rows`) and `deals_insert`'s `deal_rows`; each
    row gives every column of `_NEW_DEAL_COLUMNS` but `id` and `company_id`."""
    full = [{"id": new_id(), "company_id": company_id, **row} for row in rows]
    return [row["id"] for row in full], json_rows(full)


# The set-based writes of an import (`leadflow.imports`): many deals of one company per
# statement, ids chosen by the caller.


async def insert_imported_deals(
    session: AsyncSession,
    company_id: uuid.UUID,
    user_id: uuid.UUID | None,
    rows: Sequence[dict[str, Any]],
) -> list[uuid.UUID]:
    """Deals of an import in one INSERT (every row with the same columns: its id, status
    and, for a won or lost deal, `won_at`/`lost_at` and `closed_at`), and their first
    changelog entries in one more; their ids in the order of `rows`."""
    if not rows:
        return []
    deals = list(
        await session.scalars(
            insert(Deal)
            .values(company_id=company_id, stage_changed_at=func.now())
            .returning(Deal, sort_by_parameter_order=True)
            .execution_options(render_nulls=True),
            list(rows),
        )
    )
    await changelog.record_creations(session, deals, user_id)
    ids = [deal.id for deal in deals]
    for deal in deals:  # nothing reads them again: a chunk's session stays small
        session.expunge(deal)
    return ids


async def update_deals(
    session: AsyncSession,
    company_id: uuid.UUID,
    user_id: uuid.UUID | None,
    changes: Sequence[tuple[uuid.UUID, dict[str, Any], dict[str, Any]]],
) -> None:
    """Apply each (id, old values, new values) to the company's deal, one UPDATE per set
    of columns, and record each changed field in the changelog (one statement)."""
    if not changes:
        return
    table = cast(Table, Deal.__table__)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record_id, _, values in changes:
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
    await changelog.record_many(
        session,
        company_id,
        user_id,
        [entry for record_id, old, new in changes for entry in _logged(record_id, old, new)],
    )


def _logged(
    deal_id: uuid.UUID, old: dict[str, Any], new: dict[str, Any]
) -> list[tuple[uuid.UUID, str, Any, Any]]:
    """Changed columns as the changelog names its fields: `value` as amount and currency,
    each custom field as `custom_fields.<key>`."""
    entries: list[tuple[uuid.UUID, str, Any, Any]] = []
    for name, value in new.items():
        if name == "custom_fields":
            before = old.get(name) or {}
            entries.extend(
                (deal_id, f"{changelog.CUSTOM_FIELD}{key}", before.get(key), item)
                for key, item in value.items()
            )
        elif name == "value_amount":
            entries.append((deal_id, "value", _money(old), _money(new)))
        elif name != "value_currency":
            entries.append((deal_id, name, old.get(name), value))
    return entries


def _money(values: dict[str, Any]) -> dict[str, Any] | None:
    amount, currency = values.get("value_amount"), values.get("value_currency")
    return None if amount is None or currency is None else {"amount": amount, "currency": currency}


async def delete_unused_deals(
    session: AsyncSession, company_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Delete the company's deals of `ids` that hold no file (a file added since is the
    user's: those deals are kept, their files' bytes untouched); (deleted, kept)."""
    if not ids:
        return [], []
    with_files = set(
        await session.scalars(
            select(DealFile.deal_id).where(DealFile.deal_id.in_(list(ids))).distinct()
        )
    )
    wanted = [i for i in ids if i not in with_files]
    deleted = list(
        await session.scalars(
            delete(Deal)
            .where(Deal.company_id == company_id, Deal.id.in_(wanted))
            .returning(Deal.id)
        )
        if wanted
        else []
    )
    return deleted, [i for i in ids if i in with_files]

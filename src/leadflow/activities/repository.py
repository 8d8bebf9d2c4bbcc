"""Notes, their comments, and activities the caller may see.

Every statement on a note or an activity goes through `parent_visible` (a note or an
activity is visible exactly when its parent is); the GETs read through `reads.py`. The
module-level `move_*` and `count_*` functions serve conversion: they work on a whole
record's notes or activities by company id, one statement each, and leave visibility
checks to the caller, which has already locked both records.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE, Uuid, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.activities.models import Activity, Note, NoteComment
from leadflow.activities.parents import Parent, parent_visible
from leadflow.db import new_id
from leadflow.tenancy import Caller, in_company


class NoteRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, note_id: uuid.UUID, *, for_update: bool = False) -> Note | None:
        stmt = select(Note).where(parent_visible(Note, self.caller), Note.id == note_id)
        if for_update:
            stmt = stmt.with_for_update(of=Note)
        return await self.session.scalar(stmt)

    async def add(self, *, content: str, parent: Parent, mentions: list[uuid.UUID]) -> Note:
        note = Note(
            company_id=self.caller.company_id,
            user_id=self.caller.user_id,
            content=content,
            mentions=mentions,
            **parent.columns(),
        )
        self.session.add(note)
        await self.session.flush()
        await self.session.refresh(note)
        return note

    async def add_unsigned(self, *, content: str, parent: Parent) -> uuid.UUID:
        """A note no user wrote (a captured message), no author (`user_id` null); its id."""
        company_id = self.caller.company_id
        note = Note(id=new_id(), company_id=company_id, content=content, **parent.columns())
        self.session.add(note)
        await self.session.flush()
        return note.id

    async def update(self, note: Note, changes: dict[str, Any]) -> Note:
        """Apply `changes` (column -> value) to a row got with `get(..., for_update=True)`."""
        for column, value in changes.items():
            setattr(note, column, value)
        await self.session.flush()
        await self.session.refresh(note)
        return note

    async def delete(self, note_id: uuid.UUID) -> bool:
        """Delete a visible note (its comments go with it); False if there is none."""
        deleted = await self.session.scalar(
            delete(Note)
            .where(parent_visible(Note, self.caller), Note.id == note_id)
            .returning(Note.id)
        )
        return deleted is not None


class CommentRepository:
    """Comments of one note; the caller has already been shown to see that note."""

    def __init__(self, session: AsyncSession, caller: Caller, note_id: uuid.UUID) -> None:
        self.session = session
        self.caller = caller
        self.note_id = note_id

    async def get(self, comment_id: uuid.UUID, *, for_update: bool = False) -> NoteComment | None:
        stmt = select(NoteComment).where(
            in_company(NoteComment, self.caller),
            NoteComment.note_id == self.note_id,
            NoteComment.id == comment_id,
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def add(self, content: str) -> NoteComment:
        comment = NoteComment(
            company_id=self.caller.company_id,
            note_id=self.note_id,
            user_id=self.caller.user_id,
            content=content,
        )
        self.session.add(comment)
        await self.session.flush()
        await self.session.refresh(comment)
        return comment

    async def update(self, comment: NoteComment, changes: dict[str, Any]) -> NoteComment:
        for column, value in changes.items():
            setattr(comment, column, value)
        await self.session.flush()
        await self.session.refresh(comment)
        return comment

    async def delete(self, comment_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(NoteComment).where(
                in_company(NoteComment, self.caller),
                NoteComment.note_id == self.note_id,
                NoteComment.id == comment_id,
            )
        )


class ActivityRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get_for_update(self, activity_id: uuid.UUID) -> Activity | None:
        return await self.session.scalar(
            select(Activity)
            .where(parent_visible(Activity, self.caller), Activity.id == activity_id)
            .with_for_update(of=Activity)
        )

    async def add(self, values: dict[str, Any], parent: Parent) -> Activity:
        activity = Activity(company_id=self.caller.company_id, **values, **parent.columns())
        self.session.add(activity)
        await self.session.flush()
        await self.session.refresh(activity)
        return activity

    async def update(self, activity: Activity, changes: dict[str, Any]) -> Activity:
        for column, value in changes.items():
            setattr(activity, column, value)
        await self.session.flush()
        await self.session.refresh(activity)
        return activity

    async def delete(self, activity_id: uuid.UUID) -> bool:
        deleted = await self.session.scalar(
            delete(Activity)
            .where(parent_visible(Activity, self.caller), Activity.id == activity_id)
            .returning(Activity.id)
        )
        return deleted is not None


@dataclass(frozen=True, slots=True)
class Moves:
    """How many notes and activities a record holds, i.e. what a conversion would move."""

    notes: int
    activities: int


async def _move(
    session: AsyncSession,
    model: type[Note] | type[Activity],
    company_id: uuid.UUID,
    source: tuple[str, uuid.UUID],
    target: tuple[str, uuid.UUID],
) -> list[uuid.UUID]:
    """One UPDATE moving every row of `model` from one parent column/id to another;
    returns the ids of the rows moved."""
    (from_column, from_id), (to_column, to_id) = source, target
    result = await session.execute(
        update(model)
        .where(model.company_id == company_id, getattr(model, from_column) == from_id)
        # Being carried over by a conversion is not an edit: keep `updated_at`.
        .values({from_column: None, to_column: to_id, "updated_at": model.updated_at})
        .returning(model.id)
        .execution_options(synchronize_session="fetch")
    )
    return list(result.scalars())


async def move_notes_to_lead(
    session: AsyncSession, company_id: uuid.UUID, from_deal_id: uuid.UUID, to_lead_id: uuid.UUID
) -> list[uuid.UUID]:
    """Move every note of a deal to a lead in one UPDATE (deal -> lead conversion);
    comments and mentions follow their notes. The ids of the notes moved."""
    return await _move(
        session, Note, company_id, ("deal_id", from_deal_id), ("lead_id", to_lead_id)
    )


async def move_activities_to_lead(
    session: AsyncSession, company_id: uuid.UUID, from_deal_id: uuid.UUID, to_lead_id: uuid.UUID
) -> list[uuid.UUID]:
    """Move every activity of a deal to a lead in one UPDATE (deal -> lead conversion).
    The ids of the activities moved."""
    return await _move(
        session, Activity, company_id, ("deal_id", from_deal_id), ("lead_id", to_lead_id)
    )


async def move_to_survivor(
    session: AsyncSession,
    company_id: uuid.UUID,
    column: str,
    from_id: uuid.UUID,
    to_id: uuid.UUID,
) -> tuple[list[uuid.UUID], list[tuple[uuid.UUID, bool]]]:
    """A merge: every note and activity on `from_id` (a lead, person or organization by
    `column`) goes to `to_id`, one UPDATE each; comments and mentions follow their notes.
    Unlike a conversion's move this is an edit of the row (its parent changed), so
    `updated_at` moves. The notes' ids, and the activities' ids with whether each is done."""
    assert column in ("lead_id", "person_id", "organization_id")
    notes = await session.execute(
        update(Note)
        .where(Note.company_id == company_id, getattr(Note, column) == from_id)
        .values({column: to_id, "updated_at": func.now()})
        .returning(Note.id)
        .execution_options(synchronize_session=False)
    )
    activities = await session.execute(
        update(Activity)
        .where(Activity.company_id == company_id, getattr(Activity, column) == from_id)
        .values({column: to_id, "updated_at": func.now()})
        .returning(Activity.id, Activity.done)
        .execution_options(synchronize_session=False)
    )
    return list(notes.scalars()), [(row.id, row.done) for row in activities]


async def _count(
    session: AsyncSession, company_id: uuid.UUID, column: str, record_id: uuid.UUID
) -> Moves:
    def count(model: type[Note] | type[Activity]) -> Any:
        return (
            select(func.count())
            .select_from(model)
            .where(model.company_id == company_id, getattr(model, column) == record_id)
            .scalar_subquery()
        )

    row = (await session.execute(select(count(Note), count(Activity)))).one()
    return Moves(notes=row[0], activities=row[1])


async def count_for_lead(session: AsyncSession, company_id: uuid.UUID, lead_id: uuid.UUID) -> Moves:
    """Notes and activities of a lead: what converting it would move (one query)."""
    return await _count(session, company_id, "lead_id", lead_id)


async def count_for_deal(session: AsyncSession, company_id: uuid.UUID, deal_id: uuid.UUID) -> Moves:
    """Notes and activities of a deal: what converting it back to a lead would move."""
    return await _count(session, company_id, "deal_id", deal_id)


def _pairs() -> Any:
    """(lead_id, deal_id) pairs from the bind parameters `pair_lead_ids`, `pair_deal_ids`."""
    uuids = ARRAY(PgUUID(as_uuid=True))
    return select(
        func.unnest(bindparam("pair_lead_ids", type_=uuids)).label("lead_id"),
        func.unnest(bindparam("pair_deal_ids", type_=uuids)).label("deal_id"),
    ).subquery("pairs")


@functools.cache
def moves_to_deals() -> tuple[CTE, CTE]:
    """Conversion's move of every lead's notes and activities to its deal, as two CTEs
    it composes with its other writes (notes, activities; comments and mentions follow
    their notes), built
    once: each lead of `pair_lead_ids` to the deal at the same place of `pair_deal_ids`,
    in the company `move_company_id`; each returns `lead_id` and the moved row's `id`
    once per moved row."""
    moved = []
    for name, model in (("moved_note", Note), ("moved_activity", Activity)):
        pairs = _pairs()
        moved.append(
            update(model)
            .where(
                model.company_id == bindparam("move_company_id", type_=Uuid),
                model.lead_id == pairs.c.lead_id,
            )
            .values(lead_id=None, deal_id=pairs.c.deal_id, updated_at=model.updated_at)
            .returning(pairs.c.lead_id, model.id)
            .cte(name)
        )
    return moved[0], moved[1]


# The set-based writes of an import (`leadflow.imports`): notes and activities of one
# company, each row naming its one parent, ids chosen by the caller.


async def insert_imported_notes(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Notes (id, company_id, content, and the four parent columns, one set) in one
    statement; no author (`user_id` null), as a captured message's."""
    if rows:
        await session.execute(insert(Note), rows)


async def insert_imported_activities(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Activities (id, company_id, type, subject, due_date, done, done_at, owner_id and
    the four parent columns) in one statement."""
    if rows:
        await session.execute(insert(Activity), rows)


async def delete_notes(
    session: AsyncSession, company_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Delete the company's notes of `ids` (their comments go with them); those deleted."""
    if not ids:
        return []
    return list(
        await session.scalars(
            delete(Note).where(Note.company_id == company_id, Note.id.in_(ids)).returning(Note.id)
        )
    )


async def delete_activities(
    session: AsyncSession, company_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    if not ids:
        return []
    return list(
        await session.scalars(
            delete(Activity)
            .where(Activity.company_id == company_id, Activity.id.in_(ids))
            .returning(Activity.id)
        )
    )

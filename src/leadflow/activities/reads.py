"""The note, comment and activity answers of the GETs: statements compiled once per shape
(`leadflow.readpath`), rows straight to JSON, spelled as `NoteRead`, `CommentRead` and
`ActivityRead` write them (tests hold them alike). A note or an activity is visible
exactly when its parent is (`parents.parent_visible_to_viewer`)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    Uuid,
    bindparam,
    cast,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.activities.models import Activity, Note, NoteComment
from leadflow.activities.parents import Parent, ParentKind, parent_visible_to_viewer
from leadflow.activities.schemas import ActivityRead, CommentRead, NoteRead
from leadflow.errors import InvalidInput, NotFound
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import JsonRows, ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, Viewer, in_viewer_company, viewer_params

NEWEST_NOTES_FIRST = Keyset(Note.created_at, Note.id, descending=True)
OLDEST_COMMENTS_FIRST = Keyset(NoteComment.created_at, NoteComment.id)
NEWEST_ACTIVITIES_FIRST = Keyset(Activity.created_at, Activity.id, descending=True)

_NOTE_FIELDS = tuple(NoteRead.model_fields)
_COMMENT_FIELDS = tuple(CommentRead.model_fields)
_ACTIVITY_FIELDS = tuple(ActivityRead.model_fields)
_IDS = {"id", "note_id", "user_id", "owner_id", "mentions", *(k.column for k in ParentKind)}


def _columns(model: Any, names: tuple[str, ...]) -> list[Any]:
    return [as_text(getattr(model, n)) if n in _IDS else getattr(model, n) for n in names]


def _limit() -> Any:
    return bindparam("limit", type_=Integer)


@functools.cache
def note_by_id(viewer: Viewer) -> ReadStatement:
    return ReadStatement(
        select(*_columns(Note, _NOTE_FIELDS)).where(
            parent_visible_to_viewer(Note, viewer), Note.id == bindparam("id", type_=Uuid)
        )
    )


@functools.cache
def activity_by_id(viewer: Viewer) -> ReadStatement:
    return ReadStatement(
        select(*_columns(Activity, _ACTIVITY_FIELDS)).where(
            parent_visible_to_viewer(Activity, viewer), Activity.id == bindparam("id", type_=Uuid)
        )
    )


def _keyset_after(model: Any, descending: bool) -> Any:
    key = tuple_(model.created_at, model.id)
    after = tuple_(
        bindparam("after_key", type_=DateTime(timezone=True)), bindparam("after_id", type_=Uuid)
    )
    return key < after if descending else key > after


@functools.lru_cache(maxsize=64)
def note_page(viewer: Viewer, parent: ParentKind | None, after: bool) -> ReadStatement:
    """Newest first; all the notes the viewer may see, or those of one parent (`parent_id`)."""
    stmt = select(*_columns(Note, _NOTE_FIELDS)).where(parent_visible_to_viewer(Note, viewer))
    if parent is not None:
        stmt = stmt.where(getattr(Note, parent.column) == bindparam("parent_id", type_=Uuid))
    if after:
        stmt = stmt.where(_keyset_after(Note, descending=True))
    return ReadStatement(stmt.order_by(Note.created_at.desc(), Note.id.desc()).limit(_limit()))


@functools.lru_cache(maxsize=16)
def comment_page(viewer: Viewer, after: bool) -> ReadStatement:
    """A page of a note's comments, oldest first, in one statement with the check that the
    viewer sees the note: no row when the note is not visible (404); one row with a null
    `id` when it is but has no comment (after the cursor)."""
    note = (
        select(Note.id)
        .where(parent_visible_to_viewer(Note, viewer), Note.id == bindparam("note_id", type_=Uuid))
        .subquery("visible_note")
    )
    comments = select(*_columns(NoteComment, _COMMENT_FIELDS)).where(
        in_viewer_company(NoteComment), NoteComment.note_id == note.c.id
    )
    if after:
        comments = comments.where(_keyset_after(NoteComment, descending=False))
    page = (
        comments.order_by(NoteComment.created_at, NoteComment.id)
        .limit(_limit())
        .lateral("comment_page")
    )
    return ReadStatement(
        select(*(page.c[name] for name in _COMMENT_FIELDS))
        .select_from(note.outerjoin(page, true()))
        # The page's own order (its id is text here: back to uuid, to order as the cursor).
        .order_by(page.c.created_at, cast(page.c.id, Uuid))
    )


@dataclass(frozen=True, slots=True)
class ActivityShape:
    """Which filters an activity page uses, and whether a cursor was given."""

    parent: ParentKind | None = None
    owner: bool = False
    done: bool = False
    due_from: bool = False
    due_to: bool = False
    after: bool = False


@functools.lru_cache(maxsize=512)
def activity_page(viewer: Viewer, shape: ActivityShape) -> ReadStatement:
    """Newest first; a due range keeps only activities with a due date inside it."""
    stmt = select(*_columns(Activity, _ACTIVITY_FIELDS)).where(
        parent_visible_to_viewer(Activity, viewer)
    )
    if shape.parent is not None:
        column = getattr(Activity, shape.parent.column)
        stmt = stmt.where(column == bindparam("parent_id", type_=Uuid))
    if shape.owner:
        stmt = stmt.where(Activity.owner_id == bindparam("owner_id", type_=Uuid))
    if shape.done:
        stmt = stmt.where(Activity.done == bindparam("done", type_=Boolean))  # NOT NULL
    if shape.due_from:
        stmt = stmt.where(Activity.due_date >= bindparam("due_from", type_=Date))
    if shape.due_to:
        stmt = stmt.where(Activity.due_date <= bindparam("due_to", type_=Date))
    if shape.after:
        stmt = stmt.where(_keyset_after(Activity, descending=True))
    return ReadStatement(
        stmt.order_by(Activity.created_at.desc(), Activity.id.desc()).limit(_limit())
    )


def _page(rows: list[Any], page: PageRequest, names: tuple[str, ...]) -> dict[str, Any]:
    return page_of(rows, page, "created_at", lambda row: fields(row, names))


def _paged(caller: Caller, page: PageRequest, keyset: Keyset) -> tuple[dict[str, Any], bool]:
    """The parameters every page shares, and whether a cursor was given."""
    params: dict[str, Any] = {**viewer_params(caller), "limit": page.limit + 1}
    if page.cursor is None:
        return params, False
    params["after_key"], params["after_id"] = decode_cursor(page.cursor, keyset)
    return params, True


async def note(session: AsyncSession, caller: Caller, note_id: uuid.UUID) -> dict[str, Any]:
    """`GET /notes/{note_id}`; 404 unless the caller sees the note's parent."""
    params = {**viewer_params(caller), "id": note_id}
    row = await note_by_id(Viewer.of(caller)).fetchrow(session, params)
    if row is None:
        raise NotFound("note")
    return fields(row, _NOTE_FIELDS)


async def notes(
    session: AsyncSession, caller: Caller, page: PageRequest, parent: Parent | None
) -> dict[str, Any]:
    """`GET /notes`: newest first, those of one parent with a filter."""
    params, after = _paged(caller, page, NEWEST_NOTES_FIRST)
    if parent is not None:
        params["parent_id"] = parent.id
    kind = None if parent is None else parent.kind
    rows = await note_page(Viewer.of(caller), kind, after).fetch(session, params)
    return _page(rows, page, _NOTE_FIELDS)


async def comments(
    session: AsyncSession, caller: Caller, note_id: uuid.UUID, page: PageRequest
) -> dict[str, Any]:
    """`GET /notes/{note_id}/comments`: oldest first; 404 unless the caller sees the note."""
    viewer = Viewer.of(caller)
    try:
        params, after = _paged(caller, page, OLDEST_COMMENTS_FIRST)
    except InvalidInput:
        # A note the caller cannot see answers 404 whatever the cursor, as it always has:
        # the check of the note comes first (one more statement, on this error only).
        checked = {**viewer_params(caller), "limit": 1, "note_id": note_id}
        if not await comment_page(viewer, False).fetch(session, checked):
            raise NotFound("note") from None
        raise
    params["note_id"] = note_id
    rows = await comment_page(viewer, after).fetch(session, params)
    if not rows:
        raise NotFound("note")
    return _page([row for row in rows if row["id"] is not None], page, _COMMENT_FIELDS)


async def activity(session: AsyncSession, caller: Caller, activity_id: uuid.UUID) -> dict[str, Any]:
    """`GET /activities/{activity_id}`; 404 unless the caller sees the activity's parent."""
    params = {**viewer_params(caller), "id": activity_id}
    row = await activity_by_id(Viewer.of(caller)).fetchrow(session, params)
    if row is None:
        raise NotFound("activity")
    return fields(row, _ACTIVITY_FIELDS)


@dataclass(frozen=True, slots=True)
class ActivityFilters:
    parent: Parent | None = None
    owner_id: uuid.UUID | None = None
    done: bool | None = None
    due_from: date | None = None
    due_to: date | None = None


async def activities(
    session: AsyncSession, caller: Caller, page: PageRequest, filters: ActivityFilters
) -> dict[str, Any]:
    """`GET /activities`: newest first, with the filters given."""
    params, after = _paged(caller, page, NEWEST_ACTIVITIES_FIRST)
    shape = ActivityShape(after=after)
    if filters.parent is not None:
        shape, params["parent_id"] = replace(shape, parent=filters.parent.kind), filters.parent.id
    if filters.owner_id is not None:
        shape, params["owner_id"] = replace(shape, owner=True), filters.owner_id
    if filters.done is not None:
        shape, params["done"] = replace(shape, done=True), filters.done
    if filters.due_from is not None:
        shape, params["due_from"] = replace(shape, due_from=True), filters.due_from
    if filters.due_to is not None:
        shape, params["due_to"] = replace(shape, due_to=True), filters.due_to
    rows = await activity_page(Viewer.of(caller), shape).fetch(session, params)
    return _page(rows, page, _ACTIVITY_FIELDS)


def note_rows() -> JsonRows:
    """Notes as the GETs write them, for JSON built in SQL (the webhook outbox)."""
    return JsonRows(select(*_columns(Note, _NOTE_FIELDS)), _NOTE_FIELDS)


def activity_rows() -> JsonRows:
    """Activities as the GETs write them, for JSON built in SQL (the webhook outbox)."""
    return JsonRows(select(*_columns(Activity, _ACTIVITY_FIELDS)), _ACTIVITY_FIELDS)

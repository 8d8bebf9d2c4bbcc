"""Rules for notes, comments and activities beyond what the schemas check: the parent
must be visible, mentioned users and owners must belong to the company, `done_at`
follows `done`, and only a comment's author edits it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.activities.models import Activity, Note, NoteComment
from leadflow.activities.parents import ensure_visible
from leadflow.activities.repository import ActivityRepository, CommentRepository, NoteRepository
from leadflow.activities.schemas import (
    ActivityCreate,
    ActivityUpdate,
    CommentCreate,
    CommentUpdate,
    NoteCreate,
    NoteUpdate,
)
from leadflow.auth.repository import UserRepository
from leadflow.errors import CONFLICTS_WITH_RECORD, Forbidden, InvalidInput, NotFound, found
from leadflow.events import (
    ActivityChanged,
    ActivityCreated,
    ActivityDeleted,
    ActivityDone,
    ActivityEvent,
    Change,
    NoteChanged,
    NoteCreated,
    NoteDeleted,
    changes_between,
    publish,
)
from leadflow.tenancy import Caller


async def _ensure_mentions(
    session: AsyncSession, caller: Caller, user_ids: Sequence[uuid.UUID]
) -> None:
    """422 pointing at the first mentioned id that is not a user of the caller's company."""
    if not user_ids:
        return
    known = await UserRepository(session, caller.company_id).existing_ids(set(user_ids))
    for index, user_id in enumerate(user_ids):
        if user_id not in known:
            raise InvalidInput(["body", "mentions", index], "Not a user of your company.")


async def _ensure_owner(session: AsyncSession, caller: Caller, owner_id: uuid.UUID) -> None:
    if owner_id != caller.user_id:
        await UserRepository(session, caller.company_id).ensure_exist([owner_id])


async def get_note(
    session: AsyncSession, caller: Caller, note_id: uuid.UUID, *, for_update: bool = False
) -> Note:
    return found(await NoteRepository(session, caller).get(note_id, for_update=for_update), "note")


async def create_note(session: AsyncSession, caller: Caller, data: NoteCreate) -> Note:
    await ensure_visible(session, caller, data.parent)
    await _ensure_mentions(session, caller, data.mentions)
    note = await NoteRepository(session, caller).add(
        content=data.content, parent=data.parent, mentions=data.mentions
    )
    await publish(session, NoteCreated(id=note.id, company_id=caller.company_id, actor=caller))
    return note


async def update_note(
    session: AsyncSession, caller: Caller, note_id: uuid.UUID, data: NoteUpdate
) -> Note:
    note = await get_note(session, caller, note_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if "mentions" in changes:
        await _ensure_mentions(session, caller, changes["mentions"])
    before = {column: getattr(note, column) for column in changes}
    note = await NoteRepository(session, caller).update(note, changes)
    if changed := changes_between(before, {c: getattr(note, c) for c in changes}):
        await publish(
            session,
            NoteChanged(id=note.id, company_id=caller.company_id, actor=caller, changes=changed),
        )
    return note


async def delete_note(session: AsyncSession, caller: Caller, note_id: uuid.UUID) -> None:
    """A visible note and its comments; 404 when there is none."""
    if not await NoteRepository(session, caller).delete(note_id):
        raise NotFound("note")
    await publish(session, NoteDeleted(id=note_id, company_id=caller.company_id, actor=caller))


async def create_comment(
    session: AsyncSession, caller: Caller, note_id: uuid.UUID, data: CommentCreate
) -> NoteComment:
    await get_note(session, caller, note_id)
    return await CommentRepository(session, caller, note_id).add(data.content)


async def _own_comment(
    session: AsyncSession, caller: Caller, note_id: uuid.UUID, comment_id: uuid.UUID, action: str
) -> tuple[CommentRepository, NoteComment]:
    await get_note(session, caller, note_id)
    comments = CommentRepository(session, caller, note_id)
    comment = found(await comments.get(comment_id, for_update=True), "comment")
    # An admin may remove any comment (moderation) but never puts words in someone's mouth.
    if comment.user_id != caller.user_id and not (action == "delete" and caller.is_admin):
        raise Forbidden(f"Only the author of a comment may {action} it.")
    return comments, comment


async def update_comment(
    session: AsyncSession,
    caller: Caller,
    note_id: uuid.UUID,
    comment_id: uuid.UUID,
    data: CommentUpdate,
) -> NoteComment:
    comments, comment = await _own_comment(session, caller, note_id, comment_id, "edit")
    return await comments.update(comment, data.model_dump(exclude_unset=True))


async def delete_comment(
    session: AsyncSession, caller: Caller, note_id: uuid.UUID, comment_id: uuid.UUID
) -> None:
    comments, comment = await _own_comment(session, caller, note_id, comment_id, "delete")
    await comments.delete(comment.id)


async def _locked_activity(
    session: AsyncSession, caller: Caller, activity_id: uuid.UUID
) -> Activity:
    """The activity a change or a delete works on, locked; 404 unless the caller sees it."""
    activity = await ActivityRepository(session, caller).get_for_update(activity_id)
    return found(activity, "activity")


async def create_activity(session: AsyncSession, caller: Caller, data: ActivityCreate) -> Activity:
    await ensure_visible(session, caller, data.parent)
    owner_id = data.owner_id or caller.user_id
    await _ensure_owner(session, caller, owner_id)
    values: dict[str, Any] = {
        "type": data.type.value,
        "subject": data.subject,
        "note": data.note,
        "due_date": data.due_date,
        "due_time": data.due_time,
        "done": data.done,
        "done_at": func.now() if data.done else None,
        "owner_id": owner_id,
    }
    activity = await ActivityRepository(session, caller).add(values, data.parent)
    await publish(session, _event(ActivityCreated, caller, activity))
    return activity


def _event(
    kind: type[ActivityEvent],
    caller: Caller,
    activity: Activity,
    changes: dict[str, Change] | None = None,
) -> ActivityEvent:
    return kind(
        id=activity.id,
        company_id=activity.company_id,
        actor=caller,
        lead_id=activity.lead_id,
        deal_id=activity.deal_id,
        done=activity.done,
        changes=changes or {},
    )


async def update_activity(
    session: AsyncSession, caller: Caller, activity_id: uuid.UUID, data: ActivityUpdate
) -> Activity:
    activity = await _locked_activity(session, caller, activity_id)
    changes = data.model_dump(exclude_unset=True)
    if "owner_id" in changes:
        await _ensure_owner(session, caller, changes["owner_id"])
    if "type" in changes:
        changes["type"] = changes["type"].value
    due_date = changes.get("due_date", activity.due_date)
    due_time = changes.get("due_time", activity.due_time)
    if due_time is not None and due_date is None:
        field = "due_time" if "due_time" in changes else "due_date"
        raise InvalidInput(
            ["body", field],
            "due_time needs a due_date: clear both or neither.",
            CONFLICTS_WITH_RECORD,
        )
    if "done" in changes:
        if not changes["done"]:
            changes["done_at"] = None
        elif not activity.done:
            changes["done_at"] = func.now()
    before = {field: getattr(activity, field) for field in changes}
    activity = await ActivityRepository(session, caller).update(activity, changes)
    changed = changes_between(before, {field: getattr(activity, field) for field in changes})
    if changed:
        # Marked done: `ActivityDone`, which is an `ActivityChanged` to its listeners.
        kind = ActivityDone if "done" in changed and activity.done else ActivityChanged
        await publish(session, _event(kind, caller, activity, changed))
    return activity


async def delete_activity(session: AsyncSession, caller: Caller, activity_id: uuid.UUID) -> None:
    activity = await _locked_activity(session, caller, activity_id)
    await ActivityRepository(session, caller).delete(activity.id)
    await publish(session, _event(ActivityDeleted, caller, activity))

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from leadflow.activities import reads, service
from leadflow.activities.parents import Parent, ParentKind
from leadflow.activities.reads import ActivityFilters
from leadflow.activities.schemas import (
    ActivityCreate,
    ActivityRead,
    ActivityUpdate,
    CommentCreate,
    CommentRead,
    CommentUpdate,
    NoteCreate,
    NoteRead,
    NoteUpdate,
)
from leadflow.capabilities import CapabilityNotSupported
from leadflow.deals.access import DealConverted
from leadflow.deps import CurrentCaller, Session
from leadflow.errors import CONFLICTING_PARAMETERS, InvalidInput, responses
from leadflow.leads.access import LeadConverted
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response
from leadflow.schemas import IsoDate

router = APIRouter(tags=["notes and activities"])


def parent_filter(
    lead_id: Annotated[uuid.UUID | None, Query(description="Only those of this lead.")] = None,
    deal_id: Annotated[uuid.UUID | None, Query(description="Only those of this deal.")] = None,
    person_id: Annotated[uuid.UUID | None, Query(description="Only those of this person.")] = None,
    organization_id: Annotated[
        uuid.UUID | None, Query(description="Only those of this organization.")
    ] = None,
) -> Parent | None:
    """At most one parent filter: a note or an activity has exactly one parent."""
    given = {
        ParentKind.lead: lead_id,
        ParentKind.deal: deal_id,
        ParentKind.person: person_id,
        ParentKind.organization: organization_id,
    }
    named = [(kind, value) for kind, value in given.items() if value is not None]
    if len(named) > 1:
        raise InvalidInput(
            ["query", named[1][0].column],
            "Filter by at most one of lead_id, deal_id, person_id, organization_id.",
            CONFLICTING_PARAMETERS,
        )
    return Parent(*named[0]) if named else None


ParentFilter = Annotated[Parent | None, Depends(parent_filter)]


@router.post(
    "/notes",
    name="notes:create",
    status_code=status.HTTP_201_CREATED,
    response_model=NoteRead,
    responses=responses(401, 404, 409, 422, CapabilityNotSupported, LeadConverted, DealConverted),
)
async def create_note(data: NoteCreate, session: Session, caller: CurrentCaller) -> NoteRead:
    """Add a note to a lead, deal, person or organization visible to the caller."""
    return NoteRead.model_validate(await service.create_note(session, caller, data))


@router.get(
    "/notes", name="notes:list", response_model=Page[NoteRead], responses=responses(401, 422)
)
async def list_notes(
    session: Session, caller: CurrentCaller, page: PageParams, parent: ParentFilter
) -> Response:
    """List the notes the caller may see (those of one record with a filter), newest first."""
    return json_response(await reads.notes(session, caller, page, parent))


@router.get(
    "/notes/{note_id}",
    name="notes:get",
    response_model=NoteRead,
    responses=responses(401, 404, 422),
)
async def get_note(note_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One note."""
    return json_response(await reads.note(session, caller, note_id))


@router.patch(
    "/notes/{note_id}",
    name="notes:update",
    response_model=NoteRead,
    responses=responses(401, 404, 422),
)
async def update_note(
    note_id: uuid.UUID, data: NoteUpdate, session: Session, caller: CurrentCaller
) -> NoteRead:
    """Change the content or the mentions of a note; its parent cannot change."""
    return NoteRead.model_validate(await service.update_note(session, caller, note_id, data))


@router.delete(
    "/notes/{note_id}",
    name="notes:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422),
)
async def delete_note(note_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a note and its comments."""
    await service.delete_note(session, caller, note_id)


@router.post(
    "/notes/{note_id}/comments",
    name="notes:comments:create",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentRead,
    responses=responses(401, 404, 409, 422, CapabilityNotSupported),
)
async def create_comment(
    note_id: uuid.UUID, data: CommentCreate, session: Session, caller: CurrentCaller
) -> CommentRead:
    """Comment on a note."""
    return CommentRead.model_validate(await service.create_comment(session, caller, note_id, data))


@router.get(
    "/notes/{note_id}/comments",
    name="notes:comments:list",
    response_model=Page[CommentRead],
    responses=responses(401, 404, 422),
)
async def list_comments(
    note_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """List the comments of a note, oldest first."""
    return json_response(await reads.comments(session, caller, note_id, page))


@router.patch(
    "/notes/{note_id}/comments/{comment_id}",
    name="notes:comments:update",
    response_model=CommentRead,
    responses=responses(401, 403, 404, 422),
)
async def update_comment(
    note_id: uuid.UUID,
    comment_id: uuid.UUID,
    data: CommentUpdate,
    session: Session,
    caller: CurrentCaller,
) -> CommentRead:
    """Change a comment (its author only)."""
    comment = await service.update_comment(session, caller, note_id, comment_id, data)
    return CommentRead.model_validate(comment)


@router.delete(
    "/notes/{note_id}/comments/{comment_id}",
    name="notes:comments:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 403, 404, 422),
)
async def delete_comment(
    note_id: uuid.UUID, comment_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> None:
    """Delete a comment (its author, or an admin)."""
    await service.delete_comment(session, caller, note_id, comment_id)


@router.post(
    "/activities",
    name="activities:create",
    status_code=status.HTTP_201_CREATED,
    response_model=ActivityRead,
    responses=responses(401, 404, 409, 422, CapabilityNotSupported, LeadConverted, DealConverted),
)
async def create_activity(
    data: ActivityCreate, session: Session, caller: CurrentCaller
) -> ActivityRead:
    """Plan (or record) an activity on a lead, deal, person or organization."""
    return ActivityRead.model_validate(await service.create_activity(session, caller, data))


@router.get(
    "/activities",
    name="activities:list",
    response_model=Page[ActivityRead],
    responses=responses(401, 422),
)
async def list_activities(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    parent: ParentFilter,
    owner_id: Annotated[uuid.UUID | None, Query(description="Only this user's.")] = None,
    done: Annotated[bool | None, Query(description="Only done (true) or to-do (false).")] = None,
    due_from: Annotated[
        IsoDate | None, Query(description="Only those due on this date or later.")
    ] = None,
    due_to: Annotated[
        IsoDate | None, Query(description="Only those due on this date or earlier.")
    ] = None,
) -> Response:
    """List the activities the caller may see, newest first, with filters."""
    if due_from is not None and due_to is not None and due_from > due_to:
        raise InvalidInput(
            ["query", "due_to"], "due_to is before due_from.", CONFLICTING_PARAMETERS
        )
    filters = ActivityFilters(
        parent=parent, owner_id=owner_id, done=done, due_from=due_from, due_to=due_to
    )
    return json_response(await reads.activities(session, caller, page, filters))


@router.get(
    "/activities/{activity_id}",
    name="activities:get",
    response_model=ActivityRead,
    responses=responses(401, 404, 422),
)
async def get_activity(activity_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One activity."""
    return json_response(await reads.activity(session, caller, activity_id))


@router.patch(
    "/activities/{activity_id}",
    name="activities:update",
    response_model=ActivityRead,
    responses=responses(401, 404, 422),
)
async def update_activity(
    activity_id: uuid.UUID, data: ActivityUpdate, session: Session, caller: CurrentCaller
) -> ActivityRead:
    """Change the fields sent (mark done with `done: true`); the parent cannot change."""
    activity = await service.update_activity(session, caller, activity_id, data)
    return ActivityRead.model_validate(activity)


@router.delete(
    "/activities/{activity_id}",
    name="activities:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422),
)
async def delete_activity(activity_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete an activity."""
    await service.delete_activity(session, caller, activity_id)

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    model_validator,
)

from leadflow.activities.models import ACTIVITY_TYPES
from leadflow.activities.parents import PARENT_FIELDS, Parent, parent_of
from leadflow.activities.sanitize import ALLOWED_TAGS, sanitize_html
from leadflow.schemas import (
    Input,
    IsoDate,
    LongName,
    Output,
    drop_defaults,
    fields_set,
    fields_unset,
    unique,
)

MAX_CONTENT_LENGTH = 100_000
MAX_MENTIONS = 50


class ActivityType(enum.StrEnum):
    call = "call"
    meeting = "meeting"
    task = "task"
    deadline = "deadline"
    email = "email"
    lunch = "lunch"


assert tuple(ActivityType) == ACTIVITY_TYPES, "the enum and the table's check agree"


def _safe_html(value: str) -> str:
    cleaned = sanitize_html(value).strip()
    if not cleaned:
        raise ValueError("nothing is left once unsafe HTML is removed")
    return cleaned


def _utc_time(value: time) -> time:
    offset = value.utcoffset()
    if offset is not None and offset != timedelta(0):
        raise ValueError("give the time in UTC (no offset, or Z)")
    return value.replace(tzinfo=None)


_HTML_DESCRIPTION = (
    f"Plain text or HTML, at most {MAX_CONTENT_LENGTH:,} characters as sent. Only these tags "
    f"are kept: {', '.join(sorted(ALLOWED_TAGS))}; links keep only http, https and mailto "
    '`href`s and get `rel="noopener noreferrer"`. Everything else (scripts, styles, event '
    "handlers, images) is removed, and `<`, `>`, `&` in plain text are escaped."
)

SafeHtml = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_CONTENT_LENGTH,
        description=_HTML_DESCRIPTION,
        examples=["<p>Called <b>Ana</b>: wants a quote for 40 valves.</p>"],
        # Something besides white space (and the NUL and BOM the sanitizer drops).
        json_schema_extra={"pattern": r"[^\s\u0000\ufeff]"},
    ),
    AfterValidator(_safe_html),
]
Mentions = Annotated[
    list[uuid.UUID],
    AfterValidator(unique),
    Field(
        max_length=MAX_MENTIONS,
        description="Ids of users of the caller's company mentioned in the note; kept once each.",
    ),
]
# What `_due_time` lets through to pydantic's time parsing, which accepts all of it.
DUE_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]00:00)?$"


def _due_time(value: Any) -> Any:
    if isinstance(value, time) or (
        isinstance(value, str) and re.fullmatch(DUE_TIME_PATTERN, value)
    ):
        return value
    raise ValueError("a time of day in UTC: HH:MM or HH:MM:SS, optionally Z")


DueTime = Annotated[
    time,
    BeforeValidator(_due_time),
    AfterValidator(_utc_time),
    WithJsonSchema({"type": "string", "pattern": DUE_TIME_PATTERN}),
    Field(description="Time of day in UTC (`HH:MM` or `HH:MM:SS`); needs `due_date`."),
]

_UNSET: Any = None
_PARENT = "One of `lead_id`, `deal_id`, `person_id`, `organization_id`: exactly one is set."
# `_exactly_one_parent` as JSON Schema.
_ONE_PARENT: dict[str, Any] = {"oneOf": [fields_set(name) for name in PARENT_FIELDS]}


def _patch_schema(example: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def extra(schema: dict[str, Any]) -> None:
        drop_defaults(schema)
        schema["example"] = example

    return extra


class Patch(Input):
    """A PATCH body: an omitted field is left unchanged, so no field has a default.

    Fields that may be omitted but not cleared default to None without allowing it in
    their type, so an explicit null fails validation like any wrong type. The parent is
    not a field: a note or an activity cannot be moved to another record by PATCH.
    """

    model_config = ConfigDict(json_schema_extra=drop_defaults)


class ParentInput(Input):
    lead_id: uuid.UUID | None = Field(default=None, description="A lead in the inbox.")
    deal_id: uuid.UUID | None = Field(default=None, description="A deal.")
    person_id: uuid.UUID | None = Field(default=None, description="A person.")
    organization_id: uuid.UUID | None = Field(default=None, description="An organization.")

    @model_validator(mode="after")
    def _exactly_one_parent(self) -> Self:
        named = [name for name in PARENT_FIELDS if getattr(self, name) is not None]
        if len(named) != 1:
            found = "none" if not named else " and ".join(named)
            raise ValueError(
                "name exactly one parent: one of lead_id, deal_id, person_id, "
                f"organization_id (got {found})"
            )
        return self

    @property
    def parent(self) -> Parent:
        parent = parent_of(self)
        assert parent is not None, "checked by _exactly_one_parent"
        return parent


class NoteCreate(ParentInput):
    __doc__ = f"A note on one record. {_PARENT}"

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "content": "<p>Called <b>Ana</b>: wants a quote for 40 valves.</p>",
                "lead_id": "01969a6e-4b2c-7d1e-9f00-3c5a2b1d4e6f",
                "mentions": ["01969a6e-1111-7d1e-9f00-3c5a2b1d4e6f"],
            },
            "allOf": [_ONE_PARENT],
        }
    )

    content: SafeHtml
    mentions: Mentions = Field(default_factory=list)


class NoteUpdate(Patch):
    """Only the fields sent change."""

    model_config = ConfigDict(
        json_schema_extra=_patch_schema({"content": "<p>Quote sent.</p>", "mentions": []})
    )

    content: SafeHtml = Field(default=_UNSET)
    mentions: Mentions = Field(default=_UNSET)


class NoteRead(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "01969a6e-5d3c-7a2b-8c10-4e5f6a7b8c9d",
                "content": "<p>Called <b>Ana</b>: wants a quote for 40 valves.</p>",
                "lead_id": "01969a6e-4b2c-7d1e-9f00-3c5a2b1d4e6f",
                "deal_id": None,
                "person_id": None,
                "organization_id": None,
                "mentions": ["01969a6e-1111-7d1e-9f00-3c5a2b1d4e6f"],
                "user_id": "01969a6e-2222-7d1e-9f00-3c5a2b1d4e6f",
                "created_at": "2026-11-22T10:00:00Z",
                "updated_at": "2026-11-22T10:00:00Z",
            }
        }
    )

    id: uuid.UUID
    content: str = Field(description="Sanitized HTML or escaped plain text.")
    lead_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    mentions: list[uuid.UUID]
    user_id: uuid.UUID | None = Field(description="The author; null once that user is deleted.")
    created_at: datetime
    updated_at: datetime


class CommentCreate(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"content": "Quote sent on Monday."}})

    content: SafeHtml


class CommentUpdate(Patch):
    model_config = ConfigDict(
        json_schema_extra=_patch_schema({"content": "Quote sent on Tuesday."})
    )

    content: SafeHtml = Field(default=_UNSET)


class CommentRead(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "01969a6e-6e4d-7b3c-9d20-5f6a7b8c9d0e",
                "note_id": "01969a6e-5d3c-7a2b-8c10-4e5f6a7b8c9d",
                "content": "Quote sent on Monday.",
                "user_id": "01969a6e-2222-7d1e-9f00-3c5a2b1d4e6f",
                "created_at": "2026-11-22T11:00:00Z",
                "updated_at": "2026-11-22T11:00:00Z",
            }
        }
    )

    id: uuid.UUID
    note_id: uuid.UUID
    content: str = Field(description="Sanitized HTML or escaped plain text.")
    user_id: uuid.UUID | None = Field(description="The author; null once that user is deleted.")
    created_at: datetime
    updated_at: datetime


_OWNER = "A user of the caller's company; defaults to the caller."
_DONE = "Setting it to true records `done_at`; setting it back to false clears it."


class ActivityCreate(ParentInput):
    __doc__ = f"An activity on one record. {_PARENT}"

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": "call",
                "subject": "Call Ana about the quote",
                "due_date": "2026-11-24",
                "due_time": "09:30",
                "lead_id": "01969a6e-4b2c-7d1e-9f00-3c5a2b1d4e6f",
            },
            # `_time_needs_a_date` as JSON Schema.
            "allOf": [_ONE_PARENT, {"anyOf": [fields_unset("due_time"), fields_set("due_date")]}],
        }
    )

    type: ActivityType
    subject: LongName = Field(examples=["Call Ana about the quote"])
    note: SafeHtml | None = None
    due_date: IsoDate | None = None
    due_time: DueTime | None = None
    done: StrictBool = Field(default=False, description=_DONE)
    owner_id: uuid.UUID | None = Field(default=None, description=_OWNER)

    @model_validator(mode="after")
    def _time_needs_a_date(self) -> Self:
        if self.due_time is not None and self.due_date is None:
            raise ValueError("due_time needs a due_date")
        return self


class ActivityUpdate(Patch):
    """Only the fields sent change; null clears `note`, `due_date` and `due_time`."""

    model_config = ConfigDict(json_schema_extra=_patch_schema({"done": True}))

    type: ActivityType = Field(default=_UNSET)
    subject: LongName = Field(default=_UNSET, examples=["Call Ana about the quote"])
    note: SafeHtml | None = None
    due_date: IsoDate | None = None
    due_time: DueTime | None = None
    done: StrictBool = Field(default=_UNSET, description=_DONE)
    owner_id: uuid.UUID = Field(default=_UNSET, description="A user of the caller's company.")


class ActivityRead(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "01969a6e-7f5e-7c4d-8e30-6a7b8c9d0e1f",
                "type": "call",
                "subject": "Call Ana about the quote",
                "note": None,
                "due_date": "2026-11-24",
                "due_time": "09:30:00",
                "done": False,
                "done_at": None,
                "owner_id": "01969a6e-2222-7d1e-9f00-3c5a2b1d4e6f",
                "lead_id": "01969a6e-4b2c-7d1e-9f00-3c5a2b1d4e6f",
                "deal_id": None,
                "person_id": None,
                "organization_id": None,
                "created_at": "2026-11-22T10:00:00Z",
                "updated_at": "2026-11-22T10:00:00Z",
            }
        }
    )

    id: uuid.UUID
    type: ActivityType
    subject: str
    note: str | None = Field(description="Sanitized HTML or escaped plain text.")
    due_date: date | None
    due_time: time | None = Field(description="Time of day in UTC.")
    done: bool
    done_at: datetime | None
    owner_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

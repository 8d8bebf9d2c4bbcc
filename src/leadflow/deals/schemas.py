from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictBool, StringConstraints

from leadflow import attribution
from leadflow.deals.models import DealStatus
from leadflow.fields.values import CustomFieldsInput, CustomFieldsRead
from leadflow.schemas import (
    JSON_NUMBER,
    CapturedFields,
    Input,
    IsoDate,
    LongName,
    Money,
    Output,
    Patch,
    ShortText,
    fields_unset,
    unique,
)
from leadflow.tenancy import Visibility

MAX_LABELS = 50
BOARD_PAGE_DEFAULT = 20
BOARD_PAGE_MAX = 100

Probability = Annotated[
    int,
    Field(ge=0, le=100, description="Chance (percent) that the deal is won.", examples=[40]),
    JSON_NUMBER,
]
LabelIds = Annotated[
    list[uuid.UUID],
    AfterValidator(unique),
    Field(
        max_length=MAX_LABELS,
        description="Lead label ids of the caller's company (deals share the lead label set).",
    ),
]
LostReason = Annotated[ShortText, Field(examples=["Chose a competitor"])]

_OWNER = "A user of the caller's company; defaults to the caller."
_PERSON = "A person visible to the caller."
_ORGANIZATION = "An organization visible to the caller."
_STAGE = (
    "A stage of the caller's company; the deal's pipeline follows it. Omit to use the first "
    "stage (lowest position) of `pipeline_id`, or of the default pipeline."
)
_PIPELINE = "Omit to use the default pipeline (lowest position), or the pipeline of `stage_id`."
_PROBABILITY = "Defaults to the stage's probability."
_LOST_REASON = "Only when `status` is (or becomes) `lost`; otherwise 422."
_VALUE_FROM_PRODUCTS = (
    "When true, `value` follows the sum of the deal's line items (0.00 in the value's "
    "currency while it has none) and cannot be set by hand."
)

# Update fields that may be omitted but not set to null default to None without allowing
# it in their type: an explicit null then fails validation, like any wrong type.
_UNSET: Any = None


class DealCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "title": "Pipes for the new plant",
                "value": {"amount": "1500.00", "currency": "EUR"},
                "organization_id": "0191c3a4-8f2e-7c1a-9b3d-5e6f7a8b9c0d",
                "expected_close_date": "2026-12-15",
            },
            # `lost_reason` only for a deal created lost (checked by the service).
            "allOf": [
                {
                    "anyOf": [
                        fields_unset("lost_reason"),
                        {
                            "required": ["status"],
                            "properties": {"status": {"const": DealStatus.lost.value}},
                        },
                    ]
                }
            ],
        }
    )

    title: LongName = Field(examples=["Pipes for the new plant"])
    owner_id: uuid.UUID | None = Field(default=None, description=_OWNER)
    person_id: uuid.UUID | None = Field(default=None, description=_PERSON)
    organization_id: uuid.UUID | None = Field(default=None, description=_ORGANIZATION)
    pipeline_id: uuid.UUID | None = Field(default=None, description=_PIPELINE)
    stage_id: uuid.UUID | None = Field(default=None, description=_STAGE)
    status: DealStatus = Field(
        default=DealStatus.open,
        description="A deal created won or lost is closed at once and does not count as open.",
    )
    lost_reason: LostReason | None = Field(default=None, description=_LOST_REASON)
    value: Money | None = None
    probability: Probability | None = Field(default=None, description=_PROBABILITY)
    expected_close_date: IsoDate | None = Field(default=None, examples=["2026-12-15"])
    label_ids: LabelIds = Field(default_factory=list)
    visible_to: Visibility = Visibility.company
    value_from_products: StrictBool = Field(default=False, description=_VALUE_FROM_PRODUCTS)
    custom_fields: CustomFieldsInput = Field(default_factory=dict)


class DealUpdate(Patch):
    """Only the fields sent change; null clears a nullable field.

    A new `stage_id` must belong to the deal's pipeline unless `pipeline_id` changes with
    it; a new `pipeline_id` alone moves the deal to that pipeline's first stage. A stage
    move without `probability` takes the new stage's probability. `status` won or lost
    sets `won_at`/`lost_at` and `closed_at`; `open` clears them and `lost_reason`.
    """

    model_config = ConfigDict(
        json_schema_extra={"example": {"status": "lost", "lost_reason": "Chose a competitor"}}
    )

    title: LongName = Field(default=_UNSET, examples=["Pipes for the new plant"])
    owner_id: uuid.UUID = Field(default=_UNSET, description="A user of the caller's company.")
    person_id: uuid.UUID | None = Field(default=None, description=_PERSON)
    organization_id: uuid.UUID | None = Field(default=None, description=_ORGANIZATION)
    pipeline_id: uuid.UUID = Field(default=_UNSET, description="A pipeline of the company.")
    stage_id: uuid.UUID = Field(default=_UNSET, description="A stage of the deal's pipeline.")
    status: DealStatus = Field(default=_UNSET)
    lost_reason: LostReason | None = Field(default=None, description=_LOST_REASON)
    value: Money | None = None
    probability: Probability | None = None
    expected_close_date: IsoDate | None = Field(default=None, examples=["2026-12-15"])
    label_ids: LabelIds = Field(default=_UNSET)
    visible_to: Visibility = Field(default=_UNSET)
    value_from_products: StrictBool = Field(default=_UNSET, description=_VALUE_FROM_PRODUCTS)
    custom_fields: CustomFieldsInput = Field(default=_UNSET)


class DealRead(Output):
    id: uuid.UUID
    title: str = Field(examples=["Pipes for the new plant"])
    owner_id: uuid.UUID | None = Field(description="Null once the owner's user is deleted.")
    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    status: DealStatus
    lost_reason: str | None = Field(examples=[None])
    value: Money | None
    value_from_products: bool
    probability: int | None = Field(examples=[40])
    expected_close_date: date | None = Field(examples=["2026-12-15"])
    won_at: datetime | None
    lost_at: datetime | None
    closed_at: datetime | None = Field(description="When the deal was last won or lost.")
    stage_changed_at: datetime | None = Field(description="When the deal entered its stage.")
    rotten: bool = Field(
        description=(
            "Open, and longer in its stage (since `stage_changed_at`, else `created_at`) than "
            "the stage's `rotten_days`."
        )
    )
    label_ids: list[uuid.UUID]
    visible_to: Visibility
    source_lead_id: uuid.UUID | None = Field(description="The lead this deal was converted from.")
    fields: CapturedFields = Field(
        description=(
            "What a capture kept (read-only): a captured deal's answers, or those of the "
            "lead it was converted from, as the lead's `fields` holds them (`message`, "
            "`fields`: every answer as submitted, `unmapped`, `refused`); `{}` when none."
        )
    )
    custom_fields: CustomFieldsRead = Field(
        description=(
            "Values of the company's `deal` custom fields (leads and deals share them, so "
            "conversion keeps every value); a field without a value is absent."
        )
    )
    # Read-only on deals: the attribution of the lead a deal was converted from (or of
    # the capture that made it), kept when the deal goes back to the inbox.
    utm_source: str | None = attribution.read_field("utm_source")
    utm_medium: str | None = attribution.read_field("utm_medium")
    utm_campaign: str | None = attribution.read_field("utm_campaign")
    utm_term: str | None = attribution.read_field("utm_term")
    utm_content: str | None = attribution.read_field("utm_content")
    channel: str | None = attribution.read_field("channel")
    created_at: datetime
    updated_at: datetime


# The fields the changelog follows (deals.changelog.TRACKED_FIELDS is this list but
# `created`), and `created`: a closed set, so generated clients get an enum.
TrackedField = Literal[
    "created",
    "title",
    "owner_id",
    "person_id",
    "organization_id",
    "pipeline_id",
    "stage_id",
    "status",
    "lost_reason",
    "value",
    "value_from_products",
    "probability",
    "expected_close_date",
    "won_at",
    "lost_at",
    "closed_at",
    "stage_changed_at",
    "label_ids",
    "visible_to",
]
CustomFieldChange = Annotated[str, StringConstraints(pattern=r"^custom_fields\.")]


class DealChangeRead(Output):
    """One changed field of a deal; `old` and `new` are as they appear in the deal's JSON.

    Creating a deal writes one entry with `field: "created"`, `old: null` and as `new` the
    deal's tracked fields at creation.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "field": "stage_id",
                "old": "0191c3a4-8f2e-7c1a-9b3d-5e6f7a8b9c0d",
                "new": "0191c3a4-9a10-7c1a-9b3d-5e6f7a8b9c0e",
                "user_id": "0191c3a4-7000-7c1a-9b3d-5e6f7a8b9c01",
                "at": "2026-11-22T10:00:00Z",
            }
        }
    )

    field: TrackedField | CustomFieldChange = Field(
        description=(
            "`created` (the first entry), a tracked field of the deal, or "
            "`custom_fields.<key>` for a custom field."
        )
    )
    old: Any
    new: Any
    user_id: uuid.UUID | None = Field(description="Who made the change; null once deleted.")
    at: datetime


class BoardStageRead(Output):
    id: uuid.UUID
    name: str = Field(examples=["Demo scheduled"])
    position: int = Field(examples=[3])
    probability: int = Field(examples=[40])
    rotten_days: int | None = Field(examples=[14])


class BoardColumn(Output):
    stage: BoardStageRead
    count: int = Field(description="Open deals in the stage visible to the caller.")
    totals: list[Money] = Field(
        description="Sum of the open deals' values, one entry per currency (deals without "
        "a value are counted but not summed)."
    )
    deals: list[DealRead] = Field(description="The newest open deals of the stage.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to `GET /deals?stage_id=…&status=open` for the next page."
    )


class BoardRead(Output):
    pipeline_id: uuid.UUID
    stages: list[BoardColumn] = Field(description="The pipeline's stages by position.")

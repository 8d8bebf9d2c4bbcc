from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from leadflow.attribution import AttributionInput
from leadflow.fields.keys import KEY_PATTERN
from leadflow.schemas import (
    NOT_BLANK,
    Email,
    Input,
    LongName,
    Money,
    Name,
    Output,
    Patch,
    drop_defaults,
    fields_set,
)

MAX_LABELS = 50
# Where a form receives: signed captures, and the hosted page (`FormRead`'s urls).
CAPTURE_PATH = "/api/v1/capture/{form_id}"
PAGE_PATH = "/f/{form_id}"
MAX_EXTRA_FIELDS = 100
MAX_MAPPED_CUSTOM_FIELDS = 100
CustomFieldKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
MAX_MESSAGE_LENGTH = 10_000


class FormCreates(enum.StrEnum):
    lead = "lead"
    deal = "deal"


def _blank_is_absent(value: Any) -> Any:
    """Form tools send "" for a field left empty; that means "not given", not an error."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


FieldName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NOT_BLANK
]
# The document states the keys' rule as the service applies it: `patternProperties`
# alone (what Pydantic writes for a dict with constrained keys) lets any other key
# through, which the service refuses with 422.
MappedCustomFields = Annotated[
    dict[CustomFieldKey, FieldName],
    Field(
        json_schema_extra={"propertyNames": {"pattern": KEY_PATTERN}, "additionalProperties": False}
    ),
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NOT_BLANK
]
Message = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_LENGTH)
]
FieldValue = (
    Annotated[str, StringConstraints(max_length=2000)]
    | int
    | float
    | bool
    | None
    | Annotated[list[Annotated[str, StringConstraints(max_length=500)]], Field(max_length=50)]
)


Blank = BeforeValidator(_blank_is_absent)


class FieldMap(Input):
    """For each attribute, the name of the `fields` entry that fills it when the body
    leaves the attribute out (form tools send their own field names)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "person_name": "Full name",
                "organization_name": "Company",
                "value": "Budget",
            }
        }
    )

    title: FieldName | None = None
    person_name: FieldName | None = None
    email: FieldName | None = None
    phone: FieldName | None = None
    organization_name: FieldName | None = None
    value: FieldName | None = Field(
        default=None,
        description='The entry holds `{"amount", "currency"}` or a string like "1500.00 EUR".',
    )
    custom_fields: MappedCustomFields | None = Field(
        default=None,
        max_length=MAX_MAPPED_CUSTOM_FIELDS,
        description=(
            "For `deal` custom fields (leads carry them too), by key: the name of the "
            '`fields` entry that fills it (`{"budget_range": "Budget"}`). The entry is '
            "checked as an API write checks the field's value; one that does not fit fills "
            "nothing and stays in the record's `fields.unmapped`, with the reason in "
            "`fields.refused`. Each key must be a field of the company that a capture can "
            "fill: not a formula, nor a user, person or organization (a capture has no "
            "caller to see records as). An entry named like a field key fills that field "
            "without being mapped."
        ),
        examples=[{"budget_range": "Budget"}],
    )


class FormCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "name": "Website contact form",
                "creates": "lead",
                "field_map": {"person_name": "Full name", "organization_name": "Company"},
            },
            # `_deal_forms_name_a_stage` as JSON Schema.
            "allOf": [
                {
                    "anyOf": [
                        {"properties": {"creates": {"not": {"const": FormCreates.deal.value}}}},
                        fields_set("stage_id"),
                    ]
                }
            ],
        }
    )

    name: Name = Field(examples=["Website contact form"])
    creates: FormCreates = Field(
        default=FormCreates.lead,
        description="What a capture creates: a lead in the inbox, or a deal in `stage_id`.",
    )
    stage_id: uuid.UUID | None = Field(
        default=None, description="Required when `creates` is `deal`: the new deals' stage."
    )
    owner_id: uuid.UUID | None = Field(
        default=None, description="Owner of what is captured; default: the company's first admin."
    )
    label_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_LABELS)
    field_map: FieldMap = Field(default_factory=FieldMap)

    @model_validator(mode="after")
    def _deal_forms_name_a_stage(self) -> FormCreate:
        if self.creates is FormCreates.deal and self.stage_id is None:
            raise ValueError("a form that creates deals needs a stage_id")
        return self


# Update fields that may be omitted but not set to null default to None without allowing
# it in their type: an explicit null then fails validation, like any wrong type.
_UNSET: Any = None


def _form_update_schema(schema: dict[str, Any]) -> None:
    """A PATCH's schema (no defaults), with `_no_deals_without_a_stage` as JSON Schema:
    not `creates: deal` with `stage_id: null` (either alone is the stored form's to judge)."""
    drop_defaults(schema)
    schema["allOf"] = [
        {
            "anyOf": [
                {"properties": {"creates": {"not": {"const": FormCreates.deal.value}}}},
                {"properties": {"stage_id": {"not": {"type": "null"}}}},
            ]
        }
    ]


class FormUpdate(Patch):
    """Only the fields sent change; `null` clears `stage_id` or `owner_id`. A body that
    makes the form create deals and clears its stage at once is refused; one that leaves a
    deal form without a stage with the stored form's values (`creates: deal` on a form
    with none, `stage_id: null` on a deal form) is 422 `conflicts_with_record`."""

    model_config = ConfigDict(json_schema_extra=_form_update_schema)

    name: Name = _UNSET
    creates: FormCreates = _UNSET
    stage_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    label_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_LABELS)] = _UNSET
    field_map: FieldMap = _UNSET

    @model_validator(mode="after")
    def _no_deals_without_a_stage(self) -> FormUpdate:
        if (
            {"creates", "stage_id"} <= self.model_fields_set
            and self.creates is FormCreates.deal
            and self.stage_id is None
        ):
            raise ValueError("a form that creates deals needs a stage_id")
        return self


class FormRead(Output):
    id: uuid.UUID
    name: str
    creates: FormCreates
    stage_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    label_ids: list[uuid.UUID]
    field_map: FieldMap
    capture_url: str = Field(
        description="Path that form tools POST signed captures to.",
        examples=["/api/v1/capture/0190f7a2-4c1e-7d2a-9b51-3f2c8e6d1a00"],
    )
    page_url: str = Field(
        description="Path of the hosted HTML form page.",
        examples=["/f/0190f7a2-4c1e-7d2a-9b51-3f2c8e6d1a00"],
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret before the last rotation is still accepted."
    )
    created_at: datetime
    updated_at: datetime


class FormWithSecret(FormRead):
    signing_secret: str = Field(
        description="Shown only on creation and rotation: store it in the form tool.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class CaptureBody(AttributionInput):
    """A captured submission. Empty strings count as not given. At least one of
    `person_name`, `email` or `organization_name` must be given (directly or through
    the form's `field_map`). Attribution (`utm_*`, `channel`) is taken from the body, else
    from a `fields` entry of the same name (a form tool passing its page's UTM parameters
    as hidden fields); the lead, or the deal, carries it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "person_name": "Ana Silva",
                "email": "ana.silva@example.com",
                "phone": "+351 912 345 678",
                "organization_name": "Pipes and More",
                "message": "Please call me about plumbing supplies.",
                "fields": {"Budget": "1500.00 EUR", "Newsletter": True},
            }
        }
    )

    person_name: Annotated[LongName | None, Blank] = None
    email: Annotated[Email | None, Blank] = None
    phone: Annotated[Phone | None, Blank] = None
    organization_name: Annotated[LongName | None, Blank] = None
    title: Annotated[LongName | None, Blank] = None
    message: Annotated[Message | None, Blank] = None
    value: Money | None = None
    fields: dict[FieldName, FieldValue] = Field(
        default_factory=dict,
        max_length=MAX_EXTRA_FIELDS,
        description="Any other submitted fields, kept on the lead as given.",
    )


class CaptureAccepted(Output):
    """What the capture created: `lead_id` for lead forms, `deal_id` for deal forms; a
    deal form at the company's open-deal limit creates a lead instead (a captured contact
    is never lost to a plan limit), and says so in `instead_of_deal`."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "lead_id": "0190f7a2-4c1e-7d2a-9b51-3f2c8e6d1a00",
                "deal_id": None,
                "instead_of_deal": None,
            }
        }
    )

    lead_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    instead_of_deal: Literal["open-deal-limit"] | None = Field(
        default=None,
        description=(
            "Set when a deal form created a lead instead of a deal: why (the problem type "
            "the deal would have met, `open-deal-limit`). Null otherwise."
        ),
    )

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from leadflow.fields.values import CustomFieldsInput, CustomFieldsRead
from leadflow.schemas import NOT_BLANK, Email, Input, LongName, Output, Patch, ShortText, unique
from leadflow.tenancy import Visibility

MAX_EMAILS = 20
MAX_PHONES = 20
MAX_PHONE_LENGTH = 40

Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PHONE_LENGTH),
    NOT_BLANK,
    Field(examples=["+33 6 12 34 56 78"]),
]


Emails = Annotated[
    list[Email],
    AfterValidator(unique),
    Field(
        max_length=MAX_EMAILS,
        description="Validated and stored lower-cased; duplicates are kept once.",
        examples=[["ana.silva@example.com"]],
    ),
]
Phones = Annotated[
    list[Phone],
    Field(
        max_length=MAX_PHONES,
        description=(
            "As written; each must parse as a phone number (with +country code unless the "
            "server has a default region). Numbers equal in E.164 are kept once."
        ),
        examples=[["+33 6 12 34 56 78"]],
    ),
]

_OWNER = "A user of the caller's company; defaults to the caller."
_ORGANIZATION = "An organization visible to the caller."

# Update fields that may be omitted but not set to null default to None without allowing
# it in their type: an explicit null then fails validation, like any wrong type.
_UNSET: Any = None


class PersonCreate(Input):
    name: LongName = Field(examples=["Ana Silva"])
    emails: Emails = Field(default_factory=list)
    phones: Phones = Field(default_factory=list)
    organization_id: uuid.UUID | None = Field(default=None, description=_ORGANIZATION)
    owner_id: uuid.UUID | None = Field(default=None, description=_OWNER)
    visible_to: Visibility = Visibility.company
    custom_fields: CustomFieldsInput = Field(default_factory=dict)


class PersonUpdate(Patch):
    """Only the fields sent change; `organization_id: null` detaches the person."""

    name: LongName = Field(default=_UNSET, examples=["Ana Silva"])
    emails: Emails = Field(default=_UNSET)
    phones: Phones = Field(default=_UNSET)
    organization_id: uuid.UUID | None = Field(default=None, description=_ORGANIZATION)
    owner_id: uuid.UUID = Field(default=_UNSET, description="A user of the caller's company.")
    visible_to: Visibility = Field(default=_UNSET)
    custom_fields: CustomFieldsInput = Field(default=_UNSET)


class PersonRead(Output):
    id: uuid.UUID
    name: str = Field(examples=["Ana Silva"])
    emails: list[str] = Field(examples=[["ana.silva@example.com"]])
    phones: list[str] = Field(examples=[["06 12 34 56 78"]])
    phones_e164: list[str] = Field(
        description="`phones` in E.164, same order (read-only).", examples=[["+33612345678"]]
    )
    organization_id: uuid.UUID | None
    owner_id: uuid.UUID | None = Field(description="Null once the owner's user is deleted.")
    visible_to: Visibility
    custom_fields: CustomFieldsRead = Field(
        description="Values of the company's `person` custom fields; a field without one is absent."
    )
    created_at: datetime
    updated_at: datetime


Website = Annotated[ShortText, Field(examples=["https://acme.example"])]
Address = Annotated[ShortText, Field(examples=["12 rue de la Paix, 75002 Paris"])]


class OrganizationCreate(Input):
    name: LongName = Field(examples=["Acme Inc."])
    address: Address | None = None
    website: Website | None = None
    owner_id: uuid.UUID | None = Field(default=None, description=_OWNER)
    visible_to: Visibility = Visibility.company
    custom_fields: CustomFieldsInput = Field(default_factory=dict)


class OrganizationUpdate(Patch):
    """Only the fields sent change; null clears `address` and `website`."""

    name: LongName = Field(default=_UNSET, examples=["Acme Inc."])
    address: Address | None = None
    website: Website | None = None
    owner_id: uuid.UUID = Field(default=_UNSET, description="A user of the caller's company.")
    visible_to: Visibility = Field(default=_UNSET)
    custom_fields: CustomFieldsInput = Field(default=_UNSET)


class OrganizationRead(Output):
    id: uuid.UUID
    name: str = Field(examples=["Acme Inc."])
    address: str | None
    website: str | None
    owner_id: uuid.UUID | None = Field(description="Null once the owner's user is deleted.")
    visible_to: Visibility
    custom_fields: CustomFieldsRead = Field(
        description=(
            "Values of the company's `organization` custom fields; a field without one is absent."
        )
    )
    created_at: datetime
    updated_at: datetime

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from leadflow import attribution
from leadflow.attribution import AttributionInput
from leadflow.fields.values import CustomFieldsInput, CustomFieldsRead
from leadflow.leads.models import Lead
from leadflow.schemas import (
    NOT_BLANK,
    CapturedFields,
    Email,
    Input,
    IsoDate,
    LongName,
    Money,
    Output,
    Patch,
    RefusalDetail,
    fields_set,
    unique,
)
from leadflow.tenancy import Visibility

MAX_LABELS_PER_LEAD = 50
MAX_PHONE_LENGTH = 40


class LeadSource(enum.StrEnum):
    """How a lead arrived, set once at creation; capture, import and conversion use theirs."""

    manual = "manual"
    api = "api"
    web_form = "web_form"
    webhook = "webhook"
    import_ = "import"
    deal = "deal"


class CreatedSource(enum.StrEnum):
    """The sources a client may claim on `POST /leads`; the others are set by their flows."""

    manual = "manual"
    api = "api"


class LabelColor(enum.StrEnum):
    gray = "gray"
    red = "red"
    orange = "orange"
    yellow = "yellow"
    green = "green"
    blue = "blue"
    purple = "purple"
    pink = "pink"


LabelName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    NOT_BLANK,
    Field(examples=["Hot"]),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PHONE_LENGTH),
    NOT_BLANK,
    Field(examples=["+33 6 12 34 56 78"]),
]


LabelIds = Annotated[
    list[uuid.UUID],
    AfterValidator(unique),
    Field(
        max_length=MAX_LABELS_PER_LEAD,
        description="Lead labels of the caller's company; an id given twice is kept once.",
    ),
]

# Update fields that may be omitted but not set to null default to None without allowing
# it in their type: an explicit null then fails validation, like any wrong type.
_UNSET: Any = None
_OWNER = "A user of the caller's company; defaults to the caller."
_PERSON = "A person visible to the caller."
_ORGANIZATION = "An organization visible to the caller."


class Prospect(Input):
    """Details of someone not yet in contacts; conversion turns them into contacts."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "person_name": "Ana Silva",
                "email": "ana.silva@example.com",
                "phone": "+33 6 12 34 56 78",
                "organization_name": "Pipes and More",
            }
        }
    )

    person_name: LongName | None = None
    email: Email | None = Field(default=None, description="Validated and stored lower-cased.")
    phone: Phone | None = Field(
        default=None,
        description=(
            "Kept as written; it must parse as a phone number (with +country code unless the "
            "server has a default region)."
        ),
    )
    organization_name: LongName | None = None


class LeadCreate(AttributionInput):
    """A lead names a person or an organization: at least one of `person_id`,
    `organization_id`, `prospect.person_name`, `prospect.email`,
    `prospect.organization_name`. `stage_id`, `pipeline_id` and `status` are refused with
    409 `capability-not-supported`: leads are not in a pipeline."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "title": "Pipes and More: 40 valves",
                "prospect": {"person_name": "Ana Silva", "email": "ana.silva@example.com"},
                "value": {"amount": "1500.00", "currency": "EUR"},
                "expected_close_date": "2026-12-15",
                "label_ids": [],
                "source": "manual",
            },
            # What `_NAMES_NO_ONE` of the service asks for.
            "allOf": [
                {
                    "anyOf": [
                        fields_set("person_id"),
                        fields_set("organization_id"),
                        {
                            "required": ["prospect"],
                            "properties": {
                                "prospect": {
                                    "type": "object",
                                    "anyOf": [
                                        fields_set("person_name"),
                                        fields_set("email"),
                                        fields_set("organization_name"),
                                    ],
                                }
                            },
                        },
                    ]
                }
            ],
        }
    )

    title: LongName = Field(examples=["Pipes and More: 40 valves"])
    owner_id: uuid.UUID | None = Field(default=None, description=_OWNER)
    person_id: uuid.UUID | None = Field(default=None, description=_PERSON)
    organization_id: uuid.UUID | None = Field(default=None, description=_ORGANIZATION)
    prospect: Prospect | None = None
    value: Money | None = None
    expected_close_date: IsoDate | None = Field(default=None, examples=["2026-12-15"])
    label_ids: LabelIds = Field(default_factory=list)
    source: CreatedSource = Field(
        default=CreatedSource.api,
        description=(
            "`api` (default) for leads pushed by integrations; front ends send `manual` when "
            "a person typed the lead in. Capture, import and conversion set their own "
            "sources. It never changes after creation."
        ),
    )
    visible_to: Visibility = Visibility.company
    custom_fields: CustomFieldsInput = Field(default_factory=dict)


class LeadUpdate(AttributionInput, Patch):
    """Only the fields sent change; null clears `person_id`, `organization_id`, `value`,
    `expected_close_date`, `prospect` (all of it) and each attribution field (`utm_*`,
    `channel`). A `prospect` object changes only the details it names. The result must
    still name a person or an organization. `source` cannot change; `stage_id`,
    `pipeline_id` and `status` are refused with 409."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"title": "Pipes and More: 60 valves", "label_ids": []}}
    )

    title: LongName = Field(default=_UNSET, examples=["Pipes and More: 60 valves"])
    owner_id: uuid.UUID = Field(default=_UNSET, description="A user of the caller's company.")
    person_id: uuid.UUID | None = Field(default=None, description=_PERSON)
    organization_id: uuid.UUID | None = Field(default=None, description=_ORGANIZATION)
    prospect: Prospect | None = None
    value: Money | None = None
    expected_close_date: IsoDate | None = Field(default=None, examples=["2026-12-15"])
    label_ids: LabelIds = Field(default=_UNSET)
    visible_to: Visibility = Field(default=_UNSET)
    custom_fields: CustomFieldsInput = Field(default=_UNSET)


class ProspectRead(Output):
    person_name: str | None = Field(examples=["Ana Silva"])
    email: str | None = Field(examples=["ana.silva@example.com"])
    phone: str | None = Field(description="As written.", examples=["+33 6 12 34 56 78"])
    phone_e164: str | None = Field(
        description="`phone` in E.164 (read-only).", examples=["+33612345678"]
    )
    organization_name: str | None = Field(examples=["Pipes and More"])


class Readiness(Output):
    """A conversion rule whose conditions the lead meets."""

    rule_id: uuid.UUID
    name: str = Field(description="The rule's name.", examples=["First email sent"])
    since: datetime = Field(description="When the rule started to hold for the lead.")
    blocked_reason: str | None = Field(
        default=None,
        description=(
            "Set when a `convert` rule holds but could not convert the lead: the problem "
            "type's slug, e.g. `duplicate-contacts` or `open-deal-limit`."
        ),
        examples=["duplicate-contacts"],
    )
    blocked_detail: RefusalDetail | None = Field(
        default=None,
        description="The refusal's `detail` and extension members (e.g. `duplicates`).",
    )


class LeadRead(Output):
    id: uuid.UUID
    title: str = Field(examples=["Pipes and More: 40 valves"])
    owner_id: uuid.UUID | None = Field(description="Null once the owner's user is deleted.")
    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    prospect: ProspectRead
    value: Money | None
    expected_close_date: date | None
    label_ids: list[uuid.UUID]
    source: LeadSource = Field(
        description="How the lead arrived. Never changes.",
        examples=["api"],
    )
    is_archived: bool
    archived_at: datetime | None
    was_seen: bool = Field(description="True once the lead's owner has opened it.")
    visible_to: Visibility
    source_deal_id: uuid.UUID | None = Field(
        description="The deal this lead was made from (deal-to-lead conversion)."
    )
    readiness: list[Readiness] = Field(
        description="Conversion rules the lead meets; empty when none."
    )
    fields: CapturedFields = Field(
        description=(
            "Extra fields captured with the lead (forms, webhooks); read-only. A capture "
            "keeps `message`, `fields` (every answer, as submitted), `unmapped` (the answers "
            "that filled neither an attribute nor a custom field, as submitted) and "
            "`refused` (answer name: why it filled no custom field)."
        )
    )
    custom_fields: CustomFieldsRead = Field(
        description=(
            "Values of the company's `deal` custom fields (leads and deals share them, so "
            "conversion keeps every value); a field without a value is absent."
        )
    )
    utm_source: str | None = attribution.read_field("utm_source")
    utm_medium: str | None = attribution.read_field("utm_medium")
    utm_campaign: str | None = attribution.read_field("utm_campaign")
    utm_term: str | None = attribution.read_field("utm_term")
    utm_content: str | None = attribution.read_field("utm_content")
    channel: str | None = attribution.read_field("channel")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, lead: Lead, readiness: list[Readiness] | None = None) -> LeadRead:
        return cls(
            id=lead.id,
            title=lead.title,
            owner_id=lead.owner_id,
            person_id=lead.person_id,
            organization_id=lead.organization_id,
            prospect=ProspectRead(
                person_name=lead.prospect_person_name,
                email=lead.prospect_email,
                phone=lead.prospect_phone,
                phone_e164=lead.prospect_phone_e164,
                organization_name=lead.prospect_organization_name,
            ),
            value=Money.of(lead.value_amount, lead.value_currency),
            expected_close_date=lead.expected_close_date,
            label_ids=list(lead.label_ids),
            source=lead.source,
            is_archived=lead.is_archived,
            archived_at=lead.archived_at,
            was_seen=lead.was_seen,
            visible_to=Visibility(lead.visible_to),
            source_deal_id=lead.source_deal_id,
            readiness=readiness or [],
            fields=dict(lead.fields),
            custom_fields=dict(lead.custom_fields),
            **attribution.of(lead),
            created_at=lead.created_at,
            updated_at=lead.updated_at,
        )


class LeadLabelCreate(Input):
    name: LabelName = Field(description="Unique in the company, ignoring case.")
    color: LabelColor = LabelColor.gray


class LeadLabelUpdate(Patch):
    name: LabelName = Field(default=_UNSET, description="Unique in the company, ignoring case.")
    color: LabelColor = Field(default=_UNSET)


class LeadLabelRead(Output):
    id: uuid.UUID
    name: str = Field(examples=["Hot"])
    color: LabelColor
    created_at: datetime
    updated_at: datetime

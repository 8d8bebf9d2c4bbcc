from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from leadflow.activities.schemas import ActivityRead, NoteRead
from leadflow.contacts.schemas import OrganizationRead, PersonRead
from leadflow.deals.schemas import DealRead
from leadflow.fields.schemas import FieldRead
from leadflow.leads.schemas import LeadRead
from leadflow.pipelines.schemas import PipelineRead, StageRead
from leadflow.products.schemas import ProductRead
from leadflow.schemas import Input, Output, Patch
from leadflow.webhooks.models import DeliveryStatus

MAX_EVENT_TYPES = 64  # every type and wildcard fits


class EventTypeFilter(enum.StrEnum):
    """An event type a subscription receives: one type, every type of an entity
    (`deal.*`), or every type (`*`). `webhook.test` is sent by `POST /webhooks/{id}/test`
    whatever the subscription's types."""

    all = "*"
    lead_all = "lead.*"
    lead_created = "lead.created"
    lead_updated = "lead.updated"
    lead_archived = "lead.archived"
    lead_unarchived = "lead.unarchived"
    lead_deleted = "lead.deleted"
    lead_converted = "lead.converted"
    deal_all = "deal.*"
    deal_created = "deal.created"
    deal_updated = "deal.updated"
    deal_stage_changed = "deal.stage_changed"
    deal_status_changed = "deal.status_changed"
    deal_deleted = "deal.deleted"
    deal_converted = "deal.converted"
    person_all = "person.*"
    person_created = "person.created"
    person_updated = "person.updated"
    person_deleted = "person.deleted"
    organization_all = "organization.*"
    organization_created = "organization.created"
    organization_updated = "organization.updated"
    organization_deleted = "organization.deleted"
    note_all = "note.*"
    note_created = "note.created"
    note_updated = "note.updated"
    note_deleted = "note.deleted"
    activity_all = "activity.*"
    activity_created = "activity.created"
    activity_updated = "activity.updated"
    activity_done = "activity.done"
    activity_deleted = "activity.deleted"
    product_all = "product.*"
    product_created = "product.created"
    product_updated = "product.updated"
    product_deleted = "product.deleted"
    pipeline_all = "pipeline.*"
    pipeline_created = "pipeline.created"
    pipeline_updated = "pipeline.updated"
    pipeline_deleted = "pipeline.deleted"
    stage_all = "stage.*"
    stage_created = "stage.created"
    stage_updated = "stage.updated"
    stage_deleted = "stage.deleted"
    field_all = "field.*"
    field_created = "field.created"
    field_updated = "field.updated"
    field_deleted = "field.deleted"


# http(s), a host name or IPv4 address (no credentials), an optional port, then printable
# ASCII: what the document can state. Whether the scheme and the address are allowed
# depends on the server's settings (422 `refused_target`).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
URL_PATTERN = rf"^https?://{_LABEL}(?:\.{_LABEL})*\.?(?::{_PORT})?(?:[/?#][!-~]*)?$"

WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=8, max_length=2000, pattern=URL_PATTERN),
    Field(
        description=(
            "Where events are POSTed. `https` only, unless the server allows `http` "
            "(local mode); the address it resolves to must not be loopback, private, "
            "link-local or a cloud metadata address. Redirects are not followed."
        ),
        examples=["https://hooks.example.com/leadflow"],
    ),
]
EventTypes = Annotated[
    list[EventTypeFilter],
    Field(min_length=1, max_length=MAX_EVENT_TYPES, examples=[["deal.*", "lead.converted"]]),
]


class WebhookCreate(Input):
    url: WebhookUrl
    event_types: EventTypes
    pipeline_id: uuid.UUID | None = Field(
        default=None, description="Only events about deals in this pipeline."
    )
    owner_id: uuid.UUID | None = Field(
        default=None, description="Only events about records this user owns."
    )
    enabled: bool = True


# An omitted PATCH field (see `Patch`): absent means unchanged, null is refused.
_UNSET: Any = None


class WebhookUpdate(Patch):
    """Only the fields sent change; `null` clears `pipeline_id` or `owner_id`."""

    url: WebhookUrl = _UNSET
    event_types: EventTypes = _UNSET
    pipeline_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    enabled: bool = Field(
        default=_UNSET,
        description="Enabling again a subscription the server disabled resumes its pending "
        "deliveries.",
    )


class WebhookRead(Output):
    id: uuid.UUID
    url: str
    event_types: list[EventTypeFilter]
    pipeline_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the server disabled it: `gone` (the endpoint answered 410) or "
        "`failing` (no success for 3 days); null otherwise."
    )
    created_by: uuid.UUID | None = Field(
        description="Events are sent only about records this user may see."
    )
    last_delivery_at: datetime | None
    last_status: int | None = Field(description="HTTP status of the last attempt.")
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until then each delivery is signed with both secrets."
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookRead):
    signing_secret: str = Field(
        description="`whsec_...`: shown this once. Verify `webhook-signature` with it "
        "(Standard Webhooks)."
    )


class DeliveryRead(Output):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="Sent as `webhook-id`, the same on every attempt.")
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="Null once delivered or failed.")
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="HTTP status of the last attempt.")
    last_error: str | None
    duration_ms: int | None = Field(description="Duration of the last attempt.")
    delivered_at: datetime | None
    created_at: datetime


class ReplayRequest(Input):
    since: datetime = Field(
        description="Send again every event of the company since this time that this "
        "subscription receives (at most 30 days back)."
    )


class ReplayAccepted(Output):
    enqueued: int = Field(description="Deliveries made pending.")


class TestSent(Output):
    event_id: uuid.UUID
    delivery_id: uuid.UUID


def webhook_fields() -> tuple[str, ...]:
    return tuple(WebhookRead.model_fields)


def delivery_fields() -> tuple[str, ...]:
    return tuple(DeliveryRead.model_fields)


# The payloads of the events (documented as the OpenAPI document's `webhooks`).


class ChangeSourceName(enum.StrEnum):
    api = "api"
    capture = "capture"
    rule = "rule"
    import_ = "import"
    system = "system"


class EventPayload(Output):
    """What every delivery POSTs (`application/json`), signed per Standard Webhooks."""

    id: uuid.UUID = Field(
        description="The event's id (UUIDv7), also sent as `webhook-id`: the same on every "
        "attempt and replay, so a receiver dedupes on it."
    )
    type: str = Field(examples=["deal.stage_changed"])
    occurred_at: datetime
    company_id: uuid.UUID
    user_id: uuid.UUID | None = Field(description="Who made the change; null for the system.")
    change_source: ChangeSourceName
    entity: str = Field(examples=["deal"])
    entity_id: uuid.UUID | None
    previous: dict[str, Any] | None = Field(
        description="For a change, the changed fields' values before it, under the API's "
        "field names; for a deletion, the record as the last event about it showed it; "
        "null for a creation."
    )
    related: dict[str, str | None] | None = Field(
        default=None,
        description="For a conversion: `deal_id` (or `lead_id`), `conversion_id`, `rule_id`. "
        "For the deletion of a lead, person or organization merged into another: "
        "`merged_into`, the survivor's id.",
    )


class LeadEventPayload(EventPayload):
    data: LeadRead | None = Field(
        description="The lead as `GET /leads/{id}` shows it after the change; null when deleted."
    )


class DealEventPayload(EventPayload):
    data: DealRead | None = Field(
        description="The deal as `GET /deals/{id}` shows it after the change; null when deleted."
    )


class PersonEventPayload(EventPayload):
    data: PersonRead | None = Field(
        description="The person as `GET /persons/{id}` shows it after the change; null when "
        "deleted."
    )


class OrganizationEventPayload(EventPayload):
    data: OrganizationRead | None = Field(
        description="The organization as `GET /organizations/{id}` shows it after the change; "
        "null when deleted."
    )


class NoteEventPayload(EventPayload):
    data: NoteRead | None = Field(
        description="The note as `GET /notes/{id}` shows it after the change; null when "
        "deleted. Sent to subscriptions whose creator may see the note's parent record."
    )


class ActivityEventPayload(EventPayload):
    data: ActivityRead | None = Field(
        description="The activity as `GET /activities/{id}` shows it after the change; null "
        "when deleted. Sent to subscriptions whose creator may see the activity's parent "
        "record."
    )


class ProductEventPayload(EventPayload):
    data: ProductRead | None = Field(
        description="The product as `GET /products/{id}` shows it after the change; null when "
        "deleted."
    )


class PipelineEventPayload(EventPayload):
    data: PipelineRead | None = Field(
        description="The pipeline as `GET /pipelines/{id}` shows it after the change; null "
        "when deleted."
    )


class StageEventPayload(EventPayload):
    data: StageRead | None = Field(
        description="The stage as `GET /stages/{id}` shows it after the change; null when deleted."
    )


class FieldEventPayload(EventPayload):
    data: FieldRead | None = Field(
        description="The custom field definition as `GET /fields/{id}` shows it after the "
        "change; null when deleted."
    )


# Each entity's payload, by the part of the event type before the dot.
PAYLOADS: dict[str, type[EventPayload]] = {
    "lead": LeadEventPayload,
    "deal": DealEventPayload,
    "person": PersonEventPayload,
    "organization": OrganizationEventPayload,
    "note": NoteEventPayload,
    "activity": ActivityEventPayload,
    "product": ProductEventPayload,
    "pipeline": PipelineEventPayload,
    "stage": StageEventPayload,
    "field": FieldEventPayload,
}


class TestEventPayload(EventPayload):
    data: dict[str, str] = Field(description="`webhook_id`: the subscription tested.")

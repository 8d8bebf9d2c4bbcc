"""The webhook payloads in the OpenAPI document (OpenAPI 3.1 `webhooks`): one entry per
event type, with the Standard Webhooks headers and what each answer means."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response

from leadflow.merged import MERGEABLE
from leadflow.webhooks.outbox import EVENT_TYPES, TEST_EVENT
from leadflow.webhooks.schemas import (
    ActivityEventPayload,
    DealEventPayload,
    FieldEventPayload,
    LeadEventPayload,
    NoteEventPayload,
    OrganizationEventPayload,
    PersonEventPayload,
    PipelineEventPayload,
    ProductEventPayload,
    StageEventPayload,
    TestEventPayload,
)

_HEADERS: list[dict[str, Any]] = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id: the same on every attempt (dedupe on it).",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds of this attempt.",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "`v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>` per signing "
        "secret, space-separated (two for 24 h after a rotation).",
        "schema": {"type": "string"},
    },
]

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Any 2xx: delivered."},
    410: {"description": "Gone: the subscription is disabled at once."},
    429: {"description": "Retried no sooner than `Retry-After` (also on 503)."},
    "default": {
        "description": "Anything else, a 3xx, a timeout (10 s) or no answer: retried after "
        "5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (±10%), then failed."
    },
}


async def lead_event(payload: LeadEventPayload) -> None:
    """A lead event."""


async def deal_event(payload: DealEventPayload) -> None:
    """A deal event."""


async def person_event(payload: PersonEventPayload) -> None:
    """A person event."""


async def organization_event(payload: OrganizationEventPayload) -> None:
    """An organization event."""


async def note_event(payload: NoteEventPayload) -> None:
    """A note event."""


async def activity_event(payload: ActivityEventPayload) -> None:
    """An activity event."""


async def product_event(payload: ProductEventPayload) -> None:
    """A product event."""


async def pipeline_event(payload: PipelineEventPayload) -> None:
    """A pipeline event."""


async def stage_event(payload: StageEventPayload) -> None:
    """A stage event."""


async def field_event(payload: FieldEventPayload) -> None:
    """A custom field definition event."""


async def test_event(payload: TestEventPayload) -> None:
    """A test event."""


# The documented endpoint (its payload's schema) of each entity's events.
_ENDPOINTS: dict[str, Any] = {
    "lead": lead_event,
    "deal": deal_event,
    "person": person_event,
    "organization": organization_event,
    "note": note_event,
    "activity": activity_event,
    "product": product_event,
    "pipeline": pipeline_event,
    "stage": stage_event,
    "field": field_event,
}


_DESCRIPTIONS = {
    "created": "was created",
    "updated": "changed (`previous` holds the changed fields' old values)",
    "archived": "was archived",
    "unarchived": "left the archive",
    "deleted": "was deleted (`data` is null, `previous` its last known state)",
    "converted": "was converted (`related` names the result)",
    "stage_changed": "moved to another stage (sent beside `deal.updated`)",
    "status_changed": "was won, lost or reopened (sent beside `deal.updated`)",
    "done": "was marked done (instead of `activity.updated`)",
}
_ARTICLES = {"organization": "An", "activity": "An"}


def describe_webhooks(app: FastAPI) -> None:
    for event_type in (*EVENT_TYPES, TEST_EVENT):
        entity, _, action = event_type.partition(".")
        if event_type == TEST_EVENT:
            endpoint: Any = test_event
            summary = "Sent by `POST /webhooks/{id}/test`"
        else:
            endpoint = _ENDPOINTS[entity]
            name = "custom field definition" if entity == "field" else entity
            summary = f"{_ARTICLES.get(entity, 'A')} {name} {_DESCRIPTIONS[action]}"
            if action == "deleted" and entity in MERGEABLE:
                summary += ", or merged into another (`related.merged_into`)"
        app.webhooks.add_api_route(
            event_type,
            endpoint,
            methods=["POST"],
            name=f"webhooks:{event_type}",
            operation_id=f"webhooks:{event_type}",
            description="leadflow POSTs this to the subscription's URL; verify the signature "
            "(Standard Webhooks) over the raw body before trusting it.",
            response_class=Response,
            summary=summary,
            status_code=200,
            responses=_ANSWERS,
            openapi_extra={"parameters": _HEADERS},
            tags=["webhooks"],
        )

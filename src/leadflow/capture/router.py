from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from leadflow.capture import reads, service
from leadflow.capture.models import Form
from leadflow.capture.ratelimit import CaptureLimiter, limiter_for
from leadflow.capture.repository import CaptureRepository
from leadflow.capture.schemas import (
    CAPTURE_PATH,
    PAGE_PATH,
    CaptureAccepted,
    CaptureBody,
    FieldMap,
    FormCreate,
    FormCreates,
    FormRead,
    FormUpdate,
    FormWithSecret,
)
from leadflow.capture.signing import Keyring, SignatureInvalid, keyring_for, verify_webhook
from leadflow.deps import AdminCaller, AppSettings, CurrentCaller, Session
from leadflow.errors import found, responses
from leadflow.pagination import Page, PageParams
from leadflow.ratelimit import client_address
from leadflow.readpath import json_response

# Capture bodies and hosted-page submissions are small; the request envelope refuses
# more with 413 before anything is read.
CAPTURE_MAX_BODY_BYTES = 64 * 1024
CAPTURE_BODY_PATHS = ("/api/v1/capture/", "/f/")


# async, though they never wait: FastAPI runs plain-def dependencies in a thread pool.
async def get_keyring(request: Request) -> Keyring:
    return keyring_for(request.app.state)


async def get_limiter(request: Request) -> CaptureLimiter:
    return limiter_for(request.app.state)


Keys = Annotated[Keyring, Depends(get_keyring)]
Limiter = Annotated[CaptureLimiter, Depends(get_limiter)]


router = APIRouter(tags=["lead capture"])


def _read(form: Form) -> dict[str, Any]:
    return {
        "id": form.id,
        "name": form.name,
        "creates": FormCreates(form.creates),
        "stage_id": form.stage_id,
        "owner_id": form.owner_id,
        "label_ids": list(form.label_ids),
        "field_map": FieldMap.model_validate(form.field_map),
        "capture_url": CAPTURE_PATH.format(form_id=form.id),
        "page_url": PAGE_PATH.format(form_id=form.id),
        "previous_secret_expires_at": form.previous_secret_expires_at,
        "created_at": form.created_at,
        "updated_at": form.updated_at,
    }


@router.post(
    "/forms",
    name="forms:create",
    status_code=status.HTTP_201_CREATED,
    response_model=FormWithSecret,
    responses=responses(401, 403, 409, 422),
)
async def create_form(
    data: FormCreate, session: Session, caller: AdminCaller, keyring: Keys
) -> FormWithSecret:
    """Create a lead-capture form (admins only); its signing secret is shown this once."""
    form, secret = await service.create_form(session, caller, data, keyring)
    return FormWithSecret(**_read(form), signing_secret=secret)


@router.get(
    "/forms", name="forms:list", response_model=Page[FormRead], responses=responses(401, 422)
)
async def list_forms(session: Session, caller: CurrentCaller, page: PageParams) -> Response:
    """List the company's lead-capture forms by name (secrets are never listed)."""
    return json_response(await reads.forms(session, caller, page))


@router.get(
    "/forms/{form_id}",
    name="forms:get",
    response_model=FormRead,
    responses=responses(401, 404, 422),
)
async def get_form(form_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One lead-capture form of the company."""
    return json_response(found(await reads.form(session, caller, form_id), "form"))


@router.patch(
    "/forms/{form_id}",
    name="forms:update",
    response_model=FormRead,
    responses=responses(401, 403, 404, 422),
)
async def update_form(
    form_id: uuid.UUID, data: FormUpdate, session: Session, caller: AdminCaller
) -> FormRead:
    """Change a form (admins only); only the fields sent change."""
    return FormRead(**_read(await service.update_form(session, caller, form_id, data)))


@router.delete(
    "/forms/{form_id}",
    name="forms:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 422),
)
async def delete_form(form_id: uuid.UUID, session: Session, caller: AdminCaller) -> Response:
    """Delete a form (admins only); the leads and deals it captured stay."""
    await service.delete_form(session, caller, form_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/forms/{form_id}/rotate-secret",
    name="forms:rotate-secret",
    response_model=FormWithSecret,
    responses=responses(401, 403, 404, 409, 422),
)
async def rotate_secret(
    form_id: uuid.UUID, session: Session, caller: AdminCaller, keyring: Keys
) -> FormWithSecret:
    """Issue a new signing secret (shown this once); the previous one works for 24 hours."""
    form, secret = await service.rotate_secret(session, caller, form_id, keyring)
    return FormWithSecret(**_read(form), signing_secret=secret)


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` resolved in place, for `openapi_extra`."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


@router.post(
    "/capture/{form_id}",
    name="capture:deliver",
    status_code=status.HTTP_201_CREATED,
    response_model=CaptureAccepted,
    responses={
        200: {
            "model": CaptureAccepted,
            "description": "This webhook-id was delivered before: the first delivery's id, "
            "nothing new created.",
        },
        **responses(SignatureInvalid, 404, 409, 413, 422, 429),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _inline_refs(CaptureBody.model_json_schema())}
            },
        }
    },
)
async def deliver(
    form_id: uuid.UUID,
    request: Request,
    session: Session,
    settings: AppSettings,
    keyring: Keys,
    limiter: Limiter,
    webhook_id: Annotated[
        str | None, Header(description="Unique id of the message; a repeat creates nothing.")
    ] = None,
    webhook_timestamp: Annotated[
        str | None, Header(description="Unix time in seconds; at most 5 minutes off.")
    ] = None,
    webhook_signature: Annotated[
        str | None,
        Header(
            description='Space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, '
            "keyed with the base64-decoded part of the secret after `whsec_`."
        ),
    ] = None,
) -> Response:
    """Capture a lead (or a deal) from a form tool: no bearer token, a signed body."""
    await limiter.hit_client("capture", client_address(request))
    raw = await request.body()
    form, owner_id = found(await CaptureRepository(session).form_and_owner(form_id), "form")
    webhook_id = verify_webhook(
        service.signing_secrets(form, keyring, datetime.now(UTC)),
        {
            "webhook-id": webhook_id,
            "webhook-timestamp": webhook_timestamp,
            "webhook-signature": webhook_signature,
        },
        raw,
        time.time(),
    )
    await limiter.hit_form("capture", str(form.id))
    try:
        body = CaptureBody.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc
    prospect = service.prospect_from_capture(body, form.field_map, settings.default_phone_region)
    captured = await service.deliver(session, form, owner_id, webhook_id, prospect, "webhook")
    # `CaptureAccepted` as its JSON, written directly: the service built each value, and
    # FastAPI's validation and serialization of the model through `response_model` (which
    # still documents the answer) was work a capture did for nothing.
    return json_response(
        {
            # As text: ids read back through the ORM may be the driver's UUID subclass,
            # which orjson does not write.
            "lead_id": None if captured.lead_id is None else str(captured.lead_id),
            "deal_id": None if captured.deal_id is None else str(captured.deal_id),
            "instead_of_deal": "open-deal-limit" if captured.instead_of_deal else None,
        },
        status.HTTP_201_CREATED if captured.created else status.HTTP_200_OK,
    )

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from leadflow.deps import AdminCaller, CurrentCaller, Session
from leadflow.errors import found, responses
from leadflow.fields import openapi, reads, service
from leadflow.fields.models import FieldDefinition
from leadflow.fields.schemas import FieldCreate, FieldEntity, FieldRead, FieldUpdate
from leadflow.fields.service import FieldImmutable, FieldInUse, FieldKeyTaken, OptionLabelTaken
from leadflow.fields.storage import OptionInUse
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response

router = APIRouter(tags=["fields"])

EntityParam = Annotated[
    FieldEntity,
    Query(
        description=(
            "Whose fields: `deal` (the default; leads carry the deal fields too), `person`, "
            "`organization` or `product`."
        )
    ),
]


def _read(definition: FieldDefinition) -> FieldRead:
    return FieldRead(
        id=definition.id,
        entity=FieldEntity(definition.entity),
        key=definition.key,
        name=definition.name,
        type=definition.field_type,
        description=definition.description,
        options=definition.options,
        formula=definition.formula,
        created_at=definition.created_at,
        updated_at=definition.updated_at,
    )


@router.get(
    "/fields", name="fields:list", response_model=Page[FieldRead], responses=responses(401, 422)
)
async def list_fields(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    entity: EntityParam = FieldEntity.deal,
) -> Response:
    """The custom fields of an entity, oldest first (deleted fields are not listed)."""
    return json_response(await reads.field_page(session, caller, entity.value, page))


@router.post(
    "/fields",
    name="fields:create",
    status_code=status.HTTP_201_CREATED,
    response_model=FieldRead,
    responses=responses(
        401, 403, 409, 422, FieldKeyTaken, OptionLabelTaken, FieldInUse, FieldImmutable, OptionInUse
    ),
)
async def create_field(
    data: FieldCreate, session: Session, caller: AdminCaller, entity: EntityParam = FieldEntity.deal
) -> FieldRead:
    """Create a custom field (admins only). At most 500 live fields per entity and 1,000
    options per field."""
    return _read(await service.create_field(session, caller, entity, data))


@router.get(
    "/fields/{field_id}",
    name="fields:get",
    response_model=FieldRead,
    responses=responses(401, 404, 422),
)
async def get_field(field_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One custom field (404 once deleted)."""
    return json_response(found(await reads.field(session, caller, field_id), "field"))


@router.patch(
    "/fields/{field_id}",
    name="fields:update",
    response_model=FieldRead,
    responses=responses(
        401,
        403,
        404,
        409,
        422,
        FieldKeyTaken,
        OptionLabelTaken,
        FieldInUse,
        FieldImmutable,
        OptionInUse,
    ),
)
async def update_field(
    field_id: uuid.UUID,
    data: FieldUpdate,
    session: Session,
    caller: AdminCaller,
    clear_values: Annotated[
        bool,
        Query(
            description=(
                "When `options` removes options that records use: take them off those "
                "records instead of answering 409."
            )
        ),
    ] = False,
) -> FieldRead:
    """Rename a field, change its description or its options (admins only)."""
    return _read(await service.update_field(session, caller, field_id, data, clear_values))


@router.delete(
    "/fields/{field_id}",
    name="fields:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 403, 404, 422),
)
async def delete_field(field_id: uuid.UUID, session: Session, caller: AdminCaller) -> None:
    """Delete a field (admins only): it and its values are hidden (kept for history); its
    key is never given to another field."""
    await service.delete_field(session, caller, field_id)


@router.get(
    "/openapi.json",
    name="openapi:company",
    response_model=dict[str, Any],
    responses=responses(401),
)
async def company_openapi(request: Request, session: Session, caller: CurrentCaller) -> Response:
    """This OpenAPI document, with `custom_fields` typed for the caller's company.

    The same document as the static one, but every schema that carries `custom_fields`
    names the company's fields of its entity as properties (formats, patterns, option
    ids as enums, the money shape; nullable on writes, formulas read-only) and allows
    no other key: a client generated from it knows the company's fields."""
    fields = await reads.all_fields(session, caller)
    return json_response(openapi.typed(request.app.openapi(), [dict(row) for row in fields]))

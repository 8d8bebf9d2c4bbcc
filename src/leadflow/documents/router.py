"""`/document-templates`, `/deals/{deal_id}/documents` and `/invoices/{invoice_id}/pdf`:
HTTP only, the rules are in `service`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from leadflow.deals.access import DealConverted
from leadflow.deals.files import content_disposition
from leadflow.deps import CurrentCaller, Session
from leadflow.documents import reads, service
from leadflow.documents.schemas import (
    DocumentCreate,
    DocumentRead,
    TemplateCreate,
    TemplateRead,
    TemplateUpdate,
)
from leadflow.errors import responses
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response
from leadflow.storage import FileStorage

router = APIRouter(tags=["documents"])
_CREATED = status.HTTP_201_CREATED


@router.post(
    "/document-templates",
    name="document-templates:create",
    status_code=_CREATED,
    response_model=TemplateRead,
    responses=responses(401, 422),
)
async def create_template(
    data: TemplateCreate, session: Session, caller: CurrentCaller
) -> Response:
    """Add a document template (Typst markup with Jinja2 placeholders)."""
    template = await service.create_template(session, caller, data)
    answer = await reads.template(session, caller, template.id)
    return json_response(answer, status_code=_CREATED)


@router.get(
    "/document-templates",
    name="document-templates:list",
    response_model=Page[TemplateRead],
    responses=responses(401, 422),
)
async def list_templates(session: Session, caller: CurrentCaller, page: PageParams) -> Response:
    """List the company's document templates, by name (a new company has a Quote and an
    Invoice)."""
    return json_response(await reads.templates_page(session, caller, page))


@router.get(
    "/document-templates/{template_id}",
    name="document-templates:get",
    response_model=TemplateRead,
    responses=responses(401, 404, 422),
)
async def get_template(template_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One document template."""
    return json_response(await reads.template(session, caller, template_id))


@router.patch(
    "/document-templates/{template_id}",
    name="document-templates:update",
    response_model=TemplateRead,
    responses=responses(401, 404, 422),
)
async def update_template(
    template_id: uuid.UUID, data: TemplateUpdate, session: Session, caller: CurrentCaller
) -> Response:
    """Change a template's name or body; documents already made keep their PDF."""
    await service.update_template(session, caller, template_id, data)
    return json_response(await reads.template(session, caller, template_id))


@router.delete(
    "/document-templates/{template_id}",
    name="document-templates:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422),
)
async def delete_template(template_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a template; documents made with it keep their PDF."""
    await service.delete_template(session, caller, template_id)


@router.post(
    "/deals/{deal_id}/documents",
    name="deals:documents:create",
    status_code=_CREATED,
    response_model=DocumentRead,
    responses=responses(401, 404, 422, DealConverted),
)
async def create_document(
    deal_id: uuid.UUID,
    data: DocumentCreate,
    session: Session,
    caller: CurrentCaller,
    storage: FileStorage,
) -> Response:
    """Render a template for the deal to PDF, stored as a file of the deal."""
    document = await service.create_document(session, caller, storage, deal_id, data)
    answer = await reads.document(session, caller, deal_id, document.id)
    return json_response(answer, status_code=_CREATED)


@router.get(
    "/deals/{deal_id}/documents",
    name="deals:documents:list",
    response_model=Page[DocumentRead],
    responses=responses(401, 404, 422),
)
async def list_documents(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """List the documents made for a deal, oldest first."""
    return json_response(await reads.documents_page(session, caller, deal_id, page))


@router.get(
    "/invoices/{invoice_id}/pdf",
    name="invoices:pdf",
    response_class=Response,
    responses={
        200: {
            "description": "The invoice as a PDF attachment.",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        **responses(401, 404, 422),
    },
)
async def invoice_pdf(
    invoice_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    template_id: Annotated[
        uuid.UUID | None,
        Query(description="A document template; the starting invoice template by default."),
    ] = None,
) -> Response:
    """The invoice rendered to PDF (drafts say so on the page)."""
    pdf, name = await service.invoice_pdf(session, caller, invoice_id, template_id)
    return Response(
        pdf,
        media_type=service.PDF,
        headers={
            "Content-Disposition": content_disposition(name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )

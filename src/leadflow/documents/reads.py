"""The answers of the documents' GETs: statements compiled once (`leadflow.readpath`),
rows straight to JSON as the read models write them."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import DateTime, Integer, String, Uuid, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.deals.models import Deal, DealFile
from leadflow.deals.reads import after_key, of_visible_deal, page_of_deal, rows_of_deal
from leadflow.documents.models import DealDocument, DocumentTemplate
from leadflow.documents.schemas import DocumentRead, TemplateRead
from leadflow.errors import NotFound
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, Viewer, in_viewer_company

TEMPLATES_BY_NAME = Keyset(DocumentTemplate.name, DocumentTemplate.id)
OLDEST_FIRST = Keyset(DealDocument.created_at, DealDocument.id)
_TEMPLATE_FIELDS = tuple(TemplateRead.model_fields)
_DOCUMENT_FIELDS = tuple(DocumentRead.model_fields)


def _templates() -> Any:
    return select(
        as_text(DocumentTemplate.id),
        DocumentTemplate.name,
        DocumentTemplate.body,
        DocumentTemplate.created_at,
        DocumentTemplate.updated_at,
    ).where(in_viewer_company(DocumentTemplate))


@functools.cache
def template_by_id() -> ReadStatement:
    return ReadStatement(_templates().where(DocumentTemplate.id == bindparam("id", type_=Uuid)))


@functools.cache
def template_page(after: bool) -> ReadStatement:
    """By name, then id (ix_document_template_company_id)."""
    stmt = _templates()
    if after:
        stmt = stmt.where(tuple_(DocumentTemplate.name, DocumentTemplate.id) > after_key(String()))
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(DocumentTemplate.name, DocumentTemplate.id).limit(limit))


def _documents() -> Any:
    return (
        select(
            as_text(DealDocument.id),
            as_text(DealDocument.deal_id),
            as_text(DealDocument.template_id),
            as_text(DealDocument.file_id),
            DealFile.file_name,
            DealFile.size_bytes,
            as_text(DealDocument.user_id),
            DealDocument.created_at,
        )
        .join(DealFile, DealFile.id == DealDocument.file_id)
        .where(DealDocument.deal_id == Deal.id, in_viewer_company(DealDocument))
    )


@functools.lru_cache(maxsize=16)
def document_page(viewer: Viewer, after: bool) -> ReadStatement:
    """A deal's documents, oldest first (ix_deal_document_deal_id)."""
    stmt = _documents()
    if after:
        stmt = stmt.where(
            tuple_(DealDocument.created_at, DealDocument.id) > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    return of_visible_deal(
        viewer, stmt.order_by(DealDocument.created_at, DealDocument.id).limit(limit)
    )


@functools.lru_cache(maxsize=16)
def document_by_id(viewer: Viewer) -> ReadStatement:
    return of_visible_deal(
        viewer, _documents().where(DealDocument.id == bindparam("document_id", type_=Uuid))
    )


async def template(session: AsyncSession, caller: Caller, template_id: uuid.UUID) -> dict[str, Any]:
    params = {"viewer_company_id": caller.company_id, "id": template_id}
    row = await template_by_id().fetchrow(session, params)
    if row is None:
        raise NotFound("document template")
    return fields(row, _TEMPLATE_FIELDS)


async def templates_page(
    session: AsyncSession, caller: Caller, page: PageRequest
) -> dict[str, Any]:
    params: dict[str, Any] = {"viewer_company_id": caller.company_id, "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, TEMPLATES_BY_NAME)
    rows = await template_page(page.cursor is not None).fetch(session, params)
    return page_of(rows, page, "name", lambda row: fields(row, _TEMPLATE_FIELDS))


async def documents_page(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, page: PageRequest
) -> dict[str, Any]:
    """A page for `GET /deals/{id}/documents`, kept for a deal converted back to a lead."""
    return await page_of_deal(
        session,
        caller,
        document_page,
        OLDEST_FIRST,
        deal_id,
        page,
        lambda row: fields(row, _DOCUMENT_FIELDS),
        allow_converted=True,
    )


async def document(
    session: AsyncSession, caller: Caller, deal_id: uuid.UUID, document_id: uuid.UUID
) -> dict[str, Any]:
    params = {"deal_id": deal_id, "document_id": document_id}
    rows = await rows_of_deal(session, caller, document_by_id(Viewer.of(caller)), params)
    if not rows:
        raise NotFound("document")
    return fields(rows[0], _DOCUMENT_FIELDS)

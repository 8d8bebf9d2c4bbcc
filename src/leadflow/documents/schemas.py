"""Bodies and answers of `/document-templates` and `/deals/{deal_id}/documents`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from leadflow.documents.render import MAX_TEMPLATE_CHARS
from leadflow.schemas import NOT_BLANK, Input, Name, Output, Patch

_UNSET: Any = None
_BODY = (
    "Typst markup (https://typst.app/docs) with Jinja2 placeholders: `{{ deal.title }}`, "
    "`{% for item in line_items %}...{% endfor %}`. Every value placed is printed as text. "
    "For a deal's documents: `deal` (id, title, status, value, expected_close_date, "
    "custom_fields), `person` (name, emails, phones), `organization` (name, address), "
    "`owner` (name, email), `line_items` (name, quantity, unit_price, discount_percent, "
    "tax_percent, net, tax, sum), `totals` (subtotal, tax, total, currency), `company` "
    "(name) and `today`. For an invoice's PDF: `invoice` (as GET /invoices/{id} answers "
    "it), `company` and `today`. A template may not import, include, eval or load plugins."
)
TemplateBody = Annotated[
    str,
    # Not stripped (white space is the template's), but not blank either.
    StringConstraints(min_length=1, max_length=MAX_TEMPLATE_CHARS, pattern=r"\S"),
    Field(description=_BODY, examples=["= Quote for {{ deal.title }}"]),
]
FileName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NOT_BLANK
]


class TemplateCreate(Input):
    name: Name = Field(examples=["Quote"])
    body: TemplateBody


class TemplateUpdate(Patch):
    name: Name = Field(default=_UNSET)
    body: TemplateBody = Field(default=_UNSET)


class TemplateRead(Output):
    id: uuid.UUID
    name: str
    body: str
    created_at: datetime
    updated_at: datetime


class DocumentCreate(Input):
    template_id: uuid.UUID
    file_name: FileName | None = Field(
        default=None, description='Defaults to "<template name> - <deal title>.pdf".'
    )


class DocumentRead(Output):
    id: uuid.UUID
    deal_id: uuid.UUID
    template_id: uuid.UUID | None = Field(description="Null once the template was deleted.")
    file_id: uuid.UUID = Field(
        description="The deal's file holding the PDF: GET /deals/{id}/files/{file_id}/content."
    )
    file_name: str
    size_bytes: int
    user_id: uuid.UUID | None
    created_at: datetime

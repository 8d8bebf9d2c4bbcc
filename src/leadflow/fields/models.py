from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id

ENTITY_CHECK = "entity IN ('deal', 'person', 'organization', 'product')"
TYPE_CHECK = (
    "field_type IN ('text', 'long_text', 'number', 'monetary', 'date', 'date_range', 'time', "
    "'enum', 'set', 'user', 'person', 'organization', 'phone', 'email', 'url', 'boolean', "
    "'formula')"
)


class FieldDefinition(Timestamps, Base):
    """A custom field of one entity of one company.

    A deleted field stays as a tombstone (`deleted_at` set): its key stays taken, so a key
    never names two fields over time, and the values records keep for history cannot be
    mistaken for a new field's. Options live in the row (`options`, in their order, each
    `{"id", "label", "color"}`); their ids count up from 1 per field (`next_option_id`)
    and are never reused either, since records store option ids."""

    __tablename__ = "field_definition"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(255))
    field_type: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(1000))
    options: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    formula: Mapped[str | None] = mapped_column(Text)
    next_option_id: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # Tombstones included: a key is never reused within an entity of a company.
        Index("ux_field_definition_key", "company_id", "entity", "key", unique=True),
        CheckConstraint(ENTITY_CHECK, name="entity"),
        CheckConstraint(TYPE_CHECK, name="field_type"),
    )

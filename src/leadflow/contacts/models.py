from __future__ import annotations

import uuid

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    column,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, Timestamps, new_id
from leadflow.fields.storage import CustomFieldColumns, custom_fields_index

VISIBLE_TO_CHECK = "visible_to IN ('owner', 'group', 'company')"


class Organization(Timestamps, CustomFieldColumns, Base):
    __tablename__ = "organization"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    # Lower-cased, spacing and legal suffixes removed: what duplicate search compares.
    name_normalized: Mapped[str] = mapped_column(String(300))
    address: Mapped[str | None] = mapped_column(String(500))
    website: Mapped[str | None] = mapped_column(String(500))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    visible_to: Mapped[str] = mapped_column(String(16), default="company")

    __table_args__ = (
        custom_fields_index("organization"),
        Index("ix_organization_company_id_name", "company_id", "name", "id"),
        Index("ix_organization_company_id_name_normalized", "company_id", "name_normalized"),
        # Word-prefix search for `q` (built-in full text: the embedded server has no pg_trgm).
        Index(
            "ix_organization_name_search",
            func.to_tsvector(literal_column("'simple'::regconfig"), column("name")),
            postgresql_using="gin",
        ),
        CheckConstraint(VISIBLE_TO_CHECK, name="visible_to"),
    )


class Person(Timestamps, CustomFieldColumns, Base):
    __tablename__ = "person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    # Validated and lower-cased.
    emails: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    # As the user wrote them, for display ...
    phones: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    # ... and in E.164, same order, for search and duplicate detection.
    phones_e164: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organization.id", ondelete="SET NULL")
    )
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    visible_to: Mapped[str] = mapped_column(String(16), default="company")

    __table_args__ = (
        custom_fields_index("person"),
        Index("ix_person_company_id_name", "company_id", "name", "id"),
        Index("ix_person_organization_id", "organization_id"),
        Index("ix_person_emails", "emails", postgresql_using="gin"),
        Index("ix_person_phones_e164", "phones_e164", postgresql_using="gin"),
        # Word-prefix search for `q` (built-in full text: the embedded server has no pg_trgm).
        Index(
            "ix_person_name_search",
            func.to_tsvector(literal_column("'simple'::regconfig"), column("name")),
            postgresql_using="gin",
        ),
        CheckConstraint(VISIBLE_TO_CHECK, name="visible_to"),
    )

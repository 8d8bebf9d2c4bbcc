"""Document templates and the documents made for deals; every statement is scoped by
`in_company`. What a document shows is read here from the records' own tables."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.models import Company, User
from leadflow.contacts.models import Organization, Person
from leadflow.documents.models import DealDocument, DocumentTemplate
from leadflow.tenancy import Caller, in_company, visible_to_caller


class TemplateRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, template_id: uuid.UUID) -> DocumentTemplate | None:
        return await self.session.scalar(
            select(DocumentTemplate).where(
                in_company(DocumentTemplate, self.caller), DocumentTemplate.id == template_id
            )
        )

    async def add(self, **values: Any) -> DocumentTemplate:
        template = DocumentTemplate(company_id=self.caller.company_id, **values)
        self.session.add(template)
        await self.session.flush()
        await self.session.refresh(template)
        return template

    async def update(self, template: DocumentTemplate, changes: dict[str, Any]) -> DocumentTemplate:
        for column, value in changes.items():
            setattr(template, column, value)
        await self.session.flush()
        await self.session.refresh(template)
        return template

    async def delete(self, template_id: uuid.UUID) -> bool:
        """The documents made with it keep their PDF (their `template_id` becomes null)."""
        deleted = await self.session.scalar(
            delete(DocumentTemplate)
            .where(in_company(DocumentTemplate, self.caller), DocumentTemplate.id == template_id)
            .returning(DocumentTemplate.id)
        )
        return deleted is not None


class DocumentRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def add(self, **values: Any) -> DealDocument:
        document = DealDocument(company_id=self.caller.company_id, **values)
        self.session.add(document)
        await self.session.flush()
        await self.session.refresh(document)
        return document

    async def company_name(self) -> str:
        name = await self.session.scalar(
            select(Company.name).where(Company.id == self.caller.company_id)
        )
        return name or ""

    async def user(self, user_id: uuid.UUID | None) -> User | None:
        if user_id is None:
            return None
        return await self.session.scalar(
            select(User).where(in_company(User, self.caller), User.id == user_id)
        )

    async def person(self, person_id: uuid.UUID | None) -> Person | None:
        if person_id is None:
            return None
        return await self.session.scalar(
            select(Person).where(visible_to_caller(Person, self.caller), Person.id == person_id)
        )

    async def organization(self, organization_id: uuid.UUID | None) -> Organization | None:
        if organization_id is None:
            return None
        return await self.session.scalar(
            select(Organization).where(
                visible_to_caller(Organization, self.caller), Organization.id == organization_id
            )
        )

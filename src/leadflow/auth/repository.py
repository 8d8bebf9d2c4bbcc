from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.models import ApiToken, Company, User, UserGroup
from leadflow.auth.tokens import hash_token, new_token
from leadflow.errors import UnknownReference
from leadflow.tenancy import Caller, in_company


def user_in_company(
    user_id: ColumnElement[Any], company_id: ColumnElement[Any]
) -> ColumnElement[bool]:
    """The check of an owner as SQL, for statements that check and write at once (see
    `UserRepository.ensure_exist`)."""
    return exists(select(User.id).where(User.company_id == company_id, User.id == user_id))


class CompanyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, name: str, max_open_deals: int | None) -> Company:
        company = Company(name=name, max_open_deals=max_open_deals)
        self.session.add(company)
        await self.session.flush()
        await self.session.refresh(company)
        return company

    async def get(self, company_id: uuid.UUID) -> Company | None:
        return await self.session.get(Company, company_id)


class UserRepository:
    """Users of one company; `company_id` comes from the caller, never from input."""

    def __init__(self, session: AsyncSession, company_id: uuid.UUID) -> None:
        self.session = session
        self.company_id = company_id

    async def email_taken(self, email: str) -> bool:
        found = await self.session.scalar(
            select(User.id).where(User.company_id == self.company_id, User.email == email)
        )
        return found is not None

    async def existing_ids(self, user_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        rows = await self.session.scalars(
            select(User.id).where(User.company_id == self.company_id, User.id.in_(user_ids))
        )
        return set(rows)

    async def ensure_exist(
        self, user_ids: Collection[uuid.UUID], loc: Sequence[str] = ("body", "owner_id")
    ) -> None:
        """422 `unknown_reference` at `loc` unless every id is a user of the company: the
        one check of an owner (leads, deals, contacts, activities, forms, conversion)."""
        wanted = set(user_ids)
        if wanted and wanted - await self.existing_ids(wanted):
            raise UnknownReference(list(loc), "No such user in your company.")

    async def add(
        self, email: str, name: str | None, role: str, group_id: uuid.UUID | None
    ) -> tuple[User, str]:
        """A new user and its first API token, returned in clear this once."""
        user = User(
            company_id=self.company_id, email=email, name=name, role=role, group_id=group_id
        )
        self.session.add(user)
        await self.session.flush()
        token = new_token()
        self.session.add(
            ApiToken(company_id=self.company_id, user_id=user.id, token_hash=hash_token(token))
        )
        await self.session.flush()
        await self.session.refresh(user)
        return user, token

    async def get(self, user_id: uuid.UUID, for_update: bool = False) -> User | None:
        stmt = select(User).where(User.company_id == self.company_id, User.id == user_id)
        return await self.session.scalar(stmt.with_for_update() if for_update else stmt)

    async def update(self, user: User, changes: dict[str, Any]) -> User:
        for name, value in changes.items():
            setattr(user, name, value)
        await self.session.flush()
        await self.session.refresh(user)
        return user

    async def active_admins(self) -> int:
        return len(
            (
                await self.session.scalars(
                    select(User.id).where(
                        User.company_id == self.company_id,
                        User.role == "admin",
                        User.deactivated_at.is_(None),
                    )
                )
            ).all()
        )


class TokenRepository:
    """API tokens of one company's users: the one writer of `api_token` besides a new
    user's first token (`UserRepository.add`)."""

    def __init__(self, session: AsyncSession, company_id: uuid.UUID) -> None:
        self.session = session
        self.company_id = company_id

    async def add(self, user_id: uuid.UUID, name: str) -> tuple[ApiToken, str]:
        secret = new_token()
        token = ApiToken(
            company_id=self.company_id, user_id=user_id, name=name, token_hash=hash_token(secret)
        )
        self.session.add(token)
        await self.session.flush()
        await self.session.refresh(token)
        return token, secret

    async def get(self, token_id: uuid.UUID) -> ApiToken | None:
        return await self.session.scalar(
            select(ApiToken)
            .where(ApiToken.company_id == self.company_id, ApiToken.id == token_id)
            .with_for_update()
        )

    async def delete(self, token: ApiToken) -> None:
        await self.session.delete(token)
        await self.session.flush()


class GroupRepository:
    def __init__(self, session: AsyncSession, caller: Caller) -> None:
        self.session = session
        self.caller = caller

    async def get(self, group_id: uuid.UUID) -> UserGroup | None:
        return await self.session.scalar(
            select(UserGroup).where(in_company(UserGroup, self.caller), UserGroup.id == group_id)
        )

    async def add(self, name: str) -> UserGroup:
        group = UserGroup(company_id=self.caller.company_id, name=name)
        self.session.add(group)
        await self.session.flush()
        await self.session.refresh(group)
        return group

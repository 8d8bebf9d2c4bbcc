"""Use cases of tenancy: a new company with its first admin, users of a company, their
API tokens. Every change that can refuse a token or change what a caller may do
NOTIFYs the API processes (`auth.callers.notify_auth_changed`)."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.callers import notify_auth_changed
from leadflow.auth.models import ApiToken, Company, User
from leadflow.auth.repository import (
    CompanyRepository,
    GroupRepository,
    TokenRepository,
    UserRepository,
)
from leadflow.auth.schemas import CompanyCreate, TokenCreate, UserCreate, UserUpdate
from leadflow.errors import Conflict, Forbidden, NotFound, UnknownReference
from leadflow.events import CompanyCreated, publish
from leadflow.pipelines.repository import create_default_pipeline
from leadflow.tenancy import Caller, Role


class EmailTaken(Conflict):
    slug = "email-taken"
    title = "A user with this email already exists in the company"


async def create_company(session: AsyncSession, data: CompanyCreate) -> tuple[Company, User, str]:
    company = await CompanyRepository(session).add(data.name, data.max_open_deals)
    user, token = await UserRepository(session, company.id).add(
        data.admin_email, data.admin_name, Role.admin.value, None
    )
    await create_default_pipeline(session, company.id)
    admin = Caller(company_id=company.id, user_id=user.id, role=Role.admin, group_id=None)
    await publish(session, CompanyCreated(id=company.id, company_id=company.id, actor=admin))
    return company, user, token


async def create_user(session: AsyncSession, caller: Caller, data: UserCreate) -> tuple[User, str]:
    users = UserRepository(session, caller.company_id)
    if await users.email_taken(data.email):
        raise EmailTaken(f"{data.email} is already a user of this company.")
    if (
        data.group_id is not None
        and await GroupRepository(session, caller).get(data.group_id) is None
    ):
        raise UnknownReference(["body", "group_id"], "No such group in this company.")
    return await users.add(data.email, data.name, data.role.value, data.group_id)


class LastAdmin(Conflict):
    slug = "last-admin"
    title = "The company would be left without an active admin"


async def _user(session: AsyncSession, caller: Caller, user_id: uuid.UUID) -> User:
    user = await UserRepository(session, caller.company_id).get(user_id, for_update=True)
    if user is None:
        raise NotFound("user")
    return user


async def _keeps_an_admin(session: AsyncSession, caller: Caller, user: User) -> None:
    users = UserRepository(session, caller.company_id)
    active_admin = user.role == Role.admin.value and user.deactivated_at is None
    if active_admin and await users.active_admins() <= 1:
        raise LastAdmin("Make another user an admin first.")


async def update_user(
    session: AsyncSession, caller: Caller, user_id: uuid.UUID, data: UserUpdate
) -> User:
    user = await _user(session, caller, user_id)
    changes = data.model_dump(exclude_unset=True)
    if "role" in changes:
        changes["role"] = data.role.value
        if data.role is not Role.admin:
            await _keeps_an_admin(session, caller, user)
    if (
        changes.get("group_id") is not None
        and await GroupRepository(session, caller).get(changes["group_id"]) is None
    ):
        raise UnknownReference(["body", "group_id"], "No such group in this company.")
    updated = await UserRepository(session, caller.company_id).update(user, changes)
    await notify_auth_changed(session)
    return updated


async def set_active(
    session: AsyncSession, caller: Caller, user_id: uuid.UUID, active: bool
) -> User:
    """Deactivate (its tokens are refused at once, everywhere; its records keep it as
    their owner) or activate a user again."""
    user = await _user(session, caller, user_id)
    if not active:
        await _keeps_an_admin(session, caller, user)
    if active == (user.deactivated_at is None):
        return user
    changes = {"deactivated_at": None if active else func.now()}
    updated = await UserRepository(session, caller.company_id).update(user, changes)
    await notify_auth_changed(session)
    return updated


def may_manage_tokens(caller: Caller, user_id: uuid.UUID) -> None:
    """An admin manages every user's tokens; a user its own."""
    if not caller.is_admin and caller.user_id != user_id:
        raise Forbidden("Only an admin manages another user's tokens.")


async def create_token(
    session: AsyncSession, caller: Caller, user_id: uuid.UUID, data: TokenCreate
) -> tuple[ApiToken, str]:
    may_manage_tokens(caller, user_id)
    await _user(session, caller, user_id)
    return await TokenRepository(session, caller.company_id).add(user_id, data.name)


async def _token(session: AsyncSession, caller: Caller, token_id: uuid.UUID) -> ApiToken:
    token = await TokenRepository(session, caller.company_id).get(token_id)
    if token is None or (not caller.is_admin and token.user_id != caller.user_id):
        raise NotFound("token")
    return token


async def revoke_token(session: AsyncSession, caller: Caller, token_id: uuid.UUID) -> None:
    """The token is refused at once, by every API process."""
    token = await _token(session, caller, token_id)
    await TokenRepository(session, caller.company_id).delete(token)
    await notify_auth_changed(session)


async def rotate_token(
    session: AsyncSession, caller: Caller, token_id: uuid.UUID
) -> tuple[ApiToken, str]:
    """A new secret under the same name; the old one is refused at once."""
    token = await _token(session, caller, token_id)
    tokens = TokenRepository(session, caller.company_id)
    user_id, name = token.user_id, token.name
    await tokens.delete(token)
    await notify_auth_changed(session)
    return await tokens.add(user_id, name)

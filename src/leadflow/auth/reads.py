"""The user and group answers of the GETs: statements compiled once per shape
(`leadflow.readpath`), rows straight to JSON, spelled as `UserRead` and `GroupRead` write
them (tests hold them alike). Every user of a company sees all its users and groups."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import DateTime, Integer, String, Uuid, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.models import ApiToken, User, UserGroup
from leadflow.auth.schemas import GroupRead, TokenRead, UserRead
from leadflow.pagination import Keyset, PageRequest, decode_cursor
from leadflow.readpath import ReadStatement, as_text, fields, page_of
from leadflow.tenancy import Caller, in_viewer_company, viewer_params

USERS_OLDEST_FIRST = Keyset(User.created_at, User.id)
GROUPS_BY_NAME = Keyset(UserGroup.name, UserGroup.id)

_USER_FIELDS = tuple(UserRead.model_fields)
_GROUP_FIELDS = tuple(GroupRead.model_fields)
_TOKEN_FIELDS = tuple(TokenRead.model_fields)
TOKENS_OLDEST_FIRST = Keyset(ApiToken.created_at, ApiToken.id)
_IDS = {"id", "company_id", "group_id", "user_id"}


def _columns(model: Any, names: tuple[str, ...]) -> list[Any]:
    return [as_text(getattr(model, n)) if n in _IDS else getattr(model, n) for n in names]


@functools.cache
def user_by_id() -> ReadStatement:
    return ReadStatement(
        select(*_columns(User, _USER_FIELDS)).where(
            in_viewer_company(User), User.id == bindparam("id", type_=Uuid)
        )
    )


@functools.cache
def user_page(after: bool) -> ReadStatement:
    stmt = select(*_columns(User, _USER_FIELDS)).where(in_viewer_company(User))
    if after:
        key = tuple_(
            bindparam("after_key", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=Uuid),
        )
        stmt = stmt.where(tuple_(User.created_at, User.id) > key)
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(User.created_at, User.id).limit(limit))


@functools.cache
def group_page(after: bool) -> ReadStatement:
    stmt = select(*_columns(UserGroup, _GROUP_FIELDS)).where(in_viewer_company(UserGroup))
    if after:
        key = tuple_(bindparam("after_key", type_=String), bindparam("after_id", type_=Uuid))
        stmt = stmt.where(tuple_(UserGroup.name, UserGroup.id) > key)
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(UserGroup.name, UserGroup.id).limit(limit))


async def user(session: AsyncSession, caller: Caller, user_id: uuid.UUID) -> dict[str, Any] | None:
    """`GET /users/{user_id}` and `GET /users/me`: a user of the caller's company, or None."""
    row = await user_by_id().fetchrow(session, {**viewer_params(caller), "id": user_id})
    return None if row is None else fields(row, _USER_FIELDS)


async def _page(
    session: AsyncSession,
    caller: Caller,
    page: PageRequest,
    keyset: Keyset,
    statement: Any,
    names: tuple[str, ...],
) -> dict[str, Any]:
    params: dict[str, Any] = {**viewer_params(caller), "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, keyset)
    rows = await statement(page.cursor is not None).fetch(session, params)
    return page_of(rows, page, keyset.key.key, lambda row: fields(row, names))


async def users(session: AsyncSession, caller: Caller, page: PageRequest) -> dict[str, Any]:
    """`GET /users`: the users of the caller's company, oldest first."""
    return await _page(session, caller, page, USERS_OLDEST_FIRST, user_page, _USER_FIELDS)


async def groups(session: AsyncSession, caller: Caller, page: PageRequest) -> dict[str, Any]:
    """`GET /groups`: the visibility groups of the caller's company, by name."""
    return await _page(session, caller, page, GROUPS_BY_NAME, group_page, _GROUP_FIELDS)


@functools.cache
def token_page(after: bool) -> ReadStatement:
    """A user's tokens (never their digests), oldest first: ix_api_token_user_id."""
    stmt = select(*_columns(ApiToken, _TOKEN_FIELDS)).where(
        in_viewer_company(ApiToken), ApiToken.user_id == bindparam("user_id", type_=Uuid)
    )
    if after:
        key = tuple_(
            bindparam("after_key", type_=DateTime(timezone=True)),
            bindparam("after_id", type_=Uuid),
        )
        stmt = stmt.where(tuple_(ApiToken.created_at, ApiToken.id) > key)
    limit = bindparam("limit", type_=Integer)
    return ReadStatement(stmt.order_by(ApiToken.created_at, ApiToken.id).limit(limit))


async def tokens(
    session: AsyncSession, caller: Caller, user_id: uuid.UUID, page: PageRequest
) -> dict[str, Any]:
    """`GET /users/{user_id}/tokens`: the user's API tokens, oldest first."""
    params: dict[str, Any] = {**viewer_params(caller), "user_id": user_id, "limit": page.limit + 1}
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, TOKENS_OLDEST_FIRST)
    rows = await token_page(page.cursor is not None).fetch(session, params)
    return page_of(rows, page, "created_at", lambda row: fields(row, _TOKEN_FIELDS))

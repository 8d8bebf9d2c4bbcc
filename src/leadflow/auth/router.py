from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from starlette.exceptions import HTTPException

from leadflow.auth import reads, service
from leadflow.auth.callers import CallerLookup
from leadflow.auth.repository import GroupRepository
from leadflow.auth.schemas import (
    CompanyCreate,
    CompanyCreated,
    CompanyRead,
    GroupCreate,
    GroupRead,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserCreated,
    UserRead,
    UserUpdate,
)
from leadflow.auth.service import EmailTaken
from leadflow.deps import AdminCaller, CurrentCaller, Session, operator
from leadflow.errors import found, responses
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response

router = APIRouter(tags=["companies and users"])


@router.post(
    "/companies",
    name="companies:create",
    status_code=status.HTTP_201_CREATED,
    response_model=CompanyCreated,
    responses=responses(401, 409, 422, EmailTaken),
)
async def create_company(
    data: CompanyCreate, session: Session, _: Annotated[None, Depends(operator)]
) -> CompanyCreated:
    """Create a company (tenant) with its first admin; operator token only."""
    company, user, token = await service.create_company(session, data)
    return CompanyCreated(
        company=CompanyRead.model_validate(company),
        user=UserRead.model_validate(user),
        api_token=token,
    )


@router.post(
    "/users",
    name="users:create",
    status_code=status.HTTP_201_CREATED,
    response_model=UserCreated,
    responses=responses(401, 403, 409, 422, EmailTaken),
)
async def create_user(data: UserCreate, session: Session, caller: AdminCaller) -> UserCreated:
    """Add a user to the caller's company (admins only); returns its API token once."""
    user, token = await service.create_user(session, caller, data)
    return UserCreated(user=UserRead.model_validate(user), api_token=token)


@router.get(
    "/users", name="users:list", response_model=Page[UserRead], responses=responses(401, 422)
)
async def list_users(session: Session, caller: CurrentCaller, page: PageParams) -> Response:
    """List the users of the caller's company, oldest first."""
    return json_response(await reads.users(session, caller, page))


@router.get("/users/me", name="users:me", response_model=UserRead, responses=responses(401))
async def me(session: Session, caller: CurrentCaller) -> Response:
    """The user the API token belongs to."""
    return json_response(found(await reads.user(session, caller, caller.user_id), "user"))


@router.get(
    "/users/{user_id}",
    name="users:get",
    response_model=UserRead,
    responses=responses(401, 404, 422),
)
async def get_user(user_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One user of the caller's company."""
    return json_response(found(await reads.user(session, caller, user_id), "user"))


@router.post(
    "/groups",
    name="groups:create",
    status_code=status.HTTP_201_CREATED,
    response_model=GroupRead,
    responses=responses(401, 403, 409, 422, EmailTaken),
)
async def create_group(data: GroupCreate, session: Session, caller: AdminCaller) -> GroupRead:
    """Create a visibility group (admins only)."""
    return GroupRead.model_validate(await GroupRepository(session, caller).add(data.name))


@router.get(
    "/groups", name="groups:list", response_model=Page[GroupRead], responses=responses(401, 422)
)
async def list_groups(session: Session, caller: CurrentCaller, page: PageParams) -> Response:
    """List the visibility groups of the company, by name."""
    return json_response(await reads.groups(session, caller, page))


def _forget_callers(request: Request) -> None:
    """This process forgets its cached callers now; the others when the write's NOTIFY
    arrives at its commit (`auth.callers`)."""
    callers: CallerLookup = request.app.state.callers
    callers.forget_all()


@router.api_route(
    "/users/me",
    methods=["PATCH"],
    name="users:me:other-methods",
    include_in_schema=False,
)
async def _me_is_not_a_user_id() -> None:
    """`/users/me` (GET) is no user id: its PATCH is 405, not the 422 of
    `/users/{user_id}` given a malformed id."""
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)


@router.patch(
    "/users/{user_id}",
    name="users:update",
    response_model=UserRead,
    responses=responses(401, 403, 404, 409, 422),
)
async def update_user(
    user_id: uuid.UUID, data: UserUpdate, request: Request, session: Session, caller: AdminCaller
) -> UserRead:
    """Change a user's name, role or group (admins only); seen by every API process at
    once. Demoting the company's last active admin is 409 `last-admin`."""
    user = await service.update_user(session, caller, user_id, data)
    _forget_callers(request)
    return UserRead.model_validate(user)


@router.post(
    "/users/{user_id}/deactivate",
    name="users:deactivate",
    response_model=UserRead,
    responses=responses(401, 403, 404, 409, 422),
)
async def deactivate_user(
    user_id: uuid.UUID, request: Request, session: Session, caller: AdminCaller
) -> UserRead:
    """Lock a user out (admins only): its tokens are refused by every API process within
    a second; its records keep it as their owner. The last active admin is 409."""
    user = await service.set_active(session, caller, user_id, active=False)
    _forget_callers(request)
    return UserRead.model_validate(user)


@router.post(
    "/users/{user_id}/activate",
    name="users:activate",
    response_model=UserRead,
    responses=responses(401, 403, 404, 422),
)
async def activate_user(
    user_id: uuid.UUID, request: Request, session: Session, caller: AdminCaller
) -> UserRead:
    """Let a deactivated user in again (admins only): its tokens work again."""
    user = await service.set_active(session, caller, user_id, active=True)
    _forget_callers(request)
    return UserRead.model_validate(user)


@router.get(
    "/users/{user_id}/tokens",
    name="users:tokens:list",
    response_model=Page[TokenRead],
    responses=responses(401, 403, 404, 422),
)
async def list_tokens(
    user_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """A user's API tokens, oldest first: names and last use, never the secrets. An
    admin sees every user's; a user its own."""
    service.may_manage_tokens(caller, user_id)
    found(await reads.user(session, caller, user_id), "user")
    return json_response(await reads.tokens(session, caller, user_id, page))


@router.post(
    "/users/{user_id}/tokens",
    name="users:tokens:create",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses=responses(401, 403, 404, 409, 422),
)
async def create_token(
    user_id: uuid.UUID, data: TokenCreate, session: Session, caller: CurrentCaller
) -> TokenCreated:
    """A new API token for the user (an admin for anyone, a user for itself); its secret
    is in this answer only (kept as a SHA-256 digest)."""
    token, secret = await service.create_token(session, caller, user_id, data)
    return TokenCreated(token=TokenRead.model_validate(token), secret=secret)


@router.delete(
    "/tokens/{token_id}",
    name="tokens:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422),
)
async def delete_token(
    token_id: uuid.UUID, request: Request, session: Session, caller: CurrentCaller
) -> None:
    """Revoke a token (an admin any of the company's, a user its own): refused by every
    API process within a second."""
    await service.revoke_token(session, caller, token_id)
    _forget_callers(request)


@router.post(
    "/tokens/{token_id}/rotate",
    name="tokens:rotate",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses=responses(401, 404, 409, 422),
)
async def rotate_token(
    token_id: uuid.UUID, request: Request, session: Session, caller: CurrentCaller
) -> TokenCreated:
    """Replace a token by a new one of the same name: the new secret is in this answer
    only; the old one is refused at once, by every API process."""
    token, secret = await service.rotate_token(session, caller, token_id)
    _forget_callers(request)
    return TokenCreated(token=TokenRead.model_validate(token), secret=secret)

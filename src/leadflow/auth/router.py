from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from leadflow.auth import reads, service
from leadflow.auth.repository import GroupRepository
from leadflow.auth.schemas import (
    CompanyCreate,
    CompanyCreated,
    CompanyRead,
    GroupCreate,
    GroupRead,
    UserCreate,
    UserCreated,
    UserRead,
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

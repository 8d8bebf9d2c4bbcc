from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from leadflow.schemas import JSON_NUMBER, Email, Input, Name, Output
from leadflow.tenancy import Role


class CompanyCreate(Input):
    name: Name = Field(examples=["Pipes and More"])
    admin_email: Email
    admin_name: Name | None = Field(default=None, examples=["Ana Silva"])
    max_open_deals: Annotated[int, Field(ge=0, le=10_000_000), JSON_NUMBER] | None = Field(
        default=None, description="Open deals allowed at once; null means unlimited."
    )


class CompanyRead(Output):
    id: uuid.UUID
    name: str
    max_open_deals: int | None
    created_at: datetime


class UserRead(Output):
    id: uuid.UUID
    company_id: uuid.UUID
    email: str
    name: str | None
    role: Role
    group_id: uuid.UUID | None
    created_at: datetime


class CompanyCreated(Output):
    company: CompanyRead
    user: UserRead
    api_token: str = Field(description="Shown only this once; store it safely.")


class UserCreate(Input):
    email: Email
    name: Name | None = None
    role: Role = Role.regular
    group_id: uuid.UUID | None = None


class UserCreated(Output):
    user: UserRead
    api_token: str = Field(description="Shown only this once; store it safely.")


class GroupCreate(Input):
    name: Name = Field(examples=["Field sales"])


class GroupRead(Output):
    id: uuid.UUID
    name: str
    created_at: datetime

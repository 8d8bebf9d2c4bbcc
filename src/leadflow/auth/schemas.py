from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from leadflow.schemas import JSON_NUMBER, Email, Input, Name, Output, Patch
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
    deactivated_at: datetime | None = Field(
        description="Set while the user is deactivated: its tokens are refused."
    )
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


_UNSET: Any = None  # omitted: unchanged; an explicit null is refused (`Patch`)


class UserUpdate(Patch):
    """The fields sent change; `group_id: null` takes the user out of its group."""

    name: Name | None = Field(default=None, examples=["Ana Silva"])
    role: Role = Field(default=_UNSET)
    group_id: uuid.UUID | None = Field(default=None)


TokenName = Annotated[str, Field(min_length=1, max_length=100, examples=["Zapier"])]


class TokenCreate(Input):
    name: TokenName


class TokenRead(Output):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="When the token was last used, to the minute; null if never."
    )


class TokenCreated(Output):
    token: TokenRead
    secret: str = Field(
        description="The token to send as `Authorization: Bearer ...`; shown only this once."
    )

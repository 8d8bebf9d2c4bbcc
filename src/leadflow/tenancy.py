"""Who is calling, and the one place that decides which rows they may see.

Every repository filters through `in_company()` (company) and, for records that
have `owner_id`/`visible_to`, through `visible_to_caller()`. Keeping both here makes
forgetting them a visible omission in review rather than a silent leak.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Uuid, and_, bindparam, column, or_, select, table

# The users table as group visibility reads it: a Core table of the three columns, so that
# this bottom module does not import `leadflow.auth`, which builds on it (a test holds the
# columns to `auth.models.User`).
USERS = table("app_user", column("id", Uuid), column("company_id", Uuid), column("group_id", Uuid))


class Visibility(enum.StrEnum):
    owner = "owner"
    group = "group"
    company = "company"


class Role(enum.StrEnum):
    admin = "admin"
    regular = "regular"


@dataclass(frozen=True, slots=True)
class Caller:
    company_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    group_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


# Both filters are built once per (model, caller) and reused: SQLAlchemy expressions are
# immutable, and building them again on every request was ~5% of a read's CPU. Callers
# of one process are few (one per API token in use); the bound keeps memory flat.
@lru_cache(maxsize=4096)
def in_company(model: Any, caller: Caller) -> ColumnElement[bool]:
    """Rows of the caller's company only."""
    return model.company_id == caller.company_id  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def visible_to_caller(model: Any, caller: Caller) -> ColumnElement[bool]:
    """Rows of the caller's company that `visible_to` lets the caller see.

    Admins see everything in the company; a regular user sees what they own, what is
    shared with the company, and group records whose owner is in the caller's group.
    """
    return _visible(
        model,
        in_company(model, caller),
        None if caller.is_admin else caller.user_id,
        caller.group_id,
        caller.company_id,
    )


def _visible(
    model: Any, same_company: ColumnElement[bool], user_id: Any, group_id: Any, company_id: Any
) -> ColumnElement[bool]:
    """The rule of `visible_to_caller`, over values or bind parameters alike (`user_id`
    None: an admin; `group_id` None: a user in no group)."""
    if user_id is None:
        return same_company
    seen: list[ColumnElement[bool]] = [
        model.owner_id == user_id,
        model.visible_to == Visibility.company.value,
    ]
    if group_id is not None:
        seen.append(
            and_(
                model.visible_to == Visibility.group.value,
                model.owner_id.in_(
                    select(USERS.c.id).where(
                        USERS.c.company_id == company_id, USERS.c.group_id == group_id
                    )
                ),
            )
        )
    return and_(same_company, or_(*seen))


class Viewer(enum.Enum):
    """What decides which rows a caller sees, without their ids: the shape of a read
    statement compiled once (`leadflow.readpath`), whose ids are bind parameters."""

    admin = "admin"
    regular = "regular"
    grouped = "grouped"  # a regular user in a group

    @classmethod
    def of(cls, caller: Caller) -> Viewer:
        if caller.is_admin:
            return cls.admin
        return cls.grouped if caller.group_id is not None else cls.regular


def viewer_params(caller: Caller) -> dict[str, Any]:
    """The bind parameters of `visible_to_viewer` and `in_viewer_company`."""
    return {
        "viewer_company_id": caller.company_id,
        "viewer_user_id": caller.user_id,
        "viewer_group_id": caller.group_id,
    }


_COMPANY = bindparam("viewer_company_id", type_=Uuid)
_USER = bindparam("viewer_user_id", type_=Uuid)
_GROUP = bindparam("viewer_group_id", type_=Uuid)


def in_viewer_company(model: Any) -> ColumnElement[bool]:
    return model.company_id == _COMPANY  # type: ignore[no-any-return]


@lru_cache(maxsize=256)
def visible_to_viewer(model: Any, viewer: Viewer) -> ColumnElement[bool]:
    """`visible_to_caller` with the caller's ids as bind parameters (`viewer_params`)."""
    return _visible(
        model,
        in_viewer_company(model),
        None if viewer is Viewer.admin else _USER,
        _GROUP if viewer is Viewer.grouped else None,
        _COMPANY,
    )

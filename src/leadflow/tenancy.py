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

from sqlalchemy import ColumnElement, Uuid, and_, bindparam, or_, select

from leadflow.auth.models import User


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
    same_company = in_company(model, caller)
    if caller.is_admin:
        return same_company
    seen: list[ColumnElement[bool]] = [
        model.owner_id == caller.user_id,
        model.visible_to == Visibility.company.value,
    ]
    if caller.group_id is not None:
        seen.append(
            and_(
                model.visible_to == Visibility.group.value,
                model.owner_id.in_(
                    select(User.id).where(
                        User.company_id == caller.company_id, User.group_id == caller.group_id
                    )
                ),
            )
        )
    return and_(same_company, or_(*seen))


# The same visibility for statements built once: the caller's values are the bind
# parameters `caller_company_id`, `caller_user_id` and `caller_group_id`, and only the
# kind of caller changes the statement's shape.


class CallerKind(enum.Enum):
    admin = "admin"
    regular = "regular"
    regular_in_group = "regular_in_group"


def caller_kind(caller: Caller) -> CallerKind:
    if caller.is_admin:
        return CallerKind.admin
    return CallerKind.regular if caller.group_id is None else CallerKind.regular_in_group


def caller_params(caller: Caller) -> dict[str, Any]:
    """The values of the bind parameters `visible_to_kind` uses."""
    return {
        "caller_company_id": caller.company_id,
        "caller_user_id": caller.user_id,
        "caller_group_id": caller.group_id,
    }


def visible_to_kind(model: Any, kind: CallerKind) -> ColumnElement[bool]:
    """`visible_to_caller` with bind parameters (see `caller_params`), for statements
    built once per kind of caller."""
    company_id = bindparam("caller_company_id", type_=Uuid)
    same_company: ColumnElement[bool] = model.company_id == company_id
    if kind is CallerKind.admin:
        return same_company
    user_id = bindparam("caller_user_id", type_=Uuid)
    seen: list[ColumnElement[bool]] = [
        model.owner_id == user_id,
        model.visible_to == Visibility.company.value,
    ]
    if kind is CallerKind.regular_in_group:
        seen.append(
            and_(
                model.visible_to == Visibility.group.value,
                model.owner_id.in_(
                    select(User.id).where(
                        User.company_id == company_id,
                        User.group_id == bindparam("caller_group_id", type_=Uuid),
                    )
                ),
            )
        )
    return and_(same_company, or_(*seen))

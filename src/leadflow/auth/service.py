"""Use cases of tenancy: a new company with its first admin, users of a company."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.models import Company, User
from leadflow.auth.repository import CompanyRepository, GroupRepository, UserRepository
from leadflow.auth.schemas import CompanyCreate, UserCreate
from leadflow.errors import Conflict, UnknownReference
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

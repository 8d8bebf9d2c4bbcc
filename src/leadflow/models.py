"""Every ORM module, imported so that `Base.metadata` knows all tables (alembic, tests)."""

from leadflow.auth.models import ApiToken, Company, User, UserGroup
from leadflow.contacts.models import Organization, Person
from leadflow.db import Base
from leadflow.idempotency import IdempotencyRecord
from leadflow.pipelines.models import Pipeline, Stage

__all__ = [
    "ApiToken",
    "Base",
    "Company",
    "IdempotencyRecord",
    "Organization",
    "Person",
    "Pipeline",
    "Stage",
    "User",
    "UserGroup",
]

"""Dependencies every router uses: the request's session and the authenticated caller.

The caller of an endpoint is found in two steps: authentication (who calls, or 401),
then the claim of the request's `Idempotency-Key` (leadflow.idempotency), which is
scoped by the caller's company and must come before anything else of the endpoint
writes or answers. `CurrentCaller`, `AdminCaller` and `operator` run both steps in that
order, as explicit steps of one dependency; looking up the token writes nothing and
claims nothing.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import idempotency
from leadflow.auth.callers import CallerLookup
from leadflow.auth.failures import failed
from leadflow.config import Settings
from leadflow.errors import Forbidden, Unauthorized
from leadflow.tenancy import Caller


async def get_session(request: Request) -> AsyncSession:
    """The session of the request's one transaction (opened by the request envelope)."""
    session: AsyncSession = request.state.db
    return session


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Session = Annotated[AsyncSession, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]

_BEARER_DESCRIPTION = "An API token of a user (`lf_...`)."
_bearer = HTTPBearer(auto_error=False, description=_BEARER_DESCRIPTION)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class CallerOfToken(HTTPBearer):
    """The user of the bearer token (401 without a valid one), once a POST's
    `Idempotency-Key` is claimed for their company (replayed, refused, or held for the
    envelope to record the answer); with `admin`, then 403 unless they are an admin.

    The bearer scheme itself, so that one dependency does all of it: every endpoint
    solves it, and FastAPI's solving of each nested dependency (the bearer header, then
    the caller, then the admin check) was a third of a read's framework time. The
    OpenAPI document names the same `HTTPBearer` scheme as before."""

    def __init__(self, *, admin: bool) -> None:
        super().__init__(
            auto_error=False, scheme_name="HTTPBearer", description=_BEARER_DESCRIPTION
        )
        self.admin = admin

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise await failed(request, Unauthorized("Send `Authorization: Bearer <api token>`."))
        session: AsyncSession = request.state.db
        callers: CallerLookup = request.app.state.callers
        caller = await callers.caller(session, credentials.credentials)
        if caller is None:
            raise await failed(request, Unauthorized("The API token is not valid."))
        await idempotency.claim(request, session, caller.company_id)
        if self.admin and not caller.is_admin:
            raise Forbidden("Only an admin of the company may do this.")
        return caller


CurrentCaller = Annotated[Caller, Depends(CallerOfToken(admin=False))]
AdminCaller = Annotated[Caller, Depends(CallerOfToken(admin=True))]


async def authenticated_operator(
    request: Request, settings: AppSettings, credentials: Credentials
) -> None:
    """The operator of the service (token from LEADFLOW_ADMIN_TOKEN), above all companies."""
    expected = settings.admin_token.get_secret_value() if settings.admin_token else None
    if credentials is None or not expected:
        raise await failed(
            request, Unauthorized("Send the operator token as `Authorization: Bearer <token>`.")
        )
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise await failed(request, Unauthorized("The operator token is not valid."))


async def operator(
    request: Request, session: Session, _: Annotated[None, Depends(authenticated_operator)]
) -> None:
    """The authenticated operator, once a POST's `Idempotency-Key` is claimed (operator
    requests belong to no company: their keys are scoped apart from every company's)."""
    await idempotency.claim(request, session, None)

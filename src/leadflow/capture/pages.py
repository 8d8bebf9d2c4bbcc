"""The hosted form page `/f/{form_id}`: server-rendered HTML that works without JavaScript.

Bots are dropped silently, so that they learn nothing: a filled honeypot field, or a
submission sooner than the minimum fill time after the page was served, gets the same
redirect to the thank-you page as a real submission, and nothing is written.

CSRF: the page has no cookies and no session, so a cross-site POST carries no ambient
authority that an attacker could not use directly. What the hidden `token` adds is
proof that a submission follows a page we served for this very form: it is an HMAC,
under the server key, of the form id, the time the page was served and a random nonce.
The time gives the minimum fill time and a maximum age; the nonce is recorded as the
delivery key (unique per form), so a double submit or a replayed token creates one lead.

These routes serve HTML to people, not JSON to programs, so they are left out of the
OpenAPI document (its clients and property-based tests expect problem+json errors).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from leadflow import attribution
from leadflow.capture import service
from leadflow.capture.ratelimit import TooManyRequests, limiter_for
from leadflow.capture.repository import CaptureRepository, CapturingForm
from leadflow.capture.signing import keyring_for
from leadflow.deps import AppSettings, Session
from leadflow.errors import DomainError
from leadflow.normalize import normalize_email, normalize_phone
from leadflow.ratelimit import client_address

# A page left open longer than this asks to be submitted again.
MAX_TOKEN_AGE_SECONDS = 24 * 3600
# Clocks of several API processes may differ a little.
CLOCK_SKEW_SECONDS = 60
HONEYPOT = "website"
# The security headers (a policy of no script, only our inline style, posting back to
# us) are set for every response by leadflow.security; pages hold a single-use token.
_HEADERS = {"Cache-Control": "no-store"}

_templates = Environment(
    loader=PackageLoader("leadflow.capture", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class PageField:
    name: str
    label: str
    kind: str
    max_length: int
    autocomplete: str = "off"
    hint: str = ""


FIELDS = (
    PageField("name", "Name", "text", 200, "name"),
    PageField("email", "Email", "email", 254, "email"),
    PageField("phone", "Phone", "tel", 64, "tel", "(with country code, e.g. +44 20 7946 0958)"),
    PageField("organization", "Organization", "text", 300, "organization"),
    PageField("message", "Message", "textarea", 5000),
)
_IDS = {f.name: f"lf-{f.name}" for f in FIELDS}

router = APIRouter(include_in_schema=False)


def _html(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    body = _templates.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status_code, headers=_HEADERS)


def _not_found() -> HTMLResponse:
    return _html(
        "message.html",
        status.HTTP_404_NOT_FOUND,
        form_name="Form not found",
        heading="Form not found",
        text="This form does not exist or was removed.",
    )


def _form_page(
    form: CapturingForm,
    token: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    tracking: dict[str, str] | None = None,
) -> HTMLResponse:
    return _html(
        "form.html",
        status_code,
        form_name=form.name,
        fields=FIELDS,
        ids=_IDS,
        token=token,
        values=values or {},
        errors=errors or {},
        tracking=tracking or {},
    )


async def _form(session: Any, form_id: str) -> tuple[CapturingForm, uuid.UUID | None] | None:
    try:
        parsed = uuid.UUID(form_id)
    except ValueError:
        return None
    return await CaptureRepository(session).form_and_owner(parsed)


def _thanks_url(request: Request, form: CapturingForm) -> str:
    return f"{request.scope.get('root_path', '')}/f/{form.id}/thanks"


@router.get("/f/{form_id}", name="pages:form", response_class=HTMLResponse)
async def form_page(form_id: str, request: Request, session: Session) -> Response:
    """The hosted form page."""
    found = await _form(session, form_id)
    if found is None:
        return _not_found()
    form, _ = found
    token = keyring_for(request.app.state).page_token(form.id, int(time.time()))
    # The page's own query string (`?utm_source=news&utm_campaign=spring`), carried as
    # hidden fields into the submission: rendered here, so no script is needed (the
    # page's policy allows none) and it works with JavaScript off.
    return _form_page(form, token, tracking=attribution.from_query(request.query_params))


@router.post("/f/{form_id}", name="pages:submit", response_class=HTMLResponse)
async def submit(
    form_id: str, request: Request, session: Session, settings: AppSettings
) -> Response:
    """Create the lead from a submitted hosted form, then show the thank-you page."""
    limiter = limiter_for(request.app.state)
    try:
        await limiter.hit_client("page", client_address(request))
    except TooManyRequests as exc:
        return _too_many(exc)
    found = await _form(session, form_id)
    if found is None:
        return _not_found()
    form, owner_id = found
    submitted = await request.form(
        max_files=0, max_fields=len(FIELDS) + len(attribution.FIELDS) + 4
    )
    values = {
        f.name: text.strip()
        for f in FIELDS
        if isinstance(text := submitted.get(f.name), str) and text.strip()
    }
    tracking = attribution.from_query(
        {name: text for name in attribution.FIELDS if isinstance(text := submitted.get(name), str)}
    )
    thanks = RedirectResponse(_thanks_url(request, form), status_code=status.HTTP_303_SEE_OTHER)
    if str(submitted.get(HONEYPOT) or "").strip():
        return thanks
    keyring = keyring_for(request.app.state)
    now = time.time()
    token = str(submitted.get("token") or "")
    issued = keyring.check_page_token(form.id, token)
    if issued is None or not (
        now - MAX_TOKEN_AGE_SECONDS <= issued.issued_at <= now + CLOCK_SKEW_SECONDS
    ):
        fresh = keyring.page_token(form.id, int(now))
        message = "This page was open too long. Please check your details and send them again."
        return _form_page(
            form,
            fresh,
            values,
            {"form": message},
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            tracking,
        )
    if now - issued.issued_at < settings.form_page_min_fill_seconds:
        return thanks
    prospect, errors = _validate(values, settings.default_phone_region)
    if prospect is None:
        return _form_page(
            form, token, values, errors, status.HTTP_422_UNPROCESSABLE_CONTENT, tracking
        )
    prospect.attribution = {name: tracking.get(name) for name in attribution.FIELDS}
    try:
        await limiter.hit_form("page", str(form.id))
    except TooManyRequests as exc:
        return _too_many(exc)
    try:
        await service.deliver(session, form, owner_id, f"page:{issued.nonce}", prospect, "web_form")
    except DomainError as exc:
        return _html(
            "message.html",
            exc.status,
            form_name=form.name,
            heading="We could not accept this submission",
            text="Please try again later.",
        )
    return thanks


@router.get("/f/{form_id}/thanks", name="pages:thanks", response_class=HTMLResponse)
async def thanks_page(form_id: str, request: Request, session: Session) -> Response:
    """The thank-you page shown after a submission."""
    found = await _form(session, form_id)
    if found is None:
        return _not_found()
    form, _ = found
    form_url = f"{request.scope.get('root_path', '')}/f/{form.id}"
    return _html("thanks.html", form_name=form.name, form_url=form_url)


def _too_many(exc: TooManyRequests) -> HTMLResponse:
    retry_after = int(exc.extensions["retry_after"])
    response = _html(
        "message.html",
        status.HTTP_429_TOO_MANY_REQUESTS,
        form_name="Too many submissions",
        heading="Too many submissions",
        text=f"Please wait {retry_after} seconds, then send the form again.",
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def _validate(
    values: dict[str, str], phone_region: str | None
) -> tuple[service.Prospect | None, dict[str, str]]:
    errors: dict[str, str] = {}
    for f in FIELDS:
        if len(values.get(f.name, "")) > f.max_length:
            errors[f.name] = f"{f.label}: use at most {f.max_length} characters."
    email = values.get("email")
    if email and "email" not in errors:
        try:
            email = normalize_email(email)
        except ValueError:
            errors["email"] = "Enter an email address like name@example.com."
    phone = values.get("phone")
    phone_e164 = None
    if phone and "phone" not in errors:
        try:
            phone_e164 = normalize_phone(phone, phone_region)
        except ValueError:
            errors["phone"] = "Enter a phone number with its country code, like +44 20 7946 0958."
    if not (values.get("name") or values.get("email") or values.get("organization")):
        errors["name"] = "Enter your name, email or organization."
    if errors:
        return None, errors
    return (
        service.Prospect(
            person_name=values.get("name"),
            email=email,
            phone=phone,
            phone_e164=phone_e164,
            organization_name=values.get("organization"),
            message=values.get("message"),
        ),
        {},
    )

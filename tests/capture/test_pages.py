"""The hosted form page /f/{form_id}: HTML without JavaScript, bots dropped silently."""

from __future__ import annotations

import re
import time
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.capture.ratelimit import CaptureLimiter
from leadflow.capture.signing import Keyring
from leadflow.config import Settings
from tests.capture.helpers import count, create_form
from tests.factories import create_company

ANA = {
    "name": "Ana Silva",
    "email": "Ana.Silva@example.com",
    "phone": "+351 912 345 678",
    "organization": "Pipes and More",
    "message": "Hello!",
}


def _token(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found, "the page carries a token"
    return found.group(1)


def _filled_token(keyring: Keyring, form_id: str, seconds_ago: float = 10) -> str:
    """A token as if the page had been served `seconds_ago`."""
    return keyring.page_token(uuid.UUID(form_id), int(time.time() - seconds_ago))


async def test_the_hosted_page_renders_an_accessible_form_without_script(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin, name="Contact <us>")

    response = await client.get(f"/f/{form['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<html lang="en">' in page
    assert "<h1>Contact &lt;us&gt;</h1>" in page, "output is escaped"
    for name in ("name", "email", "phone", "organization", "message"):
        assert f'<label for="lf-{name}">' in page
        assert f'id="lf-{name}" name="{name}"' in page
    assert 'name="website"' in page, "the honeypot"
    assert "<script" not in page
    assert "http://" not in page and "https://" not in page, "no outside assets"
    assert "script-src" not in response.headers["content-security-policy"]
    assert _token(page)


async def test_an_unknown_form_page_is_404_html(client: httpx.AsyncClient) -> None:
    for path in (f"/f/{uuid.uuid4()}", "/f/not-a-uuid"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")


async def test_a_submission_creates_a_lead_with_source_web_form_and_shows_thanks(
    client: httpx.AsyncClient, connection: AsyncConnection, keyring: Keyring
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    response = await client.post(
        f"/f/{form['id']}", data={**ANA, "website": "", "token": _filled_token(keyring, form["id"])}
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/f/{form['id']}/thanks"
    thanks = await client.get(response.headers["location"])
    assert thanks.status_code == 200
    assert "Thank you" in thanks.text
    lead = (
        (
            await connection.execute(
                text("SELECT * FROM lead WHERE company_id = :c"), {"c": uuid.UUID(admin.company_id)}
            )
        )
        .mappings()
        .one()
    )
    assert lead["source"] == "web_form"
    assert lead["title"] == "Ana Silva lead"
    assert lead["prospect_email"] == "ana.silva@example.com"
    assert lead["prospect_phone_e164"] == "+351912345678"
    assert lead["prospect_organization_name"] == "Pipes and More"
    assert lead["fields"] == {"message": "Hello!"}


async def test_a_token_served_with_the_page_works_once_past_the_minimum_fill_time(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"form_page_min_fill_seconds": 0})
    admin = await create_company(client)
    form = await create_form(client, admin)
    token = _token((await client.get(f"/f/{form['id']}")).text)

    first = await client.post(f"/f/{form['id']}", data={**ANA, "token": token})
    again = await client.post(f"/f/{form['id']}", data={**ANA, "token": token})

    assert (first.status_code, again.status_code) == (303, 303)
    assert await count(connection, "lead", admin.company_id) == 1, "a double submit is one lead"


async def test_a_filled_honeypot_shows_thanks_and_creates_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection, keyring: Keyring
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    response = await client.post(
        f"/f/{form['id']}",
        data={**ANA, "website": "http://spam.example", "token": _filled_token(keyring, form["id"])},
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/f/{form['id']}/thanks"
    assert await count(connection, "lead", admin.company_id) == 0


async def test_a_too_fast_submission_shows_thanks_and_creates_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    token = _token((await client.get(f"/f/{form['id']}")).text)

    response = await client.post(f"/f/{form['id']}", data={**ANA, "token": token})

    assert response.status_code == 303
    assert await count(connection, "lead", admin.company_id) == 0


async def test_an_invalid_submission_re_renders_the_form_with_messages_and_values(
    client: httpx.AsyncClient, connection: AsyncConnection, keyring: Keyring
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    token = _filled_token(keyring, form["id"])

    bad_email = await client.post(f"/f/{form['id']}", data={**ANA, "email": "ana@", "token": token})
    empty = await client.post(f"/f/{form['id']}", data={"message": "<b>hi</b>", "token": token})

    assert bad_email.status_code == 422
    assert bad_email.headers["content-type"].startswith("text/html")
    assert "Enter an email address like name@example.com." in bad_email.text
    assert 'aria-invalid="true" aria-describedby="lf-email-error"' in bad_email.text
    assert 'value="Ana Silva"' in bad_email.text and 'value="ana@"' in bad_email.text
    assert empty.status_code == 422
    assert "Enter your name, email or organization." in empty.text
    assert "&lt;b&gt;hi&lt;/b&gt;</textarea>" in empty.text, "values are kept, escaped"
    assert await count(connection, "lead", admin.company_id) == 0


async def test_a_forged_or_foreign_token_re_renders_the_form(
    client: httpx.AsyncClient, connection: AsyncConnection, keyring: Keyring
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)
    other = await create_form(client, admin)
    old = keyring.page_token(uuid.UUID(form["id"]), int(time.time()) - 3 * 86400)

    for token in ("", "123.abc.def", _filled_token(keyring, other["id"]), old):
        response = await client.post(f"/f/{form['id']}", data={**ANA, "token": token})
        assert response.status_code == 422, token
        assert "send them again" in response.text
        assert _token(response.text) != token
    assert await count(connection, "lead", admin.company_id) == 0


async def test_flooding_the_page_is_429_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, keyring: Keyring
) -> None:
    app.state.capture_limiter = CaptureLimiter(
        settings.model_copy(update={"capture_rate_per_client": "2/minute"})
    )
    admin = await create_company(client)
    form = await create_form(client, admin)

    statuses = []
    for _ in range(3):
        data = {**ANA, "token": _filled_token(keyring, form["id"])}
        statuses.append(await client.post(f"/f/{form['id']}", data=data))

    assert [r.status_code for r in statuses] == [303, 303, 429]
    assert int(statuses[-1].headers["retry-after"]) >= 1
    assert "Too many submissions" in statuses[-1].text

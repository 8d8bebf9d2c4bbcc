"""Documents: templates rendered to PDF for a deal (stored as a file of the deal) and for
an invoice; read back with pypdf. Values are text, never markup."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import httpx
from pypdf import PdfReader

from tests.factories import API, Actor, create_company, create_deal, create_lead, create_user
from tests.invoices.helpers import deal_with_items, draft, issue

HOSTILE = 'Evil <script>alert(1)</script> #set text(red) *bold* $x$ ] [ "q" \\ @ref #import'


def _text(pdf: bytes) -> str:
    """The PDF's text with white space folded, as a reader would see it."""
    assert pdf.startswith(b"%PDF-")
    pages = PdfReader(io.BytesIO(pdf)).pages
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages))


async def _templates(client: httpx.AsyncClient, actor: Actor) -> dict[str, str]:
    listed = await client.get(f"{API}/document-templates", headers=actor.headers)
    assert listed.status_code == 200, listed.text
    return {t["name"]: t["id"] for t in listed.json()["data"]}


async def _document(
    client: httpx.AsyncClient, actor: Actor, deal_id: str, template_id: str
) -> httpx.Response:
    return await client.post(
        f"{API}/deals/{deal_id}/documents", json={"template_id": template_id}, headers=actor.headers
    )


async def _content(client: httpx.AsyncClient, actor: Actor, document: dict[str, Any]) -> bytes:
    url = f"{API}/deals/{document['deal_id']}/files/{document['file_id']}/content"
    response = await client.get(url, headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content


async def test_a_new_company_has_a_quote_and_an_invoice_template(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    assert sorted(await _templates(client, admin)) == ["Invoice", "Quote"]


async def test_a_quote_is_rendered_to_pdf_and_stored_as_a_file_of_the_deal(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client, name="Brass & Sons")
    world = await deal_with_items(client, admin)
    deal_id = world["deal"]["id"]
    made = await _document(client, admin, deal_id, (await _templates(client, admin))["Quote"])
    assert made.status_code == 201, made.text
    document = made.json()
    assert document["file_name"] == "Quote - Kitchen refit.pdf"
    files = await client.get(f"{API}/deals/{deal_id}/files", headers=admin.headers)
    assert [f["id"] for f in files.json()["data"]] == [document["file_id"]]
    text = _text(await _content(client, admin, document))
    for expected in (
        "Brass & Sons",
        "Quote",
        "Kitchen refit",
        "Acme Plumbing Ltd",
        "1 Pipe Street, Leeds",
        "Ana Silva",
        "Copper pipe",
        "Mixer tap",
        "300.00 EUR",
    ):
        assert expected in text, (expected, text)
    listed = await client.get(f"{API}/deals/{deal_id}/documents", headers=admin.headers)
    assert listed.json()["data"] == [document]


async def test_user_text_renders_as_text_not_markup(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin, title=HOSTILE)
    made = await _document(client, admin, deal["id"], (await _templates(client, admin))["Quote"])
    assert made.status_code == 201, made.text
    assert HOSTILE in _text(await _content(client, admin, made.json()))


async def test_an_invoice_renders_to_pdf(client: httpx.AsyncClient) -> None:
    admin = await create_company(client, name="Brass & Sons")
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"], notes=HOSTILE)
    drafted = await client.get(f"{API}/invoices/{invoice['id']}/pdf", headers=admin.headers)
    assert drafted.status_code == 200, drafted.text
    assert "Draft invoice" in _text(drafted.content)
    await issue(client, admin, invoice["id"], issue_date="2026-12-05", due_date="2026-12-19")
    response = await client.get(f"{API}/invoices/{invoice['id']}/pdf", headers=admin.headers)
    assert response.headers["content-type"] == "application/pdf"
    assert "INV-2026-000001.pdf" in response.headers["content-disposition"]
    text = _text(response.content)
    for expected in (
        "Invoice",
        "INV-2026-000001",
        "Acme Plumbing Ltd",
        "2026-12-19",
        "Copper pipe",
        "300.00 EUR",
        HOSTILE,
    ):
        assert expected in text, (expected, text)


async def test_a_company_template_renders_and_a_bad_one_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin, title="Solar roof")
    body = "= Order for {{ deal.title }}\n{% for i in line_items %}{{ i.name }}{% endfor %}"
    created = await client.post(
        f"{API}/document-templates", json={"name": "Order", "body": body}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    made = await _document(client, admin, deal["id"], created.json()["id"])
    assert "Order for Solar roof" in _text(await _content(client, admin, made.json()))
    syntax = await client.post(
        f"{API}/document-templates", json={"name": "x", "body": "{% for %}"}, headers=admin.headers
    )
    assert syntax.status_code == 422
    for bad in ('#import "@preview/cetz:0.3.0"', '#eval("1 + 1")', "#unknown_function()"):
        template = await client.post(
            f"{API}/document-templates", json={"name": "x", "body": bad}, headers=admin.headers
        )
        assert template.status_code == 201, template.text
        refused = await _document(client, admin, deal["id"], template.json()["id"])
        assert refused.status_code == 422, (bad, refused.text)
    files = await client.get(f"{API}/deals/{deal['id']}/files", headers=admin.headers)
    assert len(files.json()["data"]) == 1


async def test_documents_follow_visibility_and_isolation(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin, visible_to="owner")
    quote = (await _templates(client, admin))["Quote"]
    member = await create_user(client, admin)
    assert (await _document(client, member, deal["id"], quote)).status_code == 404
    assert (
        await client.get(f"{API}/deals/{deal['id']}/documents", headers=member.headers)
    ).status_code == 404
    other = await create_company(client)
    own = await create_deal(client, other)
    assert (await _document(client, other, own["id"], quote)).status_code == 422
    assert (
        await client.get(f"{API}/document-templates/{quote}", headers=other.headers)
    ).status_code == 404
    assert (
        await client.get(f"{API}/invoices/{uuid.uuid4()}/pdf", headers=admin.headers)
    ).status_code == 404


async def test_leads_refuse_documents_and_deals_keep_them(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    for method in ("GET", "POST"):
        refused = await client.request(
            method, f"{API}/leads/{lead['id']}/documents", json={}, headers=admin.headers
        )
        assert refused.status_code == 409 and refused.json()["capability"] == "documents"
    table = (await client.get(f"{API}/capabilities", headers=admin.headers)).json()
    assert table["deal"]["documents"] is True and table["lead"]["documents"] is False
    deal = await create_deal(client, admin)
    await _document(client, admin, deal["id"], (await _templates(client, admin))["Quote"])
    converted = await client.post(f"{API}/deals/{deal['id']}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    left = converted.json()["conversion"]["left_on_deal"]
    assert (left["documents"], left["files"]) == (1, 1)

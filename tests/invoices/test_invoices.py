"""Invoices of a deal: drafts from line items (a snapshot), edits of drafts only, issue
with a number, paid and void; lists; visibility and isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from tests.factories import (
    API,
    create_company,
    create_deal,
    create_organization,
    create_person,
    create_user,
)
from tests.invoices.helpers import deal_with_items, draft, issue

LINE = {"name": "Work", "quantity": "3", "unit_price": "0.335", "tax_rate": "19"}


async def test_a_draft_is_made_from_the_deals_line_items_and_its_organization(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"], due_date="2026-12-31")
    assert invoice["status"] == "draft" and invoice["number"] is None
    assert invoice["title"] == "Kitchen refit" and invoice["currency"] == "EUR"
    assert invoice["bill_to"] == {
        "name": "Acme Plumbing Ltd",
        "address": "1 Pipe Street, Leeds",
        "tax_id": None,
        "email": "ana@acme.example.com",
        "person_id": world["person"]["id"],
        "organization_id": world["organization"]["id"],
    }
    pipe, tap = invoice["lines"]
    assert (pipe["name"], pipe["quantity"], pipe["net"], pipe["tax"], pipe["total"]) == (
        "Copper pipe", "2", "100.00", "20.00", "120.00",
    )  # fmt: skip
    assert (tap["name"], tap["discount_amount"], tap["net"], tap["total"]) == (
        "Mixer tap", "20.00", "180.00", "180.00",
    )  # fmt: skip
    assert [pipe["position"], tap["position"]] == [1, 2]
    assert (invoice["subtotal"], invoice["discount_total"], invoice["tax_total"]) == (
        "280.00", "20.00", "20.00",
    )  # fmt: skip
    assert invoice["total"] == "300.00"
    got = await client.get(f"{API}/invoices/{invoice['id']}", headers=admin.headers)
    assert got.json() == invoice


async def test_totals_sent_by_a_client_are_ignored(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"], total="1.00", tax_total="0.00")
    assert invoice["total"] == "300.00"
    lines = [{**LINE, "tax_method": "inclusive", "total": "999.99", "net": "1"}]
    edited = await client.patch(
        f"{API}/invoices/{invoice['id']}",
        json={"lines": lines, "total": "5.00"},
        headers=admin.headers,
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["lines"][0]["total"] == "1.01" and body["lines"][0]["net"] == "0.84"
    assert (body["subtotal"], body["tax_total"], body["total"]) == ("0.84", "0.17", "1.01")


async def test_a_draft_is_edited_and_its_totals_follow(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"])
    lines = [
        {"name": "Exclusive", "unit_price": "100", "tax_rate": "20"},
        {"name": "Inclusive", "unit_price": "119", "tax_rate": "19", "tax_method": "inclusive"},
        {"name": "None", "unit_price": "50", "tax_rate": "19", "tax_method": "none"},
        {"name": "Amount off", "quantity": "2", "unit_price": "10", "discount": "5",
         "discount_type": "amount"},
    ]  # fmt: skip
    response = await client.patch(
        f"{API}/invoices/{invoice['id']}",
        json={
            "lines": lines,
            "notes": "Thank you",
            "issue_date": "2026-12-01",
            "bill_to": {"name": "Someone Else", "tax_id": "GB123"},
        },
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [line["total"] for line in body["lines"]] == ["120.00", "119.00", "50.00", "15.00"]
    assert body["subtotal"] == "265.00" and body["tax_total"] == "39.00"
    assert body["total"] == "304.00" and body["discount_total"] == "5.00"
    assert body["bill_to"]["name"] == "Someone Else" and body["bill_to"]["tax_id"] == "GB123"
    assert body["notes"] == "Thank you" and body["issue_date"] == "2026-12-01"


async def test_an_amount_discount_larger_than_its_line_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"])
    line = {"name": "x", "unit_price": "10", "discount": "11", "discount_type": "amount"}
    response = await client.patch(
        f"{API}/invoices/{invoice['id']}", json={"lines": [line]}, headers=admin.headers
    )
    assert response.status_code == 422


async def test_issue_numbers_the_invoice_and_makes_it_read_only(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"])
    issued = await issue(client, admin, invoice["id"], issue_date="2026-12-05")
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["status"] == "issued" and body["number"] == "INV-2026-000001"
    assert body["issue_date"] == "2026-12-05" and body["issued_at"] is not None
    url = f"{API}/invoices/{invoice['id']}"
    for response in (
        await client.patch(url, json={"notes": "changed"}, headers=admin.headers),
        await client.patch(url, json={"lines": [LINE]}, headers=admin.headers),
        await client.delete(url, headers=admin.headers),
        await issue(client, admin, invoice["id"]),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("/invoice-not-draft")
    assert (await client.get(url, headers=admin.headers)).json() == body


async def test_void_keeps_the_number_used(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    first = await draft(client, admin, world["deal"]["id"])
    numbered = (await issue(client, admin, first["id"], issue_date="2026-12-05")).json()
    voided = await client.post(
        f"{API}/invoices/{first['id']}/void", json={"reason": "Wrong"}, headers=admin.headers
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "void"
    assert voided.json()["number"] == numbered["number"] == "INV-2026-000001"
    assert voided.json()["void_reason"] == "Wrong"
    second = await draft(client, admin, world["deal"]["id"])
    renumbered = (await issue(client, admin, second["id"], issue_date="2026-12-05")).json()
    assert renumbered["number"] == "INV-2026-000002"
    again = await client.post(
        f"{API}/invoices/{first['id']}/void", json={"reason": "x"}, headers=admin.headers
    )
    assert again.status_code == 409


async def test_mark_paid_only_after_issue(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"])
    url = f"{API}/invoices/{invoice['id']}/mark-paid"
    body = {"paid_date": "2026-12-20"}
    assert (await client.post(url, json=body, headers=admin.headers)).status_code == 409
    await issue(client, admin, invoice["id"], issue_date="2026-12-05")
    paid = await client.post(url, json=body, headers=admin.headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid" and paid.json()["paid_date"] == "2026-12-20"
    assert (await client.post(url, json=body, headers=admin.headers)).status_code == 409


async def test_the_number_format_is_a_company_setting(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    settings = await client.get(f"{API}/invoice-settings", headers=admin.headers)
    year = datetime.now(UTC).year
    assert settings.json() == {
        "number_format": "INV-{year}-{seq:06d}",
        "last_seq": 0,
        "next_number": f"INV-{year}-000001",
    }
    changed = await client.patch(
        f"{API}/invoice-settings",
        json={"number_format": "F{seq:04d}/{year}"},
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"])
    issued = await issue(client, admin, invoice["id"], issue_date="2027-01-02")
    assert issued.json()["number"] == "F0001/2027"
    bad = await client.patch(
        f"{API}/invoice-settings", json={"number_format": "NO-SEQ-{year}"}, headers=admin.headers
    )
    assert bad.status_code == 422
    regular = await create_user(client, admin)
    refused = await client.patch(
        f"{API}/invoice-settings", json={"number_format": "{seq}"}, headers=regular.headers
    )
    assert refused.status_code == 403


async def test_the_invoice_is_a_snapshot_of_products_and_contacts(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"])
    h = admin.headers
    await client.patch(
        f"{API}/products/{world['pipe']['id']}",
        json={"name": "Renamed", "unit_price": "99.00"},
        headers=h,
    )
    await client.patch(
        f"{API}/organizations/{world['organization']['id']}",
        json={"name": "New Name", "address": "Elsewhere"},
        headers=h,
    )
    await client.patch(
        f"{API}/persons/{world['person']['id']}",
        json={"emails": ["new@acme.example.com"]},
        headers=h,
    )
    items = await client.get(f"{API}/deals/{world['deal']['id']}/products", headers=h)
    item_id = items.json()["data"][0]["id"]
    await client.patch(
        f"{API}/deals/{world['deal']['id']}/products/{item_id}", json={"quantity": 7}, headers=h
    )
    again = (await client.get(f"{API}/invoices/{invoice['id']}", headers=h)).json()
    assert again == invoice


async def test_lists_filter_by_deal_and_status(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    deal_id = world["deal"]["id"]
    first = await draft(client, admin, deal_id)
    second = await draft(client, admin, deal_id)
    await issue(client, admin, second["id"])
    other = await create_deal(client, admin, value={"amount": "1.00", "currency": "EUR"})
    third = await draft(client, admin, other["id"])
    h = admin.headers

    async def ids(url: str) -> list[str]:
        response = await client.get(url, headers=h)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["data"]]

    assert await ids(f"{API}/invoices") == [first["id"], second["id"], third["id"]]
    assert await ids(f"{API}/invoices?deal_id={deal_id}") == [first["id"], second["id"]]
    assert await ids(f"{API}/invoices?status=issued") == [second["id"]]
    assert await ids(f"{API}/invoices?status=draft&deal_id={deal_id}") == [first["id"]]
    assert await ids(f"{API}/deals/{deal_id}/invoices") == [first["id"], second["id"]]
    page = await client.get(f"{API}/invoices?limit=2", headers=h)
    cursor = page.json()["next_cursor"]
    assert await ids(f"{API}/invoices?limit=2&cursor={cursor}") == [third["id"]]


async def test_a_deal_without_currency_needs_one_for_its_invoice(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    deal = await create_deal(client, admin)
    url = f"{API}/deals/{deal['id']}/invoices"
    assert (await client.post(url, json={}, headers=admin.headers)).status_code == 422
    made = await client.post(url, json={"currency": "USD"}, headers=admin.headers)
    assert made.status_code == 201 and made.json()["currency"] == "USD"
    assert made.json()["lines"] == [] and made.json()["total"] == "0.00"
    refused = await issue(client, admin, made.json()["id"])
    assert refused.status_code == 409 and refused.json()["type"].endswith("/invoice-empty")


async def test_invoices_follow_their_deals_visibility(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin, visible_to="owner")
    invoice = await draft(client, admin, world["deal"]["id"])
    member = await create_user(client, admin)
    h = member.headers
    assert (await client.get(f"{API}/invoices/{invoice['id']}", headers=h)).status_code == 404
    assert (await client.get(f"{API}/invoices", headers=h)).json()["data"] == []
    listed = await client.get(f"{API}/deals/{world['deal']['id']}/invoices", headers=h)
    assert listed.status_code == 404
    for path, body in (
        ("issue", {}),
        ("void", {"reason": "x"}),
        ("mark-paid", {"paid_date": "2026-12-01"}),
    ):
        response = await client.post(f"{API}/invoices/{invoice['id']}/{path}", json=body, headers=h)
        assert response.status_code == 404, path
    made = await client.post(f"{API}/deals/{world['deal']['id']}/invoices", json={}, headers=h)
    assert made.status_code == 404
    other = await create_company(client)
    assert (
        await client.get(f"{API}/invoices/{invoice['id']}", headers=other.headers)
    ).status_code == 404
    assert (
        await client.patch(
            f"{API}/invoices/{invoice['id']}", json={"notes": "x"}, headers=other.headers
        )
    ).status_code == 404
    unchanged = await client.get(f"{API}/invoices/{invoice['id']}", headers=admin.headers)
    assert unchanged.json() == invoice


async def test_an_issued_invoice_outlives_its_deal_for_admins(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"])
    numbered = (await issue(client, admin, invoice["id"])).json()
    deleted = await client.delete(f"{API}/deals/{world['deal']['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    kept = await client.get(f"{API}/invoices/{invoice['id']}", headers=admin.headers)
    assert kept.status_code == 200
    assert kept.json()["deal_id"] is None and kept.json()["number"] == numbered["number"]
    member = await create_user(client, admin)
    hidden = await client.get(f"{API}/invoices/{invoice['id']}", headers=member.headers)
    assert hidden.status_code == 404


async def test_an_unknown_invoice_is_404(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.get(f"{API}/invoices/{uuid.uuid4()}", headers=admin.headers)
    assert response.status_code == 404


async def test_invoices_stay_on_a_deal_converted_back_to_a_lead(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    deal_id = world["deal"]["id"]
    invoice = await draft(client, admin, deal_id)
    converted = await client.post(f"{API}/deals/{deal_id}/convert", headers=admin.headers)
    assert converted.status_code == 201, converted.text
    assert converted.json()["conversion"]["left_on_deal"]["invoices"] == 1
    assert converted.json()["conversion"]["left_on_deal"]["products"] == 2
    lead_id = converted.json()["lead"]["id"]
    kept = await client.get(f"{API}/deals/{deal_id}/invoices", headers=admin.headers)
    assert [i["id"] for i in kept.json()["data"]] == [invoice["id"]]
    for method in ("GET", "POST"):
        refused = await client.request(
            method, f"{API}/leads/{lead_id}/invoices", json={}, headers=admin.headers
        )
        assert refused.status_code == 409
        assert refused.json()["capability"] == "invoices"
    made = await client.post(f"{API}/deals/{deal_id}/invoices", json={}, headers=admin.headers)
    assert made.status_code == 410


async def test_capabilities_report_invoices_for_deals_only(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    table = (await client.get(f"{API}/capabilities", headers=admin.headers)).json()
    assert table["deal"]["invoices"] is True and table["lead"]["invoices"] is False
    assert "invoices" not in table["planned"]


async def test_a_percentage_discount_over_100_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    world = await deal_with_items(client, admin)
    invoice = await draft(client, admin, world["deal"]["id"])
    line = {"name": "x", "unit_price": "10", "discount": "100.01"}
    response = await client.patch(
        f"{API}/invoices/{invoice['id']}", json={"lines": [line]}, headers=admin.headers
    )
    assert response.status_code == 422
    allowed = {**line, "discount": "100.01", "unit_price": "200", "discount_type": "amount"}
    response = await client.patch(
        f"{API}/invoices/{invoice['id']}", json={"lines": [allowed]}, headers=admin.headers
    )
    assert response.status_code == 200 and response.json()["total"] == "99.99"


async def test_a_draft_copies_only_contacts_its_maker_may_see(client: httpx.AsyncClient) -> None:
    """A deal shared with the company may name an organization and a person only their
    owner sees: a colleague's invoice does not reveal their name, address or email."""
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    hidden = {"visible_to": "owner"}
    organization = await create_organization(
        client, admin, name="Secret Ltd", address="Hidden Road", **hidden
    )
    person = await create_person(
        client, admin, name="Bea Hidden", emails=["bea@secret.example.com"], **hidden
    )
    deal = await create_deal(
        client,
        admin,
        person_id=person["id"],
        organization_id=organization["id"],
        value={"amount": "10.00", "currency": "EUR"},
        visible_to="company",
    )
    theirs = await draft(client, colleague, deal["id"])
    assert not theirs["bill_to"]["name"] and not theirs["bill_to"]["email"]
    assert not theirs["bill_to"]["address"]
    assert theirs["bill_to"]["organization_id"] is None and theirs["bill_to"]["person_id"] is None
    mine = await draft(client, admin, deal["id"])
    assert mine["bill_to"]["name"] == "Secret Ltd"

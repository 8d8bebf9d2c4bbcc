"""GET answers of persons and organizations come from the read path; they read exactly
as the write answers."""

from __future__ import annotations

import httpx

from tests.factories import API, create_company, create_organization, create_person


async def test_contacts_read_the_same_from_their_write_by_id_and_in_a_page(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    acme = await create_organization(
        client, admin, "Acme Tools", address="1 Main St", website="https://acme.example"
    )
    zed = await create_organization(client, admin, "Zed Pipes")
    ana = await create_person(
        client,
        admin,
        "Ana Silva",
        emails=["ana@example.com"],
        phones=["+33 6 12 34 56 78"],
        organization_id=acme["id"],
        visible_to="owner",
    )
    bob = await create_person(client, admin, "Bob Stone")
    for path, written in (
        (f"/persons/{ana['id']}", ana),
        (f"/organizations/{acme['id']}", acme),
    ):
        assert (await client.get(f"{API}{path}", headers=admin.headers)).json() == written
    pages = {
        "/persons": [ana, bob],
        "/persons?q=sil": [ana],
        "/persons?q=ana@example.com": [ana],
        f"/persons?organization_id={acme['id']}": [ana],
        "/organizations": [acme, zed],
        "/organizations?q=pipes": [zed],
        "/persons?q=%21%21": [],
    }
    for path, expected in pages.items():
        page = (await client.get(f"{API}{path}", headers=admin.headers)).json()
        assert page == {"data": expected, "next_cursor": None}, path
    first = await client.get(f"{API}/persons?limit=1", headers=admin.headers)
    after = await client.get(
        f"{API}/persons",
        params={"limit": 1, "cursor": first.json()["next_cursor"]},
        headers=admin.headers,
    )
    assert [p["id"] for p in first.json()["data"] + after.json()["data"]] == [ana["id"], bob["id"]]

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from tests.factories import API, create_company, create_organization, create_person, create_user


async def test_person_is_owned_by_the_caller_and_visible_to_the_company_by_default(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/persons", json={"name": "  Ana Silva "}, headers=admin.headers
    )
    assert response.status_code == 201
    person = response.json()
    assert person["name"] == "Ana Silva"
    assert person["owner_id"] == admin.user_id
    assert person["visible_to"] == "company"
    assert person["emails"] == person["phones"] == person["phones_e164"] == []
    assert person["organization_id"] is None
    assert {"id", "created_at", "updated_at"} <= person.keys()
    fetched = await client.get(f"{API}/persons/{person['id']}", headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == person


async def test_emails_are_stored_lower_cased_and_once(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(
        client,
        admin,
        emails=["Ana.Silva@Example.COM", " ana.silva@example.com", "ana@work.example"],
    )
    assert person["emails"] == ["ana.silva@example.com", "ana@work.example"]


async def test_invalid_email_is_422_pointing_at_the_element(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/persons",
        json={"name": "Ana", "emails": ["ana@example.com", "not-an-email"]},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "emails", 1]]


async def test_phones_are_kept_as_written_and_in_e164_in_the_same_order(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    person = await create_person(
        client, admin, phones=["+33 6 12 34 56 78", "+1 (415) 555-0100", "+33612345678"]
    )
    assert person["phones"] == ["+33 6 12 34 56 78", "+1 (415) 555-0100"]
    assert person["phones_e164"] == ["+33612345678", "+14155550100"]


async def test_invalid_phone_is_422_pointing_at_the_element(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for bad in ("not a phone", "+33 12"):
        response = await client.post(
            f"{API}/persons",
            json={"name": "Ana", "phones": ["+33 6 12 34 56 78", bad]},
            headers=admin.headers,
        )
        assert response.status_code == 422, bad
        assert [e["loc"] for e in response.json()["errors"]] == [["body", "phones", 1]]


async def test_phone_without_country_code_needs_the_default_region(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await create_company(client)
    refused = await client.post(
        f"{API}/persons", json={"name": "Ana", "phones": ["06 12 34 56 78"]}, headers=admin.headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "phones", 0]

    app.state.settings = app.state.settings.model_copy(update={"default_phone_region": "FR"})
    person = await create_person(client, admin, phones=["06 12 34 56 78"])
    assert person["phones"] == ["06 12 34 56 78"]
    assert person["phones_e164"] == ["+33612345678"]


async def test_email_and_phone_lists_are_bounded(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    emails = [f"a{i}@example.com" for i in range(21)]
    phones = [f"+1 415 555 01{i:02d}" for i in range(21)]
    for field, values in (("emails", emails), ("phones", phones)):
        response = await client.post(
            f"{API}/persons", json={"name": "Ana", field: values}, headers=admin.headers
        )
        assert response.status_code == 422, field
        assert response.json()["errors"][0]["loc"] == ["body", field]
    assert (await create_person(client, admin, emails=emails[:20], phones=phones[:20]))["id"]


async def test_unknown_fields_and_missing_name_are_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    unknown = await client.post(
        f"{API}/persons",
        json={"name": "Ana", "phones_e164": ["+33612345678"]},
        headers=admin.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "phones_e164"]
    for body in ({}, {"name": "   "}, {"name": None}):
        missing = await client.post(f"{API}/persons", json=body, headers=admin.headers)
        assert missing.status_code == 422, body
        assert missing.json()["errors"][0]["loc"] == ["body", "name"]


async def test_owner_must_be_a_user_of_the_callers_company(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    colleague = await create_user(client, admin)
    outsider = await create_company(client)
    for owner_id in (outsider.user_id, str(uuid.uuid4())):
        response = await client.post(
            f"{API}/persons", json={"name": "Ana", "owner_id": owner_id}, headers=admin.headers
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "owner_id"]
    person = await create_person(client, admin, owner_id=colleague.user_id)
    assert person["owner_id"] == colleague.user_id


async def test_organization_must_be_visible_to_the_caller(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    private = await create_organization(client, admin, visible_to="owner")
    foreign = await create_organization(client, await create_company(client))
    for actor, organization_id in (
        (user, private["id"]),
        (admin, foreign["id"]),
        (admin, str(uuid.uuid4())),
    ):
        response = await client.post(
            f"{API}/persons",
            json={"name": "Ana", "organization_id": organization_id},
            headers=actor.headers,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "organization_id"]
    person = await create_person(client, admin, organization_id=private["id"])
    assert person["organization_id"] == private["id"]


async def test_patch_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    organization = await create_organization(client, admin)
    person = await create_person(
        client,
        admin,
        "Ana Silva",
        emails=["ana@example.com"],
        phones=["+33 6 12 34 56 78"],
        organization_id=organization["id"],
        visible_to="group",
    )
    response = await client.patch(
        f"{API}/persons/{person['id']}", json={"name": "Ana Maria Silva"}, headers=admin.headers
    )
    assert response.status_code == 200
    changed = response.json()
    assert changed["name"] == "Ana Maria Silva"
    unchanged = {k: v for k, v in changed.items() if k not in ("name", "updated_at")}
    assert unchanged == {k: v for k, v in person.items() if k not in ("name", "updated_at")}
    assert (
        await client.get(f"{API}/persons/{person['id']}", headers=admin.headers)
    ).json() == changed


async def test_patch_null_clears_the_organization(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    organization = await create_organization(client, admin)
    person = await create_person(client, admin, organization_id=organization["id"])
    response = await client.patch(
        f"{API}/persons/{person['id']}", json={"organization_id": None}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json()["organization_id"] is None


async def test_patch_cannot_null_a_required_field(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin, emails=["ana@example.com"])
    for field in ("name", "emails", "phones", "owner_id", "visible_to"):
        response = await client.patch(
            f"{API}/persons/{person['id']}", json={field: None}, headers=admin.headers
        )
        assert response.status_code == 422, field
        assert response.json()["errors"][0]["loc"] == ["body", field]
    cleared = await client.patch(
        f"{API}/persons/{person['id']}", json={"emails": []}, headers=admin.headers
    )
    assert cleared.json()["emails"] == []


async def test_patch_phones_recomputes_e164_and_validates(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin, phones=["+33 6 12 34 56 78"])
    response = await client.patch(
        f"{API}/persons/{person['id']}", json={"phones": ["+1 415-555-0100"]}, headers=admin.headers
    )
    assert response.json()["phones"] == ["+1 415-555-0100"]
    assert response.json()["phones_e164"] == ["+14155550100"]
    refused = await client.patch(
        f"{API}/persons/{person['id']}", json={"phones": ["x"]}, headers=admin.headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "phones", 0]


async def test_patch_resending_an_unchanged_invisible_organization_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    private = await create_organization(client, admin, visible_to="owner")
    person = await create_person(client, admin, organization_id=private["id"])
    resent = {k: person[k] for k in ("name", "organization_id", "owner_id", "visible_to")}
    response = await client.patch(
        f"{API}/persons/{person['id']}", json=resent, headers=user.headers
    )
    assert response.status_code == 200
    assert response.json()["organization_id"] == private["id"]


async def test_delete_person_is_204_and_then_404(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    person = await create_person(client, admin)
    deleted = await client.delete(f"{API}/persons/{person['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (
        await client.get(f"{API}/persons/{person['id']}", headers=admin.headers)
    ).status_code == 404
    again = await client.delete(f"{API}/persons/{person['id']}", headers=admin.headers)
    assert again.status_code == 404
    assert again.json()["type"] == "https://leadflow.dev/problems/not-found"


async def test_unknown_person_id_is_404_and_malformed_id_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    unknown = f"{API}/persons/{uuid.uuid4()}"
    assert (await client.get(unknown, headers=admin.headers)).status_code == 404
    assert (
        await client.patch(unknown, json={"name": "X"}, headers=admin.headers)
    ).status_code == 404
    assert (await client.delete(unknown, headers=admin.headers)).status_code == 404
    assert (await client.get(f"{API}/persons/nope", headers=admin.headers)).status_code == 422


async def test_persons_need_an_api_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/persons")).status_code == 401
    assert (await client.post(f"{API}/persons", json={"name": "Ana"})).status_code == 401


async def _names(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[str]:
    response = await client.get(f"{API}/persons", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["data"]]


async def test_persons_are_listed_by_name(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for name in ("Carla", "Ana", "Bruno", "Ana"):
        await create_person(client, admin, name)
    response = await client.get(f"{API}/persons", headers=admin.headers)
    body = response.json()
    assert [p["name"] for p in body["data"]] == ["Ana", "Ana", "Bruno", "Carla"]
    assert body["next_cursor"] is None
    anas = [p["id"] for p in body["data"][:2]]
    assert anas == sorted(anas, key=uuid.UUID)


async def test_q_matches_word_prefixes_of_the_name_in_any_order(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    for name in ("Ana Silva", "Anabel Silveira", "Silvia Santos", "Bruno Ana"):
        await create_person(client, admin, name)
    assert await _names(client, admin.headers, q="ana sil") == ["Ana Silva", "Anabel Silveira"]
    assert await _names(client, admin.headers, q="SIL ana") == ["Ana Silva", "Anabel Silveira"]
    assert await _names(client, admin.headers, q="silv") == [
        "Ana Silva",
        "Anabel Silveira",
        "Silvia Santos",
    ]
    assert await _names(client, admin.headers, q="lva") == []
    assert await _names(client, admin.headers, q="!!") == []


async def test_q_also_matches_an_exact_email_or_phone(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_person(
        client, admin, "Ana", emails=["ana@example.com"], phones=["+33 6 12 34 56 78"]
    )
    await create_person(client, admin, "Bruno", emails=["bruno@example.com"])
    assert await _names(client, admin.headers, q="ANA@example.com") == ["Ana"]
    assert await _names(client, admin.headers, q="+33612345678") == ["Ana"]
    assert await _names(client, admin.headers, q="+33 (6) 12-34-56-78") == ["Ana"]
    assert await _names(client, admin.headers, q="ana@example") == []


async def test_email_filter_matches_the_normalized_address(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    await create_person(client, admin, "Ana", emails=["ana@example.com", "a.silva@example.com"])
    await create_person(client, admin, "Bruno", emails=["bruno@example.com"])
    assert await _names(client, admin.headers, email="A.Silva@Example.com") == ["Ana"]
    assert await _names(client, admin.headers, email="nobody@example.com") == []
    invalid = await client.get(f"{API}/persons", params={"email": "nope"}, headers=admin.headers)
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["loc"] == ["query", "email"]


async def test_organization_id_filter_lists_the_organizations_persons(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    acme = await create_organization(client, admin, "Acme")
    other = await create_organization(client, admin, "Other")
    await create_person(client, admin, "Ana", organization_id=acme["id"])
    await create_person(client, admin, "Bruno", organization_id=other["id"])
    await create_person(client, admin, "Carla")
    assert await _names(client, admin.headers, organization_id=acme["id"]) == ["Ana"]
    assert await _names(client, admin.headers, organization_id=acme["id"], q="bru") == []


async def test_pagination_returns_every_row_once_while_rows_are_inserted(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    names = ["Mia", "Ana", "Zoe", "Ana", "Leo", "Bea", "Ugo"]
    originals = {(await create_person(client, admin, name))["id"] for name in names}
    seen: list[str] = []
    cursor: str | None = None
    inserted = iter(["Aaron", "Noa", "Zz Top", "Ana", "Mia", "Carl", "Yan", "Abe", "Zed", "Ivy"])
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get(f"{API}/persons", params=params, headers=admin.headers)
        assert response.status_code == 200
        page = response.json()
        assert len(page["data"]) <= 2
        seen.extend(p["id"] for p in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        await create_person(client, admin, next(inserted))
    assert len(seen) == len(set(seen))
    assert originals <= set(seen)


async def test_invalid_cursor_is_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.get(
        f"{API}/persons", params={"cursor": "garbage"}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]

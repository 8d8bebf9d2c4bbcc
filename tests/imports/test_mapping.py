"""Mapping and dry run: system and custom fields, option labels, per-column options, the
field-level errors, and a dry run that writes nothing."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import create_company, create_person
from tests.fields.helpers import create_field
from tests.imports.helpers import IMPORTS, columns, csv_bytes, mapped, uploaded

COUNTS = (
    "SELECT (SELECT count(*) FROM person), (SELECT count(*) FROM organization), "
    "(SELECT count(*) FROM lead), (SELECT count(*) FROM data_import_record)"
)


async def test_unknown_columns_fields_and_references_are_422(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    answer = await uploaded(client, admin, csv_bytes([["Name", "Email"], ["Ana", "a@example.com"]]))
    url = f"{IMPORTS}/{answer['id']}/mapping"
    for bad, where in (
        (columns(("Nope", "person", "name")), "column"),
        (columns(("Name", "person", "shoe_size")), "field"),
        (columns(("Name", "person", "name"), ("Email", "person", "name")), "field"),
    ):
        response = await client.put(url, json={"columns": bad}, headers=admin.headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"][-1] == where
    owner = {"owner_id": "00000000-0000-0000-0000-000000000001"}
    response = await client.put(
        url,
        json={"columns": columns(("Name", "person", "name")), "defaults": owner},
        headers=admin.headers,
    )
    assert response.status_code == 422
    done = await mapped(
        client, admin, answer["id"], {"columns": columns(("Name", "person", "name"))}
    )
    assert done["state"] == "mapped" and done["mapping"]["person"]["on_match"] == "skip"


async def test_dry_run_reports_each_row_with_field_errors_and_writes_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    size = await create_field(
        client,
        admin,
        name="Company size",
        type="enum",
        options=[{"label": "Small"}, {"label": "Large"}],
    )
    await create_person(client, admin, "Known", emails=["known@example.com"])
    rows = [
        ["Name", "Email", "Company", "Value", "Close", "Size"],
        ["Ana", "ana@example.com", "Acme GmbH", "1.500,50 EUR", "01.03.2026", "small"],
        ["Known again", "KNOWN@example.com", "Acme", "€ 20", "02.03.2026", "LARGE"],
        ["Bad", "not-an-email", "Bad Co", "about 1000", "yesterday", "Huge"],
        ["Ana twice", "ana@example.com", "ACME gmbh", "7", "03.03.2026", ""],
    ]
    answer = await uploaded(client, admin, csv_bytes(rows))
    mapping = {
        "columns": columns(
            ("Name", "person", "name"),
            ("Email", "person", "email"),
            ("Company", "organization", "name"),
            ("Value", "lead", "value"),
            ("Close", "lead", "expected_close_date"),
            ("Size", "lead", size["key"]),
            Value={"decimal_mark": ",", "default_currency": "PLN"},
            Close={"date_format": "%d.%m.%Y"},
        ),
        "person": {"on_match": "skip"},
        "organization": {"on_match": "skip"},
    }
    await mapped(client, admin, answer["id"], mapping)
    before = (await connection.execute(text(COUNTS))).one()
    response = await client.post(f"{IMPORTS}/{answer['id']}/validate", headers=admin.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (await connection.execute(text(COUNTS))).one() == before, "a dry run writes nothing"
    by_row = {r["row"]: r for r in report["rows"]}
    assert by_row[1]["outcome"] == "would_create"
    assert (by_row[1]["person"], by_row[1]["organization"], by_row[1]["lead"]) == (
        "created",
        "created",
        "created",
    )
    # A known person by email (any case) is used as it is; "Acme" is "Acme GmbH" normalized.
    assert (by_row[2]["person"], by_row[2]["organization"]) == ("skipped", "linked")
    assert by_row[3]["outcome"] == "error"
    codes = {(e["column"], e["code"], e["raw"]) for e in by_row[3]["errors"]}
    assert codes == {
        ("Email", "not_an_email", "not-an-email"),
        ("Value", "not_a_number", "about 1000"),
        ("Close", "not_a_date", "yesterday"),
        ("Size", "unknown_option", "Huge"),
    }
    # The same person and organization as row 1 (same file): one record each.
    assert (by_row[4]["person"], by_row[4]["organization"]) == ("linked", "linked")
    assert (report["would_create"], report["would_skip"], report["errors"]) == (3, 0, 1)

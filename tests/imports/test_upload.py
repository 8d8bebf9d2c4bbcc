"""Upload: CSV (BOM, declared encoding, sniffed or given delimiter) and XLSX (first sheet,
cached values), the preview, the suggested mapping, the same-file flag and the limits."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import create_company, create_user
from tests.imports.helpers import IMPORTS, csv_bytes, upload, uploaded, xlsx_bytes

HEADERS = ["Naam", "E-mail", "Telefon", "Organizacja", "Titel", "Wartość", "Notes"]


async def test_a_utf8_csv_with_bom_answers_columns_preview_and_a_suggested_mapping(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    rows = [HEADERS] + [
        [f"Zoë {n}", f"zoe{n}@example.com", "+48 601 234 567", "Łódź Sp. z o.o.", "", "1000", "x"]
        for n in range(25)
    ]
    answer = await uploaded(client, admin, csv_bytes(rows))
    assert answer["columns"] == HEADERS, "the BOM is not part of the first header"
    assert (answer["format"], answer["encoding"], answer["delimiter"]) == ("csv", "utf-8", ",")
    assert answer["row_count"] == 25 and answer["state"] == "uploaded"
    assert len(answer["preview"]) == 20
    assert answer["preview"][0][:2] == ["Zoë 0", "zoe0@example.com"]
    assert answer["preview"][0][4] is None, "an empty cell is null"
    suggested = {s["column"]: (s["entity"], s["field"]) for s in answer["suggested_mapping"]}
    assert suggested == {
        "Naam": ("person", "name"),
        "E-mail": ("person", "email"),
        "Telefon": ("person", "phone"),
        "Organizacja": ("organization", "name"),
        "Titel": ("lead", "title"),
        "Wartość": ("lead", "value"),
        "Notes": ("note", "content"),
    }
    assert answer["same_file_imports"] == []
    again = await uploaded(client, admin, csv_bytes(rows))
    assert again["same_file_imports"] == [answer["id"]]
    assert again["sha256"] == answer["sha256"]
    got = await client.get(f"{IMPORTS}/{answer['id']}", headers=admin.headers)
    assert got.status_code == 200 and got.json()["row_count"] == 25


async def test_semicolons_are_sniffed_and_a_declared_delimiter_wins(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    content = b'Name;Email\r\n"Ana; Silva";ana@example.com\r\nBo;bo@example.com\r\n'
    answer = await uploaded(client, admin, content)
    assert answer["delimiter"] == ";"
    assert answer["preview"] == [["Ana; Silva", "ana@example.com"], ["Bo", "bo@example.com"]]
    tabbed = await uploaded(
        client, admin, b"Name,Note\tEmail\r\nAna,x\ty@example.com\r\n", delimiter="tab"
    )
    assert tabbed["columns"] == ["Name,Note", "Email"]


async def test_windows_1252_needs_its_encoding_declared(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    content = csv_bytes([["Name", "Stadt"], ["Jürgen Müller", "Köln"]], encoding="windows-1252")
    refused = await upload(client, admin, content)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["type"] == "not_decodable"
    answer = await uploaded(client, admin, content, encoding="windows-1252")
    assert answer["encoding"] == "cp1252"
    assert answer["preview"] == [["Jürgen Müller", "Köln"]]
    unknown = await upload(client, admin, content, encoding="klingon")
    assert unknown.status_code == 422


async def test_xlsx_reads_the_first_sheet_with_values_never_formulas(
    client: httpx.AsyncClient,
) -> None:
    from datetime import datetime

    admin = await create_company(client)
    content = xlsx_bytes(
        [
            ["Title", "Amount", "Close", "Serial", "Double"],
            ["Big one", 1500.5, datetime(2026, 3, 1), 46082, 2],
            ["Small", 20, "2026-04-02", "46083", 3],
        ],
        formulas={"E2": "=B2*2"},
    )
    answer = await uploaded(client, admin, content, name="deals.xlsx")
    assert answer["format"] == "xlsx" and answer["columns"][0] == "Title"
    assert answer["preview"][0][:4] == ["Big one", "1500.5", "2026-03-01", "46082"]
    # openpyxl stores no computed value for a formula: the cell is empty, never "=B2*2".
    assert answer["preview"][0][4] is None
    assert answer["preview"][1] == ["Small", "20", "2026-04-02", "46083", "3"]


async def test_over_the_limits_nothing_is_kept(
    client: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    app.state.settings = app.state.settings.model_copy(
        update={"import_max_rows": 3, "import_max_bytes": 200}
    )
    count = "SELECT (SELECT count(*) FROM data_import) + (SELECT count(*) FROM data_import_row)"
    before = await connection.scalar(text(count))
    rows = [["Name"]] + [[f"P{n}"] for n in range(4)]
    too_many = await upload(client, admin, csv_bytes(rows))
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["errors"][0]["type"] == "too_many_rows"
    too_big = await upload(client, admin, csv_bytes([["Name"], ["x" * 300]]))
    assert too_big.status_code == 413, too_big.text
    assert await connection.scalar(text(count)) == before
    fits = await upload(client, admin, csv_bytes(rows[:4]))
    assert fits.status_code == 201


async def test_only_admins_import_and_imports_stay_in_their_company(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    user = await create_user(client, admin)
    refused = await upload(client, user, csv_bytes([["Name"], ["Ana"]]))
    assert refused.status_code == 403
    answer = await uploaded(client, admin, csv_bytes([["Name"], ["Ana"]]))
    other = await create_company(client)
    assert (await client.get(f"{IMPORTS}/{answer['id']}", headers=other.headers)).status_code == 404
    mine = await uploaded(client, other, csv_bytes([["Name"], ["Ana"]]))
    assert mine["same_file_imports"] == [], "another company's same file is not named"

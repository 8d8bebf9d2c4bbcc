"""Files the import tests write, and the calls they make."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from openpyxl import Workbook

from tests.factories import API, Actor

IMPORTS = f"{API}/imports"


def csv_bytes(rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]], formulas: dict[str, str] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    for cell, formula in (formulas or {}).items():
        sheet[cell] = formula
    other = book.create_sheet("Ignored")
    other.append(["Not", "read"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(
    client: httpx.AsyncClient,
    actor: Actor,
    content: bytes,
    name: str = "people.csv",
    **form: str,
) -> httpx.Response:
    return await client.post(
        IMPORTS,
        files={"file": (name, content, "text/csv")},
        data=form,
        headers=actor.headers,
    )


async def uploaded(
    client: httpx.AsyncClient, actor: Actor, content: bytes, **kw: Any
) -> dict[str, Any]:
    response = await upload(client, actor, content, **kw)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def mapped(
    client: httpx.AsyncClient, actor: Actor, import_id: str, mapping: dict[str, Any]
) -> dict[str, Any]:
    response = await client.put(
        f"{IMPORTS}/{import_id}/mapping", json=mapping, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def columns(*pairs: tuple[str, str, str], **options: Any) -> list[dict[str, Any]]:
    return [
        {"column": column, "entity": entity, "field": field, **options.get(column, {})}
        for column, entity, field in pairs
    ]

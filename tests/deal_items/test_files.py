from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.deals.files import content_disposition, media_type, safe_file_name
from leadflow.deals.models import DealFile
from tests.deal_items.conftest import MAX_UPLOAD
from tests.deal_items.factories import convert_deal_to_lead, insert_deal
from tests.factories import API, Actor, create_company


async def _upload(
    client: httpx.AsyncClient,
    actor: Actor,
    deal_id: str,
    content: bytes,
    name: str = "quote.pdf",
    content_type: str | None = "application/pdf",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    file: Any = (name, content, content_type) if content_type else (name, content)
    return await client.post(
        f"{API}/deals/{deal_id}/files",
        files={"file": file},
        headers={**actor.headers, **(headers or {})},
    )


async def _raw_upload(
    client: httpx.AsyncClient,
    actor: Actor,
    deal_id: str,
    file_name: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The filename sent verbatim (httpx would percent-encode control characters)."""
    boundary = "leadflow-test-boundary"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
        "data\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return await client.post(
        f"{API}/deals/{deal_id}/files",
        content=body,
        headers={
            **actor.headers,
            **(headers or {}),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )


def _stored(files_dir: Path) -> list[Path]:
    return [p for p in files_dir.rglob("*") if p.is_file()] if files_dir.exists() else []


async def _rows(connection: AsyncConnection, deal_id: str) -> int:
    return int(
        await connection.scalar(
            select(func.count()).select_from(DealFile).where(DealFile.deal_id == uuid.UUID(deal_id))
        )
        or 0
    )


async def test_file_upload_and_download_round_trip_with_matching_sha256(
    client: httpx.AsyncClient, connection: AsyncConnection, files_dir: Path
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    content = os.urandom(200_000)  # several storage chunks
    response = await _upload(client, admin, deal_id, content, "Offer 2026 \u2013 final.pdf")
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["file_name"] == "Offer 2026 \u2013 final.pdf"
    assert meta["content_type"] == "application/pdf"
    assert meta["size_bytes"] == len(content)
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()
    assert meta["user_id"] == admin.user_id
    assert meta["deal_id"] == deal_id

    assert (
        await client.get(f"{API}/deals/{deal_id}/files/{meta['id']}", headers=admin.headers)
    ).json() == meta
    listed = (await client.get(f"{API}/deals/{deal_id}/files", headers=admin.headers)).json()
    assert listed["data"] == [meta]

    download = await client.get(
        f"{API}/deals/{deal_id}/files/{meta['id']}/content", headers=admin.headers
    )
    assert download.status_code == 200
    assert download.content == content
    assert hashlib.sha256(download.content).hexdigest() == meta["sha256"]
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == (
        'attachment; filename="Offer 2026 _ final.pdf"; '
        "filename*=UTF-8''Offer%202026%20%E2%80%93%20final.pdf"
    )
    # The bytes sit under a random key, not under the uploaded name.
    (stored,) = _stored(files_dir)
    assert stored.read_bytes() == content
    assert "Offer" not in str(stored)


async def test_content_type_is_recorded_and_defaults_to_octet_stream(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    plain = (await _upload(client, admin, deal_id, b"hello", "a.txt", "text/plain")).json()
    assert plain["content_type"] == "text/plain"
    download = await client.get(
        f"{API}/deals/{deal_id}/files/{plain['id']}/content", headers=admin.headers
    )
    assert download.headers["content-type"] == "text/plain"
    assert download.headers["content-disposition"].startswith("attachment;")
    bad = (await _upload(client, admin, deal_id, b"x", "b.bin", "not a type")).json()
    assert bad["content_type"] == "application/octet-stream"
    assert media_type(None) == "application/octet-stream"
    assert media_type("Text/HTML; charset=utf-8") == "text/html"


async def test_oversized_upload_is_413_and_leaves_nothing_behind(
    client: httpx.AsyncClient, connection: AsyncConnection, files_dir: Path
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    # Just over the limit: within the envelope's allowance for multipart overhead, so
    # the exact check while streaming to storage refuses it.
    just_over = await _upload(client, admin, deal_id, b"x" * (MAX_UPLOAD + 1))
    assert just_over.status_code == 413
    assert just_over.json()["type"] == "https://leadflow.dev/problems/payload-too-large"
    # Far over: the request envelope refuses the body itself.
    far_over = await _upload(client, admin, deal_id, b"x" * (MAX_UPLOAD * 2))
    assert far_over.status_code == 413
    assert await _rows(connection, deal_id) == 0
    assert _stored(files_dir) == []

    at_limit = await _upload(client, admin, deal_id, b"x" * MAX_UPLOAD)
    assert at_limit.status_code == 201
    assert at_limit.json()["size_bytes"] == MAX_UPLOAD
    assert len(_stored(files_dir)) == 1


async def test_file_names_are_sanitized(
    client: httpx.AsyncClient, connection: AsyncConnection, files_dir: Path
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    for raw, safe in (
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("..", "file"),
        ("report\u202egpj.exe", "reportgpj.exe"),
        ("tab\there\x7f.txt", "tabhere.txt"),
    ):
        response = await _raw_upload(client, admin, deal_id, raw)
        assert response.status_code == 201, raw
        assert response.json()["file_name"] == safe, raw
    # Nothing was written outside the files directory.
    assert all(files_dir in p.parents for p in _stored(files_dir))
    assert not (files_dir.parent / "etc").exists()


def test_safe_file_name_keeps_the_extension_when_cutting_to_255() -> None:
    long = "a" * 400 + ".pdf"
    cut = safe_file_name(long)
    assert len(cut) == 255
    assert cut.endswith(".pdf")
    assert safe_file_name(None) == "file"
    assert safe_file_name(" /tmp/ .hidden ") == "hidden"
    assert 'filename="_x_.txt"' in content_disposition('"x".txt')
    assert 'filename="Cafe creme.txt"' in content_disposition("Café crème.txt")


async def test_deleting_a_file_removes_its_stored_bytes(
    client: httpx.AsyncClient, connection: AsyncConnection, files_dir: Path
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    meta = (await _upload(client, admin, deal_id, b"to be removed")).json()
    assert len(_stored(files_dir)) == 1
    url = f"{API}/deals/{deal_id}/files/{meta['id']}"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert _stored(files_dir) == []
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (await client.get(f"{url}/content", headers=admin.headers)).status_code == 404
    assert (await client.delete(url, headers=admin.headers)).status_code == 404


async def test_deleting_a_deal_removes_the_stored_bytes_of_its_files(
    client: httpx.AsyncClient, connection: AsyncConnection, files_dir: Path
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    other_deal_id = await insert_deal(connection, admin)
    await _upload(client, admin, deal_id, b"first")
    await _upload(client, admin, deal_id, b"second")
    await _upload(client, admin, other_deal_id, b"kept")
    assert len(_stored(files_dir)) == 3

    deleted = await client.delete(f"{API}/deals/{deal_id}", headers=admin.headers)

    assert deleted.status_code == 204
    assert [p.read_bytes() for p in _stored(files_dir)] == [b"kept"]
    gone = await client.get(f"{API}/deals/{deal_id}", headers=admin.headers)
    assert gone.status_code == 404


async def test_upload_without_a_file_field_is_422(
    client: httpx.AsyncClient, connection: AsyncConnection, files_dir: Path
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    url = f"{API}/deals/{deal_id}/files"
    response = await client.post(url, files={"other": ("a.txt", b"x")}, headers=admin.headers)
    assert response.status_code == 422
    response = await client.post(url, data={"file": "not a file"}, headers=admin.headers)
    assert response.status_code == 422
    response = await client.post(url, json={"file": "x"}, headers=admin.headers)
    assert response.status_code == 422
    assert _stored(files_dir) == []


async def test_upload_with_an_idempotency_key_is_stored_once(
    client: httpx.AsyncClient, connection: AsyncConnection, files_dir: Path
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    key = {"Idempotency-Key": f"upload-{uuid.uuid4()}"}
    first = await _raw_upload(client, admin, deal_id, "a.txt", headers=key)
    assert first.status_code == 201, first.text
    replay = await _raw_upload(client, admin, deal_id, "a.txt", headers=key)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert await _rows(connection, deal_id) == 1
    assert len(_stored(files_dir)) == 1


@pytest.mark.parametrize("method", ["upload", "list"])
async def test_files_of_a_deal_converted_back_to_a_lead_are_410(
    client: httpx.AsyncClient, connection: AsyncConnection, method: str
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    await convert_deal_to_lead(connection, admin, deal_id)
    if method == "upload":
        response = await _upload(client, admin, deal_id, b"x")
    else:
        response = await client.get(f"{API}/deals/{deal_id}/files", headers=admin.headers)
    assert response.status_code == 410

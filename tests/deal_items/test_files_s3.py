"""Deal files in an S3-compatible bucket (LEADFLOW_FILES_URL=s3://...): the same API as
with the local directory, against moto's server started by the tests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.config import Settings
from leadflow.storage import S3_PART_SIZE, S3Storage, make_storage, new_key
from tests.deal_items.conftest import MAX_UPLOAD
from tests.deal_items.factories import insert_deal
from tests.factories import API, OPERATOR_TOKEN, Actor, create_company
from tests.s3server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, S3Server

PREFIX = "deal-files"


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture
def redirect_seconds() -> int:
    return 0


@pytest.fixture
def settings(s3_server: S3Server, bucket: str, redirect_seconds: int) -> Settings:
    return Settings(
        database_url=None,
        admin_token=OPERATOR_TOKEN,
        log_json=False,
        max_upload_bytes=MAX_UPLOAD,
        files_url=f"s3://{bucket}/{PREFIX}",
        files_s3_endpoint=s3_server.endpoint,
        files_s3_region=REGION,
        files_s3_access_key_id=SecretStr(ACCESS_KEY_ID),
        files_s3_secret_access_key=SecretStr(SECRET_ACCESS_KEY),
        files_redirect_seconds=redirect_seconds,
    )


def _objects(s3_server: S3Server, bucket: str) -> dict[str, bytes]:
    s3 = s3_server.client()
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def _unfinished_uploads(s3_server: S3Server, bucket: str) -> list[Any]:
    uploads: list[Any] = s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return uploads


async def _upload(
    client: httpx.AsyncClient, actor: Actor, deal_id: str, content: bytes, name: str = "quote.pdf"
) -> httpx.Response:
    return await client.post(
        f"{API}/deals/{deal_id}/files",
        files={"file": (name, content, "application/pdf")},
        headers=actor.headers,
    )


async def test_upload_and_download_through_the_bucket(
    client: httpx.AsyncClient, connection: AsyncConnection, s3_server: S3Server, bucket: str
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    content = os.urandom(200_000)
    response = await _upload(client, admin, deal_id, content, "Offer \u2013 final.pdf")
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["size_bytes"] == len(content)
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()

    # One object, under the prefix and a random key, with the download's headers.
    ((key, stored),) = _objects(s3_server, bucket).items()
    assert stored == content
    assert key.startswith(f"{PREFIX}/") and "Offer" not in key
    head = s3_server.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "application/pdf"
    assert head["ContentDisposition"].startswith('attachment; filename="Offer _ final.pdf"')

    download = await client.get(
        f"{API}/deals/{deal_id}/files/{meta['id']}/content", headers=admin.headers
    )
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == head["ContentDisposition"]


async def test_oversized_upload_is_413_and_leaves_no_object_nor_part(
    client: httpx.AsyncClient, connection: AsyncConnection, s3_server: S3Server, bucket: str
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    refused = await _upload(client, admin, deal_id, b"x" * (MAX_UPLOAD + 1))
    assert refused.status_code == 413
    assert _objects(s3_server, bucket) == {}
    assert _unfinished_uploads(s3_server, bucket) == []
    assert (await _upload(client, admin, deal_id, b"x" * MAX_UPLOAD)).status_code == 201
    assert len(_objects(s3_server, bucket)) == 1


async def test_deleting_a_file_or_its_deal_removes_the_objects(
    client: httpx.AsyncClient, connection: AsyncConnection, s3_server: S3Server, bucket: str
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    other_deal_id = await insert_deal(connection, admin)
    one = (await _upload(client, admin, deal_id, b"one")).json()
    await _upload(client, admin, deal_id, b"two")
    await _upload(client, admin, other_deal_id, b"kept")
    assert sorted(_objects(s3_server, bucket).values()) == [b"kept", b"one", b"two"]

    url = f"{API}/deals/{deal_id}/files/{one['id']}"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert sorted(_objects(s3_server, bucket).values()) == [b"kept", b"two"]
    assert (await client.delete(f"{API}/deals/{deal_id}", headers=admin.headers)).status_code == 204
    assert list(_objects(s3_server, bucket).values()) == [b"kept"]


@pytest.mark.parametrize("redirect_seconds", [60])
async def test_download_redirects_to_a_presigned_url_when_set(
    client: httpx.AsyncClient, connection: AsyncConnection, redirect_seconds: int
) -> None:
    admin = await create_company(client)
    deal_id = await insert_deal(connection, admin)
    content = os.urandom(10_000)
    meta = (await _upload(client, admin, deal_id, content, "plan.pdf")).json()

    answer = await client.get(
        f"{API}/deals/{deal_id}/files/{meta['id']}/content", headers=admin.headers
    )
    assert answer.status_code == 307
    assert answer.headers["cache-control"] == "private, no-store"
    location = answer.headers["location"]
    assert "X-Amz-Expires=60" in location and "X-Amz-Signature=" in location
    # The client fetches it from the bucket itself, without the API's token.
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(location)
    assert fetched.status_code == 200
    assert fetched.content == content
    assert fetched.headers["content-type"] == "application/pdf"
    assert fetched.headers["content-disposition"].startswith('attachment; filename="plan.pdf"')


async def _stream(size: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < size:
        piece = min(chunk, size - sent)
        yield bytes([sent // chunk % 251]) * piece
        sent += piece


async def test_a_file_larger_than_a_part_is_streamed_as_a_multipart_upload(
    settings: Settings, s3_server: S3Server, bucket: str
) -> None:
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    size = 2 * S3_PART_SIZE + 12_345
    key = new_key()
    stored = await storage.put(
        key, _stream(size), content_type="text/plain", content_disposition="attachment"
    )
    assert stored == size
    head = s3_server.client().head_object(Bucket=bucket, Key=f"{PREFIX}/{key}")
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-3")  # S3's ETag of a 3-part upload

    digest, expected = hashlib.sha256(), hashlib.sha256()
    async for piece in _stream(size):
        expected.update(piece)
    chunks = 0
    async for chunk in await storage.open(key):
        assert isinstance(chunk, bytes)
        digest.update(chunk)
        chunks += 1
    assert digest.hexdigest() == expected.hexdigest()
    assert chunks > 3  # read in small pieces, not as one body

    await storage.delete(key)
    await storage.delete(key)  # a missing key is not an error
    with pytest.raises(FileNotFoundError):
        await storage.open(key)


async def test_a_failing_stream_leaves_no_object_nor_part(
    settings: Settings, s3_server: S3Server, bucket: str
) -> None:
    storage = make_storage(settings)

    async def broken() -> AsyncIterator[bytes]:
        async for piece in _stream(S3_PART_SIZE + 1):
            yield piece
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError):
        await storage.put(
            new_key(), broken(), content_type="text/plain", content_disposition="attachment"
        )
    assert _objects(s3_server, bucket) == {}
    assert _unfinished_uploads(s3_server, bucket) == []


@pytest.mark.parametrize("url", ["s3:/bucket", "file:///tmp", "s3://UPPER", "s3://a"])
def test_files_url_must_name_an_s3_bucket(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(database_url=None, files_url=url)

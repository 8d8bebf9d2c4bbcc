"""Where the bytes of deal files live, behind a small interface.

Keys are made here (`new_key`), never from user input, so no path can be guessed or
smuggled in; the database row holds the key and the metadata. Two implementations, one
chosen per process by LEADFLOW_FILES_URL (`make_storage`):

- `LocalStorage` (the default): a directory of one machine. It writes to a temporary
  name and renames on success, so a key either names the complete content or nothing:
  a failed or refused upload leaves no file.
- `S3Storage` (`s3://bucket/prefix`): an S3-compatible bucket, shared by every replica,
  through `obstore` (Rust's object_store). Uploads stream as a multipart upload of
  `S3_PART_SIZE` parts, a few in flight at once, so a process holds at most a few parts
  of a file, never the whole of it; an object appears only when its upload completes.
  Downloads stream in `CHUNK_SIZE` pieces, or are redirected to a short-lived presigned
  URL (LEADFLOW_FILES_REDIRECT_SECONDS).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import anyio
from fastapi import Depends, Request

from leadflow.config import Settings

if TYPE_CHECKING:
    from obstore.store import S3Config, S3Store

CHUNK_SIZE = 64 * 1024
# S3's smallest part but the last is 5 MiB; parts uploaded at once per file.
S3_PART_SIZE = 5 * 1024 * 1024
S3_PARTS_IN_FLIGHT = 2
_KEY = re.compile(r"^[0-9a-f]{40}$")


def new_key() -> str:
    """A fresh random storage key (160 bits, hex)."""
    return secrets.token_hex(20)


class Storage(Protocol):
    async def put(
        self,
        key: str,
        stream: AsyncIterable[bytes],
        *,
        content_type: str,
        content_disposition: str,
    ) -> int:
        """Store the stream under `key`; returns its size. On any error nothing is kept.
        The content type and disposition are the download's headers: kept with the
        object where a client may fetch it without the API (a presigned URL)."""
        ...

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The content in chunks; raises FileNotFoundError at once when `key` is unknown."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...

    async def download_url(self, key: str) -> str | None:
        """A short-lived URL the client may fetch the content from itself, or None when
        the API streams it (`open`)."""
        ...


class LocalStorage:
    """Files under `root/<first two hex digits>/<key>`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError("not a storage key")
        return self.root / key[:2] / key

    async def put(
        self,
        key: str,
        stream: AsyncIterable[bytes],
        *,
        content_type: str,
        content_disposition: str,
    ) -> int:
        # The headers are the row's to keep: the API streams every local download.
        path = self._path(key)
        partial = path.with_name(f"{key}.{secrets.token_hex(4)}.part")
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        size = 0
        try:
            async with await anyio.open_file(partial, "xb") as out:
                async for chunk in stream:
                    await out.write(chunk)
                    size += len(chunk)
            await anyio.to_thread.run_sync(os.replace, partial, path)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.Path(partial).unlink(missing_ok=True)
            raise
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        handle = await anyio.open_file(self._path(key), "rb")

        async def chunks() -> AsyncIterator[bytes]:
            async with handle:
                while chunk := await handle.read(CHUNK_SIZE):
                    yield chunk

        return chunks()

    async def delete(self, key: str) -> None:
        await anyio.Path(self._path(key)).unlink(missing_ok=True)

    async def download_url(self, key: str) -> str | None:
        return None


class S3Storage:
    """Objects named `<prefix>/<key>` in an S3-compatible bucket (the prefix is the
    store's, given by LEADFLOW_FILES_URL)."""

    def __init__(self, store: S3Store, redirect_seconds: int) -> None:
        self.store = store
        self.redirect = timedelta(seconds=redirect_seconds) if redirect_seconds else None

    def _path(self, key: str) -> str:
        if not _KEY.match(key):
            raise ValueError("not a storage key")
        return key

    async def put(
        self,
        key: str,
        stream: AsyncIterable[bytes],
        *,
        content_type: str,
        content_disposition: str,
    ) -> int:
        import obstore

        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in stream:
                size += len(chunk)
                yield chunk

        # Always a multipart upload: the size is known only at the end of the stream.
        # An error of the stream (e.g. over the size limit) aborts the upload: no object.
        await obstore.put_async(
            self.store,
            self._path(key),
            counted(),
            attributes={
                "Content-Type": content_type,
                "Content-Disposition": content_disposition,
            },
            use_multipart=True,
            chunk_size=S3_PART_SIZE,
            max_concurrency=S3_PARTS_IN_FLIGHT,
        )
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        import obstore

        # Raises FileNotFoundError here, before any byte of the answer is sent.
        result = await obstore.get_async(self.store, self._path(key))

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=CHUNK_SIZE):
                yield bytes(chunk)  # obstore's Bytes: the ASGI server sends bytes

        return chunks()

    async def delete(self, key: str) -> None:
        import obstore

        # S3 answers a missing key's DELETE with success; other stores may not.
        with contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self.store, self._path(key))

    async def download_url(self, key: str) -> str | None:
        if self.redirect is None:
            return None
        import obstore

        return await obstore.sign_async(self.store, "GET", self._path(key), self.redirect)


def s3_store(settings: Settings) -> S3Store:
    """The bucket of LEADFLOW_FILES_URL; credentials, region and endpoint from the
    settings, else from the AWS_* variables and instance metadata as AWS SDKs find them."""
    from obstore.store import S3Store  # imported here: only a process storing in S3 needs it

    assert settings.files_url is not None
    bucket, _, prefix = settings.files_url.removeprefix("s3://").partition("/")
    config: S3Config = {}
    if settings.files_s3_endpoint:
        config["endpoint"] = settings.files_s3_endpoint
    if settings.files_s3_region:
        config["region"] = settings.files_s3_region
    if settings.files_s3_access_key_id:
        config["access_key_id"] = settings.files_s3_access_key_id.get_secret_value()
    if settings.files_s3_secret_access_key:
        config["secret_access_key"] = settings.files_s3_secret_access_key.get_secret_value()
    return S3Store(
        bucket,
        prefix=prefix.strip("/") or None,
        config=config,
        client_options={
            # A plain-http endpoint (a local MinIO, the tests' server) only when named so.
            "allow_http": (settings.files_s3_endpoint or "").startswith("http://"),
            "connect_timeout": "5s",
            # The whole request, a download included: a slow client paces the stream.
            "timeout": "10m",
        },
    )


def make_storage(settings: Settings) -> Storage:
    """The storage this process uses (one per app: an S3 store keeps its connections)."""
    if settings.files_url:
        return S3Storage(s3_store(settings), settings.files_redirect_seconds)
    return LocalStorage(settings.files_dir)


async def delete_stored(storage: Storage, keys: Iterable[str]) -> None:
    """Remove the stored bytes of these keys (after the rows naming them are gone)."""
    for key in keys:
        await storage.delete(key)


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


FileStorage = Annotated[Storage, Depends(get_storage)]

"""Where the bytes of deal files live, behind a small interface.

Keys are made here (`new_key`), never from user input, so no path can be guessed or
smuggled in; the database row holds the key and the metadata. The local-directory
implementation writes to a temporary name and renames on success, so a key either
names the complete content or nothing: a failed or refused upload leaves no file.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from typing import Annotated, Protocol

import anyio
from fastapi import Depends

from leadflow.deps import AppSettings

CHUNK_SIZE = 64 * 1024
_KEY = re.compile(r"^[0-9a-f]{40}$")


def new_key() -> str:
    """A fresh random storage key (160 bits, hex)."""
    return secrets.token_hex(20)


class Storage(Protocol):
    async def put(self, key: str, stream: AsyncIterable[bytes]) -> int:
        """Store the stream under `key`; returns its size. On any error nothing is kept."""
        ...

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The content in chunks; raises FileNotFoundError at once when `key` is unknown."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...


class LocalStorage:
    """Files under `root/<first two hex digits>/<key>`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError("not a storage key")
        return self.root / key[:2] / key

    async def put(self, key: str, stream: AsyncIterable[bytes]) -> int:
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


async def delete_stored(storage: Storage, keys: Iterable[str]) -> None:
    """Remove the stored bytes of these keys (after the rows naming them are gone)."""
    for key in keys:
        await storage.delete(key)


def get_storage(settings: AppSettings) -> Storage:
    return LocalStorage(settings.files_dir)


FileStorage = Annotated[Storage, Depends(get_storage)]

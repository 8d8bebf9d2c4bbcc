"""What the read path's tests compare: a GET's answer, byte for byte, with the bytes the
write endpoints answered (the Pydantic read models serialized by FastAPI)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx


def written(response: httpx.Response) -> bytes:
    """The body of a write's answer (201 or 200 asserted)."""
    assert response.status_code in (200, 201), response.text
    return response.content


def page_of(items: Sequence[bytes], next_cursor: str | None = None) -> bytes:
    """The bytes of `pagination.Page` holding these items' bytes."""
    cursor = b"null" if next_cursor is None else json.dumps(next_cursor).encode()
    return b'{"data":[' + b",".join(items) + b'],"next_cursor":' + cursor + b"}"


async def read(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> bytes:
    """A GET's body (200 asserted, JSON)."""
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.text)
    assert response.headers["content-type"] == "application/json", path
    return response.content

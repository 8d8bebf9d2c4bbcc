"""The baseline of bench/capture.py: a bare ASGI app that inserts one row per POST with
asyncpg, no framework, no validation, no signature. Run by uvicorn like leadflow is.

    BENCH_DATABASE_URL=postgresql://... uvicorn bench.raw_insert_app:app
"""

from __future__ import annotations

import json
import os
from typing import Any

import asyncpg

POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "10"))
INSERT = "INSERT INTO bench_raw_insert (body) VALUES ($1::jsonb) RETURNING id::text"
_pool: asyncpg.Pool | None = None


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(
                    os.environ["BENCH_DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert _pool is not None
    if scope["method"] != "POST":  # readiness probe
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = await _body(receive)
    row_id = await _pool.fetchval(INSERT, body.decode())
    payload = json.dumps({"id": row_id}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})

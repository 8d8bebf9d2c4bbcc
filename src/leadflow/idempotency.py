"""`Idempotency-Key` on every POST.

Claiming the key is a step of the endpoint path, right after authentication (the
company scopes the key): `leadflow.deps` runs `claim` for every authenticated POST. The
claim takes a transaction-scoped advisory lock on (company, key): a second request with
the key while the first runs cannot take it and gets 409 at once. The first response
(status < 500) is written by `IdempotencyClaim.record` into the request's own
transaction, which the request envelope commits, so a stored response always matches
what was committed, and a request that crashed leaves no key behind. Business errors
(4xx) roll back to a savepoint taken after the claim, so their writes vanish while
their answer is still stored and replayed.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db import Base, new_id
from leadflow.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidInput
from leadflow.sealing import Sealer, Unsealable, app_server_key

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# What a key may be, as the OpenAPI document states it: visible ASCII characters, spaces
# inside only (HTTP drops a value's leading and trailing spaces, so a key cannot carry
# them). Bytes beyond ASCII arrive as Latin-1 text, which no client can be sure to send
# alike: refused.
KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
# The derivation label of the key that seals stored answers; changing it makes every
# stored answer unreadable (each key would then run its request again).
_SEAL_LABEL = b"leadflow stored response seal v1"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # NULL for operator requests, which belong to no company.
    company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(SmallInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index(
            "uq_idempotency_key_company_id_key",
            "company_id",
            "key",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_idempotency_key_created_at", "created_at"),
    )


class IdempotentReplay(Exception):
    def __init__(self, record: IdempotencyRecord, body: bytes) -> None:
        self.record = record
        self.body = body


@dataclass(slots=True)
class IdempotencyClaim:
    company_id: uuid.UUID | None
    key: str
    fingerprint: str
    savepoint: AsyncSessionTransaction
    sealer: Sealer

    async def record(
        self, session: AsyncSession, status: int, body: bytes, content_type: str
    ) -> None:
        """Store the answer (status < 500) in the request's transaction; called by the
        request envelope once the response is known, which then commits. A 4xx answer's
        writes roll back to the savepoint taken after the claim; the answer is kept."""
        if status >= 400 and self.savepoint.is_active:
            await self.savepoint.rollback()
        values = {
            "company_id": self.company_id,
            "key": self.key,
            "fingerprint": self.fingerprint,
            "status": status,
            "content_type": content_type[:100],
            # Sealed: a stored answer may hold a secret shown once (API token, signing secret).
            "body": self.sealer.seal(body, _context(self.company_id, self.key)),
        }
        await session.execute(
            insert(IdempotencyRecord)
            .values(id=new_id(), **values)
            .on_conflict_do_update(
                index_elements=["company_id", "key"],
                set_={**values, "created_at": func.now()},
            )
        )


def sealer_for(app_state: Any) -> Sealer:
    """The app's sealer of stored answers, derived once per process."""
    sealer: Sealer | None = getattr(app_state, "idempotency_sealer", None)
    if sealer is None:
        sealer = Sealer(app_server_key(app_state), _SEAL_LABEL)
        app_state.idempotency_sealer = sealer
    return sealer


def _context(company_id: uuid.UUID | None, key: str) -> bytes:
    return f"{company_id}:{key}".encode()


def _lock_id(company_id: uuid.UUID | None, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{company_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def claim(request: Request, session: AsyncSession, company_id: uuid.UUID | None) -> None:
    """Run before a POST's work, once the caller is authenticated. Replays the stored
    answer (`IdempotentReplay`), refuses (422 reused, 409 in flight), or lets the request
    proceed with its claim in `request.state.idempotency` for the envelope to record."""
    if request.method != "POST":
        return
    key = request.headers.get(HEADER)
    if key is None:
        return
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InvalidInput(
            ["header", HEADER],
            f"must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (spaces only inside)",
        )
    sealer = sealer_for(request.app.state)
    body = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()

    locked = await session.scalar(select(func.pg_try_advisory_xact_lock(_lock_id(company_id, key))))
    if not locked:
        raise IdempotencyKeyInFlight(
            f"A request with Idempotency-Key {key!r} is still running; retry later."
        )
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.company_id.is_not_distinct_from(company_id),
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at > func.now() - RETENTION,
        )
    )
    if record is not None:
        if record.fingerprint != fingerprint:
            message = f"Idempotency-Key {key!r} was first used with a different request."
            # A 422 like any other: the `errors` list names the header (ValidationProblem).
            raise IdempotencyKeyReused(
                message,
                errors=[
                    {"loc": ["header", HEADER], "msg": message, "type": "idempotency_key_reused"}
                ],
            )
        try:
            stored = sealer.unseal(record.body, _context(company_id, key))
        except Unsealable:
            stored = None  # sealed under a previous server key: treat the key as unused
        if stored is not None:
            raise IdempotentReplay(record, stored)
    request.state.idempotency = IdempotencyClaim(
        company_id=company_id,
        key=key,
        fingerprint=fingerprint,
        savepoint=await session.begin_nested(),
        sealer=sealer,
    )


async def purge_expired(session: AsyncSession, limit: int) -> int:
    """At most `limit` records past RETENTION (a periodic job of the worker's)."""
    expired = (
        select(IdempotencyRecord.id)
        .where(IdempotencyRecord.created_at < func.now() - RETENTION)
        .limit(limit)
    )
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(expired))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _replay(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    record = exc.record
    return Response(
        content=exc.body,
        status_code=record.status,
        media_type=record.content_type,
        headers={"Idempotent-Replayed": "true"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(IdempotentReplay, _replay)

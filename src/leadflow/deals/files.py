"""Files of a deal: multipart upload, metadata, download, delete.

The bytes go to the file storage under a fresh random key, never derived from the
request, while the SHA-256 and the size are computed on the way; the row holds the
metadata. The size limit is enforced twice: by the request envelope on the whole body
(`max_upload_bytes` plus multipart overhead, see `main.body_limit_for`) and exactly here
while streaming, so a refused upload (413) leaves neither a row nor a file.

Consistency between rows and bytes: an upload writes the bytes first and the row after,
and removes the bytes if the row cannot be written; a delete removes the bytes only after
the transaction that removed the row has committed. A crash can thus leave unreferenced
bytes behind, never a row without bytes.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import Field
from sqlalchemy import DateTime, Integer, Select, Uuid, bindparam, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from leadflow.deals.access import DealConverted, visible_deal
from leadflow.deals.models import Deal, DealFile
from leadflow.deals.reads import after_key, of_visible_deal, page_of_deal, rows_of_deal
from leadflow.deps import AppSettings, CurrentCaller, Session
from leadflow.errors import InvalidInput, NotFound, PayloadTooLarge, found, responses
from leadflow.pagination import Keyset, Page, PageParams
from leadflow.readpath import ReadStatement, as_text, fields, json_response
from leadflow.schemas import Output
from leadflow.storage import CHUNK_SIZE, FileStorage, Storage, new_key
from leadflow.tenancy import Caller, Viewer, in_company, in_viewer_company

FIELD = "file"
MAX_FILE_NAME = 255
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._()\-+ ]")


def safe_file_name(raw: str | None) -> str:
    """The last path segment, without control or format characters, trimmed, at most 255
    characters (keeping a short extension); "file" when nothing is left."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = name.strip().strip(".").strip()
    if not name:
        return "file"
    if len(name) > MAX_FILE_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            name = f"{stem[: MAX_FILE_NAME - len(extension) - 1].rstrip()}.{extension}"
        else:
            name = name[:MAX_FILE_NAME]
    return name


def media_type(raw: str | None) -> str:
    """The part's declared `type/subtype` (parameters dropped), else application/octet-stream."""
    base = (raw or "").split(";", 1)[0].strip().lower()
    return base if _MEDIA_TYPE.match(base) else DEFAULT_CONTENT_TYPE


def content_disposition(file_name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 5987 form."""
    decomposed = unicodedata.normalize("NFKD", file_name)
    ascii_name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    ascii_name = _ASCII_UNSAFE.sub("_", ascii_name).strip() or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"


class FileRead(Output):
    id: uuid.UUID
    deal_id: uuid.UUID
    file_name: str = Field(
        description="The uploaded name, made safe: no path, no control characters, ≤ 255.",
        examples=["quote-2026.pdf"],
    )
    content_type: str = Field(
        description="As declared by the upload; application/octet-stream when absent or invalid.",
        examples=["application/pdf"],
    )
    size_bytes: int = Field(examples=[48213])
    sha256: str = Field(description="Hex SHA-256 of the content.", examples=["9f86d0...0a08"])
    created_at: datetime
    user_id: uuid.UUID | None = Field(
        description="Who uploaded it; null once that user is deleted."
    )


class FileRepository:
    """Files of one deal of the caller's company (the deal is checked by the caller)."""

    def __init__(self, session: AsyncSession, caller: Caller, deal_id: uuid.UUID) -> None:
        self.session = session
        self.caller = caller
        self.deal_id = deal_id

    def _of_deal(self) -> Select[DealFile]:
        return select(DealFile).where(
            in_company(DealFile, self.caller), DealFile.deal_id == self.deal_id
        )

    async def get(self, file_id: uuid.UUID) -> DealFile | None:
        return await self.session.scalar(self._of_deal().where(DealFile.id == file_id))

    async def add(self, **values: Any) -> DealFile:
        row = DealFile(company_id=self.caller.company_id, deal_id=self.deal_id, **values)
        self.session.add(row)
        await self.session.flush()
        await self.session.refresh(row)
        return row

    async def delete(self, file_id: uuid.UUID) -> str | None:
        """The deleted file's storage key; None when there is no such file."""
        return await self.session.scalar(
            delete(DealFile)
            .where(
                in_company(DealFile, self.caller),
                DealFile.deal_id == self.deal_id,
                DealFile.id == file_id,
            )
            .returning(DealFile.storage_key)
        )


# The GET answers: one statement per shape and viewer kind that checks the deal and reads
# its files (`deals.reads.of_visible_deal`), rows straight to JSON as `FileRead` writes them.

OLDEST_FIRST = Keyset(DealFile.created_at, DealFile.id)
_FILE_FIELDS = tuple(FileRead.model_fields)
_FILE_COLUMNS = (
    as_text(DealFile.id),
    as_text(DealFile.deal_id),
    DealFile.file_name,
    DealFile.content_type,
    DealFile.size_bytes,
    DealFile.sha256,
    DealFile.created_at,
    as_text(DealFile.user_id),
)


@functools.lru_cache(maxsize=16)
def file_page(viewer: Viewer, after: bool) -> ReadStatement:
    """A deal's files, oldest first (ix_deal_file_deal_id)."""
    files = select(*_FILE_COLUMNS).where(DealFile.deal_id == Deal.id, in_viewer_company(DealFile))
    if after:
        files = files.where(
            tuple_(DealFile.created_at, DealFile.id) > after_key(DateTime(timezone=True))
        )
    limit = bindparam("limit", type_=Integer)
    return of_visible_deal(viewer, files.order_by(DealFile.created_at, DealFile.id).limit(limit))


@functools.cache
def file_by_id(viewer: Viewer) -> ReadStatement:
    """One file of the deal (its metadata), or a row of nulls beside the deal without it."""
    file = select(*_FILE_COLUMNS).where(
        DealFile.deal_id == Deal.id,
        in_viewer_company(DealFile),
        DealFile.id == bindparam("file_id", type_=Uuid),
    )
    return of_visible_deal(viewer, file)


async def _upload_of(request: Request) -> UploadFile:
    form = await request.form(max_files=1, max_fields=20)
    upload = form.get(FIELD)
    if not isinstance(upload, UploadFile):
        await form.close()
        raise InvalidInput(
            ["body", FIELD], f"Send the file as the multipart/form-data field {FIELD!r}."
        )
    return upload


async def store_file(
    session: AsyncSession,
    caller: Caller,
    storage: Storage,
    deal_id: uuid.UUID,
    upload: UploadFile,
    max_bytes: int,
) -> DealFile:
    digest = hashlib.sha256()

    async def counted() -> AsyncIterator[bytes]:
        seen = 0
        while chunk := await upload.read(CHUNK_SIZE):
            seen += len(chunk)
            if seen > max_bytes:
                raise PayloadTooLarge(f"A file may not exceed {max_bytes} bytes.")
            digest.update(chunk)
            yield chunk

    key = new_key()
    file_name = safe_file_name(upload.filename)
    content_type = media_type(upload.content_type)
    size = await storage.put(
        key,
        counted(),
        content_type=content_type,
        content_disposition=content_disposition(file_name),
    )
    try:
        return await FileRepository(session, caller, deal_id).add(
            file_name=file_name,
            content_type=content_type,
            size_bytes=size,
            sha256=digest.hexdigest(),
            storage_key=key,
            user_id=caller.user_id,
        )
    except BaseException:
        await storage.delete(key)
        raise


router = APIRouter(tags=["deals"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "The file; its filename and Content-Type are kept.",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/deals/{deal_id}/files",
    name="deals:files:create",
    status_code=status.HTTP_201_CREATED,
    response_model=FileRead,
    responses=responses(400, 401, 404, 409, 413, 422, DealConverted),
    openapi_extra=_UPLOAD_BODY,
)
async def upload_file(
    deal_id: uuid.UUID,
    request: Request,
    session: Session,
    caller: CurrentCaller,
    storage: FileStorage,
    settings: AppSettings,
) -> FileRead:
    """Upload a file to a deal (multipart field `file`); over the size limit is 413."""
    # The body is read only now, after the token and the deal were checked.
    deal = await visible_deal(session, caller, deal_id)
    upload = await _upload_of(request)
    try:
        row = await store_file(session, caller, storage, deal.id, upload, settings.max_upload_bytes)
    finally:
        await upload.close()
    return FileRead.model_validate(row)


@router.get(
    "/deals/{deal_id}/files",
    name="deals:files:list",
    response_model=Page[FileRead],
    responses=responses(401, 404, 422, DealConverted),
)
async def list_files(
    deal_id: uuid.UUID, session: Session, caller: CurrentCaller, page: PageParams
) -> Response:
    """List the files of a deal, oldest first."""
    answer = await page_of_deal(
        session,
        caller,
        file_page,
        OLDEST_FIRST,
        deal_id,
        page,
        lambda row: fields(row, _FILE_FIELDS),
    )
    return json_response(answer)


@router.get(
    "/deals/{deal_id}/files/{file_id}",
    name="deals:files:get",
    response_model=FileRead,
    responses=responses(401, 404, 422, DealConverted),
)
async def get_file(
    deal_id: uuid.UUID, file_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> Response:
    """The metadata of one file of a deal."""
    params = {"deal_id": deal_id, "file_id": file_id}
    rows = await rows_of_deal(session, caller, file_by_id(Viewer.of(caller)), params)
    if not rows:
        raise NotFound("file")
    return json_response(fields(rows[0], _FILE_FIELDS))


@router.get(
    "/deals/{deal_id}/files/{file_id}/content",
    name="deals:files:download",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The content, as an attachment with the recorded content type.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        307: {
            "description": (
                "Where files are kept in object storage and the service is set to redirect "
                "(LEADFLOW_FILES_REDIRECT_SECONDS): `Location` is a short-lived presigned "
                "URL that answers the content with the same type and disposition."
            ),
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
        **responses(401, 404, 422, DealConverted),
    },
)
async def download_file(
    deal_id: uuid.UUID,
    file_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    storage: FileStorage,
) -> Response:
    """Download a file of a deal (always as an attachment)."""
    deal = await visible_deal(session, caller, deal_id)
    row = found(await FileRepository(session, caller, deal.id).get(file_id), "file")
    url = await storage.download_url(row.storage_key)
    if url is not None:
        # The bytes go from the bucket to the client; the URL is a credential for this
        # one object until it expires, so it is cached nowhere.
        return RedirectResponse(
            url,
            status_code=status.HTTP_307_TEMPORARY_REDIRECT,
            headers={"Cache-Control": "private, no-store"},
        )
    content = await storage.open(row.storage_key)
    return StreamingResponse(
        content,
        headers={
            "Content-Type": row.content_type,
            "Content-Length": str(row.size_bytes),
            "Content-Disposition": content_disposition(row.file_name),
            "X-Content-Type-Options": "nosniff",
            # Opened directly in a browser anyway, the content runs nothing.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


@router.delete(
    "/deals/{deal_id}/files/{file_id}",
    name="deals:files:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422, DealConverted),
)
async def delete_file(
    deal_id: uuid.UUID,
    file_id: uuid.UUID,
    session: Session,
    caller: CurrentCaller,
    storage: FileStorage,
) -> Response:
    """Delete a file of a deal, with its stored content."""
    deal = await visible_deal(session, caller, deal_id)
    key = found(await FileRepository(session, caller, deal.id).delete(file_id), "file")
    # A background task runs after the response is sent, which the request envelope
    # holds back until the transaction has committed: the bytes go only once the row is gone.
    return Response(
        status_code=status.HTTP_204_NO_CONTENT, background=BackgroundTask(storage.delete, key)
    )

"""`/imports`: upload a CSV or XLSX, map its columns, dry-run, run and revert as jobs,
cancel, and download the failed rows. Admins only."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status
from starlette.datastructures import UploadFile

from leadflow.deps import AdminCaller, AppSettings, Session
from leadflow.errors import InvalidInput, responses
from leadflow.imports import service
from leadflow.imports.parse import DELIMITERS
from leadflow.imports.schemas import ImportMapping, ImportRead, ImportUploaded, ValidationReport
from leadflow.jobs.router import job_answer
from leadflow.jobs.schemas import JobRead
from leadflow.readpath import json_response

router = APIRouter(tags=["imports"])

FIELD = "file"
_DELIMITER_NAMES = {",": ",", ";": ";", "tab": "\t", "\t": "\t", "|": "|"}
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
                            "description": "A CSV file, or an XLSX file (its first sheet).",
                        },
                        "encoding": {
                            "type": "string",
                            "maxLength": 32,
                            "description": "The CSV's encoding (default UTF-8, BOM removed).",
                            "examples": ["windows-1252"],
                        },
                        "delimiter": {
                            "type": "string",
                            "enum": [",", ";", "tab", "|"],
                            "description": "The CSV's delimiter (default: sniffed).",
                        },
                    },
                }
            }
        },
    }
}


async def _form(request: Request) -> tuple[UploadFile, str | None, str | None]:
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get(FIELD)
    if not isinstance(upload, UploadFile):
        await form.close()
        raise InvalidInput(
            ["body", FIELD], f"Send the file as the multipart/form-data field {FIELD!r}."
        )
    encoding = form.get("encoding")
    delimiter = form.get("delimiter")
    if encoding is not None and (not isinstance(encoding, str) or len(encoding) > 32):
        raise InvalidInput(["body", "encoding"], "At most 32 characters.")
    if delimiter is not None:
        if not isinstance(delimiter, str) or delimiter not in _DELIMITER_NAMES:
            raise InvalidInput(["body", "delimiter"], f"One of {sorted(_DELIMITER_NAMES)}.")
        delimiter = _DELIMITER_NAMES[delimiter]
        assert delimiter in DELIMITERS
    return upload, encoding or None, delimiter


@router.post(
    "/imports",
    name="imports:create",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportUploaded,
    responses=responses(400, 401, 403, 413, 422),
    openapi_extra=_UPLOAD_BODY,
)
async def upload_import(
    request: Request, session: Session, caller: AdminCaller, settings: AppSettings
) -> Response:
    """Upload a CSV or XLSX to import (admins). Answers its columns, the first 20 rows, a
    suggested mapping, and the earlier imports of the same file (SHA-256). Over the size
    limit (50 MB by default) 413, over the row limit (50,000) 422: nothing is kept."""
    upload, encoding, delimiter = await _form(request)
    try:
        answer = await service.upload(session, caller, settings, upload, encoding, delimiter)
    finally:
        await upload.close()
    return json_response(answer.model_dump(mode="json"), status_code=status.HTTP_201_CREATED)


@router.get(
    "/imports/{import_id}",
    name="imports:get",
    response_model=ImportRead,
    responses=responses(401, 403, 404, 422),
)
async def get_import(import_id: uuid.UUID, session: Session, caller: AdminCaller) -> Response:
    """An import: its state and progress (processed, created, updated, skipped, failed,
    rows per second, seconds left)."""
    answer = await service.get_import(session, caller, import_id)
    return json_response(answer.model_dump(mode="json"))


@router.put(
    "/imports/{import_id}/mapping",
    name="imports:mapping",
    response_model=ImportRead,
    responses=responses(401, 403, 404, 409, 422),
)
async def put_mapping(
    import_id: uuid.UUID, mapping: ImportMapping, session: Session, caller: AdminCaller
) -> Response:
    """Map columns to fields of persons, organizations and leads (custom fields by key),
    with per-column options, what to do with matches and defaults. Until the import runs."""
    answer = await service.set_mapping(session, caller, import_id, mapping)
    return json_response(answer.model_dump(mode="json"))


@router.post(
    "/imports/{import_id}/validate",
    name="imports:validate",
    response_model=ValidationReport,
    responses=responses(401, 403, 404, 409, 422),
)
async def validate_import(import_id: uuid.UUID, session: Session, caller: AdminCaller) -> Response:
    """Dry run: the whole pipeline over every row, writing nothing; each row's outcome
    (would_create, would_update, would_skip, error) with field-level errors."""
    answer = await service.validate(session, caller, import_id)
    return json_response(answer.model_dump(mode="json"))


def _job_headers(request: Request, job_id: uuid.UUID) -> dict[str, str]:
    return {"Location": str(request.app.url_path_for("jobs:get", job_id=str(job_id)))}


@router.post(
    "/imports/{import_id}/run",
    name="imports:run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    responses=responses(401, 403, 404, 409, 422),
)
async def run_import(
    import_id: uuid.UUID, request: Request, session: Session, caller: AdminCaller
) -> Response:
    """Run a mapped import as a job (202, `Location: /api/v1/jobs/{id}`): chunks of 500
    rows, each one transaction with its progress; resumed after a worker crash from the
    last committed chunk. One import (or revert) runs at a time per company (409)."""
    job_id = await service.run(session, caller, import_id)
    return json_response(
        await job_answer(session, caller, job_id),
        status_code=status.HTTP_202_ACCEPTED,
        headers=_job_headers(request, job_id),
    )


@router.post(
    "/imports/{import_id}/cancel",
    name="imports:cancel",
    response_model=ImportRead,
    responses=responses(401, 403, 404, 409, 422),
)
async def cancel_import(import_id: uuid.UUID, session: Session, caller: AdminCaller) -> Response:
    """Stop a queued or running import after its current chunk; what committed stays
    (revert it to undo)."""
    answer = await service.cancel(session, caller, import_id)
    return json_response(answer.model_dump(mode="json"))


@router.post(
    "/imports/{import_id}/revert",
    name="imports:revert",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    responses=responses(401, 403, 404, 409, 422),
)
async def revert_import(
    import_id: uuid.UUID, request: Request, session: Session, caller: AdminCaller
) -> Response:
    """Undo a finished import within 30 days, as a job (202): deletes the leads, then the
    persons and organizations it created (contacts used by other records are kept,
    counted as `kept`), and restores the records it updated from their recorded values
    unless they changed since (`conflicts`). The counts land in `revert_result`."""
    job_id = await service.revert(session, caller, import_id)
    return json_response(
        await job_answer(session, caller, job_id),
        status_code=status.HTTP_202_ACCEPTED,
        headers=_job_headers(request, job_id),
    )


@router.get(
    "/imports/{import_id}/errors.csv",
    name="imports:errors",
    response_class=Response,
    responses={
        200: {
            "description": "The failed rows as uploaded, with a last column `Error`.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **responses(401, 403, 404, 422),
    },
)
async def errors_file(import_id: uuid.UUID, session: Session, caller: AdminCaller) -> Response:
    """The rows that failed, ready to fix and upload again."""
    content = await service.errors_csv(session, caller, import_id)
    return Response(
        content.encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="import-errors.csv"'},
    )

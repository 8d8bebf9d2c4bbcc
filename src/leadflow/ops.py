"""Operational endpoints at the root, outside /api/v1."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow import metrics
from leadflow.errors import problem_response, responses

router = APIRouter(tags=["operations"])
log = logging.getLogger("leadflow.ops")

# A readiness probe that hangs is worse than one that says no: an unroutable database
# host would otherwise hold this request for the driver's 60 s connect timeout.
READY_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str


@router.get("/healthz", name="ops:healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", name="ops:readyz", response_model=Health, responses=responses(503))
async def readyz(request: Request) -> Response | Health:
    """The database answers; a balancer may send traffic here."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready
        log.warning("not ready: the database does not answer (%s)", type(exc).__name__)
        return problem_response(503, "not-ready", "Not ready", "The database is not reachable.")
    return Health(status="ok")


@router.get(
    "/metrics",
    name="ops:metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def prometheus_metrics() -> Response:
    """Request counts and latencies per route, in Prometheus text format."""
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)

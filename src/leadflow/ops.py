"""Operational endpoints at the root, outside /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from leadflow import metrics
from leadflow.errors import problem_response, responses

router = APIRouter(tags=["operations"])


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
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means not ready
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

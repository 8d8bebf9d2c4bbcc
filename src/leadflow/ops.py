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
async def prometheus_metrics(request: Request) -> Response:
    """Request counts and latencies per route, webhook delivery outcomes and the webhook
    queue's depth, in Prometheus text format."""
    await _webhook_queue_depth(request.app.state)
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)


# Events written but not yet made into deliveries by a worker's fan-out count as
# `to_fan_out`. Each count walks a partial index holding exactly its rows.
_QUEUE_DEPTH = text(
    "SELECT status, count(*) FROM webhook_delivery"
    " WHERE status IN ('pending', 'in_flight') GROUP BY status"
    " UNION ALL SELECT 'to_fan_out', count(*) FROM webhook_event WHERE fanned_out_at IS NULL"
)


async def _webhook_queue_depth(state: object) -> None:
    """The open deliveries by status (the partial index of the worker's claim holds
    exactly these rows) and the events still to fan out; left as last seen when the
    database does not answer."""
    engine: AsyncEngine | None = getattr(state, "engine", None)
    if engine is None:
        return
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as conn:
            rows = (await conn.execute(_QUEUE_DEPTH)).all()
        counts: dict[str, int] = {str(status): int(count) for status, count in rows}
    except Exception as exc:  # metrics must answer whatever the database does
        log.warning("webhook queue depth unknown (%s)", type(exc).__name__)
        return
    for status in ("to_fan_out", "pending", "in_flight"):
        metrics.WEBHOOK_QUEUE.labels(status).set(counts.get(status, 0))

"""Prometheus metrics: request count and latency per route template; webhook deliveries
(outcomes and durations, counted by the process that runs the worker, and the queue's
depth, read from the database at each scrape)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# The `_created` gauges double the exposition for a timestamp Prometheus does not use.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "leadflow_http_requests_total",
    "HTTP requests handled, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "leadflow_http_request_duration_seconds",
    "Time from request start to response end, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)

WEBHOOK_DELIVERIES = Counter(
    "leadflow_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: succeeded, retried (failed, another attempt is "
    "scheduled), failed (the schedule ran out), gone (410: the subscription is disabled).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_DURATION = Histogram(
    "leadflow_webhook_delivery_duration_seconds",
    "Time of one webhook delivery attempt, from resolving the host to the answer.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
WEBHOOK_QUEUE = Gauge(
    "leadflow_webhook_queue_depth",
    "Webhook events waiting for the worker's fan-out (to_fan_out), deliveries waiting"
    " (pending, due or not) or in flight, at the last scrape.",
    ["status"],
    registry=REGISTRY,
)


UNMATCHED = "<unmatched>"


def route_template(scope: Mapping[str, Any], root_path: str = "") -> str:
    """The route template that handled a request ("/api/v1/users/{user_id}"), never the
    concrete path, so that label values stay few whatever ids clients send.

    `root_path` is the scope's root path as the request entered the app; a mount
    (the docs assets) appends to it.
    """
    # FastAPI >= 0.130 keeps included routers nested; the full template of the matched
    # APIRoute is on its effective route context, and `scope["route"].path` lacks the
    # router prefixes.
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if isinstance(template, str) and template:
        return template
    params = scope.get("path_params") or {}
    mounted = str(scope.get("root_path", ""))[len(root_path) :]
    if mounted:
        return mounted + "/{path}"
    if scope.get("endpoint") is not None and not params:
        return str(scope["path"])  # a route without parameters is its own template
    route_path = getattr(scope.get("route"), "path", None)
    return route_path if isinstance(route_path, str) and route_path else UNMATCHED


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    count, latency = _request_series(method, route, status)
    count.inc()
    latency.observe(seconds)


@functools.lru_cache(maxsize=4096)
def _request_series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request's counter and histogram series, found once per label set: `labels()`
    locks and builds its key on every call (2 % of reading one lead). The label values
    are few (route templates, never concrete paths), so the cache holds them all."""
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


JOBS = Counter(
    "leadflow_jobs_total",
    "Jobs ended by this process, by kind and outcome (done, cancelled, failed).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "leadflow_job_duration_seconds",
    "Time a worker ran a job, from its claim to its end (one run: a resumed job counts its "
    "last run), by kind.",
    ["kind"],
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0),
    registry=REGISTRY,
)


def observe_job(kind: str, outcome: str, seconds: float) -> None:
    JOBS.labels(kind, outcome).inc()
    if outcome != "failed":
        JOB_DURATION.labels(kind).observe(seconds)

"""create_app(): routers, the one error handler, the request envelope, lifespan."""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware.cors import CORSMiddleware

from leadflow import errors, idempotency, models, openapi, ops, solving
from leadflow.activities.router import router as activities_router
from leadflow.auth.callers import AUTH_CHANNEL, CallerLookup
from leadflow.auth.router import router as auth_router
from leadflow.capabilities_router import router as capabilities_router
from leadflow.capture.pages import router as capture_pages_router
from leadflow.capture.router import CAPTURE_BODY_PATHS, CAPTURE_MAX_BODY_BYTES
from leadflow.capture.router import router as capture_router
from leadflow.config import Settings, get_settings
from leadflow.contacts import subscriptions as contacts_subscriptions
from leadflow.contacts.router import router as contacts_router
from leadflow.conversion.router import router as conversion_router
from leadflow.db import make_engine, make_reader_factory, make_session_factory
from leadflow.deals import subscriptions as deals_subscriptions
from leadflow.deals.files import router as deal_files_router
from leadflow.deals.line_items.router import router as deal_products_router
from leadflow.deals.participants import router as deal_participants_router
from leadflow.deals.router import router as deals_router
from leadflow.documents import subscriptions as documents_subscriptions
from leadflow.documents.router import router as documents_router
from leadflow.fields.router import router as fields_router
from leadflow.imports.router import router as imports_router
from leadflow.invoices import subscriptions as invoices_subscriptions
from leadflow.invoices.router import router as invoices_router
from leadflow.jobs.router import router as jobs_router
from leadflow.leads import subscriptions as leads_subscriptions
from leadflow.leads.router import labels_router as lead_labels_router
from leadflow.leads.router import router as leads_router
from leadflow.logs import configure_logging
from leadflow.merge.router import router as merge_router
from leadflow.middleware import HeadAsGet, RequestEnvelope
from leadflow.pipelines.router import router as pipelines_router
from leadflow.products import subscriptions as products_subscriptions
from leadflow.products.router import router as products_router
from leadflow.projects import subscriptions as projects_subscriptions
from leadflow.projects.router import router as projects_router
from leadflow.reports import subscriptions as reports_subscriptions
from leadflow.reports.router import router as reports_router
from leadflow.routing import add_routes, index_routes
from leadflow.rules import subscriptions as rules_subscriptions
from leadflow.rules.router import router as rules_router
from leadflow.search.router import router as search_router
from leadflow.security import SecurityHeaders
from leadflow.storage import make_storage
from leadflow.sync.router import router as sync_router
from leadflow.webhooks import outbox as webhooks_outbox
from leadflow.webhooks.docs import describe_webhooks
from leadflow.webhooks.listening import listen
from leadflow.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"

DESCRIPTION = """
leadflow keeps unqualified **leads** in an inbox apart from qualified **deals** in a
pipeline, and converts between them under strict capability rules.

Errors are RFC 9457 `application/problem+json`. Lists are keyset-paginated
(`limit`, `cursor` → `next_cursor`). Every POST accepts an `Idempotency-Key` header.

Text anywhere (bodies, query parameters, path segments) may not contain NUL (U+0000),
which PostgreSQL cannot store: such a request is 422 (where no other rule refused it
first, with an error of type `string_nul`), whatever a string's schema below allows.
"""


def _operation_id(route: APIRoute) -> str:
    """Readable operation ids: the route's name in snake case, e.g. `persons_create` for
    `persons:create`, `leads_convert_preview` for `leads:convert-preview` (generators drop
    the `:` without a separator: `leadscreate`)."""
    return route.name.replace(":", "_").replace("-", "_")


# In matching order: a router whose paths would shadow another's comes after it.
API_ROUTERS: tuple[APIRouter, ...] = (
    auth_router,
    activities_router,
    contacts_router,
    pipelines_router,
    leads_router,
    lead_labels_router,
    capabilities_router,
    deals_router,
    products_router,
    deal_products_router,
    deal_participants_router,
    deal_files_router,
    conversion_router,
    rules_router,
    capture_router,
    webhooks_router,
    jobs_router,
    fields_router,
    reports_router,
    search_router,
    sync_router,
    merge_router,
    invoices_router,
    projects_router,
    documents_router,
    imports_router,
)


# Room for the multipart boundaries and part headers around an uploaded file.
MULTIPART_OVERHEAD = 64 * 1024
_FILE_UPLOAD_PATH = re.compile(rf"^{API_PREFIX}/deals/[^/]+/files/?$")
_IMPORT_UPLOAD_PATH = re.compile(rf"^{API_PREFIX}/imports/?$")


def body_limit_for(settings: Settings) -> Any:
    def limit(path: str) -> int:
        if _FILE_UPLOAD_PATH.match(path):
            return settings.max_upload_bytes + MULTIPART_OVERHEAD
        if _IMPORT_UPLOAD_PATH.match(path):
            return settings.import_max_bytes + MULTIPART_OVERHEAD
        if path.startswith(CAPTURE_BODY_PATHS):
            return CAPTURE_MAX_BODY_BYTES
        return settings.max_body_bytes

    return limit


# The young generation is collected after this many new container objects (CPython's
# default 700 ran a collection every few requests); the older ones as by default.
GC_THRESHOLDS = (20_000, 10, 10)


def _freeze_startup_objects() -> None:
    """Move everything start-up made (modules, routes, compiled statements, the OpenAPI
    models: ~160,000 objects) out of the collector's sight. A full collection walked them
    all, about once a second under load, for 110-160 ms each: that was the p99."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def subscribe_listeners() -> None:
    """Subscribe the packages that listen to domain events (`leadflow.events`): whatever
    writes records (the API, the CLI) calls this first. Idempotent. The outbox comes
    first: an event's `data` is the record as the change left it, before any rule
    reacting to the change writes again."""
    webhooks_outbox.subscribe()
    deals_subscriptions.subscribe()
    leads_subscriptions.subscribe()
    contacts_subscriptions.subscribe()
    products_subscriptions.subscribe()
    rules_subscriptions.subscribe()
    reports_subscriptions.subscribe()
    invoices_subscriptions.subscribe()
    projects_subscriptions.subscribe()
    documents_subscriptions.subscribe()


def _start_worker(
    engine: AsyncEngine, settings: Settings
) -> tuple[asyncio.Task[None], asyncio.Event]:
    """The worker inside this process (`leadflow serve --worker`), on the app's engine."""
    from leadflow.worker import make_worker

    stop = asyncio.Event()
    task = asyncio.create_task(make_worker(engine, settings).run(stop), name="leadflow-worker")
    return task, stop


async def _stop_worker(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Let the round in progress finish (its sends time out after 10 s); a delivery cut
    short stays claimed until its lease ends and is then sent again."""
    stop.set()
    with suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=15)


def _route_methods(app: FastAPI) -> list[str]:
    """The methods the API's routes answer, for CORS preflights (HEAD and OPTIONS are
    answered without one)."""
    found = {m for r in app.routes if isinstance(r, APIRoute) for m in r.methods or ()}
    return sorted(found - {"HEAD", "OPTIONS"})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Every table must be known before the first query resolves a foreign key.
    assert models.Base.metadata.tables
    subscribe_listeners()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "session_factory", None) is not None:
            yield  # tests provide their own session factory
            return
        if not settings.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set. Run `leadflow serve` to use the embedded PostgreSQL."
            )
        connect_args: dict[str, Any] = {"timeout": settings.db_pool_timeout}
        if not settings.db_pgbouncer:
            # Behind PgBouncer these are the role's (ALTER ROLE ... SET), not the
            # connection's: PgBouncer refuses them as startup parameters (README).
            connect_args["server_settings"] = {
                # No JIT compilation: an API's statements run in milliseconds, and a
                # report whose cost the planner overestimates (a nested loop over a few
                # days' leads, estimated as a million rows) spent 440 ms compiling for
                # 1 ms of execution.
                "jit": "off",
                "statement_timeout": str(settings.statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_timeout_ms),
            }
        engine = make_engine(
            settings.database_url,
            pgbouncer=settings.db_pgbouncer,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            connect_args=connect_args,
        )
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.reader_factory = make_reader_factory(engine)
        _freeze_startup_objects()
        worker = _start_worker(engine, settings) if settings.run_worker else None
        # Companies without a subscription write no outbox statement while this runs.
        stop_listening = asyncio.Event()
        listener = asyncio.create_task(webhooks_outbox.unsubscribed.listen(engine, stop_listening))
        # Revoked tokens and changed users are forgotten by every process (auth.callers).
        callers: CallerLookup = app.state.callers
        auth_listener = asyncio.create_task(
            listen(engine, AUTH_CHANNEL, callers.forget_all, callers.on_listening, stop_listening)
        )
        try:
            yield
        finally:
            stop_listening.set()
            for task in (listener, auth_listener):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            if worker is not None:
                await _stop_worker(*worker)
            await engine.dispose()

    app = FastAPIOffline(
        title="leadflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        redoc_url=None,
        static_url="/docs-assets",
        # leadflow exports its own Prometheus metrics and configures no OpenTelemetry:
        # FastAPI's native telemetry, on, asked the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    # One per app: an S3 store keeps its HTTP connections between requests.
    app.state.storage = make_storage(settings)
    app.state.callers = CallerLookup(settings.auth_cache_seconds)
    app.state.session_factory = None
    app.state.reader_factory = None
    add_routes(app, [ops.router])
    add_routes(app, API_ROUTERS, prefix=API_PREFIX)
    add_routes(app, [capture_pages_router])
    methods = _route_methods(app)  # before the routes are grouped into an index
    index_routes(app)
    # Dependencies solved from a plan per route (`leadflow.solving`); kept as FastAPI's own
    # solving if this FastAPI's function is not the one it was written against.
    solving.install()
    describe_webhooks(app)
    app.openapi = lambda: openapi.build(app)  # type: ignore[method-assign]
    errors.install_error_handlers(app)
    idempotency.install(app)
    app.add_middleware(HeadAsGet)
    if settings.cors_origins:
        # Inside the envelope: preflights get a request id and are logged like the rest.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            # Every method a route answers (PUT: an import's mapping), read off the routes.
            allow_methods=methods,
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["X-Request-Id", "Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(
        RequestEnvelope,
        session_factory=lambda: app.state.session_factory,
        reader_factory=lambda: app.state.reader_factory,
        body_limit=body_limit_for(settings),
    )
    app.add_middleware(
        SecurityHeaders,
        docs_path="/docs",
        api_prefix=API_PREFIX,
        hsts_max_age=settings.hsts_max_age,
    )
    return app


def app_factory() -> FastAPI:
    """Entry point for uvicorn (`--factory`)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)

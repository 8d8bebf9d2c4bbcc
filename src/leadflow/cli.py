"""The `leadflow` command: serve, worker, migrate, create-company, import, openapi."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from leadflow.config import Settings, get_settings
from leadflow.localdb import (
    DEFAULT_DATABASE,
    DatabaseUnavailable,
    EmbeddedPostgres,
    describe,
    ensure_database,
    migrate,
)
from leadflow.logs import configure_logging
from leadflow.worker import KINDS

log = logging.getLogger("leadflow.cli")


def _fail(message: str) -> int:
    print(f"leadflow: {message}", file=sys.stderr)
    return 2


def _resolve_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when set, else the embedded server (started now) under the data dir."""
    if settings.database_url:
        asyncio.run(ensure_database(settings.database_url))
        return settings.database_url, None
    if settings.require_database_url:
        raise DatabaseUnavailable(
            "DATABASE_URL is not set; it is required here (LEADFLOW_REQUIRE_DATABASE_URL=1)"
        )
    embedded = EmbeddedPostgres(settings.data_dir)
    url = embedded.url(DEFAULT_DATABASE)
    asyncio.run(ensure_database(url))
    return url, embedded


def _local_admin_token(data_dir: Path) -> str:
    path = data_dir / "admin_token"
    if path.exists():
        return path.read_text().strip()
    token = "lfop_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


class _Terminated(Exception):
    """SIGTERM asked the process to stop."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def cmd_serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    # While serving, uvicorn takes SIGTERM over: it stops accepting connections, lets the
    # requests in flight finish (at most LEADFLOW_SHUTDOWN_TIMEOUT seconds), runs the
    # lifespan shutdown, then raises the signal again, which lands here: the process
    # stops the embedded database (if any) and exits 0, as for any requested stop.
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _serve(args, settings)
    except _Terminated:
        log.info("stopped on SIGTERM")
        return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    url, embedded = _resolve_database(settings)
    try:
        os.environ["DATABASE_URL"] = url
        if embedded is not None and settings.admin_token is None:
            token = _local_admin_token(settings.data_dir)
            os.environ["LEADFLOW_ADMIN_TOKEN"] = token
            _print_banner(args.host, args.port, token)
        if args.worker:
            os.environ["LEADFLOW_RUN_WORKER"] = "1"
        get_settings.cache_clear()
        if not args.no_migrate:
            migrate(url)
        import uvicorn

        log.info("serving on http://%s:%s (database %s)", args.host, args.port, describe(url))
        uvicorn.run(
            "leadflow.main:app_factory",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            log_level=settings.log_level.lower(),
            access_log=False,
            proxy_headers=True,
            server_header=False,  # no `server: uvicorn`: the stack's name helps no client
            date_header=True,  # RFC 9110: an origin server with a clock sends Date
            timeout_graceful_shutdown=settings.shutdown_timeout,
            log_config=None,  # our JSON handler (configure_logging) formats uvicorn's lines too
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _print_banner(host: str, port: int, token: str) -> None:
    body = json.dumps({"name": "Acme", "admin_email": "you@example.com"})
    print(
        "\nleadflow: local operator token (kept in .data/admin_token):\n"
        f"  {token}\n"
        "Create a company:\n"
        f"  curl -s -X POST http://{host}:{port}/api/v1/companies "
        f"-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{body}'\n",
        file=sys.stderr,
        flush=True,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    """Deliver webhooks and run jobs until SIGTERM or Ctrl-C."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    url, embedded = _resolve_database(settings)
    try:
        if not args.no_migrate:
            migrate(url)
        asyncio.run(_work(url, settings, args.only or KINDS))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


async def _work(url: str, settings: Settings, kinds: Sequence[str]) -> None:
    from leadflow.db import make_engine
    from leadflow.main import subscribe_listeners
    from leadflow.worker import make_worker

    # The jobs write records (imports, rule applies) and publish their events: the
    # outbox, rules and reports must hear them here as in the API process.
    subscribe_listeners()

    engine = make_engine(url, pool_size=5, max_overflow=0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        from leadflow.metrics import REGISTRY

        # The delivery outcomes and durations this process counts; the queue depth is
        # on the API's /metrics (read from the database).
        start_http_server(
            settings.worker_metrics_port, addr=settings.worker_metrics_host, registry=REGISTRY
        )
    log.info("worker started (database %s)", describe(url))
    try:
        await make_worker(engine, settings, kinds).run(stop)
    finally:
        await engine.dispose()
    log.info("worker stopped")


def cmd_migrate(_: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    url, embedded = _resolve_database(settings)
    try:
        migrate(url)
        log.info("database %s is at the latest migration", describe(url))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def cmd_create_company(args: argparse.Namespace) -> int:
    from leadflow.auth.schemas import CompanyCreate

    try:
        data = CompanyCreate(
            name=args.name,
            admin_email=args.admin_email,
            admin_name=args.admin_name,
            max_open_deals=args.max_open_deals,
        )
    except ValidationError as exc:
        return _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    url, embedded = _resolve_database(get_settings())
    try:
        migrate(url)
        print(json.dumps(asyncio.run(_create_company(url, data)), indent=2))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


async def _create_company(url: str, data: object) -> object:
    from leadflow.auth import service
    from leadflow.auth.schemas import CompanyCreate, CompanyCreated, CompanyRead, UserRead
    from leadflow.db import make_engine, make_session_factory
    from leadflow.main import subscribe_listeners

    assert isinstance(data, CompanyCreate)
    subscribe_listeners()  # a new company gets its example conversion rule
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            company, user, token = await service.create_company(session, data)
            created = CompanyCreated(
                company=CompanyRead.model_validate(company),
                user=UserRead.model_validate(user),
                api_token=token,
            )
        return created.model_dump(mode="json")
    finally:
        await engine.dispose()


def cmd_import(args: argparse.Namespace) -> int:
    """Upload, map, then dry-run or run an import as the API does, with a progress bar."""
    import uuid

    try:
        company = uuid.UUID(args.company)
        user = uuid.UUID(args.user) if args.user else None
        mapping = json.loads(Path(args.mapping).read_text()) if args.mapping else None
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    if not Path(args.file).is_file():
        return _fail(f"no such file: {args.file}")
    settings = get_settings()
    configure_logging("WARNING", settings.log_json)
    url, embedded = _resolve_database(settings)
    try:
        migrate(url)
        summary = asyncio.run(
            _import_file(url, settings, args, company, user, mapping, args.entity or [])
        )
    finally:
        if embedded is not None:
            embedded.stop()
    print(json.dumps(summary, indent=2, default=str))
    return 0 if summary.get("state") in ("completed", "validated") else 1


async def _import_file(
    url: str,
    settings: Settings,
    args: argparse.Namespace,
    company: object,
    user: object,
    mapping: object,
    entities: Sequence[str],
) -> dict[str, object]:
    import uuid

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from sqlalchemy import select
    from starlette.datastructures import UploadFile

    from leadflow.auth.models import User
    from leadflow.db import make_engine, make_session_factory
    from leadflow.errors import DomainError
    from leadflow.imports import service
    from leadflow.imports.schemas import ImportMapping
    from leadflow.job_kinds import HANDLERS
    from leadflow.jobs.runner import JobLoop
    from leadflow.main import subscribe_listeners
    from leadflow.tenancy import Caller, Role

    assert isinstance(company, uuid.UUID)
    subscribe_listeners()
    engine = make_engine(url, pool_size=3, max_overflow=0)
    factory = make_session_factory(engine)
    try:
        async with factory() as session, session.begin():
            admins = select(User.id, User.group_id).where(
                User.company_id == company, User.role == Role.admin.value
            )
            if user is not None:
                admins = admins.where(User.id == user)
            found = (await session.execute(admins.order_by(User.created_at).limit(1))).first()
            if found is None:
                return {"state": "failed", "error": "no such admin of this company"}
            caller = Caller(
                company_id=company, user_id=found.id, role=Role.admin, group_id=found.group_id
            )
            with Path(args.file).open("rb") as raw:  # noqa: ASYNC230 - read in a thread by upload()
                upload = UploadFile(raw, filename=Path(args.file).name)
                uploaded = await service.upload(
                    session, caller, settings, upload, args.encoding, args.delimiter
                )
            if mapping is None:
                # Headers suggest lead fields for what a lead and a deal share (title,
                # value...): asked for deals and not leads, those columns go to the deal.
                as_deal = "deal" in entities and "lead" not in entities
                suggested = [
                    s.model_dump(mode="json")
                    | ({"entity": "deal"} if as_deal and s.entity.value == "lead" else {})
                    for s in uploaded.suggested_mapping
                ]
                mapping = {
                    "columns": [s for s in suggested if not entities or s["entity"] in entities]
                }
            await service.set_mapping(
                session, caller, uploaded.id, ImportMapping.model_validate(mapping)
            )
            if args.dry_run:
                report = await service.validate(session, caller, uploaded.id)
                await session.rollback()
                return {
                    "state": "validated",
                    "rows": uploaded.row_count,
                    **report.model_dump(exclude={"rows"}),
                    "first_errors": [r.model_dump() for r in report.rows if r.errors][:20],
                }
            await service.run(session, caller, uploaded.id)
        loop = JobLoop(factory, HANDLERS)
        worker = asyncio.create_task(_drain(loop))
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} rows"),
            TimeRemainingColumn(),
        )
        with Progress(*columns) as progress:
            task = progress.add_task(Path(args.file).name, total=uploaded.row_count)
            while True:
                async with factory() as session:
                    current = await service.get_import(session, caller, uploaded.id)
                progress.update(task, completed=current.processed)
                if current.state not in ("queued", "running") or worker.done():
                    break
                await asyncio.sleep(0.3)
        await worker
        async with factory() as session:
            current = await service.get_import(session, caller, uploaded.id)
        return current.model_dump(
            mode="json",
            include={
                "id",
                "state",
                "row_count",
                "processed",
                "created",
                "updated",
                "skipped",
                "failed",
                "rows_per_second",
            },
        )
    except DomainError as error:
        return {"state": "failed", "error": error.detail, **error.extensions}
    finally:
        await engine.dispose()


async def _drain(loop: object) -> None:
    from leadflow.jobs.runner import JobLoop

    assert isinstance(loop, JobLoop)
    while await loop.run_once():
        pass


def cmd_openapi(args: argparse.Namespace) -> int:
    from leadflow.main import create_app
    from leadflow.openapi import render

    text = render(create_app(Settings(database_url=None)))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="migrate, then serve the API (embedded DB when DATABASE_URL is unset)"
    )
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    serve.add_argument("--no-migrate", action="store_true")
    serve.add_argument(
        "--worker", action="store_true", help="also run the worker (webhooks, jobs) inside"
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker", help="deliver webhooks, run jobs (several may run; embedded DB when unset)"
    )
    worker.add_argument("--no-migrate", action="store_true")
    worker.add_argument(
        "--only",
        action="append",
        choices=KINDS,
        help="run only this kind of work (repeatable; default: all)",
    )
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="apply the database migrations").set_defaults(func=cmd_migrate)

    company = sub.add_parser("create-company", help="create a company and print its admin token")
    company.add_argument("--name", required=True)
    company.add_argument("--admin-email", required=True)
    company.add_argument("--admin-name")
    company.add_argument("--max-open-deals", type=int)
    company.set_defaults(func=cmd_create_company)

    imports = sub.add_parser(
        "import", help="import a CSV or XLSX into a company (the API's pipeline, a progress bar)"
    )
    imports.add_argument("file")
    imports.add_argument("--company", required=True, help="the company's id")
    imports.add_argument("--user", help="the importing admin's id (default: the first admin)")
    imports.add_argument("--mapping", help="a JSON file: the body of PUT /imports/{id}/mapping")
    imports.add_argument(
        "--entity",
        action="append",
        choices=("person", "organization", "lead", "deal", "note", "activity"),
        help="without --mapping: map the suggested columns of these entities (repeatable)",
    )
    imports.add_argument("--encoding", help="the CSV's encoding (default UTF-8)")
    imports.add_argument("--delimiter", choices=(",", ";", "\t", "|"))
    imports.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
    imports.set_defaults(func=cmd_import)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", default="openapi/openapi.json")
    openapi.set_defaults(func=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])).upper()
        message = str(first["msg"]).removeprefix("Value error, ")
        return _fail(f"invalid setting {where}: {message}" if where else message)
    try:
        result: int = args.func(args)
    except DatabaseUnavailable as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())

"""The layout's rules that a reader would otherwise have to trust, checked on the source
with `ast` (comments and strings that name a module or a class do not count; every
import form does)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import leadflow

SRC = Path(leadflow.__file__).parent

# Where a transaction may end with a commit, by (module, function): the request envelope,
# the one owner of a request's transaction; and a command-line command that runs outside
# any request and owns its one transaction (as the coming job runner will).
COMMITS_ALLOWED = {
    ("leadflow/middleware.py", "RequestEnvelope._end_transaction"): "the request envelope",
    ("leadflow/cli.py", "_create_company"): "`leadflow create-company`, outside any request",
    (
        "leadflow/cli.py",
        "_import_file",
    ): "`leadflow import`: its upload and mapping, outside any request",
    ("leadflow/webhooks/delivery.py", "DeliveryLoop.fan_out"): (
        "the worker's fan-out of new events into deliveries, outside any request"
    ),
    ("leadflow/webhooks/delivery.py", "DeliveryLoop.claim"): (
        "the worker's claim of due deliveries, outside any request"
    ),
    ("leadflow/webhooks/delivery.py", "DeliveryLoop.record"): (
        "the worker's record of one delivery's outcome, outside any request"
    ),
    ("leadflow/jobs/runner.py", "JobLoop.run_once"): "the job runner: a job's claim",
    ("leadflow/jobs/runner.py", "JobLoop._run"): "the job runner: each chunk with its progress",
    ("leadflow/jobs/runner.py", "JobLoop._end"): "the job runner: a job's end",
    ("leadflow/jobs/runner.py", "JobLoop._schedule"): "the job runner: periodic jobs enqueued",
}
_SQL_COMMIT = re.compile(r"^\s*(COMMIT|END|RELEASE)\b", re.IGNORECASE)


def _commits(tree: ast.AST) -> Iterator[tuple[str, int, str]]:
    """(qualified function, line, what) of every way to commit: `.commit` (called or passed
    on), `.begin()` (its context manager commits on exit; `begin_nested()` is a savepoint),
    and a COMMIT written as SQL."""

    def walk(node: ast.AST, scope: list[str]) -> Iterator[tuple[str, int, str]]:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = [*scope, child.name]
            where = ".".join(inner) or "<module>"
            if isinstance(child, ast.Attribute) and child.attr == "commit":
                yield where, child.lineno, ".commit"
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "begin"
            ):
                yield where, child.lineno, ".begin()"
            if isinstance(child, ast.Call):
                for arg in child.args:
                    if (
                        isinstance(arg, ast.Constant)
                        and isinstance(arg.value, str)
                        and _SQL_COMMIT.match(arg.value)
                    ):
                        yield where, child.lineno, f"SQL {arg.value.split()[0]}"
            yield from walk(child, inner)

    yield from walk(tree, [])


def _modules() -> Iterator[tuple[str, ast.AST]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC.parent).as_posix(), ast.parse(path.read_text(), str(path))


def test_only_the_request_envelope_commits() -> None:
    """Services, repositories, idempotency and rules write into the request's transaction
    and may flush or take savepoints; only the envelope commits it."""
    found = {
        (module, where, line, what)
        for module, tree in _modules()
        for where, line, what in _commits(tree)
    }
    elsewhere = sorted(
        f"{module}:{line} {where}: {what}"
        for module, where, line, what in found
        if (module, where) not in COMMITS_ALLOWED
    )
    assert not elsewhere, "commits outside the request envelope:\n" + "\n".join(elsewhere)
    assert {(module, where) for module, where, _, _ in found} == set(COMMITS_ALLOWED), (
        "an allowed place no longer commits: drop it from COMMITS_ALLOWED"
    )


def test_the_commit_check_sees_each_way_to_commit() -> None:
    source = """
async def service(session, engine, conn):
    await session.commit()
    async with engine.begin():
        pass
    await conn.execute(text("COMMIT"))
    callback = session.commit
    async with session.begin_nested():
        pass

class Repository:
    async def save(self):
        await self.session.commit()
"""
    assert sorted(_commits(ast.parse(source))) == [
        ("Repository.save", 13, ".commit"),
        ("service", 3, ".commit"),
        ("service", 4, ".begin()"),
        ("service", 6, "SQL COMMIT"),
        ("service", 7, ".commit"),
    ]


# Calls flow down (events flow up), and each record has one writer.

# Packages below rule evaluation and conversion: they publish events, never call up.
LOWER_PACKAGES = (
    "leads",
    "activities",
    "capture",
    "deals",
    "contacts",
    "pipelines",
    "products",
    "jobs",
)
HIGHER = ("leadflow.rules", "leadflow.conversion")

# Each record's table and the one package (or module) that inserts, updates or deletes it.
WRITERS = {
    "Lead": "leads/repository.py",
    "Deal": "deals/repository.py",
    "DealChange": "deals/changelog.py",
    "Person": "contacts/repository.py",
    "Organization": "contacts/repository.py",
    "Note": "activities/repository.py",
    "Activity": "activities/repository.py",
    "FieldDefinition": "fields/repository.py",
    "DealHistory": "reports/repository.py",
    "Invoice": "invoices/repository.py",
    "Project": "projects/repository.py",
    "ProjectBoard": "projects/repository.py",
    "ProjectPhase": "projects/repository.py",
    "MergedRecord": "merged.py",
}
_WRITES = {"insert", "update", "delete", "pg_insert"}


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(root.parent).parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            # `from leadflow import rules` imports the package too.
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def upward_imports(root: Path = SRC) -> list[str]:
    found = []
    for package in LOWER_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path, root):
                if any(module == h or module.startswith(h + ".") for h in HIGHER):
                    found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def record_writes(root: Path = SRC) -> list[str]:
    """Writes of a record's table outside its writer: `insert(Lead)`, `update(Deal)`,
    `pg_insert(Person)`, `delete(Note)` or constructing an ORM row `Lead(...)`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            name = node.func.id
            if name in _WRITES and node.args and isinstance(node.args[0], ast.Name):
                model = node.args[0].id
            elif name in WRITERS:
                model = name
            else:
                continue
            if model in WRITERS and relative != WRITERS[model]:
                found.append(f"{relative}:{node.lineno} writes {model}")
    return found


# The packages from the bottom up: each may import the ones before it, never one after
# (what a higher package needs of a lower one's records arrives as a domain event or a
# registration at start-up). Above them: main, cli, worker, job_kinds and models, which
# assemble the app; below them the shared modules of `leadflow/` (SHARED_EXCEPTIONS aside).
PACKAGE_ORDER = (
    "jobs",
    "pipelines",
    "auth",
    "fields",
    "contacts",
    "products",
    "leads",
    "deals",
    "activities",
    "capture",
    "conversion",
    "rules",
    "reports",
    "webhooks",
    "sync",
    "search",
    "invoices",
    "projects",
    "documents",
    "imports",
    "merge",
)
ASSEMBLY = {"main.py", "cli.py", "worker.py", "job_kinds.py", "models.py"}
# deps.py is the web glue every router solves: it authenticates with auth's identity
# modules (the token cache and the failure limiter), which import nothing above them.
SHARED_EXCEPTIONS = {("deps.py", "auth")}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "leadflow" else None


def imports_against_the_order(root: Path = SRC) -> list[str]:
    found = []
    for package in PACKAGE_ORDER:
        rank = PACKAGE_ORDER.index(package)
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path, root):
                target = _package_of(module)
                if target in PACKAGE_ORDER and PACKAGE_ORDER.index(target) > rank:
                    found.append(f"{path.relative_to(root)}:{line} imports {module}")
    for path in sorted(root.glob("*.py")):
        if path.name in ASSEMBLY:
            continue
        for line, module in imported_modules(path, root):
            target = _package_of(module)
            if target in PACKAGE_ORDER and (path.name, target) not in SHARED_EXCEPTIONS:
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return sorted(set(found))


def test_packages_import_only_the_ones_below() -> None:
    """Pipelines ask deals whether a stage may go by an event (`PipelineVacating`),
    tenancy reads users through a Core table of its own, and contacts register the
    records `person`/`organization` fields name: no arrow runs back up."""
    assert imports_against_the_order() == []


def test_tenancy_users_table_is_the_users_table() -> None:
    """tenancy's Core copy of `app_user` (group visibility) names real columns."""
    from leadflow.auth.models import User
    from leadflow.tenancy import USERS

    assert USERS.name == User.__tablename__
    for column in USERS.c:
        assert column.name in User.__table__.c, column.name


def test_no_lower_package_imports_rules_or_conversion() -> None:
    """leads/, activities/, capture/, deals/, contacts/, pipelines/ and products/ publish
    domain events; rule evaluation and conversion sit above them and listen."""
    assert upward_imports() == []


def test_each_record_is_written_by_its_own_repository() -> None:
    """Conversion, capture and rules call a record's repository; they never write its table."""
    assert record_writes() == []


@pytest.mark.parametrize(
    ("where", "code", "expected"),
    [
        ("leads/service.py", "from leadflow.rules.evaluate import evaluate_lead\n", "imports"),
        ("deals/x.py", "from ..conversion import lead_to_deal\n", "imports"),
        ("capture/x.py", "import leadflow.conversion.errors\n", "imports"),
        ("contacts/x.py", "from leadflow import rules\n", "imports"),
        ("conversion/x.py", "from sqlalchemy import insert\ninsert(Lead)\n", "writes Lead"),
        ("capture/x.py", "Deal(title='t')\n", "writes Deal"),
        ("rules/x.py", "update(Person).values(name='n')\n", "writes Person"),
        ("pipelines/x.py", "from leadflow.deals.service import f\n", "imports"),
        ("tenancy.py", "from leadflow.auth.models import User\n", "imports"),
    ],
)
def test_the_checks_catch_a_violation(tmp_path: Path, where: str, code: str, expected: str) -> None:
    """Each check fails on a planted violation (so a passing check means something)."""
    root = tmp_path / "leadflow"
    target = root / where
    target.parent.mkdir(parents=True)
    target.write_text(code)
    for package in LOWER_PACKAGES:
        (root / package).mkdir(parents=True, exist_ok=True)
    found = upward_imports(root) + record_writes(root) + imports_against_the_order(root)
    assert any(expected in line for line in found), found

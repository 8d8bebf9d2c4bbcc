"""The layout's rules that a reader would otherwise have to trust, checked on the source."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import leadflow

SRC = Path(leadflow.__file__).parent

# Where a transaction may end with a commit, by (module, function): the request envelope,
# the one owner of a request's transaction; and a command-line command that runs outside
# any request and owns its one transaction (as the coming job runner will).
COMMITS_ALLOWED = {
    ("leadflow/middleware.py", "RequestEnvelope._end_transaction"): "the request envelope",
    ("leadflow/cli.py", "_create_company"): "`leadflow create-company`, outside any request",
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

"""The layout rules of architecture.md, checked on the source: calls flow down (events flow
up), and each record has one writer. Read with `ast`, so comments and strings that name
a module or a class do not count, and every import form does (`from x import y`,
`import x`, relative imports)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "leadflow"

# Packages below rule evaluation and conversion: they publish events, never call up.
LOWER_PACKAGES = ("leads", "activities", "capture", "deals", "contacts", "pipelines", "products")
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
    ],
)
def test_the_checks_catch_a_violation(
    tmp_path: Path, where: str, code: str, expected: str
) -> None:
    """Each check fails on a planted violation (so a passing check means something)."""
    root = tmp_path / "leadflow"
    target = root / where
    target.parent.mkdir(parents=True)
    target.write_text(code)
    for package in LOWER_PACKAGES:
        (root / package).mkdir(parents=True, exist_ok=True)
    found = upward_imports(root) + record_writes(root)
    assert any(expected in line for line in found), found

"""`leadflow import`: the API's pipeline from the command line, a dry run and a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadflow.cli import main
from leadflow.config import get_settings
from tests.imports.helpers import csv_bytes


def test_leadflow_import_dry_runs_then_runs_a_file(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    # The CLI reads its settings through get_settings(), cached for the process: cleared,
    # so that it writes into the test's database, not the one the suite was started with.
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)
    assert main(["create-company", "--name", "Cli", "--admin-email", "cli@example.com"]) == 0
    company = json.loads(capsys.readouterr().out)["company"]["id"]
    file = tmp_path / "people.csv"
    file.write_bytes(
        csv_bytes(
            [
                ["Name", "E-mail", "Organization"],
                ["Ana", "ana@example.com", "Acme"],
                ["Bo", "x", "B"],
            ],
            delimiter=";",
        )
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "columns": [
                    {"column": "Name", "entity": "person", "field": "name"},
                    {"column": "E-mail", "entity": "person", "field": "email"},
                    {"column": "Organization", "entity": "organization", "field": "name"},
                ]
            }
        )
    )
    args = ["import", str(file), "--company", company, "--mapping", str(mapping)]
    assert main([*args, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["state"], dry["would_create"], dry["errors"]) == ("validated", 1, 1)
    assert dry["first_errors"][0]["errors"][0]["code"] == "not_an_email"

    assert main(args) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{") :])
    assert (summary["state"], summary["created"], summary["failed"]) == ("completed", 1, 1)
    assert main(["import", str(file), "--company", company, "--entity", "person"]) == 0


def test_leadflow_import_maps_suggested_deal_and_note_columns(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)
    assert main(["create-company", "--name", "Deals", "--admin-email", "deals@example.com"]) == 0
    company = json.loads(capsys.readouterr().out)["company"]["id"]
    file = tmp_path / "deals.csv"
    rows = [["Organization", "Title", "Value", "Stage", "Status", "Notes"]]
    rows += [["Acme", "Acme deal", "100 EUR", "Demo scheduled", "open", "Met them"]]
    rows += [["Beta", "Beta deal", "5 EUR", "No such stage", "open", ""]]
    file.write_bytes(csv_bytes(rows))
    args = ["import", str(file), "--company", company]
    entities = ["--entity", "organization", "--entity", "deal", "--entity", "note"]
    assert main([*args, *entities, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["would_create"], dry["errors"]) == (1, 1)
    assert dry["first_errors"][0]["errors"][0]["code"] == "unknown_stage"
    assert main([*args, *entities]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{") :])
    assert (summary["state"], summary["created"], summary["failed"]) == ("completed", 1, 1)

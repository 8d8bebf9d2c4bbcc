"""`make bench` at a tiny scale: the ceiling app answers the questions leadflow answers
(same rows, same keys, same cursors), and a wrk run and the table work (when wrk is here).

Both servers run as `make bench` runs them, on a database of their own (committed data:
the test's own transaction would be invisible to them). Needs DATABASE_URL: the embedded
server belongs to the rest of the suite."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is not installed

from bench.common import (
    BenchDatabase,
    free_port,
    leadflow_command,
    leadflow_env,
    serve,
)
from bench.common import uvicorn_command as uvicorn
from bench.suite import (
    API,
    Line,
    Row,
    Wrk,
    call,
    check_same_answer,
    convert_lines,
    fill,
    make_company,
    pick,
    render,
    requests_for,
)

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL"), reason="the bench smoke test runs on DATABASE_URL"
)


def test_ceiling_answers_what_leadflow_answers(tmp_path, worker_id: str) -> None:
    db = BenchDatabase(f"leadflow_bench_smoke_{worker_id}")
    db.recreate()
    try:
        with (
            serve(leadflow_command(free_port()), leadflow_env(db.url)) as leadflow,
            serve(
                uvicorn("bench.ceiling_app:app", free_port()), {"BENCH_DATABASE_URL": db.dsn}
            ) as ceiling,
        ):
            company = make_company(leadflow.base, 400)
            asyncio.run(fill(db.dsn, [company]))
            picks = asyncio.run(pick(db.dsn, company, 100))
            lines = requests_for(company, picks)
            for name in ("lead", "inbox", "deep", "deal", "deals", "email"):
                check_same_answer(leadflow, ceiling, lines[name][0])
            # The custom-field filter (leadflow only): the leads of one external id.
            found = call(leadflow.base, lines["custom"][0], 200)["data"]
            assert found and {f["custom_fields"]["crm_id"] for f in found} == {picks.crm_ids[0]}

            a, b = picks.convertible[:2]
            ours = call(leadflow.base, convert_lines(company, [a])[0], 201)
            theirs = call(ceiling.base, convert_lines(company, [b])[0], 201)
            assert set(ours) == set(theirs) == {"conversion", "deal"}
            assert ours["conversion"]["moved"] == theirs["conversion"]["moved"]
            assert set(theirs["deal"]) <= set(ours["deal"])
            # Converted, the lead is gone from the inbox for both.
            gone = Line("GET", f"{API}/leads/{b}", company.auth)
            assert call(leadflow.base, gone, 410)["deal_id"] == theirs["deal"]["id"]

            created = Line(
                "POST",
                f"{API}/leads",
                company.auth,
                json.dumps({"title": "New", "prospect": {"email": "n@example.net"}}).encode(),
            )
            assert set(call(ceiling.base, created, 201)) == set(call(leadflow.base, created, 201))

            if shutil.which("wrk"):
                wrk = Wrk("wrk", tmp_path)
                figure = wrk.run(ceiling.base, wrk.file(lines["lead"]), 2, 1)
                assert figure.requests > 0 and figure.failed == 0
                table = render([Row("GET /leads/{id}", figure, figure, "1.00")])
                assert "GET /leads/{id}" in table.splitlines()[2]
    finally:
        db.drop()

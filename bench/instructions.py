"""Instructions per request, counted by valgrind's callgrind: the same figure whatever else
the machine is doing, so two commits compare on a shared, noisy machine where timings
cannot.

The app is called in-process through httpx's ASGI transport (the client's own work is in
the figure, as in bench/cpu.py), with the JSON log on and start-up objects frozen as
`leadflow serve` freezes them; without the freeze, full collections timed by the
allocation pattern swing the count by 100,000s of instructions a request. Each request
kind runs twice under callgrind, 50 and 250 times after a warm-up; the difference over
200 is the cost of one request (start-up and warm-up cancel out). PYTHONHASHSEED is
fixed. About two minutes per run.

    python -m bench.instructions              # GET /leads/{id} and the inbox page
    BENCH_ONLY=lead,deal,page,healthz,create,convert,capture python -m bench.instructions

`create` is `POST /leads` (a prospect with a name and an email, as `make bench` sends);
`convert` is `POST /leads/{id}/convert` of a lead whose prospect becomes a new person
and a new organization (each request converts a lead of its own, made beforehand);
`capture` is a signed `POST /capture/{form_id}` as bench/capture.py sends it (signed
beforehand, outside the count).

Needs valgrind (Debian: `apt-get install valgrind`). Run it from two checkouts to compare
commits, one after the other or at once: each run has its own database,
`leadflow_instructions_<pid>` on DATABASE_URL's server (else the embedded PostgreSQL),
dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import API, OPERATOR_TOKEN, BenchDatabase, signed

KINDS = ("lead", "deal", "page", "healthz", "create", "convert", "capture")
FEW, MANY, WARM_UP = 50, 250, 20


def _app(url: str) -> Any:
    from leadflow.config import Settings
    from leadflow.db import make_engine, make_reader_factory, make_session_factory
    from leadflow.main import create_app

    engine = make_engine(url, pool_size=5)
    unlimited = "100000000/minute"  # the captures of a run come from one address
    app = create_app(
        Settings(
            database_url=url,
            admin_token=OPERATOR_TOKEN,
            capture_rate_per_form=unlimited,
            capture_rate_per_client=unlimited,
        )
    )
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.reader_factory = make_reader_factory(engine)
    return app


async def _fill(url: str) -> dict[str, str]:
    app = _app(url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        company = await client.post(
            f"{API}/companies", json={"name": "B", "admin_email": "b@example.com"}, headers=operator
        )
        token = company.json()["api_token"]
        headers = {"Authorization": f"Bearer {token}"}
        leads = []
        for i in range(60):
            body = {"title": f"Lead {i}", "prospect": {"person_name": f"Ana {i}"}}
            leads.append(
                (await client.post(f"{API}/leads", json=body, headers=headers)).json()["id"]
            )
        deal = await client.post(f"{API}/deals", json={"title": "Deal"}, headers=headers)
        await client.get(f"{API}/leads/{leads[7]}", headers=headers)  # its owner saw it
        convertible = []
        for i in range(2 * WARM_UP + FEW + MANY):
            body = {
                "title": f"To convert {i}",
                "prospect": {
                    "person_name": f"Ana {i}",
                    "email": f"ana.{i}@example.com",
                    "organization_name": f"Acme {i}",
                },
            }
            answer = await client.post(f"{API}/leads", json=body, headers=headers)
            convertible.append(answer.json()["id"])
        form = (await client.post(f"{API}/forms", json={"name": "F"}, headers=headers)).json()
    await app.state.engine.dispose()
    # Signed here, so that the signing is not in the count: a capture as bench/capture.py
    # sends it (a prospect with an organization and a message), each with its own id.
    captures = []
    for i in range(2 * WARM_UP + FEW + MANY):
        raw = json.dumps(
            {
                "person_name": f"Prospect {i}",
                "email": f"prospect{i}@example.com",
                "organization_name": f"Organization {i % 500}",
                "message": "Please call me back about your offer.",
            }
        ).encode()
        captures.append((raw.decode(), signed(form["signing_secret"], raw)))
    return {
        "url": url,
        "token": token,
        "lead": leads[7],
        "deal": deal.json()["id"],
        "convertible": convertible,
        "form": form["id"],
        "captures": captures,
    }


def _create(n: int) -> tuple[str, str, bytes]:
    body = {
        "title": f"New lead {n}",
        "prospect": {"person_name": f"New {n}", "email": f"n.{n}@x.net"},
    }
    return "POST", f"{API}/leads", json.dumps(body).encode()


async def _requests(state: dict[str, Any], kind: str, count: int) -> None:
    """The child's work, under callgrind: `count` requests of one kind."""
    from leadflow import main as leadflow_main
    from leadflow.logs import configure_logging

    configure_logging("INFO", as_json=True)
    app = _app(state["url"])
    # Each run converts leads of its own: the short run the first ones, the long one the rest.
    convertible = iter(state["convertible"][: WARM_UP + FEW] if count == FEW
                       else state["convertible"][WARM_UP + FEW :])  # fmt: skip
    captures = iter(state["captures"][: WARM_UP + FEW] if count == FEW
                    else state["captures"][WARM_UP + FEW :])  # fmt: skip
    capture_headers: dict[str, str] = {}

    def request(n: int) -> tuple[str, str, bytes | None]:
        if kind == "create":
            return _create(n)
        if kind == "convert":
            return "POST", f"{API}/leads/{next(convertible)}/convert", b"{}"
        if kind == "capture":
            raw, signature = next(captures)
            capture_headers.clear()
            capture_headers.update(signature)
            return "POST", f"{API}/capture/{state['form']}", raw.encode()
        return "GET", {
            "lead": f"{API}/leads/{state['lead']}",
            "deal": f"{API}/deals/{state['deal']}",
            "page": f"{API}/leads?limit=50",
            "healthz": "/healthz",
        }[kind], None  # fmt: skip

    headers = {"Authorization": f"Bearer {state['token']}", "Content-Type": "application/json"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for n in range(WARM_UP):
            method, path, body = request(n)
            await client.request(method, path, headers={**headers, **capture_headers}, content=body)
        leadflow_main._freeze_startup_objects()
        for n in range(count):
            method, path, body = request(WARM_UP + n)
            response = await client.request(
                method, path, headers={**headers, **capture_headers}, content=body
            )
            assert response.status_code in (200, 201), response.text
    await app.state.engine.dispose()


def _instructions(valgrind: str, state_file: Path, kind: str, count: int) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        run = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.instructions",
                "--child",
                str(state_file),
                kind,
                str(count),
            ],
            env={**os.environ, "PYTHONHASHSEED": "0"},
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            check=False,
        )
    if run.returncode != 0:
        raise SystemExit(f"the requests under callgrind failed:\n{run.stderr[-3000:]}")
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        state = json.loads(Path(sys.argv[2]).read_text())
        asyncio.run(_requests(state, sys.argv[3], int(sys.argv[4])))
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    kinds = [k for k in os.environ.get("BENCH_ONLY", "lead,page").split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise SystemExit(f"unknown BENCH_ONLY kinds {sorted(unknown)}; known: {KINDS}")
    database = BenchDatabase(f"leadflow_instructions_{os.getpid()}")
    database.recreate()
    try:
        state = asyncio.run(_fill(database.url))
        with tempfile.TemporaryDirectory() as scratch:
            state_file = Path(scratch) / "state.json"
            state_file.write_text(json.dumps(state))
            print(f"instructions per request (callgrind; {MANY} minus {FEW} requests)")
            for kind in kinds:
                few = _instructions(valgrind, state_file, kind, FEW)
                many = _instructions(valgrind, state_file, kind, MANY)
                print(f"  {kind:<8} {(many - few) / (MANY - FEW):>12,.0f}", flush=True)
    finally:
        database.drop()
        database.stop()


if __name__ == "__main__":
    main()

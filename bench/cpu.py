"""CPU per request, in-process: the app called through httpx's ASGI transport on a real
database (DATABASE_URL's server, else the embedded PostgreSQL), `time.process_time()`
around N calls of each request, median of 3 rounds. No network, no uvicorn, no other
process's load in the figure: what leadflow's own Python costs per request.

    python bench/cpu.py            # 1,000 calls per round (BENCH_CALLS)

Run it from two checkouts (each one's own venv) to compare commits on one machine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import API, OPERATOR_TOKEN, BenchDatabase

from leadflow.config import Settings
from leadflow.db import make_engine, make_reader_factory, make_session_factory
from leadflow.main import create_app

CALLS = int(os.environ.get("BENCH_CALLS", "1000"))
ROUNDS = 3


def main() -> None:
    database = BenchDatabase("leadflow_cpu")
    database.recreate()
    try:
        asyncio.run(run(database.url))
    finally:
        database.drop()
        database.stop()


async def run(url: str) -> None:
    engine = make_engine(url, pool_size=5)
    try:
        settings = Settings(database_url=url, admin_token=OPERATOR_TOKEN)
        app = create_app(settings)
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.reader_factory = make_reader_factory(engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await measure(client)
    finally:
        await engine.dispose()


async def measure(client: httpx.AsyncClient) -> None:
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    company = await client.post(
        f"{API}/companies",
        json={"name": "Bench", "admin_email": "bench@example.com"},
        headers=operator,
    )
    headers = {"Authorization": f"Bearer {company.json()['api_token']}"}
    lead_ids, deal_ids = [], []
    for i in range(120):
        body = {
            "title": f"Lead {i}",
            "prospect": {"person_name": f"Ana {i}", "email": f"ana{i}@example.com"},
            "value": {"amount": "1500.00", "currency": "EUR"},
        }
        lead_ids.append(
            (await client.post(f"{API}/leads", json=body, headers=headers)).json()["id"]
        )
    for i in range(60):
        body = {"title": f"Deal {i}", "value": {"amount": "99.00", "currency": "EUR"}}
        deal_ids.append(
            (await client.post(f"{API}/deals", json=body, headers=headers)).json()["id"]
        )

    async def get(path: str) -> None:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text

    async def post_lead() -> None:
        body = {"title": "New", "prospect": {"person_name": f"P {uuid.uuid4().hex[:8]}"}}
        response = await client.post(f"{API}/leads", json=body, headers=headers)
        assert response.status_code == 201, response.text

    requests: dict[str, Callable[[], Awaitable[None]]] = {
        "GET /leads/{id}": lambda: get(f"{API}/leads/{lead_ids[7]}"),
        "GET /leads (50)": lambda: get(f"{API}/leads?limit=50"),
        "GET /deals/{id}": lambda: get(f"{API}/deals/{deal_ids[7]}"),
        "GET /deals (50)": lambda: get(f"{API}/deals?limit=50"),
        "POST /leads": post_lead,
    }
    print(f"CPU per request, in-process, median of {ROUNDS} rounds of {CALLS} calls")
    for name, call in requests.items():
        for _ in range(100):
            await call()
        rounds = []
        for _ in range(ROUNDS):
            started = time.process_time()
            for _ in range(CALLS):
                await call()
            rounds.append((time.process_time() - started) / CALLS * 1e6)
        print(f"  {name:<18} {statistics.median(rounds):>8,.0f} us")


if __name__ == "__main__":
    main()

"""CPU per write request of the leadflow process, in-process and sequential: the app
called as ASGI through httpx.ASGITransport (no HTTP server), `time.process_time` around
N requests, median of 3 rounds. Rows: POST /leads (with an owner, a person, an
organization and a label to check), a single conversion of a lead with prospect
person and organization (contacts get created), and a bulk conversion of 500 such leads
(CPU and wall time of the one request).

    DATABASE_URL=postgresql://... python bench/cpu_writes.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from typing import Any

import httpx
from common import API, OPERATOR_TOKEN, BenchDatabase


async def _run(url: str, n: int) -> dict[str, float]:
    from leadflow.config import Settings
    from leadflow.main import create_app

    settings = Settings(database_url=url, admin_token=OPERATOR_TOKEN, log_json=True)
    app = create_app(settings)
    results: dict[str, list[float]] = {
        "POST /leads": [],
        "POST /leads/{id}/convert": [],
        "POST /leads/convert (500)": [],
        "  wall time (500)": [],
    }
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
            company = (
                await client.post(
                    f"{API}/companies",
                    json={"name": "Bench", "admin_email": "a@example.com"},
                    headers=operator,
                )
            ).json()
            auth = {"Authorization": f"Bearer {company['api_token']}"}

            async def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
                response = await client.post(f"{API}{path}", json=body, headers=auth)
                assert response.status_code == 201, response.text
                return response.json()  # type: ignore[no-any-return]

            user = await created("/users", {"email": "u@example.com", "role": "regular"})
            person = await created("/persons", {"name": "P"})
            org = await created("/organizations", {"name": "O"})
            label = await created("/lead-labels", {"name": "L", "color": "blue"})
            body = {
                "title": "Lead",
                "owner_id": user["user"]["id"],
                "person_id": person["id"],
                "organization_id": org["id"],
                "label_ids": [label["id"]],
            }
            for _ in range(20):  # warm up: caches, compiled statements
                await created("/leads", body)
            for _ in range(3):
                start = time.process_time()
                for _ in range(n):
                    await created("/leads", body)
                results["POST /leads"].append((time.process_time() - start) / n * 1e6)

            async def prospect_lead() -> str:
                tag = uuid.uuid4().hex[:8]
                lead = await created(
                    "/leads",
                    {
                        "title": "To convert",
                        "prospect": {
                            "person_name": f"Ana {tag}",
                            "email": f"ana-{tag}@example.com",
                            "organization_name": f"Acme {tag}",
                        },
                    },
                )
                return str(lead["id"])

            for _ in range(10):
                await created(f"/leads/{await prospect_lead()}/convert", {})
            for _ in range(3):
                ids = [await prospect_lead() for _ in range(n)]
                start = time.process_time()
                for lead_id in ids:
                    await created(f"/leads/{lead_id}/convert", {})
                results["POST /leads/{id}/convert"].append((time.process_time() - start) / n * 1e6)

            for _ in range(3):
                ids = [await prospect_lead() for _ in range(500)]
                start, wall = time.process_time(), time.perf_counter()
                await created("/leads/convert", {"lead_ids": ids})
                results["POST /leads/convert (500)"].append((time.process_time() - start) * 1e6)
                results["  wall time (500)"].append((time.perf_counter() - wall) * 1e6)
    return {name: statistics.median(samples) for name, samples in results.items()}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    db = BenchDatabase("leadflow_bench_cpu_writes")
    db.recreate()
    try:
        for name, us in asyncio.run(_run(db.url, n)).items():
            what = "us wall" if "wall" in name else "us CPU per request"
            print(f"{name:28} {us:10,.0f} {what} (median of 3)")
    finally:
        db.drop()


if __name__ == "__main__":
    main()

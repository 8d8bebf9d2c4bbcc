"""A merge as integrators see it: the merged record's deletion naming the survivor
(`related.merged_into`), the survivor's update, and the updates of the records whose
reference moved."""

from __future__ import annotations

import httpx

from leadflow.webhooks.delivery import DeliveryLoop
from tests.factories import API, create_company, create_lead, create_person
from tests.webhooks.conftest import Receiver, drain, subscribe


async def test_a_person_merge_sends_the_deletion_with_the_survivor_and_the_moves(
    live_client: httpx.AsyncClient, receiver: Receiver, worker: DeliveryLoop
) -> None:
    client = live_client
    admin = await create_company(client)
    merged = await create_person(client, admin, emails=["ana@example.com"])
    survivor = await create_person(client, admin, emails=["ana.silva@example.com"])
    lead = await create_lead(client, admin, person_id=merged["id"])
    await subscribe(client, admin, receiver, "/merge", ["person.*", "lead.updated"])

    answer = await client.post(
        f"{API}/persons/{merged['id']}/merge", json={"into": survivor["id"]}, headers=admin.headers
    )
    assert answer.status_code == 200, answer.text
    await drain(worker)

    by_type = {(r.body["type"], r.body["entity_id"]): r.body for r in receiver.of("/merge")}
    deleted = by_type[("person.deleted", merged["id"])]
    assert deleted["related"] == {"merged_into": survivor["id"]}
    assert deleted["data"] is None
    updated = by_type[("person.updated", survivor["id"])]
    assert updated["data"]["emails"] == ["ana.silva@example.com", "ana@example.com"]
    assert updated["previous"] == {"emails": ["ana.silva@example.com"]}
    moved = by_type[("lead.updated", lead["id"])]
    assert moved["data"]["person_id"] == survivor["id"]
    assert moved["previous"] == {"person_id": merged["id"]}

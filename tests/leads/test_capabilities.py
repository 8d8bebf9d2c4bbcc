"""Deal-only capabilities asked of a lead are refused (409), and the table is served:
true only where a route of the app serves the capability, planned ones false for both."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.capabilities import (
    PIPELINE_FIELDS,
    PLANNED,
    TABLE,
    Capability,
    CapabilityNotSupported,
    Entity,
    as_table,
    require,
)
from leadflow.config import Settings
from leadflow.leads.router import DEAL_METHODS
from leadflow.main import create_app
from leadflow.routing import path_operations
from tests.factories import API, create_company, create_lead, create_user
from tests.leads.helpers import mark_converted

DEAL_ONLY_SEGMENTS = [
    "products",
    "participants",
    "files",
    "changelog",
    "invoices",
    "documents",
    "projects",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CAPABILITY_NOT_SUPPORTED = "https://leadflow.dev/problems/capability-not-supported"


@pytest.mark.parametrize("segment", DEAL_ONLY_SEGMENTS)
@pytest.mark.parametrize("method", METHODS)
async def test_deal_only_sub_resources_of_a_lead_are_409_for_the_deals_methods(
    client: httpx.AsyncClient, segment: str, method: str
) -> None:
    """409 for a method the deal's route has (and the documented GET); any other, such as
    PUT, which no deal sub-resource has either, is 405 naming the documented GET."""
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    response = await client.request(
        method, f"{API}/leads/{lead['id']}/{segment}", json={}, headers=admin.headers
    )
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    if method not in DEAL_METHODS[Capability(segment)][0]:
        assert response.status_code == 405
        assert problem["type"] == "https://leadflow.dev/problems/method-not-allowed"
        assert response.headers["allow"] == "GET"
        return
    assert response.status_code == 409
    assert problem["type"] == CAPABILITY_NOT_SUPPORTED
    assert problem["capability"] == segment
    assert problem["entity"] == "lead"


@pytest.mark.parametrize("segment", DEAL_ONLY_SEGMENTS)
async def test_items_under_a_deal_only_sub_resource_answer_as_the_deals_routes(
    client: httpx.AsyncClient, segment: str
) -> None:
    """409 for a method a deal's route below the sub-resource has; 405 for another; 404
    where the deal has no route below it (as /deals/{id}/changelog/x is)."""
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    url = f"{API}/leads/{lead['id']}/{segment}/{uuid.uuid4()}"
    below = DEAL_METHODS[Capability(segment)][1]
    for method in ("GET", "PATCH", "DELETE", "PUT"):
        response = await client.request(method, url, headers=admin.headers)
        if method in below:
            assert response.status_code == 409, method
            assert response.json()["capability"] == segment
        else:
            assert response.status_code == (405 if below else 404), method


def test_the_leads_refusals_follow_the_deal_routes() -> None:
    """DEAL_METHODS (leads cannot ask deals) is what the deal routes serve: on each
    sub-resource's collection (with the documented GET of a planned one), and below it."""
    app = create_app(Settings(database_url=None))
    routes = [r for r in path_operations(app.routes) if isinstance(r, APIRoute)]
    for segment in DEAL_ONLY_SEGMENTS:
        collection = f"{API}/deals/{{deal_id}}/{segment}"
        on_collection = {m for r in routes if r.path == collection for m in r.methods}
        below = {m for r in routes if r.path.startswith(collection + "/") for m in r.methods}
        listed_on_collection, listed_below = DEAL_METHODS[Capability(segment)]
        assert set(listed_on_collection) == on_collection | {"GET"}, segment
        assert set(listed_below) == below, segment


async def test_deal_only_sub_resources_of_an_invisible_lead_are_404(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    private = await create_lead(client, admin, visible_to="owner")
    regular = await create_user(client, admin)
    other = await create_company(client)
    for actor, lead_id in (
        (regular, private["id"]),
        (other, private["id"]),
        (admin, str(uuid.uuid4())),
    ):
        response = await client.get(f"{API}/leads/{lead_id}/products", headers=actor.headers)
        assert response.status_code == 404


async def test_deal_only_sub_resources_of_a_converted_lead_are_still_409(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    await mark_converted(connection, admin.company_id, lead["id"])
    response = await client.get(f"{API}/leads/{lead['id']}/files", headers=admin.headers)
    assert response.status_code == 409


@pytest.mark.parametrize("field", sorted(PIPELINE_FIELDS))
async def test_pipeline_fields_in_a_new_lead_are_409(client: httpx.AsyncClient, field: str) -> None:
    admin = await create_company(client)
    body = {"title": "T", "prospect": {"person_name": "Ana"}, field: "open"}
    response = await client.post(f"{API}/leads", json=body, headers=admin.headers)
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == CAPABILITY_NOT_SUPPORTED
    assert problem["capability"] == field
    assert problem["entity"] == "lead"
    listed = await client.get(f"{API}/leads", headers=admin.headers)
    assert listed.json()["data"] == []


@pytest.mark.parametrize("field", sorted(PIPELINE_FIELDS))
async def test_pipeline_fields_in_a_lead_patch_are_409(
    client: httpx.AsyncClient, field: str
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin)
    url = f"{API}/leads/{lead['id']}"
    response = await client.patch(url, json={"title": "New", field: None}, headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["capability"] == field
    assert (await client.get(url, headers=admin.headers)).json()["title"] == lead["title"]


async def test_pipeline_fields_win_over_other_validation_errors(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.post(
        f"{API}/leads", json={"stage_id": str(uuid.uuid4()), "bogus": 1}, headers=admin.headers
    )
    assert response.status_code == 409
    assert response.json()["capability"] == "stage_id"


async def test_pipeline_fields_in_a_patch_of_an_invisible_lead_are_404(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    other = await create_company(client)
    lead = await create_lead(client, admin)
    response = await client.patch(
        f"{API}/leads/{lead['id']}", json={"stage_id": str(uuid.uuid4())}, headers=other.headers
    )
    assert response.status_code == 404


async def test_pipeline_fields_need_a_token_first(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/leads", json={"title": "T", "status": "open"})
    assert response.status_code == 401


async def test_capabilities_serves_the_table(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    response = await client.get(f"{API}/capabilities", headers=admin.headers)
    assert response.status_code == 200
    table = response.json()
    assert table == as_table()
    for segment in DEAL_ONLY_SEGMENTS:
        assert table["lead"][segment] is False
        assert table["deal"][segment] is True
    assert table["planned"] == []
    assert table["lead"]["archiving"] is True and table["deal"]["archiving"] is False
    assert table["lead"]["pipeline"] is False and table["deal"]["pipeline"] is True
    assert table["lead"]["notes"] is table["deal"]["notes"] is True


async def test_capabilities_need_an_api_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/capabilities")).status_code == 401


def test_planned_capabilities_are_false_for_both_entities() -> None:
    table = as_table()
    assert table["planned"] == [capability.value for capability in PLANNED]
    for capability in PLANNED:
        assert table["lead"][capability.value] is table["deal"][capability.value] is False


def test_a_lead_asking_for_a_planned_deal_only_capability_is_still_refused() -> None:
    with pytest.raises(CapabilityNotSupported):
        require(Entity.lead, Capability.invoices)
    require(Entity.deal, Capability.invoices)  # meant for deals: no route yet, not a 409


@dataclass(frozen=True)
class ServedBy:
    """A route that serves a capability: its path under /api/v1 and method, and when
    given, a field of its JSON body (that accepts `value`, when given) or a status it
    declares. Without a method, any route at or under the path."""

    path: str
    method: str | None = None
    field: str | None = None
    value: Any = None
    status: int | None = None


def _both(*served_by: ServedBy) -> dict[Entity, tuple[ServedBy, ...]]:
    return {Entity.lead: served_by, Entity.deal: served_by}


def _import_mapping_of(entity: str) -> ServedBy:
    """The mapping route accepting a column of `entity`."""
    column = {"column": "Title", "entity": entity, "field": "title"}
    return ServedBy("/imports/{import_id}/mapping", "PUT", field="columns", value=[column])


# For every entity a capability is meant for (the mission's table), the routes that serve
# it, all of which must exist while the capability is built. For a planned one: where it
# would be served, none of which may exist yet.
SERVED_BY: dict[Capability, dict[Entity, tuple[ServedBy, ...]]] = {
    Capability.persons_and_organizations: {
        Entity.lead: (
            ServedBy("/leads", "POST", "person_id"),
            ServedBy("/leads", "POST", "organization_id"),
        ),
        Entity.deal: (
            ServedBy("/deals", "POST", "person_id"),
            ServedBy("/deals", "POST", "organization_id"),
        ),
    },
    Capability.notes: {
        entity: (
            ServedBy("/notes", "POST", f"{entity.value}_id"),
            ServedBy("/notes", "POST", "mentions"),
            ServedBy("/notes/{note_id}/comments", "POST"),
        )
        for entity in Entity
    },
    Capability.activities: {
        entity: (ServedBy("/activities", "POST", f"{entity.value}_id"),) for entity in Entity
    },
    Capability.labels: {
        Entity.lead: (ServedBy("/lead-labels", "POST"), ServedBy("/leads", "POST", "label_ids")),
        Entity.deal: (ServedBy("/deals", "POST", "label_ids"),),
    },
    Capability.lead_capture: {
        entity: (
            ServedBy("/forms", "POST", "creates", entity.value),
            ServedBy("/capture/{form_id}", "POST"),
        )
        for entity in Entity
    },
    Capability.archiving: {
        Entity.lead: (
            ServedBy("/leads/{lead_id}/archive", "POST"),
            ServedBy("/leads/{lead_id}/unarchive", "POST"),
        )
    },
    Capability.pipeline: {
        Entity.deal: (
            ServedBy("/pipelines", "POST"),
            ServedBy("/deals", "POST", "stage_id"),
            ServedBy("/deals/{deal_id}", "PATCH", "status", "won"),
        )
    },
    Capability.products: {
        Entity.deal: (ServedBy("/products", "POST"), ServedBy("/deals/{deal_id}/products", "POST"))
    },
    Capability.participants: {Entity.deal: (ServedBy("/deals/{deal_id}/participants", "POST"),)},
    Capability.files: {Entity.deal: (ServedBy("/deals/{deal_id}/files", "POST"),)},
    Capability.documents: {
        Entity.deal: (
            ServedBy("/document-templates", "POST"),
            ServedBy("/deals/{deal_id}/documents", "POST"),
        )
    },
    Capability.invoices: {
        Entity.deal: (ServedBy("/invoices"), ServedBy("/deals/{deal_id}/invoices"))
    },
    Capability.projects: {
        Entity.deal: (ServedBy("/projects", "POST"), ServedBy("/deals/{deal_id}/projects", "POST"))
    },
    Capability.formula_fields: {
        # Custom fields alone are not formulas: a field definition that accepts the type.
        Entity.deal: (ServedBy("/fields", "POST", field="type", value="formula"),)
    },
    Capability.changelog: {Entity.deal: (ServedBy("/deals/{deal_id}/changelog", "GET"),)},
    Capability.open_deal_limit: {
        Entity.deal: (
            ServedBy("/deals", "POST", status=403),
            ServedBy("/deals/{deal_id}", "PATCH", status=403),
            ServedBy("/leads/{lead_id}/convert", "POST", status=403),
        )
    },
    # One capability of both entities: `/imports` maps columns to leads and to deals.
    Capability.import_: {
        Entity.lead: (_import_mapping_of("lead"),),
        Entity.deal: (_import_mapping_of("deal"),),
    },
}


@pytest.fixture(scope="module")
def routes() -> list[APIRoute]:
    app = create_app(Settings(database_url=None))
    return [r for r in path_operations(app.router.routes) if isinstance(r, APIRoute)]


def _accepts(route: APIRoute, field: str, value: Any) -> bool:
    body = route.body_field.field_info.annotation if route.body_field is not None else None
    if not (isinstance(body, type) and issubclass(body, BaseModel)):
        return False
    if field not in body.model_fields:
        return False
    if value is None:
        return True
    try:
        TypeAdapter(body.model_fields[field].annotation).validate_python(value)
    except ValidationError:
        return False
    return True


def _serves(route: APIRoute, served_by: ServedBy) -> bool:
    path = API + served_by.path
    if served_by.method is None:
        at_path = route.path == path or route.path.startswith(path + "/")
    else:
        at_path = route.path == path and served_by.method in route.methods
    return (
        at_path
        and (served_by.field is None or _accepts(route, served_by.field, served_by.value))
        and (served_by.status is None or served_by.status in route.responses)
    )


def test_every_capability_says_which_routes_serve_it() -> None:
    assert set(SERVED_BY) == set(Capability)
    for capability, row in TABLE.items():
        assert set(SERVED_BY[capability]) == row.meant_for, capability


@pytest.mark.parametrize("capability", list(Capability), ids=str)
def test_the_table_says_an_entity_has_a_capability_only_when_a_route_serves_it(
    routes: list[APIRoute], capability: Capability
) -> None:
    table = as_table()
    for entity, served_by in SERVED_BY[capability].items():
        served = [s for s in served_by if any(_serves(route, s) for route in routes)]
        if table[entity.value][capability.value]:
            missing = [s for s in served_by if s not in served]
            assert not missing, f"{entity.value} {capability.value}: no route serves {missing}"
        else:
            assert capability.value in table["planned"], (entity, capability)
            assert not served, (
                f"{entity.value} {capability.value}: {served} now served; "
                "mark it built (no longer planned)"
            )
